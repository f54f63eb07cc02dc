//go:build amd64 && !purego

package multimd5

import (
	"time"

	"golang.org/x/sys/cpu"
)

//go:generate go run gen_block.go

// block16 runs MD5's compression function over blocks 64-byte blocks of
// 16 messages at once: lane i reads ptrs[i] and keeps its state in
// state[0..3][i]. Unused lanes may repeat another lane's pointer.
//
//go:noescape
func block16(state *[4][16]uint32, ptrs *[16]*byte, blocks int)

// block8 is block16 for 8 messages, with AVX2 instructions only.
//
//go:noescape
func block8(state *[4][8]uint32, ptrs *[8]*byte, blocks int)

// have16 reports whether block16 can run here. AVX-512 Foundation has
// every instruction it uses (ternary logic, rotates, 128-bit lane
// shuffles). have8 reports the same of block8.
var (
	have16 = cpu.X86.HasAVX512F
	have8  = cpu.X86.HasAVX2
)

// block8Faster times block8 and block16 over the same blocks and reports
// whether block8 takes less time per round. Which one wins depends on the
// microarchitecture (on an AMD EPYC of the Zen 4 class, which executes
// AVX-512 on 256-bit units, block8 took 0.75 of block16's time per round;
// where AVX-512 runs on 512-bit units block16 should cost about what
// block8 costs while doing twice the work), so it is measured rather than
// guessed from CPU flags. The best of several trials discards preemption
// and warm-up; each trial takes a few microseconds.
func block8Faster() bool {
	const blocks = 32
	buf := make([]byte, blocks*BlockSize)
	var st16 [4][16]uint32
	var p16 [16]*byte
	var st8 [4][8]uint32
	var p8 [8]*byte
	for i := range p16 {
		p16[i] = &buf[0]
	}
	for i := range p8 {
		p8[i] = &buf[0]
	}
	var best8, best16 time.Duration = 1<<63 - 1, 1<<63 - 1
	for range 7 {
		t0 := time.Now()
		block16(&st16, &p16, blocks)
		t1 := time.Now()
		block8(&st8, &p8, blocks)
		t2 := time.Now()
		best16 = min(best16, t1.Sub(t0))
		best8 = min(best8, t2.Sub(t1))
	}
	return best8 < best16
}
