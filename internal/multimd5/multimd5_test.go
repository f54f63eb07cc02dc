package multimd5

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
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

// mode is one way the scheduler can run.
type mode struct {
	name   string
	width  int  // the most jobs in a round
	use8   bool // rounds of up to 8 jobs run block8
	need16 bool // the mode runs block16
}

var modes = []mode{
	{name: "block16", width: 16, need16: true},
	{name: "block16+block8", width: 16, use8: true, need16: true},
	// What CPUs with AVX2 but no AVX-512 run.
	{name: "block8", width: 8, use8: true},
}

// setMode makes the scheduler run in m until tb ends. The scheduler must be
// idle: no stream may be between Start and Wait.
func setMode(tb testing.TB, m mode) {
	tb.Helper()
	calibrated() // so that the timing cannot overwrite small8 later
	oldWidth, old8 := width, small8
	width, small8 = m.width, m.use8
	tb.Cleanup(func() { width, small8 = oldWidth, old8 })
}

// forModes runs f in every mode this CPU supports, or once with crypto/md5
// where no vector kernel runs.
func forModes(t *testing.T, f func(t *testing.T)) {
	if !haveLanes {
		t.Log("no AVX2 here: New is crypto/md5, the comparison is trivial")
		f(t)
		return
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			if m.need16 && !have16 {
				t.Skip("no AVX-512 here")
			}
			setMode(t, m)
			f(t)
		})
	}
}

// refK is RFC 1321's table T: T[i] = floor(2^32 * |sin(i+1)|).
var refK = func() (k [64]uint32) {
	for i := range k {
		k[i] = uint32(math.Floor(math.Abs(math.Sin(float64(i+1))) * (1 << 32)))
	}
	return k
}()

// refBlocks is MD5's compression function as RFC 1321 writes it, the
// reference the kernels are compared with.
func refBlocks(s *[4]uint32, p []byte) {
	shifts := [4][4]int{{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}}
	for ; len(p) >= BlockSize; p = p[BlockSize:] {
		var x [16]uint32
		for i := range x {
			x[i] = binary.LittleEndian.Uint32(p[4*i:])
		}
		a, b, c, d := s[0], s[1], s[2], s[3]
		for i := 0; i < 64; i++ {
			var f uint32
			var g int
			switch i / 16 {
			case 0:
				f, g = b&c|^b&d, i
			case 1:
				f, g = b&d|c&^d, (5*i+1)%16
			case 2:
				f, g = b^c^d, (3*i+5)%16
			case 3:
				f, g = c^(b|^d), (7*i)%16
			}
			a, b, c, d = d, b+bits.RotateLeft32(a+f+refK[i]+x[g], shifts[i/16][i%4]), b, c
		}
		s[0] += a
		s[1] += b
		s[2] += c
		s[3] += d
	}
}

// kernel is block8 or block16 behind one signature: lane i has state s[i]
// and reads p[i]; len(s) == len(p) == lanes.
type kernel struct {
	name  string
	lanes int
	ok    bool
	run   func(s []*[4]uint32, p []*byte, blocks int)
}

var kernels = []kernel{
	{name: "block8", lanes: 8, ok: have8, run: func(s []*[4]uint32, p []*byte, blocks int) { runKernel(true, s, p, blocks) }},
	{name: "block16", lanes: 16, ok: have16, run: func(s []*[4]uint32, p []*byte, blocks int) { runKernel(false, s, p, blocks) }},
}

// TestRefBlocks checks the reference against crypto/md5 on padded
// messages.
func TestRefBlocks(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 63, 64, 119, 120, 1000} {
		p := randomBytes(uint64(n), n)
		s := initState
		refBlocks(&s, padded(p))
		if got, want := digestOf(s), md5.Sum(p); got != want {
			t.Errorf("len %d: got %x, want %x", n, got, want)
		}
	}
}

// padded returns p followed by MD5's padding.
func padded(p []byte) []byte {
	n := (len(p) + 8 + BlockSize) &^ (BlockSize - 1)
	out := make([]byte, n)
	copy(out, p)
	out[len(p)] = 0x80
	binary.LittleEndian.PutUint64(out[n-8:], uint64(len(p))<<3)
	return out
}

