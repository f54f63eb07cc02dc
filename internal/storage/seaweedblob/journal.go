package seaweedblob

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The journal is how List knows the blobs: SeaweedFS's HTTP API can look a
// file up by id but cannot enumerate the files of a volume. Every blob this
// store writes has an entry, keyed by the file id of its first chunk (unique
// in the cluster), whose value is the modification time (8 bytes, Unix
// nanoseconds) followed by the reference.
//
// Ordering is what makes it crash-safe: an entry is written (and fsynced)
// before each chunk upload starts, rewritten with the final reference at
// Commit, and removed only after every chunk was deleted. A crash therefore
// leaves the chunks it wrote findable, and a stale entry (a blob deleted
// through another node, or a chunk upload that never happened) costs only a
// Delete of missing chunks, which succeeds.
type journal struct {
	db *bolt.DB
}

var journalBucket = []byte("blobs")

// journalFile is the bbolt file inside Options.JournalDir.
const journalFile = "seaweedblob.journal"

func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("seaweedblob: journal directory: %w", err)
	}
	path := filepath.Join(dir, journalFile)
	// bbolt locks the file: a second store on the same directory would
	// otherwise block forever instead of saying why.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("seaweedblob: journal %s is in use by another store", path)
		}
		return nil, fmt.Errorf("seaweedblob: open journal %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(journalBucket)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("seaweedblob: init journal %s: %w", path, err)
	}
	return &journal{db: db}, nil
}

// put records (or updates) the entry of blob id. Batch lets concurrent
// writers share one fsync; its function may run twice, and Put is
// idempotent.
func (j *journal) put(id string, mod time.Time, ref string) error {
	v := make([]byte, 8+len(ref))
	binary.BigEndian.PutUint64(v, uint64(mod.UnixNano()))
	copy(v[8:], ref)
	err := j.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(journalBucket).Put([]byte(id), v)
	})
	if err != nil {
		return fmt.Errorf("seaweedblob: journal put %s: %w", id, err)
	}
	return nil
}

func (j *journal) remove(id string) error {
	err := j.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(journalBucket).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("seaweedblob: journal remove %s: %w", id, err)
	}
	return nil
}

type journalEntry struct {
	id  string
	ref string
	mod time.Time
}

// page returns up to n entries with ids greater than after, in id order.
// List walks the journal a page at a time and calls its callback outside
// any transaction: the callback may Delete, and a bbolt write waiting on an
// open read transaction of the same goroutine can deadlock.
func (j *journal) page(after string, n int) ([]journalEntry, error) {
	var out []journalEntry
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(journalBucket).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < n; k, v = c.Next() {
			if len(v) < 8 {
				return fmt.Errorf("journal entry %q is corrupt", k)
			}
			out = append(out, journalEntry{
				id:  string(k),
				ref: string(v[8:]),
				mod: time.Unix(0, int64(binary.BigEndian.Uint64(v))),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seaweedblob: read journal: %w", err)
	}
	return out, nil
}

func (j *journal) close() error {
	return j.db.Close()
}
