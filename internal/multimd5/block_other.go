//go:build !amd64 || purego

package multimd5

const haveLanes = false

func block16(state *[4][16]uint32, ptrs *[16]*byte, blocks int) {
	panic("multimd5: block16 without AVX-512")
}
