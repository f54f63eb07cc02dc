package checksum

import (
	"encoding/base64"
	"math/rand"
	"testing"
)

func sum(alg string, b []byte) string {
	h := New(alg)
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestCombineCRCMatchesWholeBody(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, alg := range []string{"CRC32", "CRC32C", "CRC64NVME"} {
		for _, sizes := range [][]int{{0, 5}, {1, 1}, {100, 3000, 7}, {5 << 20, 17}} {
			var parts []string
			var lens []int64
			whole := New(alg)
			for _, n := range sizes {
				b := make([]byte, n)
				rng.Read(b)
				whole.Write(b)
				parts = append(parts, sum(alg, b))
				lens = append(lens, int64(n))
			}
			got, err := CombineCRC(alg, parts, lens)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.StdEncoding.EncodeToString(whole.Sum(nil)); got != want {
				t.Errorf("%s %v: combined %s, whole body %s", alg, sizes, got, want)
			}
		}
	}
}

func TestKnownValues(t *testing.T) {
	// Check values of the catalogue of parametrised CRC algorithms, for
	// the nine bytes "123456789".
	for alg, want := range map[string]string{
		"CRC32":     "y/Q5Jg==",     // 0xCBF43926
		"CRC32C":    "4waSgw==",     // 0xE3069283
		"CRC64NVME": "rosUhgp5mIg=", // 0xAE8B14860A799888
	} {
		if got := sum(alg, []byte("123456789")); got != want {
			t.Errorf("%s(123456789) = %s, want %s", alg, got, want)
		}
	}
}

func TestComposite(t *testing.T) {
	a, b := sum("SHA256", []byte("a")), sum("SHA256", []byte("b"))
	got, err := Composite("SHA256", []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	h := New("SHA256")
	ra, _ := base64.StdEncoding.DecodeString(a)
	rb, _ := base64.StdEncoding.DecodeString(b)
	h.Write(ra)
	h.Write(rb)
	if want := base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-2"; got != want {
		t.Fatalf("Composite = %s, want %s", got, want)
	}
	if _, err := Composite("SHA256", []string{a, ""}); err == nil {
		t.Fatal("Composite accepted a part without a checksum")
	}
	if _, err := Composite("MD4", []string{a}); err == nil {
		t.Fatal("Composite accepted an unknown algorithm")
	}
}
