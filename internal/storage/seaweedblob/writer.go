package seaweedblob

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"sync"
	"time"
)

// coalesceSize is the most a writer holds before handing bytes to the
// upload: small writes (a body copied 1 KiB at a time) would otherwise each
// become an HTTP chunk, a flush and a system call.
const coalesceSize = 64 << 10

// uploadAttempts bounds how often a chunk is re-assigned when its volume
// server could not be reached before it received a byte (the master keeps
// handing out a dead server's volumes until its heartbeats stop).
const uploadAttempts = 3

var coalescePool = sync.Pool{New: func() any { b := make([]byte, 0, coalesceSize); return &b }}

// castagnoli is the CRC SeaweedFS keeps per needle and answers as the ETag
// of an upload, so a writer can check what was stored without reading it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errWriterDone = errors.New("seaweedblob: writer already committed or aborted")
	errAborted    = errors.New("seaweedblob: write aborted")
)

// writer streams a blob into chunks. Each chunk is one HTTP PUT whose body
// is a pipe fed by Write, so no chunk is ever held in memory; the volume
// server buffers a needle itself before it writes it.
type writer struct {
	s      *Store
	ctx    context.Context
	hint   int64
	total  int64
	chunks []chunk // finished chunks, then the one being uploaded
	id     string  // file id of the first chunk: the journal key
	cur    *upload

	err     error // sticky: the first failure
	done    bool  // Commit succeeded or Abort was called
	cleaned bool  // chunks deleted after a failure or an abort
}

// upload is one chunk's PUT in flight.
type upload struct {
	a      assignment
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan struct{}
	buf    *[]byte // coalesced bytes not yet handed to the pipe

	n    int64  // bytes accepted for this chunk (buffered or sent)
	sent int64  // bytes the pipe took
	crc  uint32 // CRC-32C of the n bytes

	// Set by the PUT's goroutine before done is closed.
	storedSize int64
	storedCRC  string
	err        error
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if w.cur == nil {
			if err := w.startChunk(); err != nil {
				return written, w.fail(err)
			}
		}
		q := p[:min(int64(len(p)), w.s.chunkSize-w.cur.n)]
		if err := w.accept(q); err != nil {
			return written, w.fail(err)
		}
		written += len(q)
		w.total += int64(len(q))
		p = p[len(q):]
		if w.cur.n == w.s.chunkSize {
			if err := w.finishChunk(w.ctx); err != nil {
				return written, w.fail(err)
			}
		}
	}
	return written, nil
}

// accept adds q to the current chunk.
func (w *writer) accept(q []byte) error {
	if err := w.cur.write(q); err != nil {
		return w.retry(err, q)
	}
	return nil
}

// retry handles a failed hand-over of bytes to the current chunk's PUT:
// when the volume server turned out to be unreachable before it took a
// byte, the chunk starts over on a new assignment with the bytes still held
// here (the coalescing buffer, then q, or a flush when q is nil). It
// returns the error when that is not possible or attempts ran out.
func (w *writer) retry(err error, q []byte) error {
	for attempt := 2; err != nil; attempt++ {
		u := w.cur
		if u.sent != 0 || attempt > uploadAttempts || w.ctx.Err() != nil || errors.As(err, new(*statusError)) {
			return err
		}
		pending := append([]byte(nil), *u.buf...)
		w.s.forget(u.a.volume)
		u.release()
		w.cur = nil
		w.chunks = w.chunks[:len(w.chunks)-1]
		if err := sleepCtx(w.ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
			return err
		}
		if err := w.startChunk(); err != nil {
			return err
		}
		// pending fits the new, empty buffer, so this cannot fail.
		_ = w.cur.write(pending)
		if q != nil {
			err = w.cur.write(q)
		} else {
			err = w.cur.flush()
		}
	}
	return nil
}

