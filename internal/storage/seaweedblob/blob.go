package seaweedblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"nfyio.dev/storage/internal/storage"
)

// blob reads a blob's chunks with ranged GETs.
//
// Readers such as io.SectionReader call ReadAt with a small buffer at
// consecutive offsets; a GET for each would cost a round trip per 256 KiB.
// So a read that starts where the previous one ended (or a large first
// read at offset 0) asks for the rest of the chunk, and the handle keeps
// that response open for the next read. Other reads ask for exactly their
// bytes, so a small ranged GET costs no more than it needs. Parallel ReadAt
// calls are safe: only one of them can take the open response, the others
// make their own.
type blob struct {
	s      *Store
	ctx    context.Context
	chunks []chunk
	ends   []int64 // ends[i]: blob offset just past chunk i
	size   int64

	mu      sync.Mutex
	stream  *stream // an open response positioned for the next read, or nil
	lastEnd int64   // where the last ReadAt ended
	closed  bool
}

// readAheadMin is the smallest first read (at offset 0) taken as the start
// of a sequential scan rather than a small range request.
const readAheadMin = 64 << 10

// stream is an open GET response of a chunk.
type stream struct {
	pos  int64 // blob offset of the body's next byte
	end  int64 // blob offset where the body ends
	body io.ReadCloser
}

func newBlob(ctx context.Context, s *Store, chunks []chunk) *blob {
	b := &blob{s: s, ctx: ctx, chunks: chunks, ends: make([]int64, len(chunks))}
	for i, c := range chunks {
		b.size += c.size
		b.ends[i] = b.size
	}
	return b
}

func (b *blob) Size() int64 { return b.size }

func (b *blob) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.stream != nil {
		b.stream.body.Close()
		b.stream = nil
	}
	return nil
}

func (b *blob) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("seaweedblob: ReadAt: negative offset")
	}
	if off >= b.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), b.size-off)
	b.mu.Lock()
	sequential := off == b.lastEnd && (off != 0 || want >= readAheadMin)
	b.lastEnd = off + want
	b.mu.Unlock()
	var n int64
	for n < want {
		pos := off + n
		i := sort.Search(len(b.ends), func(i int) bool { return b.ends[i] > pos })
		take := min(b.ends[i]-pos, want-n)
		if err := b.readPiece(i, pos, p[n:n+take], sequential); err != nil {
			return int(n), err
		}
		n += take
	}
	if want < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// readPiece fills buf with the bytes at blob offset pos, all inside chunk i.
func (b *blob) readPiece(i int, pos int64, buf []byte, sequential bool) error {
	b.mu.Lock()
	st := b.stream
	if st != nil && st.pos == pos {
		b.stream = nil
	} else {
		st = nil
	}
	b.mu.Unlock()
	if st != nil {
		if _, err := io.ReadFull(st.body, buf); err == nil {
			st.pos += int64(len(buf))
			b.keep(st)
			return nil
		}
		// A broken response (server restarted, idle timeout): ask again.
		st.body.Close()
	}

	c := b.chunks[i]
	start := b.ends[i] - c.size
	from, to := pos-start, pos-start+int64(len(buf))
	if sequential {
		to = c.size
	}
	body, err := b.get(c, from, to)
	if err != nil {
		return err
	}
	if _, err := io.ReadFull(body, buf); err != nil {
		body.Close()
		b.s.forget(c.volume)
		return fmt.Errorf("seaweedblob: read chunk %s: %w", c.fid(), err)
	}
	b.keep(&stream{pos: pos + int64(len(buf)), end: start + to, body: body})
	return nil
}

// keep parks st for the next sequential read, or closes it when it is used
// up or another one is parked already.
func (b *blob) keep(st *stream) {
	if st.pos == st.end {
		// Reading the (empty) rest lets the connection be reused.
		_, _ = io.Copy(io.Discard, st.body)
		st.body.Close()
		return
	}
	b.mu.Lock()
	if b.stream == nil && !b.closed {
		b.stream = st
		st = nil
	}
	b.mu.Unlock()
	if st != nil {
		st.body.Close()
	}
}

// get opens bytes [from, to) of chunk c.
func (b *blob) get(c chunk, from, to int64) (io.ReadCloser, error) {
	fid := c.fid()
	var body io.ReadCloser
	err := b.s.onVolume(b.ctx, c.volume, func(base string) error {
		req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, base+"/"+fid, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-"+strconv.FormatInt(to-1, 10))
		resp, err := b.s.client.Do(req)
		if err != nil {
			return fmt.Errorf("read chunk %s: %w", fid, err)
		}
		switch resp.StatusCode {
		case http.StatusPartialContent:
			if resp.ContentLength >= 0 && resp.ContentLength != to-from {
				resp.Body.Close()
				return fmt.Errorf("read chunk %s: asked for %d bytes, got %d", fid, to-from, resp.ContentLength)
			}
			body = resp.Body
			return nil
		case http.StatusOK:
			// The range was ignored: the whole chunk follows.
			if resp.ContentLength >= 0 && resp.ContentLength != c.size {
				resp.Body.Close()
				return fmt.Errorf("read chunk %s: it is %d bytes, the reference says %d", fid, resp.ContentLength, c.size)
			}
			if _, err := io.CopyN(io.Discard, resp.Body, from); err != nil {
				resp.Body.Close()
				return fmt.Errorf("read chunk %s: %w", fid, err)
			}
			body = struct {
				io.Reader
				io.Closer
			}{io.LimitReader(resp.Body, to-from), resp.Body}
			return nil
		case http.StatusNotFound:
			resp.Body.Close()
			return fmt.Errorf("seaweedblob: chunk %s: %w", fid, storage.ErrBlobNotFound)
		default:
			resp.Body.Close()
			return &statusError{op: "read chunk", url: base + "/" + fid, status: resp.StatusCode}
		}
	})
	if err != nil {
		return nil, err
	}
	return body, nil
}
