package fsck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/boltmeta"
	"nfyio.dev/storage/internal/storage/fsblob"
)

// Store is a pair of stores opened for checking.
type Store struct {
	Meta  storage.Meta
	Blobs storage.Blobs
}

// OpenEmbedded opens the embedded store in dataDir (the layout server.New
// creates: meta.db and blobs/). Both stores take a lock, so this fails
// while a server is running on the directory: checking a store that is
// being written would report writes in flight as orphans, and repairing it
// could delete them.
func OpenEmbedded(dataDir string) (*Store, error) {
	dbPath := filepath.Join(dataDir, "meta.db")
	blobDir := filepath.Join(dataDir, "blobs")
	// Opening would create an empty store: refuse a directory that has
	// none instead of reporting it clean.
	for _, p := range []string{dbPath, blobDir} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fsck: %s holds no store (%s missing)", dataDir, filepath.Base(p))
		} else if err != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
	}
	// The blob store's lock is taken without waiting, so it answers first
	// and clearly when a server holds the directory.
	blobs, err := fsblob.New(blobDir, fsblob.Options{})
	if err != nil {
		return nil, fmt.Errorf("fsck: open blobs (is a server running on %s?): %w", dataDir, err)
	}
	meta, err := boltmeta.Open(dbPath, boltmeta.Options{LockTimeout: 500 * time.Millisecond})
	if err != nil {
		_ = blobs.Close()
		return nil, fmt.Errorf("fsck: open metadata (is a server running on %s?): %w", dataDir, err)
	}
	return &Store{Meta: meta, Blobs: blobs}, nil
}

// Close releases both stores and their locks.
func (e *Store) Close() error {
	return errors.Join(e.Blobs.Close(), e.Meta.Close())
}
