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
// guessed from CPU flags. Both kernels first run for 2 ms: a core that was
// idle runs slowly for a while, and on this project's benchmark machine the
// two timed 14 and 15 µs (for 64 blocks) then, against 6.4 and 8.4 µs once
// busy, so a server's first upload could pick either. The best of several
// trials, the kernels taking turns, discards preemption.
func block8Faster() bool {
	const blocks = 64
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
	time16 := func() time.Duration {
		t0 := time.Now()
		block16(&st16, &p16, blocks)
		return time.Since(t0)
	}
	time8 := func() time.Duration {
		t0 := time.Now()
		block8(&st8, &p8, blocks)
		return time.Since(t0)
	}
	for start := time.Now(); time.Since(start) < 2*time.Millisecond; {
		time16()
		time8()
	}
	var best8, best16 time.Duration = 1<<63 - 1, 1<<63 - 1
	for i := range 10 {
		if i%2 == 0 {
			best16 = min(best16, time16())
			best8 = min(best8, time8())
		} else {
			best8 = min(best8, time8())
			best16 = min(best16, time16())
		}
	}
	return best8 < best16
}