func digestOf(s [4]uint32) (out [Size]byte) {
	for w, v := range s {
		binary.LittleEndian.PutUint32(out[4*w:], v)
	}
	return out
}

// checkKernel runs kn over lanes read from buf and compares every lane with
// refBlocks. Lane i starts at buf[offs[i]] from state states[i].
func checkKernel(t *testing.T, kn kernel, buf []byte, offs []int, states [][4]uint32, blocks int) {
	t.Helper()
	s := make([]*[4]uint32, kn.lanes)
	p := make([]*byte, kn.lanes)
	for i := range s {
		st := states[i]
		s[i], p[i] = &st, &buf[offs[i]]
	}
	kn.run(s, p, blocks)
	for i := range s {
		want := states[i]
		refBlocks(&want, buf[offs[i]:offs[i]+blocks*BlockSize])
		if *s[i] != want {
			t.Fatalf("%s lane %d (offset %d, %d blocks, from %08x): got %08x, want %08x",
				kn.name, i, offs[i], blocks, states[i], *s[i], want)
		}
	}
}

// TestKernels compares the kernels with the reference lane by lane: random
// states, block counts and unaligned starts, lanes that share a pointer.
func TestKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, kn := range kernels {
		t.Run(kn.name, func(t *testing.T) {
			if !kn.ok {
				t.Skip("the CPU lacks the instructions")
			}
			for trial := 0; trial < 300; trial++ {
				blocks := r.IntN(40)
				if trial%50 == 0 {
					blocks = roundBlocks // a whole scheduler round
				}
				buf := randomBytes(uint64(trial), (blocks+2)*BlockSize*kn.lanes)
				offs := make([]int, kn.lanes)
				states := make([][4]uint32, kn.lanes)
				for i := range offs {
					if i > 0 && r.IntN(4) == 0 {
						offs[i] = offs[r.IntN(i)] // the scheduler repeats lanes
					} else {
						offs[i] = r.IntN(len(buf) - blocks*BlockSize)
					}
					for w := range states[i] {
						states[i][w] = r.Uint32()
					}
				}
				if trial%3 == 0 {
					states[0] = initState
				}
				checkKernel(t, kn, buf, offs, states, blocks)
			}
		})
	}
	if have16 && have8 {
		t.Logf("block8 hashes a round faster than block16 here: %v", block8Faster())
	}
}

// TestKernelsWholeMessages hashes padded messages of different lengths, one
// per lane, with the kernels alone and compares with crypto/md5.
func TestKernelsWholeMessages(t *testing.T) {
	for _, kn := range kernels {
		t.Run(kn.name, func(t *testing.T) {
			if !kn.ok {
				t.Skip("the CPU lacks the instructions")
			}
			for blocks := 1; blocks <= 5; blocks++ {
				msgs := make([][]byte, kn.lanes)
				s := make([]*[4]uint32, kn.lanes)
				p := make([]*byte, kn.lanes)
				for i := range msgs {
					// Lengths whose padding takes blocks blocks.
					n := (blocks-1)*BlockSize + i*(BlockSize-9)/(kn.lanes-1)
					msgs[i] = randomBytes(uint64(100*blocks+i), n)
					pad := padded(msgs[i])
					if len(pad) != blocks*BlockSize {
						t.Fatalf("length %d pads to %d bytes", n, len(pad))
					}
					// Start at an odd address, as a part of an upload may.
					buf := make([]byte, 1+len(pad))
					copy(buf[1:], pad)
					st := initState
					s[i], p[i] = &st, &buf[1]
				}
				kn.run(s, p, blocks)
				for i, m := range msgs {
					if got, want := digestOf(*s[i]), md5.Sum(m); got != want {
						t.Errorf("%s lane %d len %d: got %x, want %x", kn.name, i, len(m), got, want)
					}
				}
			}
		})
	}
}

