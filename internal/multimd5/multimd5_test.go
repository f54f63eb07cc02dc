package multimd5

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeInChunks writes p to a fresh digest in chunks whose sizes cycle
// through sizes, and returns the digest.
func writeInChunks(p []byte, sizes []int) []byte {
	h := New()
	for i := 0; len(p) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(p))
		h.Write(p[:n])
		p = p[n:]
	}
	return h.Sum(nil)
}

func TestMatchesCryptoMD5(t *testing.T) {
	if !haveLanes {
		t.Log("no AVX-512 here: New is crypto/md5, the comparison is trivial")
	}
	lengths := []int{0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000,
		shareMin - 1, shareMin, shareMin + 1, roundBlocks*BlockSize + 7, 1<<20 + 7, 3<<20 + 61}
	chunkings := [][]int{{1 << 30}, {1}, {7, 64, 1}, {63, 65}, {shareMin + 3, 5}, {256 << 10}}
	for _, n := range lengths {
		p := randomBytes(uint64(n), n)
		want := md5.Sum(p)
		for _, sizes := range chunkings {
			if n > 1<<20 && sizes[0] == 1 {
				continue // byte-at-a-time over megabytes proves nothing more
			}
			if got := writeInChunks(p, sizes); !bytes.Equal(got, want[:]) {
				t.Errorf("len %d chunks %v: got %x, want %x", n, sizes, got, want)
			}
		}
	}
}

func TestSumThenWriteAndReset(t *testing.T) {
	p := randomBytes(1, 200<<10)
	h := New()
	h.Write(p[:100<<10])
	first := md5.Sum(p[:100<<10])
	if got := h.Sum(nil); !bytes.Equal(got, first[:]) {
		t.Fatalf("intermediate Sum: got %x, want %x", got, first)
	}
	h.Write(p[100<<10:])
	whole := md5.Sum(p)
	if got := h.Sum([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), whole[:]...)) {
		t.Fatalf("Sum after more writes: got %x, want prefix+%x", got, whole)
	}
	h.Reset()
	h.Write(p[:3])
	short := md5.Sum(p[:3])
	if got := h.Sum(nil); !bytes.Equal(got, short[:]) {
		t.Fatalf("after Reset: got %x, want %x", got, short)
	}
	if h.Size() != md5.Size || h.BlockSize() != md5.BlockSize {
		t.Fatalf("Size %d BlockSize %d", h.Size(), h.BlockSize())
	}
}

// TestConcurrentStreams runs more streams than lanes, of different lengths
// and write sizes, so rounds mix streams that start, finish and hand the
// lead over at different moments.
func TestConcurrentStreams(t *testing.T) {
	inParallel(t, 40, func(i int) error {
		n := 64<<10 + i*37<<10 + i
		p := randomBytes(uint64(1000+i), n)
		want := md5.Sum(p)
		for rep := 0; rep < 3; rep++ {
			got := writeInChunks(p, []int{shareMin + i*977, 100 + i, 64 << 10})
			if !bytes.Equal(got, want[:]) {
				return fmt.Errorf("stream %d rep %d: got %x, want %x", i, rep, got, want)
			}
		}
		return nil
	})
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.leading || len(shared.queue) != 0 {
		t.Fatalf("scheduler not idle after all streams finished: leading=%v queue=%d", shared.leading, len(shared.queue))
	}
}

// TestStartWaitDoubleBuffered hashes like an upload does: copy the next
// chunk into one of two buffers, Start it, and reuse a buffer only after
// the Start that used it was waited for. Streams whose jobs sit in the
// queue while their owners copy must still come out right.
func TestStartWaitDoubleBuffered(t *testing.T) {
	inParallel(t, 24, func(i int) error {
		src := randomBytes(uint64(5000+i), 1<<20+i*4099)
		want := md5.Sum(src)
		h := New()
		bufs := [2][]byte{make([]byte, 40<<10+i), make([]byte, 40<<10+i)}
		rest := src
		for k := 0; len(rest) > 0; k ^= 1 {
			buf := bufs[k]
			n := copy(buf, rest)
			rest = rest[n:]
			h.Start(buf[:n])
			// The other buffer's Start was waited for by this Start, so
			// scribbling over it must not change the digest.
			for b := range bufs[k^1] {
				bufs[k^1][b] = 0xaa
			}
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			return fmt.Errorf("stream %d: got %x, want %x", i, got, want)
		}
		return nil
	})
}

// inParallel runs stream(0..n-1) in n goroutines and reports their errors.
func inParallel(t *testing.T, n int, stream func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := stream(i); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzMatchesCryptoMD5(f *testing.F) {
	f.Add([]byte("abc"), uint16(1))
	f.Add(bytes.Repeat([]byte{0xff}, 70000), uint16(shareMin+1))
	f.Fuzz(func(t *testing.T, p []byte, chunk uint16) {
		size := int(chunk)
		if size == 0 {
			size = 1
		}
		want := md5.Sum(p)
		if got := writeInChunks(p, []int{size}); !bytes.Equal(got, want[:]) {
			t.Fatalf("len %d chunk %d: got %x, want %x", len(p), size, got, want)
		}
	})
}

func benchmarkStreams(b *testing.B, streams int, newHash func() interface{ Write([]byte) (int, error) }) {
	p := randomBytes(7, 256<<10)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	per := b.N/streams + 1
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHash()
			for i := 0; i < per; i++ {
				h.Write(p)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkStreams compares the throughput of N concurrent streams, each
// writing 256 KiB at a time, with crypto/md5 doing the same on every core.
func BenchmarkStreams(b *testing.B) {
	for _, n := range []int{1, 2, 8, 16, 32} {
		b.Run(fmt.Sprintf("multimd5/%d", n), func(b *testing.B) {
			benchmarkStreams(b, n, func() interface{ Write([]byte) (int, error) } { return New() })
		})
		b.Run(fmt.Sprintf("crypto-md5/%d", n), func(b *testing.B) {
			benchmarkStreams(b, n, func() interface{ Write([]byte) (int, error) } { return md5.New() })
		})
	}
}
