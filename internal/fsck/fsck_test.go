package fsck

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/boltmeta"
	"nfyio.dev/storage/internal/storage/fsblob"
)

// testStore is an embedded store in a temp dir, laid out as a server's.
type testStore struct {
	dir string
	*Store
}

func newStore(t *testing.T) *testStore {
	t.Helper()
	dir := t.TempDir()
	// The server's layout, without fsync: these tests do not crash.
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"), fsblob.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := boltmeta.Open(filepath.Join(dir, "meta.db"), boltmeta.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &Store{Meta: meta, Blobs: blobs}
	t.Cleanup(func() { _ = e.Close() })
	if err := e.Meta.CreateBucket(context.Background(), storage.Bucket{Name: "b", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return &testStore{dir: dir, Store: e}
}

func (s *testStore) blob(t *testing.T, data []byte) storage.Segment {
	t.Helper()
	w, err := s.Blobs.Create(context.Background(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	ref, err := w.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return storage.Segment{Blob: ref, Size: int64(len(data))}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func sha256b64(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// putSingle stores a single-part object with a blob and a SHA256 checksum.
func (s *testStore) putSingle(t *testing.T, key string, data []byte) storage.Object {
	t.Helper()
	o := storage.Object{Bucket: "b", Key: key, Size: int64(len(data)), ETag: md5hex(data), LastModified: time.Now(),
		Checksum: &storage.Checksum{Algorithm: "SHA256", Value: sha256b64(data), Type: "FULL_OBJECT"},
		Segments: []storage.Segment{s.blob(t, data)}}
	if _, err := s.Meta.PutObject(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	return o
}

// putMultipart stores a completed two-part object with a COMPOSITE SHA256.
func (s *testStore) putMultipart(t *testing.T, key string, p1, p2 []byte) storage.Object {
	t.Helper()
	parts := [][]byte{p1, p2}
	o := storage.Object{Bucket: "b", Key: key, LastModified: time.Now()}
	etags := md5.New()
	comp := sha256.New()
	for i, p := range parts {
		sum := md5.Sum(p)
		etags.Write(sum[:])
		ck := sha256.Sum256(p)
		comp.Write(ck[:])
		o.Size += int64(len(p))
		o.Segments = append(o.Segments, s.blob(t, p))
		o.Parts = append(o.Parts, storage.PartInfo{Number: i + 1, Size: int64(len(p)), ETag: hex.EncodeToString(sum[:]), Checksum: base64.StdEncoding.EncodeToString(ck[:])})
	}
	o.ETag = hex.EncodeToString(etags.Sum(nil)) + "-2"
	o.Checksum = &storage.Checksum{Algorithm: "SHA256", Value: base64.StdEncoding.EncodeToString(comp.Sum(nil)) + "-2", Type: "COMPOSITE"}
	if _, err := s.Meta.PutObject(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	return o
}

// blobPath is where fsblob keeps ref; tests damage blobs behind its back,
// as a disk or an operator would.
func (s *testStore) blobPath(ref string) string {
	return filepath.Join(s.dir, "blobs", ref[0:2], ref[2:4], ref)
}

func check(t *testing.T, s *testStore, opts Options) *Report {
	t.Helper()
	rep, err := Check(context.Background(), s.Meta, s.Blobs, opts)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return rep
}

func kinds(rep *Report) string {
	var k []string
	for _, p := range rep.Problems {
		k = append(k, p.Kind)
	}
	return strings.Join(k, ",")
}

func TestCleanStore(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	s.putSingle(t, "single", bytes.Repeat([]byte("a"), 1000))
	s.putMultipart(t, "multi", bytes.Repeat([]byte("b"), 700), []byte("tail"))
	inline := []byte("small")
	if _, err := s.Meta.PutObject(ctx, storage.Object{Bucket: "b", Key: "inline", Size: 5, ETag: md5hex(inline), Inline: inline, LastModified: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	u := storage.Upload{Bucket: "b", Key: "pending", ID: "u1", Initiated: time.Now()}
	if err := s.Meta.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	part := []byte("part one")
	seg := s.blob(t, part)
	if _, err := s.Meta.PutPart(ctx, "b", "pending", "u1", storage.Part{Number: 1, Size: seg.Size, ETag: md5hex(part), LastModified: time.Now(), Segment: seg}); err != nil {
		t.Fatal(err)
	}

	rep := check(t, s, Options{VerifyContent: true})
	if !rep.Clean() {
		t.Fatalf("clean store reported %s / %+v / %+v", rep.Summary(), rep.Problems, rep.Orphans)
	}
	if rep.Buckets != 1 || rep.Objects != 3 || rep.Uploads != 1 || rep.Parts != 1 || rep.Blobs != 4 {
		t.Errorf("counts: %s", rep.Summary())
	}
	if want := int64(1000 + 704 + 5 + len(part)); rep.BytesVerified != want {
		t.Errorf("verified %d bytes, want %d", rep.BytesVerified, want)
	}
}

func TestMissingBlobIsReportedNotRepaired(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	o := s.putSingle(t, "gone", []byte("content that will vanish"))
	if err := os.Remove(s.blobPath(o.Segments[0].Blob)); err != nil {
		t.Fatal(err)
	}
	rep := check(t, s, Options{Repair: true})
	if rep.Clean() || kinds(rep) != MissingBlob {
		t.Fatalf("want one missing-blob problem, got %q", kinds(rep))
	}
	p := rep.Problems[0]
	if p.Key != "gone" || p.Blob != o.Segments[0].Blob {
		t.Errorf("problem names %+v", p)
	}
	// Repair must not hide the loss by dropping the record.
	if _, err := s.Meta.GetObject(ctx, "b", "gone"); err != nil {
		t.Errorf("record removed by repair: %v", err)
	}
}

func TestMissingPartBlob(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.Meta.CreateUpload(ctx, storage.Upload{Bucket: "b", Key: "k", ID: "u", Initiated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	seg := s.blob(t, []byte("a part"))
	if _, err := s.Meta.PutPart(ctx, "b", "k", "u", storage.Part{Number: 3, Size: seg.Size, ETag: md5hex([]byte("a part")), Segment: seg}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.blobPath(seg.Blob)); err != nil {
		t.Fatal(err)
	}
	rep := check(t, s, Options{})
	if kinds(rep) != MissingBlob || rep.Problems[0].UploadID != "u" || rep.Problems[0].Part != 3 {
		t.Fatalf("want the part's missing blob, got %+v", rep.Problems)
	}
}

func TestSizeMismatch(t *testing.T) {
	s := newStore(t)
	o := s.putSingle(t, "short", bytes.Repeat([]byte("x"), 100))
	if err := os.Truncate(s.blobPath(o.Segments[0].Blob), 60); err != nil {
		t.Fatal(err)
	}
	rep := check(t, s, Options{VerifyContent: true})
	if kinds(rep) != SizeMismatch {
		t.Fatalf("want size-mismatch only, got %q", kinds(rep))
	}
	if !strings.Contains(rep.Problems[0].Detail, "60") {
		t.Errorf("detail %q does not name the blob's size", rep.Problems[0].Detail)
	}
}

func TestVerifyContent(t *testing.T) {
	s := newStore(t)
	single := s.putSingle(t, "single", bytes.Repeat([]byte("s"), 300))
	multi := s.putMultipart(t, "multi", bytes.Repeat([]byte("m"), 500), []byte("end"))

	// Same sizes, different bytes: only reading finds it.
	if err := os.WriteFile(s.blobPath(single.Segments[0].Blob), bytes.Repeat([]byte("S"), 300), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.blobPath(multi.Segments[1].Blob), []byte("END"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := check(t, s, Options{}); !rep.Clean() {
		t.Fatalf("without content verification sizes match: %q", kinds(rep))
	}
	rep := check(t, s, Options{VerifyContent: true})
	var single1, multiPart2 int
	for _, p := range rep.Problems {
		if p.Kind != ContentMismatch {
			t.Errorf("unexpected problem %v", p)
		}
		switch {
		case p.Key == "single":
			single1++
		case p.Key == "multi" && p.Part == 2:
			multiPart2++
		}
	}
	// The single object fails its MD5 and its SHA256; the multipart one
	// fails part 2's MD5 and checksum.
	if single1 != 2 || multiPart2 != 2 {
		t.Errorf("problems: %v", rep.Problems)
	}
}

func TestCompositeChecksumRecordMismatch(t *testing.T) {
	s := newStore(t)
	o := s.putMultipart(t, "multi", []byte("one"), []byte("two"))
	o.Checksum.Value = sha256b64([]byte("not it")) + "-2"
	if _, err := s.Meta.PutObject(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	rep := check(t, s, Options{VerifyContent: true})
	if kinds(rep) != ContentMismatch || !strings.Contains(rep.Problems[0].Detail, "composite") {
		t.Fatalf("want a composite mismatch, got %v", rep.Problems)
	}
}

func TestOrphansAndGrace(t *testing.T) {
	s := newStore(t)
	s.putSingle(t, "kept", []byte("referenced"))
	orphan := s.blob(t, []byte("crash leftover")).Blob

	rep := check(t, s, Options{})
	if len(rep.Orphans) != 1 || rep.Orphans[0].Blob != orphan || rep.Orphans[0].Deleted || rep.Clean() {
		t.Fatalf("want one orphan left in place, got %+v", rep.Orphans)
	}
	// Repair with a grace period longer than the orphan's age keeps it.
	rep = check(t, s, Options{Repair: true, Grace: time.Hour})
	if rep.Orphans[0].Deleted {
		t.Fatal("a young orphan was deleted inside the grace period")
	}
	if _, err := os.Stat(s.blobPath(orphan)); err != nil {
		t.Fatalf("young orphan gone: %v", err)
	}
	// Seen from two hours later, it is old enough.
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	rep = check(t, s, Options{Repair: true, Grace: time.Hour, Now: later})
	if !rep.Orphans[0].Deleted || !rep.Clean() {
		t.Fatalf("old orphan not deleted: %+v", rep.Orphans)
	}
	if _, err := os.Stat(s.blobPath(orphan)); !os.IsNotExist(err) {
		t.Fatalf("orphan still on disk: %v", err)
	}
	rep = check(t, s, Options{VerifyContent: true})
	if !rep.Clean() || rep.Objects != 1 || rep.Blobs != 1 {
		t.Fatalf("after repair: %s", rep.Summary())
	}
}

func TestPagingManyObjects(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	// More than one page of objects and uploads.
	for i := range 1205 {
		data := []byte("object " + strconv.Itoa(i))
		o := storage.Object{Bucket: "b", Key: "k/" + strconv.Itoa(i), Size: int64(len(data)), ETag: md5hex(data), Inline: data, LastModified: time.Now()}
		if _, err := s.Meta.PutObject(ctx, o, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1003 {
		if err := s.Meta.CreateUpload(ctx, storage.Upload{Bucket: "b", Key: "u", ID: "id" + strconv.Itoa(i), Initiated: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	rep := check(t, s, Options{VerifyContent: true})
	if rep.Objects != 1205 || rep.Uploads != 1003 || !rep.Clean() {
		t.Fatalf("paging: %s", rep.Summary())
	}
}

func TestOpenEmbedded(t *testing.T) {
	s := newStore(t)
	s.putSingle(t, "k", []byte("data"))
	if _, err := OpenEmbedded(s.dir); err == nil || !strings.Contains(err.Error(), "server running") {
		t.Fatalf("second open of a locked store: %v", err)
	}
	if _, err := OpenEmbedded(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no store") {
		t.Fatalf("open of an empty dir: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	e, err := OpenEmbedded(s.dir)
	if err != nil {
		t.Fatalf("open once unlocked: %v", err)
	}
	defer e.Close()
	rep, err := Check(context.Background(), e.Meta, e.Blobs, Options{VerifyContent: true})
	if err != nil || !rep.Clean() || rep.Objects != 1 {
		t.Fatalf("check after reopen: %v %s", err, rep.Summary())
	}
}
