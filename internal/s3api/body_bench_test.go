package s3api

import (
	"testing"
)

// BenchmarkBodyHasher is the per-byte CPU cost of a PUT body: MD5 for the
// ETag, alone and with the flexible checksum a client may ask for, fed in
// the copy buffer's 256 KiB pieces as storeBody does. It bounds how fast
// one core can take a large upload, whatever the disk and network.
func BenchmarkBodyHasher(b *testing.B) {
	buf := make([]byte, copyBufSize)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for _, alg := range []string{"", "CRC32C", "CRC64NVME", "SHA256"} {
		name := "MD5"
		if alg != "" {
			name += "+" + alg
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			h := newBodyHasher(alg)
			for b.Loop() {
				_, _ = h.Write(buf)
			}
		})
	}
}
