package fsblob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// putBytes stores data with its exact size as the hint, in 100 KiB writes.
func putBytes(t *testing.T, s *Store, data []byte) string {
	t.Helper()
	w, err := s.Create(t.Context(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 100<<10)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	ref, err := w.Commit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func readBlob(t *testing.T, s *Store, ref string) []byte {
	t.Helper()
	got, err := readRef(t.Context(), s, ref)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// readRef reads the whole blob ref, for goroutines that report errors.
func readRef(ctx context.Context, s *Store, ref string) ([]byte, error) {
	b, err := s.Open(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// spares lists the recycled files waiting in tmp.
func spares(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, n := range tmpFiles(t, root) {
		if strings.HasPrefix(n, "r-") {
			out = append(out, n)
		}
	}
	return out
}

func mustDelete(t *testing.T, s *Store, ref string) {
	t.Helper()
	if err := s.Delete(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
}

// wantSpares fails unless n recycled files wait in root's tmp.
func wantSpares(t *testing.T, root string, n int, why string) {
	t.Helper()
	if got := spares(t, root); len(got) != n {
		t.Fatalf("%s: spares %v, want %d", why, got, n)
	}
}

// TestRecycledFileIsOverwritten: a deleted blob's file becomes the next
// blob of about its size; the new blob has exactly its own bytes, none of
// the old one's past its end.
func TestRecycledFileIsOverwritten(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	old := randomBytes(1, 3<<20)
	oldRef := putBytes(t, s, old)
	oldFile := stat(t, s.path(oldRef))
	mustDelete(t, s, oldRef)
	if _, err := os.Stat(s.path(oldRef)); !os.IsNotExist(err) {
		t.Fatalf("deleted blob still at its path: %v", err)
	}
	if _, err := s.Open(t.Context(), oldRef); err == nil {
		t.Fatal("deleted blob still opens")
	}
	wantSpares(t, root, 1, "after Delete")

	// Shorter than the spare, with an unaligned end.
	fresh := randomBytes(2, 2<<20+12345)
	ref := putBytes(t, s, fresh)
	if ref == oldRef {
		t.Fatal("the new blob got the old reference")
	}
	fi := stat(t, s.path(ref))
	if !os.SameFile(oldFile, fi) {
		t.Fatal("the new blob was not written over the deleted blob's file")
	}
	if fi.Size() != int64(len(fresh)) {
		t.Fatalf("size %d, want %d: the old blob's tail was kept", fi.Size(), len(fresh))
	}
	if !bytes.Equal(readBlob(t, s, ref), fresh) {
		t.Fatal("recycled blob reads back different bytes")
	}
	if got := tmpFiles(t, root); len(got) != 0 {
		t.Fatalf("tmp after the commit: %v", got)
	}

	// A blob larger than every spare gets a new file.
	bigRef := putBytes(t, s, randomBytes(3, 4<<20))
	mustDelete(t, s, ref)
	big2 := putBytes(t, s, randomBytes(4, 4<<20))
	if os.SameFile(fi, stat(t, s.path(big2))) {
		t.Fatal("a 4 MiB blob was written over a 2 MiB spare")
	}
	if !bytes.Equal(readBlob(t, s, bigRef), randomBytes(3, 4<<20)) {
		t.Fatal("an unrelated blob changed")
	}

	// A spare more than twice the new blob's size is left for a better fit.
	bigFile := stat(t, s.path(big2))
	mustDelete(t, s, big2)
	small := putBytes(t, s, randomBytes(5, 1<<20+1))
	if os.SameFile(bigFile, stat(t, s.path(small))) {
		t.Fatal("a 1 MiB blob was written over a 4 MiB spare")
	}
	if !slices.Contains(spares(t, root), "r-"+big2) {
		t.Fatalf("spares: %v, want the 4 MiB one kept", spares(t, root))
	}
}

// TestOpenBlobNotRecycled: a blob deleted while a reader has it open keeps
// its bytes for that reader, so its file is not reused.
func TestOpenBlobNotRecycled(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	old := randomBytes(5, 2<<20)
	oldRef := putBytes(t, s, old)
	oldFile := stat(t, s.path(oldRef))
	b, err := s.Open(t.Context(), oldRef)
	if err != nil {
		t.Fatal(err)
	}
	mustDelete(t, s, oldRef)
	wantSpares(t, root, 0, "a blob open for reading became a spare")
	ref := putBytes(t, s, randomBytes(6, 2<<20))
	if os.SameFile(oldFile, stat(t, s.path(ref))) {
		t.Fatal("a new blob was written over a file a reader has open")
	}
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Fatal("the reader of a deleted blob read other bytes")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.recycle.open); n != 0 {
		t.Fatalf("%d references still counted open after Close", n)
	}

	// Once closed, the next blob's deletion is recycled as usual.
	mustDelete(t, s, ref)
	wantSpares(t, root, 1, "after Delete")
}

// TestSentBlobNotRecycled: a blob whose file was handed out for sendfile
// is never recycled, even after the reader closed it: the kernel may still
// be sending its cached pages.
func TestSentBlobNotRecycled(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	ref := putBytes(t, s, randomBytes(7, 2<<20))
	b, err := s.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.(*blob).File()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if stat(t, s.path(ref)).Mode()&sentMark == 0 {
		t.Fatal("File did not mark the blob file")
	}
	// A second Open sees the mark and does not set it again.
	b, err = s.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.(*blob).File()
	_ = b.Close()
	mustDelete(t, s, ref)
	wantSpares(t, root, 0, "a sent blob became a spare")

	// Marked with recycling off too: a later process may recycle.
	off := newStore(t, t.TempDir(), Options{})
	ref = putBytes(t, off, randomBytes(7, 2<<20))
	if b, err = off.Open(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	_ = b.(*blob).File()
	_ = b.Close()
	if stat(t, off.path(ref)).Mode()&sentMark == 0 {
		t.Fatal("File did not mark the blob file with recycling off")
	}
}

// TestLinkedBlobNotRecycled: a blob file with another name (a hard link,
// as snapshots of the data directory make) is deleted, never overwritten.
func TestLinkedBlobNotRecycled(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	data := randomBytes(8, 2<<20)
	ref := putBytes(t, s, data)
	snapshot := filepath.Join(t.TempDir(), "snapshot")
	if err := os.Link(s.path(ref), snapshot); err != nil {
		t.Fatal(err)
	}
	mustDelete(t, s, ref)
	wantSpares(t, root, 0, "a hard-linked blob became a spare")
	putBytes(t, s, randomBytes(9, 2<<20))
	if got, err := os.ReadFile(snapshot); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the snapshot's copy changed: %v", err)
	}
}

// TestSpareLimits: spares are bounded in bytes, small blobs are never
// kept, and with RecycleBytes 0 nothing is.
func TestSpareLimits(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 5 << 20})
	var refs []string
	for i := range 4 {
		refs = append(refs, putBytes(t, s, randomBytes(uint64(10+i), 2<<20)))
	}
	small := putBytes(t, s, randomBytes(20, recycleMin-1))
	for _, ref := range append(refs, small) {
		mustDelete(t, s, ref)
	}
	s.recycle.mu.Lock()
	n, bytes := len(s.recycle.spares), s.recycle.bytes
	s.recycle.mu.Unlock()
	if n != 2 || bytes != 4<<20 {
		t.Fatalf("%d spares of %d bytes, want 2 of 4 MiB", n, bytes)
	}
	// The newest are kept; the evicted ones and the small blob are unlinked.
	want := map[string]bool{"r-" + refs[2]: true, "r-" + refs[3]: true}
	waitFor(t, func() bool {
		names := tmpFiles(t, root)
		if len(names) != 2 {
			return false
		}
		for _, n := range names {
			if !want[n] {
				return false
			}
		}
		return true
	})

	for _, opts := range []Options{{}, {NoSync: true, RecycleBytes: 64 << 20}} {
		off := t.TempDir()
		s2 := newStore(t, off, opts)
		ref := putBytes(t, s2, randomBytes(21, 2<<20))
		mustDelete(t, s2, ref)
		wantSpares(t, off, 0, fmt.Sprintf("%+v: recycling should be off", opts))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("condition not reached in 5 s")
		}
	}
}

// TestSparesExpireAndClose: a spare not reused within spareTTL is unlinked,
// and Close unlinks the rest.
func TestSparesExpireAndClose(t *testing.T) {
	old := spareTTL
	spareTTL = 300 * time.Millisecond
	t.Cleanup(func() { spareTTL = old })
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	ref := putBytes(t, s, randomBytes(30, 2<<20))
	mustDelete(t, s, ref)
	wantSpares(t, root, 1, "after Delete")
	waitFor(t, func() bool { return len(tmpFiles(t, root)) == 0 })

	root2 := t.TempDir()
	s2, err := New(root2, Options{RecycleBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ref = putBytes(t, s2, randomBytes(31, 2<<20))
	mustDelete(t, s2, ref)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tmpFiles(t, root2); len(got) != 0 {
		t.Fatalf("tmp after Close: %v", got)
	}
}

// TestRecycledAbort: an aborted blob written over a spare leaves nothing.
func TestRecycledAbort(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	ref := putBytes(t, s, randomBytes(40, 2<<20))
	mustDelete(t, s, ref)
	w, err := s.Create(t.Context(), 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(41, 1<<20)); err != nil {
		t.Fatal(err)
	}
	wantSpares(t, root, 1, "the writer should hold the spare's file")
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := tmpFiles(t, root); len(got) != 0 {
		t.Fatalf("tmp after Abort: %v", got)
	}
	s.recycle.mu.Lock()
	defer s.recycle.mu.Unlock()
	if len(s.recycle.spares) != 0 || s.recycle.bytes != 0 {
		t.Fatalf("spares %v, %d bytes after the only one was taken", s.recycle.spares, s.recycle.bytes)
	}
}

// TestRecycledDirect: direct I/O over a recycled file, with an unaligned
// end, reads back exactly.
func TestRecycledDirect(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20, DirectIO: true})
	ref := putBytes(t, s, randomBytes(50, 8<<20))
	oldFile := stat(t, s.path(ref))
	mustDelete(t, s, ref)
	fresh := randomBytes(51, 6<<20+123)
	ref = putBytes(t, s, fresh)
	if !os.SameFile(oldFile, stat(t, s.path(ref))) {
		t.Fatal("not written over the spare")
	}
	if !bytes.Equal(readBlob(t, s, ref), fresh) {
		t.Fatal("direct write over a spare reads back different bytes")
	}
	if fi := stat(t, filepath.Join(s.path(ref))); fi.Size() != int64(len(fresh)) {
		t.Fatalf("size %d, want %d", fi.Size(), len(fresh))
	}
}

// TestRecyclingConcurrent runs the recycler's paths at once, for the race
// detector: workers write blobs of about the same size, read each one back,
// and delete it while it is open or once read, so spares are made and taken
// concurrently. Every read sees exactly its blob's bytes. (The rules
// themselves are pinned by the deterministic tests above; races between
// workers here are too rare to catch a broken rule.)
func TestRecyclingConcurrent(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	const workers, rounds = 4, 12
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			errs <- func() error {
				var prev string
				var prevData []byte
				for i := range rounds {
					seed := uint64(w*1000 + i)
					data := randomBytes(seed, 1<<20+int(seed%7)*4096+int(seed%3))
					bw, err := s.Create(t.Context(), int64(len(data)))
					if err != nil {
						return err
					}
					if _, err := bw.Write(data); err != nil {
						return err
					}
					ref, err := bw.Commit(t.Context())
					if err != nil {
						return err
					}
					if prev != "" {
						// Read the previous blob and delete it: in odd
						// rounds while it is open (its bytes must stay
						// intact), in even ones once read (its file then
						// becomes a spare).
						b, err := s.Open(t.Context(), prev)
						if err != nil {
							return err
						}
						if i%2 == 1 {
							if err := s.Delete(t.Context(), prev); err != nil {
								return err
							}
						}
						got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
						_ = b.Close()
						if err != nil {
							return err
						}
						if !bytes.Equal(got, prevData) {
							return fmt.Errorf("worker %d: blob %s read other bytes", w, prev)
						}
						if i%2 == 0 {
							if err := s.Delete(t.Context(), prev); err != nil {
								return err
							}
						}
					}
					got, err := readRef(t.Context(), s, ref)
					if err != nil {
						return err
					}
					if !bytes.Equal(got, data) {
						return fmt.Errorf("worker %d: new blob %s reads back other bytes", w, ref)
					}
					prev, prevData = ref, data
				}
				return s.Delete(t.Context(), prev)
			}()
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := s.recycle.reused.Load(); n < workers*rounds/4 {
		t.Errorf("only %d blobs were written over spares", n)
	}
	s.recycle.mu.Lock()
	defer s.recycle.mu.Unlock()
	if len(s.recycle.open) != 0 {
		t.Fatalf("open counts left: %v", s.recycle.open)
	}
}
