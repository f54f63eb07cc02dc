package storagetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
)

// RunBlobs runs the conformance suite against the Blobs returned by
// newBlobs, which must return a new, empty store for each call and register
// its own cleanup.
func RunBlobs(t *testing.T, newBlobs func(t *testing.T) storage.Blobs) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Blobs)
	}{
		{"Sizes", testBlobSizes},
		{"ReadAt", testBlobReadAt},
		{"Abort", testBlobAbort},
		{"Delete", testBlobDelete},
		{"List", testBlobList},
		{"Concurrent", testBlobConcurrent},
		{"Ping", func(t *testing.T, b storage.Blobs) {
			if err := b.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBlobs(t)) })
	}
}

// content is a reproducible pseudo-random byte stream: the suite writes and
// verifies large blobs without keeping them in memory.
func content(seed uint64) io.Reader {
	return rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 42})
}

func contentBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(content(seed), b)
	return b
}

func contentHash(seed uint64, n int64) [32]byte {
	h := sha256.New()
	if _, err := io.CopyN(h, content(seed), n); err != nil {
		panic(err)
	}
	return [32]byte(h.Sum(nil))
}

// writeBlob streams size bytes of content(seed) in writes of chunk bytes and
// commits them.
func writeBlob(t *testing.T, bs storage.Blobs, seed uint64, size int64, chunk int) string {
	t.Helper()
	w, err := bs.Create(t.Context(), size)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	src := content(seed)
	buf := make([]byte, chunk)
	for left := size; left > 0; {
		n := int(min(int64(chunk), left))
		_, _ = io.ReadFull(src, buf[:n])
		if m, err := w.Write(buf[:n]); err != nil || m != n {
			_ = w.Abort()
			t.Fatalf("Write: %d, %v", m, err)
		}
		left -= int64(n)
	}
	ref, err := w.Commit(t.Context())
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if ref == "" {
		t.Fatal("Commit returned an empty reference")
	}
	return ref
}

