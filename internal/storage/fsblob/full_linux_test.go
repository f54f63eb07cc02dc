package fsblob

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nfyio.dev/storage/internal/storage"
)

// smallFS mounts a tmpfs of size bytes for the test, or skips it where
// mounting is not allowed (not root).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	return dir
}

// TestFullDiskFreesSpares: when a write finds the disk full, the space the
// spares hold goes back at once, so the next upload fits.
func TestFullDiskFreesSpares(t *testing.T) {
	root := smallFS(t, "8m")
	s := newStore(t, root, Options{RecycleBytes: 64 << 20})
	ref := putBytes(t, s, randomBytes(60, 3<<20))
	if err := s.Delete(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	if got := spares(t, root); len(got) != 1 {
		t.Fatalf("spares: %v, want one", got)
	}
	// Larger than the spare, so a new file; 3 + 6 MiB do not fit in 8.
	w, err := s.Create(t.Context(), 6<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(randomBytes(61, 6<<20))
	if werr == nil {
		_, werr = w.Commit(t.Context())
	} else {
		_ = w.Abort()
	}
	if !errors.Is(werr, storage.ErrStorageFull) {
		t.Fatalf("writing past the disk's end: %v, want ErrStorageFull", werr)
	}
	for _, n := range tmpFiles(t, root) {
		if strings.HasPrefix(n, "r-") {
			t.Fatalf("spare %s kept on a full disk", n)
		}
	}
	data := randomBytes(62, 6<<20)
	ref = putBytes(t, s, data)
	if got, err := os.ReadFile(s.path(ref)); err != nil || string(got) != string(data) {
		t.Fatalf("the upload after the spares were freed: %v", err)
	}
}
