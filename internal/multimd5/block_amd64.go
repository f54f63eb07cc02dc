//go:build amd64 && !purego

package multimd5

import "golang.org/x/sys/cpu"

//go:generate go run gen_block.go

// block16 runs MD5's compression function over blocks 64-byte blocks of
// 16 messages at once: lane i reads ptrs[i] and keeps its state in
// state[0..3][i]. Unused lanes may repeat another lane's pointer.
//
//go:noescape
func block16(state *[4][16]uint32, ptrs *[16]*byte, blocks int)

// haveLanes reports whether block16 can run here. AVX-512 Foundation has
// every instruction it uses (ternary logic, rotates, 128-bit lane shuffles).
var haveLanes = cpu.X86.HasAVX512F