func openBlob(t *testing.T, bs storage.Blobs, ref string) storage.Blob {
	t.Helper()
	b, err := bs.Open(t.Context(), ref)
	if err != nil {
		t.Fatalf("Open(%q): %v", ref, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// hashBlob reads the whole blob through ReadAt in odd-sized pieces.
func hashBlob(t *testing.T, b storage.Blob) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(b, 0, b.Size())); err != nil {
		t.Fatalf("reading blob: %v", err)
	}
	return [32]byte(h.Sum(nil))
}

func testBlobSizes(t *testing.T, bs storage.Blobs) {
	for _, c := range []struct {
		size  int64
		chunk int
	}{
		{0, 1},
		{1, 1},
		{1<<20 + 1, 1<<20 + 1}, // one write
		{1<<20 + 1, 4096},
		{10 << 20, 1000}, // streamed in small writes
	} {
		t.Run(fmt.Sprintf("%d_by_%d", c.size, c.chunk), func(t *testing.T) {
			seed := uint64(c.size) + uint64(c.chunk)
			ref := writeBlob(t, bs, seed, c.size, c.chunk)
			b := openBlob(t, bs, ref)
			if b.Size() != c.size {
				t.Fatalf("Size = %d, want %d", b.Size(), c.size)
			}
			if hashBlob(t, b) != contentHash(seed, c.size) {
				t.Fatal("content read back differs from content written")
			}
		})
	}
}

func testBlobReadAt(t *testing.T, bs storage.Blobs) {
	const size = 1<<20 + 1
	ref := writeBlob(t, bs, 7, size, 64<<10)
	want := contentBytes(7, size)
	b := openBlob(t, bs, ref)
	for _, r := range []struct{ off, n int64 }{
		{0, 1}, {0, size}, {size - 1, 1}, {1, 1 << 20}, {1000, 70000}, {65535, 2}, {1 << 19, 1 << 19},
	} {
		buf := make([]byte, r.n)
		n, err := b.ReadAt(buf, r.off)
		if err != nil && !(err == io.EOF && r.off+r.n == size) {
			t.Fatalf("ReadAt(%d bytes at %d): %d, %v", r.n, r.off, n, err)
		}
		if int64(n) != r.n || !bytes.Equal(buf, want[r.off:r.off+r.n]) {
			t.Fatalf("ReadAt(%d bytes at %d) returned %d bytes or wrong content", r.n, r.off, n)
		}
	}
	// Reads past the end return what there is and io.EOF.
	buf := make([]byte, 20)
	n, err := b.ReadAt(buf, size-10)
	if n != 10 || err != io.EOF || !bytes.Equal(buf[:10], want[size-10:]) {
		t.Errorf("ReadAt across the end = %d, %v; want 10, io.EOF", n, err)
	}
	if n, err := b.ReadAt(buf, size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := b.ReadAt(buf, size+100); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 0, io.EOF", n, err)
	}
	// Parallel ReadAt on one handle is allowed by io.ReaderAt.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			p := make([]byte, 4096)
			for off := int64(g * 4096); off+4096 <= size; off += 8 * 4096 {
				if _, err := b.ReadAt(p, off); err != nil || !bytes.Equal(p, want[off:off+4096]) {
					errs <- fmt.Errorf("parallel ReadAt at %d: %v", off, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Each size is a blob of its own: reading a small one never shows bytes
	// of a bigger one.
	small := openBlob(t, bs, writeBlob(t, bs, 8, 10, 10))
	buf = make([]byte, 100)
	n, err = small.ReadAt(buf, 0)
	if n != 10 || err != io.EOF || !bytes.Equal(buf[:10], contentBytes(8, 10)) {
		t.Errorf("ReadAt of a 10-byte blob = %d, %v", n, err)
	}
	empty := openBlob(t, bs, writeBlob(t, bs, 9, 0, 1))
	if n, err := empty.ReadAt(buf, 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt of an empty blob = %d, %v; want 0, io.EOF", n, err)
	}
}

func listRefs(t *testing.T, bs storage.Blobs) map[string]time.Time {
	t.Helper()
	refs := map[string]time.Time{}
	err := bs.List(t.Context(), func(ref string, modified time.Time) error {
		if _, dup := refs[ref]; dup {
			return fmt.Errorf("ref %q listed twice", ref)
		}
		refs[ref] = modified
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return refs
}

func testBlobAbort(t *testing.T, bs storage.Blobs) {
	keep := writeBlob(t, bs, 1, 100, 100)
	w, err := bs.Create(t.Context(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, content(2), 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	// An upload that never wrote a byte can be aborted too.
	w, err = bs.Create(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort of an empty writer: %v", err)
	}
	refs := listRefs(t, bs)
	if _, ok := refs[keep]; !ok || len(refs) != 1 {
		t.Errorf("List after aborts = %v; want only %q", refs, keep)
	}
}

func testBlobDelete(t *testing.T, bs storage.Blobs) {
	ctx := t.Context()
	ref := writeBlob(t, bs, 3, 5000, 512)
	other := writeBlob(t, bs, 4, 5000, 512)
	if err := bs.Delete(ctx, ref); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := bs.Delete(ctx, ref); err != nil {
		t.Fatalf("second Delete of the same blob: %v", err)
	}
	if _, err := bs.Open(ctx, ref); !errors.Is(err, storage.ErrBlobNotFound) {
		t.Fatalf("Open after Delete: %v, want ErrBlobNotFound", err)
	}
	if hashBlob(t, openBlob(t, bs, other)) != contentHash(4, 5000) {
		t.Fatal("Delete damaged another blob")
	}
	if refs := listRefs(t, bs); len(refs) != 1 {
		t.Errorf("List after Delete = %v; want only %q", refs, other)
	}
	// An open handle keeps reading after its blob is deleted, or fails
	// cleanly; it never returns other bytes.
	b := openBlob(t, bs, other)
	if err := bs.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5000)
	if n, err := b.ReadAt(buf, 0); err == nil && (n != 5000 || !bytes.Equal(buf, contentBytes(4, 5000))) {
		t.Error("read after delete returned wrong bytes")
	}
}

func testBlobList(t *testing.T, bs storage.Blobs) {
	if refs := listRefs(t, bs); len(refs) != 0 {
		t.Fatalf("List of a new store = %v", refs)
	}
	before := time.Now().Add(-time.Hour)
	var want []string
	for i := range 25 {
		want = append(want, writeBlob(t, bs, uint64(100+i), int64(i*10), 7))
	}
	refs := listRefs(t, bs)
	var got []string
	for ref, mod := range refs {
		got = append(got, ref)
		if mod.Before(before) || mod.After(time.Now().Add(time.Hour)) {
			t.Errorf("blob %q modified %v; want about now", ref, mod)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("List = %q\nwant %q", got, want)
	}
	// fn's error stops the walk and is returned.
	stop := errors.New("stop")
	calls := 0
	err := bs.List(t.Context(), func(string, time.Time) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with a failing fn = %v after %d calls; want stop after 1", err, calls)
	}
}

func testBlobConcurrent(t *testing.T, bs storage.Blobs) {
	const n = 16
	refs := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			w, err := bs.Create(t.Context(), 0)
			if err != nil {
				errs <- err
				return
			}
			if _, err := io.CopyN(w, content(uint64(1000+i)), int64(100_000+i)); err != nil {
				errs <- err
				_ = w.Abort()
				return
			}
			refs[i], err = w.Commit(t.Context())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for i, ref := range refs {
		if seen[ref] {
			t.Fatalf("reference %q returned twice", ref)
		}
		seen[ref] = true
		b := openBlob(t, bs, ref)
		if b.Size() != int64(100_000+i) || hashBlob(t, b) != contentHash(uint64(1000+i), int64(100_000+i)) {
			t.Errorf("blob %d read back wrong", i)
		}
	}
}
