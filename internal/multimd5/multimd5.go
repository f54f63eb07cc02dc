// Package multimd5 computes MD5 for many concurrent streams at once.
//
// S3 ETags are MD5 digests, and MD5 cannot be parallelised within one
// stream: crypto/md5 hashes about 800 MB/s per core, which made the ETag the
// largest cost of a large PUT. This package hashes several streams in the
// same instructions, each in one 32-bit element of the vector registers:
// up to 16 streams with AVX-512 (block16), up to 8 with AVX2 (block8). The
// uploads running at the same moment share the work, so a full pass costs
// about what one stream costs alone.
//
// Where both kernels run, a round of at most 8 streams uses whichever
// kernel hashes a round faster on this CPU, timed once at first use: on
// CPUs that execute AVX-512 on 256-bit units block8 costs about three
// quarters of block16.
//
// Streams meet in a combining scheduler rather than in a server goroutine:
// the first writer with blocks to hash becomes the leader and hashes its own
// blocks together with those of every writer that arrives meanwhile, one
// bounded round at a time; waiters sleep on their own channel, and when the
// leader's blocks are done it hands the lead to the next waiter. Writes are
// hashed in place, never copied.
//
// Without AVX2, New returns crypto/md5.
package multimd5

import (
	"crypto/md5"
	"encoding"
	"encoding/binary"
	"hash"
	"runtime"
	"sync"
)

const (
	// Size is the size of an MD5 checksum in bytes.
	Size = md5.Size
	// BlockSize is MD5's block size in bytes.
	BlockSize = md5.BlockSize

	// maxLanes is the most streams a round holds: block16's lanes.
	maxLanes = 16

	// roundBlocks bounds one round of the scheduler (64 KiB per lane), so
	// a stream that arrives while a round runs joins the next one soon.
	roundBlocks = 1024

	// shareMin is the smallest write worth sharing: below it, waiting for
	// the lead costs more than hashing alone.
	shareMin = 16 << 10
)

var initState = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

// haveLanes reports whether a vector kernel can run here.
var haveLanes = have16 || have8

// width is the most jobs a round holds: 16 where block16 runs, 8 where
// only block8 does. Tests lower it to 8 to run the AVX2-only path on
// CPUs with AVX-512.
var width = func() int {
	switch {
	case have16:
		return 16
	case have8:
		return 8
	}
	return 0
}()

// small8 records whether block8 hashes a round faster than block16 here;
// small8Once times them at first need.
var (
	small8Once sync.Once
	small8     bool
)

// useBlock8 reports whether a round of n streams runs block8.
func useBlock8(n int) bool {
	if n > 8 {
		return false
	}
	return width == 8 || calibrated()
}

// calibrated returns small8, timing the kernels the first time.
func calibrated() bool {
	small8Once.Do(func() { small8 = have16 && have8 && block8Faster() })
	return small8
}

// Hash is an MD5 hash.Hash that can also hash in the background: Start
// queues p's blocks and returns at once, Wait returns when they are done.
// Start first waits for the blocks started before, so between Start and
// the next Start or Wait the caller must leave p unchanged. Queue does not
// wait: it lines p up behind the blocks still being hashed, and every p
// queued must stay unchanged until Wait returns. Write is Start followed
// by Wait.
type Hash interface {
	hash.Hash
	Start(p []byte)
	Queue(p []byte)
	Wait()
}

// New returns a new Hash. Concurrent hashes share vector work; one hash is
// not safe for concurrent use, like crypto/md5.
func New() Hash {
	if !haveLanes {
		return plain{md5.New()}
	}
	d := &digest{}
	d.Reset()
	return d
}

// plain is crypto/md5 where the vector code cannot run.
type plain struct{ hash.Hash }

func (h plain) Start(p []byte) { h.Write(p) }
func (h plain) Queue(p []byte) { h.Write(p) }
func (plain) Wait()            {}

type digest struct {
	s       [4]uint32
	x       [BlockSize]byte
	nx      int
	len     uint64
	job     job
	pending bool // a Start has not been waited for
}

func (d *digest) Size() int      { return Size }
func (d *digest) BlockSize() int { return BlockSize }

func (d *digest) Reset() {
	d.Wait()
	d.s = initState
	d.nx = 0
	d.len = 0
}

func (d *digest) Write(p []byte) (int, error) {
	d.Start(p)
	d.Wait()
	return len(p), nil
}

func (d *digest) Start(p []byte) {
	d.Wait()
	d.len += uint64(len(p))
	if d.nx > 0 {
		c := copy(d.x[d.nx:], p)
		d.nx += c
		p = p[c:]
		if d.nx < BlockSize {
			return
		}
		hashAlone(&d.s, d.x[:])
		d.nx = 0
	}
	full := len(p) &^ (BlockSize - 1)
	// The bytes after the last full block wait in x for the next write;
	// the job below only reads p's full blocks.
	d.nx = copy(d.x[:], p[full:])
	switch {
	case full >= shareMin:
		d.job.s, d.job.p = &d.s, p[:full]
		d.pending = true
		shared.submit(&d.job)
	case full > 0:
		hashAlone(&d.s, p[:full])
	}
}

