//go:build !amd64 || purego

package multimd5

const (
	have16 = false
	have8  = false
)

func block16(state *[4][16]uint32, ptrs *[16]*byte, blocks int) {
	panic("multimd5: block16 without AVX-512")
}

func block8(state *[4][8]uint32, ptrs *[8]*byte, blocks int) {
	panic("multimd5: block8 without AVX2")
}

func block8Faster() bool { return false }
