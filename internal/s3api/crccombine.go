package s3api

import "strconv"

// crcCombine returns the CRC of A||B from crc(A), crc(B) and len(B), for the
// reflected CRCs S3 uses (CRC32, CRC32C, CRC64NVME). The method is zlib's:
// crc(A||B) = crc(A)·x^(8·len(B)) mod P  xor  crc(B); the all-ones initial
// value and final xor cancel out.
func crcCombine(alg string, crcA, crcB uint64, lenB int64) uint64 {
	poly, width := uint64(0xedb88320), 32
	switch alg {
	case "CRC32C":
		poly = 0x82f63b78
	case "CRC64NVME":
		poly, width = 0x9a6c9329ac4bc9b5, 64
	}
	top := uint64(1) << (width - 1)
	mul := func(a, b uint64) uint64 {
		var p uint64
		for m := top; m != 0; m >>= 1 {
			if a&m != 0 {
				p ^= b
			}
			if b&1 != 0 {
				b = b>>1 ^ poly
			} else {
				b >>= 1
			}
		}
		return p
	}
	// x^(2^k) mod P for k = 3 upwards (a byte is x^8).
	sq := top >> 1 // x^1
	for i := 0; i < 3; i++ {
		sq = mul(sq, sq)
	}
	factor := top // x^0
	for n := uint64(lenB); n != 0; n >>= 1 {
		if n&1 != 0 {
			factor = mul(sq, factor)
		}
		sq = mul(sq, sq)
	}
	return mul(factor, crcA) ^ crcB
}

func itoa(n int) string { return strconv.Itoa(n) }
