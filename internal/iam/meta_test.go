package iam_test

import (
	"testing"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/boltmeta"
)

// openMetaAt opens the embedded metadata store at path, closed when the test
// ends. NoSync only skips fsync; the file's content is the same.
func openMetaAt(t testing.TB, path string) storage.Meta {
	t.Helper()
	db, err := boltmeta.Open(path, boltmeta.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open metadata store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