// writeInChunks writes p to a fresh digest in chunks whose sizes cycle
// through sizes, and returns the digest.
// queueInChunks hashes p through Queue: copies of size-byte chunks of p
// go into a ring of depth buffers, waited for only before the ring wraps,
// and scribbled over once waited for.
func queueInChunks(p []byte, size, depth int) []byte {
	h := New()
	ring := make([][]byte, depth)
	for k := range ring {
		ring[k] = make([]byte, size)
	}
	for k := 0; len(p) > 0; k = (k + 1) % depth {
		if k == 0 {
			h.Wait()
			for _, b := range ring {
				for j := range b {
					b[j] ^= 0xa5
				}
			}
		}
		n := copy(ring[k], p)
		p = p[n:]
		h.Queue(ring[k][:n])
	}
	return h.Sum(nil)
}

func writeInChunks(p []byte, sizes []int) []byte {
	h := New()
	for i := 0; len(p) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(p))
		h.Write(p[:n])
		p = p[n:]
	}
	return h.Sum(nil)
}

func TestMatchesCryptoMD5(t *testing.T) { forModes(t, testMatchesCryptoMD5) }

// TestVectorAlone hashes lone streams with the vector kernels, as hashAlone
// does where crypto/md5's state format is not the expected one.
func TestVectorAlone(t *testing.T) {
	forModes(t, func(t *testing.T) {
		old := scalarOK
		scalarOK = false
		defer func() { scalarOK = old }()
		for _, n := range []int{0, 63, 64, 1000, shareMin + 65, 200<<10 + 3} {
			p := randomBytes(uint64(n), n)
			want := md5.Sum(p)
			if got := writeInChunks(p, []int{100, shareMin + 64}); !bytes.Equal(got, want[:]) {
				t.Errorf("len %d: got %x, want %x", n, got, want)
			}
		}
	})
}

