// Package boltmeta is the embedded storage.Meta: one bbolt file holds
// buckets, object records, multipart uploads, access keys and one-time token
// redemptions.
//
// Layout (bbolt buckets):
//
//	buckets            name -> JSON storage.Bucket
//	data/<name>/o      object key (raw bytes) -> object record
//	data/<name>/u      upload sort key -> upload record
//	data/<name>/i      upload ID -> upload sort key
//	data/<name>/p      len(upload ID) ‖ upload ID ‖ part number -> part record
//	keys               access key ID -> JSON storage.AccessKey
//	redeem             token -> expiry
//
// Object keys are stored as their raw bytes, so bbolt's byte order is S3's
// listing order and a prefix is a contiguous range. An upload sort key is
// the escaped object key, a terminator, the initiation time and the ID, so
// uploads sort by key, then time, then ID (see uploadSortKey).
//
// Writes that the S3 hot path makes (objects, parts, uploads, redemptions)
// go through group commit (see committer); configuration writes use plain
// transactions.
package boltmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"nfyio.dev/storage/internal/storage"
)

var (
	bktBuckets = []byte("buckets")
	bktData    = []byte("data")
	bktKeys    = []byte("keys")
	bktRedeem  = []byte("redeem")

	subObjects   = []byte("o")
	subUploads   = []byte("u")
	subUploadIDs = []byte("i")
	subParts     = []byte("p")
)

// Options configure Open.
type Options struct {
	// NoSync skips fsync at commit. UNSAFE: a power loss or OS crash can
	// lose acknowledged writes or corrupt the file. For tests and
	// throwaway data only.
	NoSync bool
	// LockTimeout is how long Open waits for the file lock that another
	// process may hold; 0 means one second.
	LockTimeout time.Duration
}

// DB is a storage.Meta backed by a bbolt file.
type DB struct {
	db *bolt.DB
	c  committer
}

var _ storage.Meta = (*DB)(nil)

// Open opens or creates the database file at path (mode 0600).
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		NoSync:  opts.NoSync,
		// The freelist is rebuilt at open instead of written at every
		// commit: cheaper commits, and the map freelist stays fast when
		// the file grows large.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltmeta: %s is locked by another process (waited %v): %w", path, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltmeta: open %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bktBuckets, bktData, bktKeys, bktRedeem} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("boltmeta: initialise %s: %w", path, err)
	}
	d := &DB{db: bdb}
	d.c.db = bdb
	return d, nil
}

// Close closes the file. Calls after Close fail.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("boltmeta: close: %w", err)
	}
	return nil
}

// Ping checks that the database is open and readable.
func (d *DB) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bktBuckets) == nil {
			return errors.New("boltmeta: buckets table missing")
		}
		return nil
	})
}

// update runs a plain (not grouped) write transaction.
func (d *DB) update(fn func(*bolt.Tx) error) error { return mapFull(d.db.Update(fn)) }

// mapFull marks "disk full" and "quota exceeded" commit failures with
// storage.ErrStorageFull (keeping the cause), so the S3 layer can answer
// InsufficientStorage. Other errors keep their identity.
func mapFull(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", storage.ErrStorageFull, err)
	}
	return err
}

// bucketData is the per-S3-bucket part of the layout.
type bucketData struct {
	objects, uploads, uploadIDs, parts *bolt.Bucket
}

func dataOf(tx *bolt.Tx, name string) (bucketData, error) {
	b := tx.Bucket(bktData).Bucket([]byte(name))
	if b == nil || name == "" {
		return bucketData{}, fmt.Errorf("bucket %q: %w", name, storage.ErrBucketNotFound)
	}
	return bucketData{
		objects:   b.Bucket(subObjects),
		uploads:   b.Bucket(subUploads),
		uploadIDs: b.Bucket(subUploadIDs),
		parts:     b.Bucket(subParts),
	}, nil
}

