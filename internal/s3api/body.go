package s3api

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// copyBufSize is the buffer each streaming request borrows; memory per
// request is bounded by it whatever the object size.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

// copyHashed copies src to dst and through h, the way every upload body is
// stored. It reads into two halves of the pooled buffer in turn: while one
// half's MD5 is computed in the background (multimd5 shares that work
// between concurrent uploads), the next half is read from the network and
// written to storage. Each half is filled before it is written, so storage
// and the hashes get few large writes rather than one per network read.
// When it returns, h holds the hashes of everything copied.
func copyHashed(dst io.Writer, src io.Reader, h *bodyHasher) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// Wait before the buffer goes back to the pool, whatever happened.
	defer h.md5.Wait()
	halves := [2][]byte{(*bp)[:copyBufSize/2], (*bp)[copyBufSize/2:]}
	var total int64
	for i := 0; ; i ^= 1 {
		buf := halves[i]
		// halves[i]'s previous hash was waited for by the start of the
		// other half, so it is free to refill.
		n, err := fill(src, buf)
		if err != nil && err != io.EOF {
			// A broken body is the answer, whatever it held (and a write
			// of it could fail too, for the same reason: the client left).
			return total, err
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, &writeError{werr}
			}
			h.start(buf[:n])
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
	}
}

// fill reads into buf until it is full or src fails. Unlike io.ReadFull it
// keeps src's own errors apart from a short read: a multipart form that
// ends without its closing boundary fails with io.ErrUnexpectedEOF, and
// that must not pass for the end of the body.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// stored is a body written to storage but not yet referenced by metadata.
type stored struct {
	size     int64
	md5      []byte
	checksum string // base64 of the flexible checksum, "" when none
	segments []storage.Segment
	inline   []byte
}

func (st *stored) etag() string { return hex.EncodeToString(st.md5) }

// storeBody streams body into storage, computing MD5 and the requested
// checksum on the way, and verifies length and digests before the blob is
// committed. size is the declared decoded length. trailer returns the
// trailing headers once body hit EOF (may be nil). Small bodies are kept
// inline when mayInline.
func (s *Server) storeBody(ctx context.Context, body io.Reader, size int64, cs checksumRequest, trailer func() http.Header, mayInline bool) (*stored, error) {
	h := newBodyHasher(cs.alg)
	var (
		dst    io.Writer
		inline *bytes.Buffer
		bw     storage.BlobWriter
	)
	if mayInline && size <= s.cfg.InlineThreshold {
		inline = bytes.NewBuffer(make([]byte, 0, size))
		dst = inline
	} else {
		var err error
		if bw, err = s.cfg.Blobs.Create(ctx, size); err != nil {
			return nil, storageError(err)
		}
		dst = bw
	}
	st, err := readVerified(dst, body, size, h, cs, trailer)
	if err != nil {
		if bw != nil {
			_ = bw.Abort()
		}
		return nil, err
	}
	if inline != nil {
		st.inline = inline.Bytes()
		return st, nil
	}
	ref, err := bw.Commit(ctx)
	if err != nil {
		return nil, storageError(err)
	}
	st.segments = []storage.Segment{{Blob: ref, Size: st.size}}
	return st, nil
}

// readVerified copies exactly size bytes of body to dst and through h, reads
// on to EOF so that a verifying reader (signed payload, aws-chunked
// trailers) gives its verdict, then checks the digests the client declared.
func readVerified(dst io.Writer, body io.Reader, size int64, h *bodyHasher, cs checksumRequest, trailer func() http.Header) (*stored, error) {
	copyBody := copyHashed
	if size >= pipelineMin {
		copyBody = copyPipelined
	}
	if _, err := copyBody(dst, &io.LimitedReader{R: body, N: size + 1}, h); err != nil {
		return nil, bodyError(err)
	}
	if err := checkBodyLength(h.n, size); err != nil {
		return nil, err
	}
	if err := drainVerified(body); err != nil {
		return nil, bodyError(err)
	}
	var tr http.Header
	if trailer != nil {
		tr = trailer()
	}
	md5sum, checksum, err := cs.verify(h, tr)
	if err != nil {
		return nil, err
	}
	return &stored{size: h.n, md5: md5sum, checksum: checksum}, nil
}

