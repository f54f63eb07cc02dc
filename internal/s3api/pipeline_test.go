package s3api

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"nfyio.dev/storage/internal/s3err"
)

// shortReader returns random short reads, as a network body does.
type shortReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (s *shortReader) Read(p []byte) (int, error) {
	return s.r.Read(p[:min(len(p), 1+s.rng.IntN(20000))])
}

// TestCopyPipelined copies bodies of every size that matters to the ring
// (empty, around one chunk, exactly the ring, wrapping it) through short
// reads, and checks the stored bytes and the MD5 against crypto/md5, with
// several copies at once so that they share hashing rounds.
func TestCopyPipelined(t *testing.T) {
	sizes := []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, chunks * chunkSize, chunks*chunkSize + 1, 3*chunks*chunkSize + 12345}
	var wg sync.WaitGroup
	for i, size := range sizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			body := make([]byte, size)
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
			var dst bytes.Buffer
			h := newBodyHasher("")
			n, err := copyPipelined(&dst, &shortReader{bytes.NewReader(body), rng}, h)
			if err != nil || n != int64(size) {
				t.Errorf("size %d: copied %d, %v", size, n, err)
				return
			}
			if !bytes.Equal(dst.Bytes(), body) {
				t.Errorf("size %d: stored bytes differ", size)
			}
			if want := md5.Sum(body); !bytes.Equal(h.md5Sum(), want[:]) {
				t.Errorf("size %d: MD5 %x, want %x", size, h.md5Sum(), want)
			}
		}()
	}
	wg.Wait()
}

// failingWriter fails its write number failAt (counting from 1) and records
// every call.
type failingWriter struct {
	failAt int
	calls  int
	bytes  int
}

var errDiskGone = errors.New("disk gone")

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls == w.failAt {
		return 0, errDiskGone
	}
	w.bytes += len(p)
	return len(p), nil
}

// TestCopyPipelinedWriteError: the storage's error comes back, and no
// write follows it (the writer goroutine only reports once it failed).
func TestCopyPipelinedWriteError(t *testing.T) {
	body := make([]byte, 5*chunks*chunkSize)
	dst := &failingWriter{failAt: 2}
	_, err := copyPipelined(dst, bytes.NewReader(body), newBodyHasher(""))
	if !errors.Is(err, errDiskGone) {
		t.Fatalf("error %v, want %v", err, errDiskGone)
	}
	// The storage's failure is the server's: 500, not the client's 400.
	var se *s3err.Error
	if !errors.As(bodyError(err), &se) || se.Status != http.StatusInternalServerError {
		t.Fatalf("bodyError(%v) = %v, want InternalError", err, bodyError(err))
	}
	if dst.calls != 2 || dst.bytes != chunkSize {
		t.Errorf("%d writes, %d bytes stored; want 2 writes (the second failing), %d bytes", dst.calls, dst.bytes, chunkSize)
	}
}

// TestCopyPipelinedReadError: a body that breaks off keeps its own error
// (io.ErrUnexpectedEOF from a truncated form is not the end of a body).
func TestCopyPipelinedReadError(t *testing.T) {
	src := io.MultiReader(bytes.NewReader(make([]byte, chunkSize+100)), iotest.ErrReader(io.ErrUnexpectedEOF))
	var dst bytes.Buffer
	n, err := copyPipelined(&dst, src, newBodyHasher(""))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
	}
	if n != chunkSize+100 || dst.Len() != chunkSize+100 {
		t.Errorf("read %d, stored %d; want %d both", n, dst.Len(), chunkSize+100)
	}
}

type panickingWriter struct{}

func (panickingWriter) Write([]byte) (int, error) { panic("storage bug") }

// TestCopyPipelinedWritePanic: a panicking storage write fails the copy
// instead of taking the process down from the writer goroutine.
func TestCopyPipelinedWritePanic(t *testing.T) {
	_, err := copyPipelined(panickingWriter{}, bytes.NewReader(make([]byte, 3*chunkSize)), newBodyHasher(""))
	if err == nil || !strings.Contains(err.Error(), "storage bug") {
		t.Fatalf("error %v, want the panic as an error", err)
	}
}

// TestCopyHashedWriteError: the small-body copy reports a storage failure
// as the server's too.
func TestCopyHashedWriteError(t *testing.T) {
	_, err := copyHashed(&failingWriter{failAt: 1}, bytes.NewReader(make([]byte, 1000)), newBodyHasher(""))
	var se *s3err.Error
	if !errors.Is(err, errDiskGone) || !errors.As(bodyError(err), &se) || se.Status != http.StatusInternalServerError {
		t.Fatalf("error %v maps to %v, want InternalError", err, bodyError(err))
	}
}

// TestBrokenBodyIsTheClients: when the body breaks off, that is the error
// (400 IncompleteBody) even if storing it failed too, and a write that
// failed because the request was cancelled (the client left) counts as
// the client's as well.
func TestBrokenBodyIsTheClients(t *testing.T) {
	src := io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(io.ErrUnexpectedEOF))
	_, err := copyHashed(&failingWriter{failAt: 1}, src, newBodyHasher(""))
	var se *s3err.Error
	if !errors.As(bodyError(err), &se) || se.Code != "IncompleteBody" {
		t.Fatalf("broken body with a failing store: %v maps to %v, want IncompleteBody", err, bodyError(err))
	}
	cancelled := &writeError{fmt.Errorf("upload to the blob store: %w", context.Canceled)}
	if !errors.As(bodyError(cancelled), &se) || se.Code != "IncompleteBody" {
		t.Fatalf("cancelled write maps to %v, want IncompleteBody", bodyError(cancelled))
	}
}
