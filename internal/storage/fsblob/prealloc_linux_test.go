package fsblob

import (
	"os"
	"syscall"
	"testing"
)

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestPreallocation: a large blob's blocks are reserved at Create (the
// length stays 0), and a blob that ends up shorter than announced keeps
// only the blocks it uses.
func TestPreallocation(t *testing.T) {
	for _, direct := range []bool{false, true} {
		s := newStore(t, t.TempDir(), Options{DirectIO: direct})
		const hint = 8 << 20
		bw, err := s.Create(t.Context(), hint)
		if err != nil {
			t.Fatal(err)
		}
		w := bw.(*writer)
		if got := allocated(t, w.f.Name()); got < hint {
			t.Skipf("direct=%t: %d bytes allocated after Create; no preallocation on this file system", direct, got)
		}
		if fi, _ := w.f.Stat(); fi.Size() != 0 {
			t.Fatalf("direct=%t: length %d after Create, want 0", direct, fi.Size())
		}
		if _, err := w.Write(make([]byte, 1<<20+5)); err != nil {
			t.Fatal(err)
		}
		ref, err := w.Commit(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		path := s.path(ref)
		if fi, _ := os.Stat(path); fi.Size() != 1<<20+5 {
			t.Fatalf("direct=%t: length %d, want %d", direct, fi.Size(), 1<<20+5)
		}
		if got := allocated(t, path); got > 2<<20 {
			t.Errorf("direct=%t: a 1 MiB blob announced as 8 MiB keeps %d bytes of blocks", direct, got)
		}
	}
}
