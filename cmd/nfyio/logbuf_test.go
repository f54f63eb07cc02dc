package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder keeps each Write it receives.
type recorder struct {
	mu     sync.Mutex
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recorder) all() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.Join(r.writes, nil)), len(r.writes)
}

func TestLogWriterBatchesWholeRecords(t *testing.T) {
	rec := &recorder{}
	l := newLogWriter(rec, time.Hour) // no timed flush in this test
	var want strings.Builder
	for i := range 500 {
		line := fmt.Sprintf("{\"n\":%d,\"pad\":%q}\n", i, strings.Repeat("x", 300))
		want.WriteString(line)
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	got, n := rec.all()
	if n == 0 || n > 5 {
		t.Fatalf("%d writes for 500 records of ~330 bytes into a 64 KiB buffer", n)
	}
	rec.mu.Lock()
	for _, w := range rec.writes {
		if len(w) > logBufSize || w[len(w)-1] != '\n' {
			t.Errorf("a write of %d bytes is not whole records", len(w))
		}
	}
	rec.mu.Unlock()
	if !strings.HasPrefix(want.String(), got) {
		t.Fatal("records out of order")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := rec.all(); got != want.String() {
		t.Fatalf("after Close: %d bytes, want %d", len(got), want.Len())
	}
	// A record larger than the buffer is written as it comes.
	big := strings.Repeat("y", logBufSize+1)
	if _, err := l.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if got, _ := rec.all(); !strings.HasSuffix(got, big) {
		t.Fatal("an oversized record was held back")
	}
}

// A quiet server's lines still go out without a Close.
func TestLogWriterFlushesOnItsOwn(t *testing.T) {
	rec := &recorder{}
	l := newLogWriter(rec, 5*time.Millisecond)
	defer l.Close()
	if _, err := l.Write([]byte("one line\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, _ := rec.all(); got == "one line\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the line was never written")
		}
		time.Sleep(time.Millisecond)
	}
}
