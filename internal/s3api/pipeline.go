package s3api

import (
	"fmt"
	"io"
	"runtime/debug"
	"sync"
)

// Large bodies are copied through a pipeline instead of copyHashed's two
// halves: reading the next chunk from the network does not wait for the
// previous one to reach storage, so a write that waits (for the page
// cache's dirty limit, or for the device with --direct-io) overlaps the
// network reads and the other uploads' hashing.
const (
	// pipelineMin is the declared body size from which the pipeline is
	// used; smaller bodies are one or two chunks, which nothing overlaps.
	pipelineMin = 1 << 20
	chunkSize   = 256 << 10
	chunks      = 4 // per request: 1 MiB, the pipeline's depth
)

var pipelineBufs = sync.Pool{New: func() any { b := make([]byte, chunks*chunkSize); return &b }}

// filledChunk is chunk i of the ring, holding n bytes.
type filledChunk struct{ i, n int }

// copyPipelined copies src to dst and through h like copyHashed. The
// request's goroutine fills chunks of a ring and queues their MD5; a
// writer goroutine writes them to dst in order. A chunk is refilled only
// once written and hashed: the MD5 is waited for at the start of each
// half of the ring, so up to half the ring is hashing while the request
// reads on. When it returns, h holds the hashes of everything read and
// nothing still uses the ring.
func copyPipelined(dst io.Writer, src io.Reader, h *bodyHasher) (int64, error) {
	bp := pipelineBufs.Get().(*[]byte)
	defer pipelineBufs.Put(bp)
	defer h.md5.Wait()
	ring := *bp

	filled := make(chan filledChunk, chunks)
	written := make(chan error, chunks) // one per chunk, in order
	go writeChunks(dst, ring, filled, written)

	var readErr, writeErr error
	inFlight := 0
	for i := 0; ; i = (i + 1) % chunks {
		if inFlight == chunks {
			if err := <-written; err != nil {
				writeErr = err
				break
			}
			inFlight--
		}
		if i%(chunks/2) == 0 {
			// The chunks of this half were queued a half ago.
			h.md5.Wait()
		}
		chunk := ring[i*chunkSize : (i+1)*chunkSize]
		n, err := fill(src, chunk)
		if n > 0 {
			h.queue(chunk[:n])
			filled <- filledChunk{i, n}
			inFlight++
		}
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
	}
	close(filled)
	for err := range written {
		if writeErr == nil {
			writeErr = err
		}
	}
	if readErr != nil {
		return h.n, readErr
	}
	return h.n, writeErr
}

// writeChunks writes the chunks from filled to dst and reports each one on
// written; after the first error it only reports. It closes written once
// filled is closed and drained.
func writeChunks(dst io.Writer, ring []byte, filled <-chan filledChunk, written chan<- error) {
	defer close(written)
	var err error
	for c := range filled {
		if err == nil {
			err = writeChunk(dst, ring[c.i*chunkSize:c.i*chunkSize+c.n])
		}
		written <- err
	}
}

// writeChunk writes one chunk. A panic in the storage's Write becomes the
// request's error: in this goroutine, unlike in the request's own, nothing
// would recover it and the whole server would stop.
func writeChunk(dst io.Writer, chunk []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &writeError{fmt.Errorf("s3api: blob write panicked: %v\n%s", r, debug.Stack())}
		}
	}()
	if _, err := dst.Write(chunk); err != nil {
		return &writeError{err}
	}
	return nil
}