// write buffers small writes and sends large ones (or a full buffer)
// through the pipe.
func (u *upload) write(q []byte) error {
	buf := *u.buf
	if len(buf)+len(q) <= cap(buf) {
		*u.buf = append(buf, q...)
		u.n += int64(len(q))
		u.crc = crc32.Update(u.crc, castagnoli, q)
		return nil
	}
	if err := u.flush(); err != nil {
		return err
	}
	if len(q) < cap(buf) {
		*u.buf = append((*u.buf)[:0], q...)
		u.n += int64(len(q))
		u.crc = crc32.Update(u.crc, castagnoli, q)
		return nil
	}
	n, err := u.pw.Write(q)
	u.sent += int64(n)
	u.n += int64(n)
	u.crc = crc32.Update(u.crc, castagnoli, q[:n])
	if err != nil {
		return u.failure(err)
	}
	return nil
}

// flush hands the buffered bytes to the pipe.
func (u *upload) flush() error {
	buf := *u.buf
	if len(buf) == 0 {
		return nil
	}
	n, err := u.pw.Write(buf)
	u.sent += int64(n)
	if err != nil {
		// Keep what the pipe did not take, for a retry.
		*u.buf = append(buf[:0], buf[n:]...)
		return u.failure(err)
	}
	*u.buf = buf[:0]
	return nil
}

// failure waits for the PUT to end and returns why it did: a pipe write
// fails because the request is over, and the request knows the reason.
func (u *upload) failure(pipeErr error) error {
	<-u.done
	if u.err != nil {
		return u.err
	}
	return fmt.Errorf("seaweedblob: upload chunk %s to %s: %w", u.a.fid, u.a.url, pipeErr)
}

func (u *upload) release() {
	u.cancel()
	if u.buf != nil {
		*u.buf = (*u.buf)[:0]
		coalescePool.Put(u.buf)
		u.buf = nil
	}
}

// startChunk assigns a file id, records it in the journal, and starts its
// PUT.
func (w *writer) startChunk() error {
	dataSize := w.s.chunkSize
	if left := w.hint - w.total; w.hint > 0 && left > 0 {
		dataSize = min(dataSize, left)
	}
	a, err := w.s.assign(w.ctx, dataSize)
	if err != nil {
		return err
	}
	w.chunks = append(w.chunks, a.chunk)
	if err := w.record(); err != nil {
		w.chunks = w.chunks[:len(w.chunks)-1]
		return err
	}
	ctx, cancel := context.WithCancel(w.ctx)
	pr, pw := io.Pipe()
	u := &upload{a: a, pw: pw, cancel: cancel, done: make(chan struct{}), buf: coalescePool.Get().(*[]byte)}
	go func() {
		defer close(u.done)
		u.storedSize, u.storedCRC, u.err = w.s.put(ctx, a, pr)
		// The transport has closed the body; this only makes sure a
		// writer blocked on the pipe sees the request's own error.
		pr.CloseWithError(errors.Join(u.err, io.ErrClosedPipe))
	}()
	w.cur = u
	return nil
}

// record writes the journal entry before the chunk's upload starts, so a
// crash during the upload leaves the chunk findable by List.
func (w *writer) record() error {
	oldID := w.id
	if len(w.chunks) == 1 {
		w.id = w.chunks[0].fid()
	}
	if j := w.s.journal; j != nil {
		if err := j.put(w.id, time.Now(), encodeRef(w.chunks)); err != nil {
			w.id = oldID
			return err
		}
		if oldID != "" && oldID != w.id {
			// A retried first chunk renames the entry; the old one named a
			// file the server never received.
			_ = j.remove(oldID)
		}
	}
	if oldID != w.id {
		w.s.setActive(oldID, false)
		w.s.setActive(w.id, true)
	}
	return nil
}

