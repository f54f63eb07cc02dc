package fsblob

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directWriter creates a blob large enough for direct I/O and checks that
// it got it; file systems without direct I/O skip.
func directWriter(t *testing.T, s *Store) *writer {
	t.Helper()
	bw, err := s.Create(t.Context(), DirectMinSize)
	if err != nil {
		t.Fatal(err)
	}
	w := bw.(*writer)
	if w.stage == nil {
		_ = w.Abort()
		t.Skip("no direct I/O on this file system")
	}
	flags, err := unix.FcntlInt(w.f.Fd(), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_DIRECT == 0 {
		t.Fatalf("direct writer's file flags %#x (%v): O_DIRECT not set", flags, err)
	}
	return w
}

// TestDirectWrites writes blobs through the direct path in every shape a
// caller can hand over: aligned runs (written in place), unaligned ones and
// small pieces (staged), lengths that end mid-block (the tail goes through
// the page cache), and reads them back byte for byte.
func TestDirectWrites(t *testing.T) {
	s := newStore(t, t.TempDir(), Options{DirectIO: true})
	rng := rand.New(rand.NewPCG(1, 2))
	backing := make([]byte, 5<<20+directAlign)
	for i := range backing {
		backing[i] = byte(rng.Uint32())
	}
	// aligned is page-aligned memory (Go allocates large objects on page
	// boundaries, and the test checks it).
	aligned := backing[directAlign-int(uintptrOf(backing)%directAlign):][:5<<20]
	if uintptrOf(aligned)%directAlign != 0 {
		t.Fatal("test buffer not aligned")
	}
	type piece struct{ unaligned, size int } // unaligned: offset past alignment
	cases := []struct {
		name   string
		pieces []piece
	}{
		{"empty", nil},
		{"one byte", []piece{{0, 1}}},
		{"one block less one", []piece{{0, directAlign - 1}}},
		{"one block", []piece{{0, directAlign}}},
		{"aligned run with tail", []piece{{0, 1<<20 + 12345}}},
		{"stage-sized", []piece{{0, stageSize}}},
		{"unaligned run", []piece{{1, 3<<20 + 7}}},
		{"small pieces", []piece{{0, 1000}, {0, 1000}, {3, 70000}, {0, 300000}, {5, 4096}, {0, 1}}},
		{"aligned after staged", []piece{{0, 10}, {0, stageSize}, {0, 2 << 20}}},
		{"many full stages", []piece{{0, 4 << 20}, {0, 4096}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := directWriter(t, s)
			var want bytes.Buffer
			off := 0
			for _, p := range tc.pieces {
				b := aligned[off+p.unaligned:][:p.size]
				off = (off + p.unaligned + p.size) % (1 << 20)
				n, err := w.Write(b)
				if err != nil || n != len(b) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(b), n, err)
				}
				want.Write(b)
			}
			ref, err := w.Commit(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			blob, err := s.Open(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			defer blob.Close()
			if blob.Size() != int64(want.Len()) {
				t.Fatalf("size %d, want %d", blob.Size(), want.Len())
			}
			got, err := io.ReadAll(io.NewSectionReader(blob, 0, blob.Size()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("content differs from what was written (%d bytes)", want.Len())
			}
		})
	}
}

// TestDirectWritesBypassPageCache checks the point of direct I/O: after a
// large blob is committed, (almost) none of its pages are cached, while a
// blob written through the page cache has them all.
func TestDirectWritesBypassPageCache(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{DirectIO: true})
	data := bytes.Repeat([]byte("0123456789abcdef"), DirectMinSize/16)
	cachedPages := func(ref string) (cached, total int) {
		f, err := os.Open(s.path(ref))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (len(data)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal("mincore:", errno)
		}
		for _, v := range vec {
			cached += int(v & 1)
		}
		return cached, len(vec)
	}
	write := func(sizeHint int64) string {
		bw, err := s.Create(t.Context(), sizeHint)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Write(data); err != nil {
			t.Fatal(err)
		}
		ref, err := bw.Commit(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	w := directWriter(t, s)
	_ = w.Abort()

	direct := write(int64(len(data)))
	if cached, total := cachedPages(direct); cached > total/10 {
		t.Errorf("direct write: %d of %d pages cached; want almost none", cached, total)
	}
	buffered := write(-1)
	if cached, total := cachedPages(buffered); cached < total*9/10 {
		t.Errorf("buffered write: %d of %d pages cached; want almost all", cached, total)
	}
}

// TestDirectAbort leaves nothing behind and returns the writer's buffer.
func TestDirectAbort(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{DirectIO: true})
	w := directWriter(t, s)
	if _, err := w.Write(make([]byte, 12345)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if w.stage != nil {
		t.Error("staging buffer kept after Abort")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if files := tmpFiles(t, root); len(files) != 0 {
		t.Errorf("temporary files left: %v", files)
	}
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// TestNoDirectIO: without the option even large blobs go through the page
// cache, and small ones never use direct I/O.
func TestNoDirectIO(t *testing.T) {
	for _, tc := range []struct {
		opts     Options
		sizeHint int64
	}{
		{Options{}, DirectMinSize},
		{Options{DirectIO: true}, DirectMinSize - 1},
		{Options{DirectIO: true}, -1},
	} {
		s := newStore(t, t.TempDir(), tc.opts)
		bw, err := s.Create(t.Context(), tc.sizeHint)
		if err != nil {
			t.Fatal(err)
		}
		w := bw.(*writer)
		flags, err := unix.FcntlInt(w.f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		if w.stage != nil || flags&unix.O_DIRECT != 0 {
			t.Errorf("%+v, size hint %d: direct I/O used", tc.opts, tc.sizeHint)
		}
		_ = w.Abort()
	}
}
