package sigv4

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func benchVerifier(now time.Time) *Verifier {
	return NewVerifier(testLookup, Options{Now: func() time.Time { return now }})
}

func BenchmarkVerifyHeaderV4(b *testing.B) {
	now := time.Now().UTC()
	req, _ := http.NewRequest("PUT", "http://bucket.example.com/dir/object%20name.txt?partNumber=3&uploadId=abc", nil)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Amz-Meta-Owner", "alice")
	req.ContentLength = 1 << 20
	signHeaderSDK(b, req, unsignedPayload, now, sdkCreds)
	r := httptest.NewRequest("PUT", req.URL.String(), nil)
	r.Header = req.Header
	r.ContentLength = req.ContentLength
	r.Header.Set("Content-Length", fmt.Sprint(req.ContentLength))
	v := benchVerifier(now)
	if _, err := v.Verify(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPresignedV4 is the hot path of the store: a browser
// fetching through a presigned URL, the signing key already cached.
func BenchmarkVerifyPresignedV4(b *testing.B) {
	now := time.Now().UTC().Truncate(time.Second)
	u, _ := presignSDK(b, "GET", "http://bucket.example.com/photos/2024/holiday%20photo.jpg?response-content-disposition=attachment", nil, time.Hour, now)
	r := httptest.NewRequest("GET", u, nil)
	v := benchVerifier(now)
	if _, err := v.Verify(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecode(b *testing.B, mode PayloadMode, body []byte, size int) {
	b.Helper()
	hdr := http.Header{"X-Amz-Decoded-Content-Length": {fmt.Sprint(size)}}
	a := chunkedAuth(mode)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("PUT", "/b/k", bytes.NewReader(body))
		r.Header = hdr
		p, err := a.Body(r)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{p}, buf)
		if err != nil || n != int64(size) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkChunkedDecodeSigned(b *testing.B) {
	data := randomData(b, 8<<20)
	body := newEncoder(true).chunks(data, 64<<10).chunk(nil).raw("\r\n").bytes()
	benchDecode(b, PayloadStreamingSigned, body, len(data))
}

func BenchmarkChunkedDecodeUnsignedTrailer(b *testing.B) {
	data := randomData(b, 8<<20)
	body := newEncoder(false).chunks(data, 64<<10).chunk(nil).trailer("\r\n", "x-amz-checksum-crc32", crc32Trailer(data)).bytes()
	benchDecode(b, PayloadStreamingUnsignedTrailer, body, len(data))
}

func BenchmarkSigningKeyDerivation(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		SigningKey(testSecret, "20300101", testRegion, "s3")
	}
}