// CreateBucket creates a bucket; ErrBucketExists if the name is taken.
func (d *DB) CreateBucket(ctx context.Context, b storage.Bucket) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Name == "" {
		return errors.New("boltmeta: empty bucket name")
	}
	rec, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("boltmeta: encode bucket %q: %w", b.Name, err)
	}
	return d.update(func(tx *bolt.Tx) error {
		name := []byte(b.Name)
		if tx.Bucket(bktBuckets).Get(name) != nil {
			return fmt.Errorf("bucket %q: %w", b.Name, storage.ErrBucketExists)
		}
		if err := tx.Bucket(bktBuckets).Put(name, rec); err != nil {
			return err
		}
		// A leftover data bucket cannot exist (DeleteBucket removes both in
		// one transaction), so CreateBucket, not CreateBucketIfNotExists.
		data, err := tx.Bucket(bktData).CreateBucket(name)
		if err != nil {
			return fmt.Errorf("boltmeta: create data of bucket %q: %w", b.Name, err)
		}
		for _, sub := range [][]byte{subObjects, subUploads, subUploadIDs, subParts} {
			if _, err := data.CreateBucket(sub); err != nil {
				return err
			}
		}
		return nil
	})
}

func getBucket(tx *bolt.Tx, name string) (storage.Bucket, error) {
	v := tx.Bucket(bktBuckets).Get([]byte(name))
	if v == nil || name == "" {
		return storage.Bucket{}, fmt.Errorf("bucket %q: %w", name, storage.ErrBucketNotFound)
	}
	var b storage.Bucket
	if err := json.Unmarshal(v, &b); err != nil {
		return storage.Bucket{}, fmt.Errorf("boltmeta: bucket %q: %w: %v", name, errCorrupt, err)
	}
	b.Name = name
	return b, nil
}

// GetBucket returns a bucket record.
func (d *DB) GetBucket(ctx context.Context, name string) (storage.Bucket, error) {
	if err := ctx.Err(); err != nil {
		return storage.Bucket{}, err
	}
	var b storage.Bucket
	err := d.db.View(func(tx *bolt.Tx) (err error) {
		b, err = getBucket(tx, name)
		return err
	})
	return b, err
}

// ListBuckets returns all buckets in name order.
func (d *DB) ListBuckets(ctx context.Context) ([]storage.Bucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.Bucket
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktBuckets).ForEach(func(k, v []byte) error {
			var b storage.Bucket
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("boltmeta: bucket %q: %w: %v", k, errCorrupt, err)
			}
			b.Name = string(k)
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// DeleteBucket removes an empty bucket.
func (d *DB) DeleteBucket(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.update(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, name)
		if err != nil {
			return err
		}
		if k, _ := data.objects.Cursor().First(); k != nil {
			return fmt.Errorf("bucket %q has objects: %w", name, storage.ErrBucketNotEmpty)
		}
		if k, _ := data.uploads.Cursor().First(); k != nil {
			return fmt.Errorf("bucket %q has unfinished multipart uploads: %w", name, storage.ErrBucketNotEmpty)
		}
		if err := tx.Bucket(bktData).DeleteBucket([]byte(name)); err != nil {
			return fmt.Errorf("boltmeta: delete data of bucket %q: %w", name, err)
		}
		return tx.Bucket(bktBuckets).Delete([]byte(name))
	})
}

// UpdateBucket applies change to the stored bucket in one transaction. The
// name cannot change: it is the record's key.
func (d *DB) UpdateBucket(ctx context.Context, name string, change func(*storage.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.update(func(tx *bolt.Tx) error {
		b, err := getBucket(tx, name)
		if err != nil {
			return err
		}
		if err := change(&b); err != nil {
			return err
		}
		b.Name = name
		rec, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("boltmeta: encode bucket %q: %w", name, err)
		}
		return tx.Bucket(bktBuckets).Put([]byte(name), rec)
	})
}

// PutAccessKey stores a new access key; ErrKeyExists if the ID is taken.
func (d *DB) PutAccessKey(ctx context.Context, k storage.AccessKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.ID == "" {
		return errors.New("boltmeta: empty access key id")
	}
	rec, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("boltmeta: encode access key: %w", err)
	}
	return d.update(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bktKeys)
		if keys.Get([]byte(k.ID)) != nil {
			return fmt.Errorf("access key %q: %w", k.ID, storage.ErrKeyExists)
		}
		return keys.Put([]byte(k.ID), rec)
	})
}

func getAccessKey(tx *bolt.Tx, id string) (storage.AccessKey, error) {
	v := tx.Bucket(bktKeys).Get([]byte(id))
	if v == nil || id == "" {
		return storage.AccessKey{}, fmt.Errorf("access key %q: %w", id, storage.ErrKeyNotFound)
	}
	return decodeAccessKey(id, v)
}

