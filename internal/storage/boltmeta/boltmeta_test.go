package boltmeta

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/storagetest"
)

func open(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storagetest.RunMeta(t, func(t *testing.T) storage.Meta {
		return open(t, filepath.Join(t.TempDir(), "meta.db"), Options{})
	})
}

// TestReopen checks that everything written is in the file after Close,
// read by a new DB as a restarted process would.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cors := []byte("<CORSConfiguration/>")
	obj := storage.Object{
		Bucket: "b", Key: "dir/obj ü", Size: 3, ETag: "abc", LastModified: time.Unix(1700000000, 123000).UTC(),
		ContentType: "text/plain", UserMeta: map[string]string{"k": "v"},
		Checksum: &storage.Checksum{Algorithm: "SHA1", Value: "x", Type: "FULL_OBJECT"},
		Segments: []storage.Segment{{Blob: "ref1", Size: 3}},
	}
	upload := storage.Upload{Bucket: "b", Key: "big", ID: "u1", Initiated: time.Unix(1700000001, 0).UTC(),
		Template: storage.Object{ContentType: "video/mp4"}}
	part := storage.Part{Number: 2, Size: 5, ETag: "p2", LastModified: time.Unix(1700000002, 0).UTC(),
		Segment: storage.Segment{Blob: "ref2", Size: 5}}
	key := storage.AccessKey{ID: "AK1", Name: "app", SealedSecret: []byte{9, 8, 7}, Scopes: []string{"object:get"},
		Created: time.Unix(1700000003, 0).UTC(), MaxURLTTL: time.Hour}
	steps := []error{
		db.CreateBucket(ctx, storage.Bucket{Name: "b", Created: time.Unix(1700000000, 0).UTC()}),
		db.UpdateBucket(ctx, "b", func(b *storage.Bucket) error { b.CORS = cors; return nil }),
		db.CreateUpload(ctx, upload),
		db.PutAccessKey(ctx, key),
		db.Redeem(ctx, "token", time.Now().Add(time.Hour)),
	}
	_, err = db.PutObject(ctx, obj, nil)
	steps = append(steps, err)
	_, err = db.PutPart(ctx, "b", "big", "u1", part)
	steps = append(steps, err)
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	db = open(t, path, Options{})
	b, err := db.GetBucket(ctx, "b")
	if err != nil || string(b.CORS) != string(cors) || !b.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("bucket after reopen = %+v, %v", b, err)
	}
	got, err := db.GetObject(ctx, "b", obj.Key)
	if err != nil || !reflect.DeepEqual(got, obj) {
		t.Errorf("object after reopen = %+v, %v\nwant %+v", got, err, obj)
	}
	u, err := db.GetUpload(ctx, "b", "big", "u1")
	if err != nil || u.Template.ContentType != "video/mp4" || !u.Initiated.Equal(upload.Initiated) {
		t.Errorf("upload after reopen = %+v, %v", u, err)
	}
	parts, _, err := db.ListParts(ctx, "b", "big", "u1", 0, 10)
	if err != nil || len(parts) != 1 || !reflect.DeepEqual(parts[0], part) {
		t.Errorf("parts after reopen = %+v, %v", parts, err)
	}
	k, err := db.GetAccessKey(ctx, "AK1")
	if err != nil || k.Name != "app" || string(k.SealedSecret) != string(key.SealedSecret) || k.MaxURLTTL != time.Hour {
		t.Errorf("access key after reopen = %+v, %v", k, err)
	}
	if err := db.Redeem(ctx, "token", time.Now().Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyRedeemed) {
		t.Errorf("redemption forgotten after reopen: %v", err)
	}
}

// TestLocked checks that a second opener of the same file (another server
// on the same data directory) gets a clear error instead of waiting forever.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	open(t, path, Options{})
	db, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		_ = db.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, bolterrors.ErrTimeout) || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second Open: %v; want a lock timeout that says so", err)
	}
}

func TestClosedAndCancelled(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "meta.db"), Options{NoSync: true})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.CreateBucket(ctx, storage.Bucket{Name: "b"}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateBucket with a cancelled context: %v", err)
	}
	if _, err := db.GetBucket(t.Context(), "b"); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("cancelled CreateBucket created the bucket: %v", err)
	}
}

// TestPanicInCheck checks that a panicking PutCheck panics in the caller's
// goroutine (where the HTTP layer recovers it) and leaves the DB working.
func TestPanicInCheck(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "meta.db"), Options{NoSync: true})
	if err := db.CreateBucket(ctx, storage.Bucket{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the check's panic", p)
			}
		}()
		_, _ = db.PutObject(ctx, storage.Object{Bucket: "b", Key: "k"}, func(*storage.Object) error { panic("boom") })
		t.Error("PutObject returned after its check panicked")
	}()
	if _, err := db.GetObject(ctx, "b", "k"); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Errorf("panicked put stored the object: %v", err)
	}
	if _, err := db.PutObject(ctx, storage.Object{Bucket: "b", Key: "k"}, nil); err != nil {
		t.Errorf("PutObject after a panic: %v", err)
	}
}

func TestMapFull(t *testing.T) {
	full := mapFull(&os.PathError{Op: "write", Path: "meta.db", Err: syscall.ENOSPC})
	if !errors.Is(full, storage.ErrStorageFull) || !errors.Is(full, syscall.ENOSPC) {
		t.Errorf("ENOSPC mapped to %v", full)
	}
	other := errors.New("other")
	if mapFull(other) != other || mapFull(nil) != nil {
		t.Error("mapFull changed an unrelated error")
	}
}
