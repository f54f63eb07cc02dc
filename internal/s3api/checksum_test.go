package s3api

import (
	"encoding/base64"
	"math/rand"
	"testing"
)

func TestCRCCombineMatchesWholeBody(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, alg := range []string{"CRC32", "CRC32C", "CRC64NVME"} {
		for _, sizes := range [][]int{{0, 5}, {1, 1}, {100, 3000, 7}, {5 << 20, 17}} {
			var parts []string
			var lens []int64
			whole := newChecksumHash(alg)
			for _, n := range sizes {
				b := make([]byte, n)
				rng.Read(b)
				whole.Write(b)
				h := newChecksumHash(alg)
				h.Write(b)
				parts = append(parts, base64.StdEncoding.EncodeToString(h.Sum(nil)))
				lens = append(lens, int64(n))
			}
			got, err := combineCRC(alg, parts, lens)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.StdEncoding.EncodeToString(whole.Sum(nil)); got != want {
				t.Errorf("%s %v: combined %s, whole body %s", alg, sizes, got, want)
			}
		}
	}
}