func checkBodyLength(got, want int64) error {
	switch {
	case got < want:
		return s3err.IncompleteBody
	case got > want:
		return s3err.InvalidRequest.WithMessage("The request body is longer than its declared length.")
	}
	return nil
}

// drainVerified reads to EOF; a body with extra bytes fails.
func drainVerified(body io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(body, one[:])
	if n > 0 {
		return s3err.InvalidRequest.WithMessage("The request body is longer than its declared length.")
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// writeError is a failure to store a body, as opposed to one reading it:
// the server's fault (500, or 507 when the disk is full), not the client's.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// bodyError maps a failure while reading a request body to an S3 error.
func bodyError(err error) error {
	var we *writeError
	if errors.As(err, &we) && !errors.Is(err, context.Canceled) {
		// A write cancelled with the request failed because the client
		// left: that is an incomplete body, like the read that failed.
		return storageError(we.err)
	}
	var e *s3err.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return s3err.IncompleteBody
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return s3err.EntityTooLarge
	}
	if errors.Is(err, storage.ErrStorageFull) {
		return s3err.StorageFull.Wrap(err)
	}
	// A client that goes away mid-body is an incomplete body too.
	return s3err.IncompleteBody.Wrap(err)
}

func storageError(err error) error {
	if errors.Is(err, storage.ErrStorageFull) {
		return s3err.StorageFull.Wrap(err)
	}
	var e *s3err.Error
	if errors.As(err, &e) {
		return e
	}
	return s3err.InternalError.Wrap(err)
}

// deleteBlobs removes blobs after the metadata commit that dropped them. A
// failure leaves an orphan for the sweeper; it is logged, never returned.
func (s *Server) deleteBlobs(refs []string) {
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ref := range refs {
		if err := s.cfg.Blobs.Delete(ctx, ref); err != nil {
			s.cfg.Logger.Warn("blob delete failed; left for the sweeper", "blob", ref, "err", err)
		}
	}
}

func (st *stored) blobs() []string {
	refs := make([]string, 0, len(st.segments))
	for _, sg := range st.segments {
		refs = append(refs, sg.Blob)
	}
	return refs
}

// writeRange streams bytes [off, off+n) of o to w. A single file blob is
// copied from the file itself so the kernel can use sendfile.
func (s *Server) writeRange(ctx context.Context, w io.Writer, o *storage.Object, off, n int64) error {
	if o.Segments == nil {
		_, err := w.Write(o.Inline[off : off+n])
		return err
	}
	for _, sg := range o.Segments {
		if n == 0 {
			break
		}
		if off >= sg.Size {
			off -= sg.Size
			continue
		}
		take := min(sg.Size-off, n)
		if err := s.copySegment(ctx, w, sg, off, take); err != nil {
			return err
		}
		off, n = 0, n-take
	}
	return nil
}

func (s *Server) copySegment(ctx context.Context, w io.Writer, sg storage.Segment, off, n int64) error {
	b, err := s.cfg.Blobs.Open(ctx, sg.Blob)
	if err != nil {
		return fmt.Errorf("open blob %s: %w", sg.Blob, err)
	}
	defer b.Close()
	if fb, ok := b.(storage.FileBlob); ok {
		f := fb.File()
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("seek blob %s: %w", sg.Blob, err)
		}
		// io.Copy hands the *io.LimitedReader of an *os.File to the
		// connection's ReadFrom, which uses sendfile on plain TCP.
		_, err = io.Copy(w, &io.LimitedReader{R: f, N: n})
		return err
	}
	_, err = copyBuffered(w, io.NewSectionReader(b, off, n))
	return err
}

// rangeReader returns a reader of bytes [off, off+n) of o, for copies.
func (s *Server) rangeReader(ctx context.Context, o *storage.Object, off, n int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.writeRange(ctx, pw, o, off, n))
	}()
	return pr
}
