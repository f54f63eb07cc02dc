// Package checksum holds S3's flexible checksum algorithms (CRC32, CRC32C,
// CRC64NVME, SHA1, SHA256) and the two ways S3 builds a multipart object's
// checksum from its parts': composite and full-object. The server computes
// them while streaming; fsck recomputes them to verify stored data.
package checksum

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strconv"
)

// Algorithms are S3's flexible checksum algorithms, in the order S3 lists them.
var Algorithms = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, initial value
	// and final xor all ones, which is what hash/crc64 does.
	nvme = crc64.MakeTable(0x9a6c9329ac4bc9b5)
)

// New returns a hash for alg, or nil for an unknown algorithm.
func New(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(castagnoli)
	case "CRC64NVME":
		return crc64.New(nvme)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

// Size is the length in bytes of a digest of alg (0 for an unknown one).
func Size(alg string) int {
	switch alg {
	case "CRC32", "CRC32C":
		return 4
	case "CRC64NVME":
		return 8
	case "SHA1":
		return 20
	case "SHA256":
		return 32
	}
	return 0
}

// Composite is S3's COMPOSITE multipart checksum: the checksum of the
// concatenated part checksums (base64), suffixed with the part count.
func Composite(alg string, parts []string) (string, error) {
	h := New(alg)
	if h == nil {
		return "", fmt.Errorf("unknown checksum algorithm %q", alg)
	}
	for i, p := range parts {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil || p == "" {
			return "", fmt.Errorf("part %d has no valid %s checksum", i+1, alg)
		}
		h.Write(b)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)), nil
}

// CombineCRC is S3's FULL_OBJECT multipart checksum for the CRC
// algorithms: the CRC of the whole object, computed from the parts' CRCs
// (base64) and sizes without reading the bytes again.
func CombineCRC(alg string, parts []string, sizes []int64) (string, error) {
	var total uint64
	for i, p := range parts {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(b) != Size(alg) {
			return "", fmt.Errorf("part %d has no valid %s checksum", i+1, alg)
		}
		var v uint64
		if len(b) == 8 {
			v = binary.BigEndian.Uint64(b)
		} else {
			v = uint64(binary.BigEndian.Uint32(b))
		}
		if i == 0 {
			total = v
			continue
		}
		total = crcCombine(alg, total, v, sizes[i])
	}
	var out []byte
	if alg == "CRC64NVME" {
		out = binary.BigEndian.AppendUint64(nil, total)
	} else {
		out = binary.BigEndian.AppendUint32(nil, uint32(total))
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// crcCombine returns the CRC of A||B from crc(A), crc(B) and len(B), for the
// reflected CRCs S3 uses. The method is zlib's: crc(A||B) =
// crc(A)·x^(8·len(B)) mod P xor crc(B); the all-ones initial value and final
// xor cancel out.
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