// finishChunk ends the current chunk's body, waits for the volume server's
// answer and checks that it stored exactly the bytes sent.
func (w *writer) finishChunk(ctx context.Context) error {
	if err := w.cur.flush(); err != nil {
		if err := w.retry(err, nil); err != nil {
			return err
		}
	}
	u := w.cur
	_ = u.pw.Close()
	select {
	case <-u.done:
	case <-ctx.Done():
		u.cancel()
		<-u.done
		return fmt.Errorf("seaweedblob: waiting for chunk %s: %w", u.a.fid, ctx.Err())
	}
	u.release()
	if u.err != nil {
		return u.err
	}
	if u.storedSize != u.n {
		return fmt.Errorf("seaweedblob: chunk %s on %s: volume server stored %d bytes, %d were sent",
			u.a.fid, u.a.url, u.storedSize, u.n)
	}
	if want := fmt.Sprintf("%08x", u.crc); u.storedCRC != want {
		return fmt.Errorf("seaweedblob: chunk %s on %s: stored CRC-32C %s, sent %s",
			u.a.fid, u.a.url, u.storedCRC, want)
	}
	w.chunks[len(w.chunks)-1].size = u.n
	w.cur = nil
	return nil
}

// Commit waits for the last chunk and returns the blob's reference. An
// empty blob is still one (empty) SeaweedFS file, so that it has an
// identity, can be listed, and Open tells a deleted one from a live one.
func (w *writer) Commit(ctx context.Context) (string, error) {
	if w.done {
		return "", errWriterDone
	}
	if w.err != nil {
		return "", w.err
	}
	if w.cur == nil && len(w.chunks) == 0 {
		if err := w.startChunk(); err != nil {
			return "", w.fail(err)
		}
	}
	if w.cur != nil {
		if err := w.finishChunk(ctx); err != nil {
			return "", w.fail(err)
		}
	}
	ref := encodeRef(w.chunks)
	if j := w.s.journal; j != nil {
		if err := j.put(w.id, time.Now(), ref); err != nil {
			return "", w.fail(err)
		}
	}
	w.done = true
	w.s.setActive(w.id, false)
	return ref, nil
}

// Abort discards the blob: it stops the upload in flight and deletes the
// chunks written. If a volume server cannot be reached the chunks stay in
// the journal, and List reports them to the sweeper.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.stopCurrent(errAborted)
	return w.cleanup()
}

// fail records the first error, discards what was written, and returns the
// error (with the cleanup's, when chunks had to be left behind).
func (w *writer) fail(err error) error {
	w.stopCurrent(err)
	if cerr := w.cleanup(); cerr != nil {
		err = fmt.Errorf("%w (and %v)", err, cerr)
	}
	w.err = err
	return err
}

func (w *writer) stopCurrent(cause error) {
	if u := w.cur; u != nil {
		u.cancel()
		u.pw.CloseWithError(cause)
		<-u.done
		u.release()
		w.cur = nil
	}
}

// cleanup deletes every chunk (the one being uploaded included: it may
// have been stored before the failure was seen) and then the journal entry.
func (w *writer) cleanup() error {
	if w.cleaned {
		return nil
	}
	// Whatever happens next, this is no write in progress any more: if
	// chunks stay behind, List must report them.
	defer w.s.setActive(w.id, false)
	if len(w.chunks) > 0 {
		// The writer's context may be what failed; deleting must still
		// happen.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), deleteTimeout)
		defer cancel()
		if err := w.s.deleteChunks(ctx, w.chunks); err != nil {
			return fmt.Errorf("seaweedblob: %d chunks of blob %s left for the sweeper: %w", len(w.chunks), w.id, err)
		}
	}
	// The entry may outlive the chunks list (a first chunk whose server
	// was unreachable and whose re-assignment failed).
	if j := w.s.journal; j != nil && w.id != "" {
		if err := j.remove(w.id); err != nil {
			return err
		}
	}
	w.cleaned = true
	return nil
}

// statusError is a volume server's or master's non-success answer, as
// opposed to a transport failure.
type statusError struct {
	op     string
	url    string
	status int
	msg    string
}

func (e *statusError) Error() string {
	s := "seaweedblob: " + e.op + " " + e.url + ": HTTP " + strconv.Itoa(e.status)
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}
