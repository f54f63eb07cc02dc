package main

import (
	"io"
	"sync"
	"time"
)

// Batching of the server's log output. One write(2) per access-log line
// was some 5% of the server's CPU for a 4 KiB GET in profiles; batched,
// a busy server writes a buffer full of lines at a time, and a quiet one
// still shows each line within logFlushEvery.
const (
	logFlushEvery = 100 * time.Millisecond
	logBufSize    = 64 << 10
)

// logWriter batches writes to w. Each Write (one log record, as slog
// handlers write) is kept whole; the buffer goes out when it is full, when
// logFlushEvery has passed since its first unwritten byte, and on Close.
type logWriter struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer // armed while buf holds bytes
	every time.Duration
}

func newLogWriter(w io.Writer, every time.Duration) *logWriter {
	l := &logWriter{w: w, buf: make([]byte, 0, logBufSize), every: every}
	l.timer = time.AfterFunc(time.Hour, l.Flush)
	l.timer.Stop()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf)+len(p) > cap(l.buf) {
		l.flushLocked()
	}
	if len(p) >= cap(l.buf) {
		// A record larger than the buffer goes straight through.
		return l.w.Write(p)
	}
	if len(l.buf) == 0 {
		l.timer.Reset(l.every)
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// Flush writes out what is buffered.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *logWriter) flushLocked() {
	l.timer.Stop()
	if len(l.buf) == 0 {
		return
	}
	// A failed write loses these lines, as an unbuffered one would; the
	// log has nowhere to report its own failure.
	_, _ = l.w.Write(l.buf)
	l.buf = l.buf[:0]
}

// Close flushes; the underlying writer stays open.
func (l *logWriter) Close() error {
	l.Flush()
	return nil
}