// Queue is Start without the wait when blocks are still being hashed:
// a stream can then read its next buffer while the rounds work through
// the last ones, rather than stop at every buffer until a leader gets to
// it. Measured with 8 concurrent 16 MiB uploads on 2 cores: about 12%
// more throughput. Only whole blocks can wait in line: bytes buffered
// from an earlier write, or a tail shorter than a block, need the state
// the queued blocks end in, so those take Start's way.
func (d *digest) Queue(p []byte) {
	if d.pending && d.nx == 0 && len(p)%BlockSize == 0 && len(p) >= shareMin && shared.extend(&d.job, p) {
		d.len += uint64(len(p))
		return
	}
	d.Start(p)
}

func (d *digest) Wait() {
	if d.pending {
		shared.wait(&d.job)
		d.job.p = nil
		d.pending = false
	}
}

// Sum appends the digest of what was written so far to b; the digest can
// be written to afterwards, as hash.Hash requires.
func (d *digest) Sum(b []byte) []byte {
	d.Wait()
	s := d.s
	var tail [2 * BlockSize]byte
	n := copy(tail[:], d.x[:d.nx])
	tail[n] = 0x80
	end := BlockSize
	if n >= BlockSize-8 {
		end = 2 * BlockSize
	}
	binary.LittleEndian.PutUint64(tail[end-8:end], d.len<<3)
	hashAlone(&s, tail[:end])
	var out [Size]byte
	for i, v := range s {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return append(b, out[:]...)
}

// hashAlone hashes the blocks of p (a multiple of BlockSize) for one
// stream. A lone stream gains nothing from the vector lanes, and vector
// instructions doing one lane's work are slower than crypto/md5's scalar
// code, so it uses crypto/md5 when it can.
func hashAlone(s *[4]uint32, p []byte) {
	if scalarOK && scalarBlocks(s, p) {
		return
	}
	hashLanes([]*[4]uint32{s}, []*byte{&p[0]}, len(p)/BlockSize)
}

// hashLanes hashes blocks blocks of each stream i, with state s[i] and
// blocks at p[i], in one kernel call: block8 or block16 by useBlock8.
func hashLanes(s []*[4]uint32, p []*byte, blocks int) {
	runKernel(useBlock8(len(s)), s, p, blocks)
}

// runKernel runs block8 (use8) or block16 over the streams, at most as
// many as the kernel has lanes. Unused lanes repeat stream 0's pointer and
// their results are dropped.
func runKernel(use8 bool, s []*[4]uint32, p []*byte, blocks int) {
	var st [4][maxLanes]uint32
	var ptrs [maxLanes]*byte
	for i := range ptrs {
		ptrs[i] = p[0]
	}
	for i, si := range s {
		for w := range si {
			st[w][i] = si[w]
		}
		ptrs[i] = p[i]
	}
	if use8 {
		var st8 [4][8]uint32
		for w := range st8 {
			st8[w] = [8]uint32(st[w][:8])
		}
		block8(&st8, (*[8]*byte)(ptrs[:8]), blocks)
		for w := range st8 {
			copy(st[w][:8], st8[w][:])
		}
	} else {
		block16(&st, &ptrs, blocks)
	}
	for i, si := range s {
		for w := range si {
			si[w] = st[w][i]
		}
	}
}

// crypto/md5 carries its state in and out through encoding.BinaryMarshaler:
// the magic, the four state words big-endian, the pending block and the
// length. The length written here is always a multiple of BlockSize, so
// there is never a pending partial block.
const (
	stateMagic = "md5\x01"
	stateSize  = len(stateMagic) + 4*4 + BlockSize + 8
)

type scalarHash struct {
	h   hash.Hash
	buf [stateSize]byte
}

var scalarHashes = sync.Pool{New: func() any { return &scalarHash{h: md5.New()} }}

// scalarBlocks runs p's blocks through crypto/md5 starting from state s.
// It reports false, leaving s alone, if crypto/md5's state format is not
// the one expected.
func scalarBlocks(s *[4]uint32, p []byte) bool {
	sh := scalarHashes.Get().(*scalarHash)
	defer scalarHashes.Put(sh)
	h, buf := sh.h, sh.buf[:]
	copy(buf, stateMagic)
	for w, v := range s {
		binary.BigEndian.PutUint32(buf[len(stateMagic)+4*w:], v)
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(buf); err != nil {
		return false
	}
	h.Write(p)
	out, err := h.(encoding.BinaryAppender).AppendBinary(buf[:0])
	if err != nil || len(out) != stateSize || string(out[:len(stateMagic)]) != stateMagic {
		return false
	}
	for w := range s {
		s[w] = binary.BigEndian.Uint32(out[len(stateMagic)+4*w:])
	}
	return true
}

// scalarOK records that crypto/md5's state format is the expected one:
// hashing a known message through scalarBlocks gives crypto/md5's digest.
var scalarOK = func() bool {
	var msg [2 * BlockSize]byte
	for i := range msg {
		msg[i] = byte(i)
	}
	s := initState
	if !scalarBlocks(&s, msg[:BlockSize]) || !scalarBlocks(&s, msg[BlockSize:]) {
		return false
	}
	// Finish by hand with a padding block for a 128-byte message.
	var pad [BlockSize]byte
	pad[0] = 0x80
	binary.LittleEndian.PutUint64(pad[BlockSize-8:], 2*BlockSize*8)
	if !scalarBlocks(&s, pad[:]) {
		return false
	}
	want := md5.Sum(msg[:])
	for w, v := range s {
		if binary.LittleEndian.Uint32(want[4*w:]) != v {
			return false
		}
	}
	return true
}()

// job is one Start's blocks waiting to be hashed.
type job struct {
	s *[4]uint32
	p []byte // blocks not hashed yet, a multiple of BlockSize

	// Guarded by the scheduler's mutex.
	next    [][]byte // blocks queued behind p, hashed in order
	nextBuf [4][]byte
	done    bool
	waiting bool // the owner is blocked in wait
	// wake tells a waiting owner that its blocks are done (true) or that
	// it leads now (false). Each blocked wait receives one message.
	wake chan bool
}

// scheduler combines the jobs of concurrent hashes into rounds. Nothing
// runs rounds until an owner waits: the first owner to wait while no one
// leads becomes the leader and runs rounds, oldest jobs first, until its
// own job is done; then it passes the lead to another waiting owner.
// Owners that are busy elsewhere (reading the network, writing files) have
// their blocks hashed meanwhile.
type scheduler struct {
	mu      sync.Mutex
	leading bool
	queue   []*job // jobs not done, oldest first
}

var shared scheduler

func (sc *scheduler) submit(j *job) {
	if j.wake == nil {
		j.wake = make(chan bool, 1)
	}
	sc.mu.Lock()
	j.done = false
	sc.queue = append(sc.queue, j)
	sc.mu.Unlock()
}

// extend lines p up behind j's blocks. It reports false when j is done
// (its owner has yet to wait for it) or its line is full; the owner then
// waits and submits p afresh.
func (sc *scheduler) extend(j *job, p []byte) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if j.done || len(j.next) == len(j.nextBuf) {
		return false
	}
	if j.next == nil {
		j.next = j.nextBuf[:0]
	}
	j.next = append(j.next, p)
	return true
}

// wait returns once j is done, leading rounds if no one else does.
func (sc *scheduler) wait(j *job) {
	sc.mu.Lock()
	for !j.done {
		if !sc.leading {
			sc.leading = true
			sc.lead(j)
			break
		}
		j.waiting = true
		sc.mu.Unlock()
		done := <-j.wake
		sc.mu.Lock()
		j.waiting = false
		if !done {
			sc.lead(j) // the lead was handed over with leading still set
			break
		}
	}
	sc.mu.Unlock()
}

// lead runs rounds until own is done, then hands the lead to a waiting
// owner, or gives it up if none waits. Called and returns with sc.mu held.
func (sc *scheduler) lead(own *job) {
	var batch [maxLanes]*job
	for !own.done {
		if len(sc.queue) < width {
			// Let the other writers that are runnable queue their blocks
			// before the round starts: a round costs the same with one lane
			// as with all of them. Measured with 8 concurrent 16 MiB
			// uploads: rounds went from ~3 to ~6 lanes on average.
			sc.mu.Unlock()
			runtime.Gosched()
			sc.mu.Lock()
		}
		n := copy(batch[:width], sc.queue)
		sc.mu.Unlock()
		runRound(batch[:n])
		sc.mu.Lock()
		kept := 0
		for _, j := range batch[:n] {
			if len(j.p) == 0 && len(j.next) > 0 {
				j.p = j.next[0]
				copy(j.next, j.next[1:])
				j.next[len(j.next)-1] = nil
				j.next = j.next[:len(j.next)-1]
			}
			if len(j.p) > 0 {
				sc.queue[kept] = j
				kept++
				continue
			}
			j.done = true
			if j.waiting && j != own {
				j.wake <- true
			}
		}
		rest := copy(sc.queue[kept:], sc.queue[n:])
		clear(sc.queue[kept+rest:])
		sc.queue = sc.queue[:kept+rest]
	}
	for _, j := range sc.queue {
		if j.waiting {
			j.waiting = false
			j.wake <- false
			return
		}
	}
	sc.leading = false
}

// runRound hashes up to roundBlocks blocks of every job in batch.
func runRound(batch []*job) {
	blocks := roundBlocks
	for _, j := range batch {
		blocks = min(blocks, len(j.p)/BlockSize)
	}
	if len(batch) == 1 {
		j := batch[0]
		hashAlone(j.s, j.p[:blocks*BlockSize])
		j.p = j.p[blocks*BlockSize:]
		return
	}
	var s [maxLanes]*[4]uint32
	var p [maxLanes]*byte
	for i, j := range batch {
		s[i], p[i] = j.s, &j.p[0]
	}
	hashLanes(s[:len(batch)], p[:len(batch)], blocks)
	for _, j := range batch {
		j.p = j.p[blocks*BlockSize:]
	}
}