func decodeAccessKey(id string, v []byte) (storage.AccessKey, error) {
	var k storage.AccessKey
	if err := json.Unmarshal(v, &k); err != nil {
		return storage.AccessKey{}, fmt.Errorf("boltmeta: access key %q: %w: %v", id, errCorrupt, err)
	}
	k.ID = id
	return k, nil
}

// runKeysCheck runs check (when not nil) over every stored key, decoded in
// the write transaction tx. bbolt has one writer at a time, so no other
// change can come between the check and the caller's change. It keeps no
// state outside tx, so a re-run transaction runs it afresh.
func runKeysCheck(tx *bolt.Tx, check storage.KeysCheck) error {
	if check == nil {
		return nil
	}
	keys, err := allAccessKeys(tx)
	if err != nil {
		return err
	}
	return check(keys)
}

// allAccessKeys decodes every stored key, in ID order.
func allAccessKeys(tx *bolt.Tx) ([]storage.AccessKey, error) {
	var keys []storage.AccessKey
	err := tx.Bucket(bktKeys).ForEach(func(id, v []byte) error {
		k, err := decodeAccessKey(string(id), v)
		keys = append(keys, k)
		return err
	})
	return keys, err
}

// UpdateAccessKey applies change to a stored key in one transaction, after
// check (may be nil) passed; the ID cannot change.
func (d *DB) UpdateAccessKey(ctx context.Context, id string, check storage.KeysCheck, change func(*storage.AccessKey) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.update(func(tx *bolt.Tx) error {
		k, err := getAccessKey(tx, id)
		if err != nil {
			return err
		}
		if err := runKeysCheck(tx, check); err != nil {
			return err
		}
		if err := change(&k); err != nil {
			return err
		}
		k.ID = id
		rec, err := json.Marshal(k)
		if err != nil {
			return fmt.Errorf("boltmeta: encode access key: %w", err)
		}
		return tx.Bucket(bktKeys).Put([]byte(id), rec)
	})
}

// GetAccessKey returns a stored key; ErrKeyNotFound if there is none.
func (d *DB) GetAccessKey(ctx context.Context, id string) (storage.AccessKey, error) {
	if err := ctx.Err(); err != nil {
		return storage.AccessKey{}, err
	}
	var k storage.AccessKey
	err := d.db.View(func(tx *bolt.Tx) (err error) {
		k, err = getAccessKey(tx, id)
		return err
	})
	return k, err
}

// ListAccessKeys returns all keys in ID order.
func (d *DB) ListAccessKeys(ctx context.Context) ([]storage.AccessKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []storage.AccessKey
	err := d.db.View(func(tx *bolt.Tx) (err error) {
		out, err = allAccessKeys(tx)
		return err
	})
	return out, err
}

// DeleteAccessKey removes a key, after check (may be nil) passed;
// ErrKeyNotFound if there is none.
func (d *DB) DeleteAccessKey(ctx context.Context, id string, check storage.KeysCheck) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.update(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bktKeys)
		if id == "" || keys.Get([]byte(id)) == nil {
			return fmt.Errorf("access key %q: %w", id, storage.ErrKeyNotFound)
		}
		if err := runKeysCheck(tx, check); err != nil {
			return err
		}
		return keys.Delete([]byte(id))
	})
}

// Redeem records a one-time token; ErrAlreadyRedeemed if it is recorded.
func (d *DB) Redeem(ctx context.Context, token string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if token == "" {
		return errors.New("boltmeta: empty one-time token")
	}
	e := encoder{}
	e.time(expires)
	return d.c.update(func(tx *bolt.Tx) error {
		r := tx.Bucket(bktRedeem)
		if r.Get([]byte(token)) != nil {
			return storage.ErrAlreadyRedeemed
		}
		return r.Put([]byte(token), e.b)
	})
}

// SweepRedemptions removes the records whose expiry is before now.
func (d *DB) SweepRedemptions(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := d.update(func(tx *bolt.Tx) error {
		n = 0
		r := tx.Bucket(bktRedeem)
		var expired [][]byte
		err := r.ForEach(func(k, v []byte) error {
			dec := decoder{b: v}
			exp := dec.time()
			if dec.err != nil {
				return fmt.Errorf("boltmeta: redemption %q: %w", k, dec.err)
			}
			if exp.Before(now) {
				expired = append(expired, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Deleted after the walk: deleting under a running ForEach skips keys.
		for _, k := range expired {
			if err := r.Delete(k); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}
