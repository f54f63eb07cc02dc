package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The signatures below are the worked examples of the S3 API reference
// ("Signature Calculations for the Authorization Header", "Authenticating
// Requests: Using Query Parameters", "Transferring Payload in Multiple
// Chunks", and the Signature Version 2 "Signing and Authenticating REST
// Requests" page), computed by AWS with its example credentials.

var docTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func docVerifier(now time.Time) *Verifier {
	return NewVerifier(testLookup, Options{
		Now: func() time.Time { return now },
		VirtualHostBucket: func(r *http.Request) string {
			if b, _, ok := strings.Cut(r.Host, ".s3.amazonaws.com"); ok && b != "" && !strings.Contains(b, ".") {
				return b
			}
			return ""
		},
	})
}

func TestDocVectorsHeaderV4(t *testing.T) {
	v := docVerifier(docTime)
	cases := []struct {
		name, method, target, host string
		headers                    map[string]string
		body                       string
		authz                      string
	}{
		{
			name: "GET object with range", method: "GET", target: "/test.txt", host: "examplebucket.s3.amazonaws.com",
			headers: map[string]string{"Range": "bytes=0-9", "X-Amz-Content-Sha256": emptySHA256, "X-Amz-Date": "20130524T000000Z"},
			authz:   "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		},
		{
			name: "PUT object", method: "PUT", target: "/test$file.text", host: "examplebucket.s3.amazonaws.com",
			headers: map[string]string{
				"Date": "Fri, 24 May 2013 00:00:00 GMT", "X-Amz-Date": "20130524T000000Z",
				"X-Amz-Storage-Class":  "REDUCED_REDUNDANCY",
				"X-Amz-Content-Sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
			},
			body:  "Welcome to Amazon S3.",
			authz: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
		},
		{
			name: "GET bucket lifecycle", method: "GET", target: "/?lifecycle", host: "examplebucket.s3.amazonaws.com",
			headers: map[string]string{"X-Amz-Content-Sha256": emptySHA256, "X-Amz-Date": "20130524T000000Z"},
			authz:   "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
		},
		{
			name: "GET bucket list", method: "GET", target: "/?max-keys=2&prefix=J", host: "examplebucket.s3.amazonaws.com",
			headers: map[string]string{"X-Amz-Content-Sha256": emptySHA256, "X-Amz-Date": "20130524T000000Z"},
			authz:   "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			r.Host = tc.host
			for k, val := range tc.headers {
				r.Header.Set(k, val)
			}
			r.Header.Set("Authorization", tc.authz)
			a, err := v.Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.Kind != HeaderV4 || a.AccessKeyID != testAK || a.Region != testRegion || !a.Date.Equal(docTime) {
				t.Fatalf("unexpected auth %+v", a)
			}
			p, err := a.Body(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(p)
			if err != nil || string(got) != tc.body {
				t.Fatalf("body %q, %v", got, err)
			}
		})
	}
}

func TestDocVectorPresignedV4(t *testing.T) {
	const target = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	newReq := func() *http.Request {
		r := httptest.NewRequest("GET", target, nil)
		r.Host = "examplebucket.s3.amazonaws.com"
		return r
	}
	a, err := docVerifier(docTime.Add(time.Hour)).Verify(newReq())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if a.Kind != PresignedV4 || a.ExpiresIn != 24*time.Hour || !a.Expires.Equal(docTime.Add(24*time.Hour)) || a.Payload != PayloadUnsigned {
		t.Fatalf("unexpected auth %+v", a)
	}
	// One second after the day is over the URL has expired.
	_, err = docVerifier(docTime.Add(24*time.Hour + time.Second)).Verify(newReq())
	se := asS3(t, err, "AccessDenied")
	if se.Message != "Request has expired" {
		t.Fatalf("message %q", se.Message)
	}
	if v, _ := field(se, "Expires"); v != "2013-05-25T00:00:00Z" {
		t.Fatalf("Expires field %q", v)
	}
	if v, _ := field(se, "X-Amz-Expires"); v != "86400" {
		t.Fatalf("X-Amz-Expires field %q", v)
	}
	if v, _ := field(se, "ServerTime"); v != "2013-05-25T00:00:01Z" {
		t.Fatalf("ServerTime field %q", v)
	}
}

func TestDocVectorChunkedUpload(t *testing.T) {
	data := bytes.Repeat([]byte{'a'}, 65*1024)
	var body bytes.Buffer
	body.WriteString("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n")
	body.Write(data[:65536])
	body.WriteString("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n")
	body.Write(data[65536:])
	body.WriteString("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
	if body.Len() != 66824 {
		t.Fatalf("encoded length %d, the example says 66824", body.Len())
	}
	encoded := body.Bytes()
	newReq := func(b []byte) *http.Request {
		r := httptest.NewRequest("PUT", "/examplebucket/chunkObject.txt", bytes.NewReader(b))
		r.Host = "s3.amazonaws.com"
		r.ContentLength = 66824 // as signed, even when the test cuts the body
		r.Header.Set("X-Amz-Date", "20130524T000000Z")
		r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
		r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
		r.Header.Set("Content-Encoding", "aws-chunked")
		r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
		return r
	}
	v := docVerifier(docTime)

	r := newReq(encoded)
	a, err := v.Verify(r)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if a.Payload != PayloadStreamingSigned {
		t.Fatalf("payload %v", a.Payload)
	}
	p, err := a.Body(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Length() != 66560 {
		t.Fatalf("Length %d", p.Length())
	}
	got, err := io.ReadAll(p)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("decoded %d bytes, want %d", len(got), len(data))
	}

	// One changed byte in the second chunk breaks that chunk's signature
	// before the end of the body is reported.
	bad := bytes.Clone(encoded)
	bad[65626+86+10] = 'b'
	r = newReq(bad)
	a, err = v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	p, _ = a.Body(r)
	_, err = io.ReadAll(p)
	asS3(t, err, "SignatureDoesNotMatch")
}

// TestDocVectorsV2 checks the Signature Version 2 examples (virtual-hosted
// bucket "johnsmith"), and a query-string URL computed by hand here.
func TestDocVectorsV2(t *testing.T) {
	t.Run("header GET object", func(t *testing.T) {
		v := docVerifier(time.Date(2007, 3, 27, 19, 40, 0, 0, time.UTC))
		r := httptest.NewRequest("GET", "/photos/puppy.jpg", nil)
		r.Host = "johnsmith.s3.amazonaws.com"
		r.Header.Set("Date", "Tue, 27 Mar 2007 19:36:42 +0000")
		r.Header.Set("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
		a, err := v.Verify(r)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if a.Kind != HeaderV2 || a.AccessKeyID != testAK {
			t.Fatalf("auth %+v", a)
		}
		// Path-style: the same resource, the same string to sign.
		r = httptest.NewRequest("GET", "/johnsmith/photos/puppy.jpg", nil)
		r.Host = "s3.amazonaws.com"
		r.Header.Set("Date", "Tue, 27 Mar 2007 19:36:42 +0000")
		r.Header.Set("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("path-style Verify: %v", err)
		}
	})
	t.Run("query string GET object", func(t *testing.T) {
		v := docVerifier(time.Unix(1175139620-60, 0))
		r := httptest.NewRequest("GET", "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620", nil)
		r.Host = "johnsmith.s3.amazonaws.com"
		a, err := v.Verify(r)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if a.Kind != PresignedV2 || a.ExpiresIn != time.Minute {
			t.Fatalf("auth %+v", a)
		}
	})
}