func testMatchesCryptoMD5(t *testing.T) {
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
func TestConcurrentStreams(t *testing.T) { forModes(t, testConcurrentStreams) }

func testConcurrentStreams(t *testing.T) {
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
	checkIdle(t)
}

// TestStartWaitDoubleBuffered hashes like an upload does: copy the next
// chunk into one of two buffers, Start it, and reuse a buffer only after
// the Start that used it was waited for. Streams whose jobs sit in the
// queue while their owners copy must still come out right.
func TestStartWaitDoubleBuffered(t *testing.T) { forModes(t, testStartWaitDoubleBuffered) }

func testStartWaitDoubleBuffered(t *testing.T) {
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

// TestQueueRing hashes like a pipelined upload does: fill the buffers of
// a ring in turn, Queue each one without waiting for the others, and wait
// only before refilling a buffer. Sizes include ones that are not whole
// blocks and ones too small to share, which take Start's way; the lines
// of queued buffers overflow when a ring is longer than a job's line.
func TestQueueRing(t *testing.T) { forModes(t, testQueueRing) }

func testQueueRing(t *testing.T) {
	inParallel(t, 24, func(i int) error {
		src := randomBytes(uint64(7000+i), 1<<20+i*5003)
		want := md5.Sum(src)
		h := New()
		ring := make([][]byte, 2+i%7)
		for k := range ring {
			size := 32 << 10
			switch i % 4 {
			case 1:
				size += BlockSize*k + 7 // a tail that is not a whole block
			case 2:
				size = shareMin / 2 // hashed alone
			}
			ring[k] = make([]byte, size)
		}
		rest := src
		for k := 0; len(rest) > 0; k = (k + 1) % len(ring) {
			if k == 0 {
				h.Wait()
				// Every buffer was waited for: scribbling over them must
				// not change the digest.
				for _, b := range ring {
					for j := range b {
						b[j] = 0x55
					}
				}
			}
			n := copy(ring[k], rest)
			rest = rest[n:]
			h.Queue(ring[k][:n])
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			return fmt.Errorf("stream %d: got %x, want %x", i, got, want)
		}
		return nil
	})
	checkIdle(t)
}

// checkIdle fails t unless the scheduler is idle: no leader, no job
// queued, as it must be once every stream has finished.
func checkIdle(t *testing.T) {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.leading || len(shared.queue) != 0 {
		t.Fatalf("scheduler not idle after all streams finished: leading=%v queue=%d", shared.leading, len(shared.queue))
	}
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

// FuzzMatchesCryptoMD5 checks a stream written in chunks against
// crypto/md5, and every kernel against the reference over lanes read from
// p at offsets picked by lanes, the first lane from the state picked by
// state.
func FuzzMatchesCryptoMD5(f *testing.F) {
	f.Add([]byte("abc"), uint16(1), uint64(0), uint64(0))
	f.Add(bytes.Repeat([]byte{0xff}, 70000), uint16(shareMin+1), uint64(0x0123456789abcdef), uint64(3))
	f.Add(randomBytes(9, 3000), uint16(100), uint64(0xfedcba9876543210), uint64(1<<63|12345))
	// Whole-block chunks big enough to share: Queue lines them up.
	f.Add(randomBytes(10, 200<<10+17), uint16(2*shareMin), uint64(0), uint64(2))
	f.Fuzz(func(t *testing.T, p []byte, chunk uint16, lanes, state uint64) {
		size := int(chunk)
		if size == 0 {
			size = 1
		}
		want := md5.Sum(p)
		if got := writeInChunks(p, []int{size}); !bytes.Equal(got, want[:]) {
			t.Fatalf("len %d chunk %d: got %x, want %x", len(p), size, got, want)
		}
		if got := queueInChunks(p, size, 1+int(state%5)); !bytes.Equal(got, want[:]) {
			t.Fatalf("len %d chunk %d queued: got %x, want %x", len(p), size, got, want)
		}
		if len(p) < BlockSize {
			return
		}
		for _, kn := range kernels {
			if !kn.ok {
				continue
			}
			// Each lane's offset is 4 bits of lanes, so lanes often
			// start at the same place or one byte apart.
			offs := make([]int, kn.lanes)
			states := make([][4]uint32, kn.lanes)
			maxOff := 0
			for i := range offs {
				offs[i] = int(lanes >> (4 * i) & 15)
				maxOff = max(maxOff, offs[i])
				states[i] = initState
			}
			states[0] = [4]uint32{uint32(state), uint32(state >> 32), uint32(state) ^ 0x5a5a5a5a, uint32(state>>32) + 1}
			if len(p) < maxOff+BlockSize {
				continue
			}
			checkKernel(t, kn, p, offs, states, (len(p)-maxOff)/BlockSize)
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
// writing 256 KiB at a time, in each scheduler mode, with crypto/md5 doing
// the same on every core.
func BenchmarkStreams(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8, 16} {
		for _, m := range modes {
			b.Run(fmt.Sprintf("%s/%d", m.name, n), func(b *testing.B) {
				if !have8 || m.need16 && !have16 {
					b.Skip("the CPU lacks the instructions")
				}
				setMode(b, m)
				benchmarkStreams(b, n, func() interface{ Write([]byte) (int, error) } { return New() })
			})
		}
		b.Run(fmt.Sprintf("crypto-md5/%d", n), func(b *testing.B) {
			benchmarkStreams(b, n, func() interface{ Write([]byte) (int, error) } { return md5.New() })
		})
	}
}

// BenchmarkBlock measures what one scheduler round costs with each kernel:
// roundBlocks blocks of every lane, from distinct buffers. MB/s counts all
// lanes' bytes; ns/op is the round's cost, to compare block8 with block16
// for rounds of up to 8 streams.
func BenchmarkBlock(b *testing.B) {
	for _, kn := range kernels {
		b.Run(kn.name, func(b *testing.B) {
			if !kn.ok {
				b.Skip("the CPU lacks the instructions")
			}
			s := make([]*[4]uint32, kn.lanes)
			p := make([]*byte, kn.lanes)
			for i := range s {
				s[i] = new([4]uint32)
				p[i] = &randomBytes(uint64(i), roundBlocks*BlockSize)[0]
			}
			b.SetBytes(int64(kn.lanes * roundBlocks * BlockSize))
			for b.Loop() {
				kn.run(s, p, roundBlocks)
			}
		})
	}
}
