package seaweedblob

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// File ids as SeaweedFS's master hands them out: the key loses leading zero
// bytes (not nibbles), the cookie is always 8 hex digits.
func TestFidRoundTrip(t *testing.T) {
	for _, fid := range []string{"1,01813508a0", "6,025aa8c2f1", "14,04e7c63a50", "4294967295,ffffffffffffffff12345678", "3,0100000000"} {
		c, err := parseFid(fid)
		if err != nil {
			t.Fatalf("parseFid(%q): %v", fid, err)
		}
		if got := c.fid(); got != fid {
			t.Errorf("parseFid(%q).fid() = %q", fid, got)
		}
	}
	c, _ := parseFid("6,025aa8c2f1")
	if c != (chunk{volume: 6, key: 2, cookie: 0x5aa8c2f1}) {
		t.Errorf("parseFid(6,025aa8c2f1) = %+v", c)
	}
	for _, bad := range []string{"", "6", "6,", "6,12345678", "x,025aa8c2f1", "6,zz5aa8c2f1", "6,025aa8c2f1_1", "4294967296,025aa8c2f1"} {
		if _, err := parseFid(bad); err == nil {
			t.Errorf("parseFid(%q) succeeded", bad)
		}
	}
}

func TestRefRoundTrip(t *testing.T) {
	chunks := []chunk{
		{volume: 1, key: 1, cookie: 0, size: 0},
		{volume: 7, key: 0x1234, cookie: 0xdeadbeef, size: 8 << 20},
		{volume: 1<<32 - 1, key: 1<<64 - 1, cookie: 1<<32 - 1, size: 1<<32 - 1},
	}
	ref := encodeRef(chunks)
	if !strings.HasPrefix(ref, refPrefix) || strings.ContainsAny(ref[len(refPrefix):], "+/=") {
		t.Errorf("ref %q is not prefix + unpadded URL-safe base64", ref)
	}
	got, err := decodeRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, chunks) {
		t.Fatalf("decodeRef(encodeRef(x)) = %+v, want %+v", got, chunks)
	}
	// A chunk costs 12 bytes, 16 in base64: 640 chunks (5 GiB) are 10 KiB.
	many := make([]chunk, 640)
	for i := range many {
		many[i] = chunk{volume: uint32(i % 30), key: uint64(100000 + i), cookie: 0x89abcdef, size: 8 << 20}
	}
	if n := len(encodeRef(many)); n > len(refPrefix)+4+640*16 {
		t.Errorf("640-chunk ref is %d bytes", n)
	}
	// Truncations and trailing bytes are refused.
	for i := len(refPrefix); i < len(ref); i++ {
		if _, err := decodeRef(ref[:i]); err == nil {
			t.Errorf("decodeRef accepted a truncated ref %q", ref[:i])
		}
	}
	if _, err := decodeRef(ref + "AA"); !errors.Is(err, errBadRef) {
		t.Errorf("decodeRef with trailing bytes = %v", err)
	}
	// Other spellings of the same bytes are not the same reference.
	for _, odd := range []string{"sw1:AX000000001", "sw1:AYAAAQAAAAAA"} {
		if _, err := decodeRef(odd); !errors.Is(err, errBadRef) {
			t.Errorf("decodeRef(%q) = %v, want errBadRef", odd, err)
		}
	}
}

func FuzzDecodeRef(f *testing.F) {
	f.Add(encodeRef([]chunk{{volume: 3, key: 9, cookie: 1, size: 10}}))
	f.Add("sw1:AQMJAAAAAQo")
	f.Add("sw1:")
	f.Fuzz(func(t *testing.T, ref string) {
		chunks, err := decodeRef(ref)
		if err != nil {
			return
		}
		// Whatever decodes is a canonical encoding of its chunks.
		if again := encodeRef(chunks); again != ref {
			t.Fatalf("decodeRef(%q) re-encodes as %q", ref, again)
		}
	})
}
