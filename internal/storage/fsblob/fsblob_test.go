package fsblob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/storagetest"
)

func newStore(t testing.TB, root string, opts Options) *Store {
	t.Helper()
	s, err := New(root, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunBlobs(t, func(t *testing.T) storage.Blobs {
		return newStore(t, t.TempDir(), Options{})
	})
}

func TestConformanceNoSync(t *testing.T) {
	storagetest.RunBlobs(t, func(t *testing.T) storage.Blobs {
		return newStore(t, t.TempDir(), Options{NoSync: true})
	})
}

func put(t *testing.T, s *Store, data string) string {
	t.Helper()
	w, err := s.Create(t.Context(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, data); err != nil {
		t.Fatal(err)
	}
	ref, err := w.Commit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func tmpFiles(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLayoutAndFile(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{})
	ref := put(t, s, "hello, sendfile")
	if !validRef(ref) {
		t.Fatalf("reference %q is not 32 lower-case hex digits", ref)
	}
	if ref2 := put(t, s, "hello, sendfile"); ref2 == ref {
		t.Fatal("equal content got the same reference; references must be random")
	}
	want := filepath.Join(root, ref[:2], ref[2:4], ref)
	if data, err := os.ReadFile(want); err != nil || string(data) != "hello, sendfile" {
		t.Fatalf("blob file %s: %q, %v", want, data, err)
	}
	if names := tmpFiles(t, root); len(names) != 0 {
		t.Errorf("temporary files left after commit: %q", names)
	}

	b, err := s.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fb, ok := b.(storage.FileBlob)
	if !ok {
		t.Fatal("Open does not return a storage.FileBlob")
	}
	// What the GET handler does: seek the file, copy a limited reader.
	if _, err := fb.File().Seek(7, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, io.LimitReader(fb.File(), 4)); err != nil || out.String() != "send" {
		t.Errorf("range through File() = %q, %v", out.String(), err)
	}
}

func TestMalformedReferences(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{})
	ref := put(t, s, "x")
	secret := filepath.Join(root, "secret")
	if err := os.WriteFile(secret, []byte("do not serve"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"", "../secret", "../../etc/passwd", "secret", strings.ToUpper(ref), ref + "0", ref[:31],
		ref[:2] + "/" + ref[2:4] + "/" + ref, "tmp/" + ref, strings.Repeat(".", 32), "/" + ref[1:],
	} {
		if _, err := s.Open(t.Context(), bad); !errors.Is(err, storage.ErrBlobNotFound) {
			t.Errorf("Open(%q): %v, want ErrBlobNotFound", bad, err)
		}
		if err := s.Delete(t.Context(), bad); err == nil {
			t.Errorf("Delete(%q) succeeded", bad)
		}
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("a malformed Delete removed a file outside the store: %v", err)
	}
	if _, err := s.Open(t.Context(), ref); err != nil {
		t.Errorf("valid blob gone: %v", err)
	}
}

// TestRestartRemovesTemporaryFiles simulates a crash: a writer that neither
// committed nor aborted, plus a stray file, are gone after the next New.
func TestRestartRemovesTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	s, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept := put(t, s, "committed")
	w, err := s.Create(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 200<<10)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp", "w-stray"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := len(tmpFiles(t, root)); n != 2 {
		t.Fatalf("%d temporary files before restart, want 2", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = newStore(t, root, Options{})
	if names := tmpFiles(t, root); len(names) != 0 {
		t.Errorf("temporary files after restart: %q", names)
	}
	var listed []string
	if err := s.List(t.Context(), func(ref string, _ time.Time) error { listed = append(listed, ref); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != kept {
		t.Errorf("List after restart = %q, want [%q]", listed, kept)
	}
	b, err := s.Open(t.Context(), kept)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	buf := make([]byte, 9)
	if _, err := b.ReadAt(buf, 0); err != nil || string(buf) != "committed" {
		t.Errorf("committed blob after restart: %q, %v", buf, err)
	}
}

func TestSecondProcessRefused(t *testing.T) {
	root := t.TempDir()
	s, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := New(root, Options{}); err == nil {
		_ = s2.Close()
		t.Fatal("second New on a root in use succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("second New: %v; want an 'in use' error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	newStore(t, root, Options{}) // free again
}

func TestWriterLifecycle(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	w, err := s.Create(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abandoned")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if ref, err := w.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context = %q, %v", ref, err)
	}
	if names := tmpFiles(t, root); len(names) != 0 {
		t.Errorf("failed Commit left %q", names)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after a finished Commit succeeded")
	}
	if err := w.Abort(); err == nil {
		t.Error("Abort after Commit succeeded")
	}

	w, err = s.Create(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(t.Context()); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestStorageFullMapping(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		full  bool
	}{{syscall.ENOSPC, true}, {syscall.EDQUOT, true}, {syscall.EIO, false}} {
		err := mapErr(&os.PathError{Op: "write", Path: "/data/tmp/w-1", Err: c.errno})
		if errors.Is(err, storage.ErrStorageFull) != c.full {
			t.Errorf("%v: ErrStorageFull = %v, want %v", c.errno, !c.full, c.full)
		}
		if !errors.Is(err, c.errno) {
			t.Errorf("%v: cause lost: %v", c.errno, err)
		}
	}
}

// BenchmarkWrite measures streaming 8 MiB blobs in 32 KiB writes and
// committing them.
func BenchmarkWrite(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{{"sync", Options{}}, {"nosync", Options{NoSync: true}}} {
		b.Run(c.name, func(b *testing.B) {
			s := newStore(b, b.TempDir(), c.opts)
			const size = 8 << 20
			chunk := bytes.Repeat([]byte{0xa5}, 32<<10)
			b.SetBytes(size)
			for b.Loop() {
				w, err := s.Create(b.Context(), size)
				if err != nil {
					b.Fatal(err)
				}
				for range size / len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
				ref, err := w.Commit(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = s.Delete(b.Context(), ref)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRead reads a 64 MiB blob through ReadAt (1 MiB at a time) and
// through File() the way GET serves it.
func BenchmarkRead(b *testing.B) {
	s := newStore(b, b.TempDir(), Options{NoSync: true})
	const size = 64 << 20
	w, err := s.Create(b.Context(), size)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(w, zeroReader{}, size); err != nil {
		b.Fatal(err)
	}
	ref, err := w.Commit(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	blob, err := s.Open(b.Context(), ref)
	if err != nil {
		b.Fatal(err)
	}
	defer blob.Close()
	b.Run("ReadAt", func(b *testing.B) {
		buf := make([]byte, 1<<20)
		b.SetBytes(size)
		for b.Loop() {
			for off := int64(0); off < size; off += int64(len(buf)) {
				if _, err := blob.ReadAt(buf, off); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("File", func(b *testing.B) {
		f := blob.(storage.FileBlob).File()
		b.SetBytes(size)
		for b.Loop() {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, io.LimitReader(f, size)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestDeleteUnlinksInBackground: a deleted blob is gone from its place at
// once (a reader that has it open keeps reading), and its file is unlinked
// by the time Close returns.
func TestDeleteUnlinksInBackground(t *testing.T) {
	root := t.TempDir()
	s, err := New(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	refs := []string{put(t, s, "one"), put(t, s, "two"), put(t, s, strings.Repeat("x", 1<<20))}
	open, err := s.Open(t.Context(), refs[2])
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	for _, ref := range refs {
		if err := s.Delete(t.Context(), ref); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(t.Context(), ref); !errors.Is(err, storage.ErrBlobNotFound) {
			t.Fatalf("Open after Delete: %v", err)
		}
		if err := s.Delete(t.Context(), ref); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
	}
	var listed []string
	if err := s.List(t.Context(), func(ref string, _ time.Time) error { listed = append(listed, ref); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 0 {
		t.Fatalf("listed after Delete: %v", listed)
	}
	buf := make([]byte, 10)
	if n, err := open.ReadAt(buf, 1<<20-10); n != 10 || err != nil || string(buf) != "xxxxxxxxxx" {
		t.Fatalf("open reader after Delete: %d %v %q", n, err, buf)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files := tmpFiles(t, root); len(files) != 0 {
		t.Errorf("files left in tmp after Close: %v", files)
	}
	if err := s.Delete(t.Context(), refs[0]); err != nil {
		t.Errorf("Delete of a missing blob after Close: %v", err)
	}
}
