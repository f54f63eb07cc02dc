package sigv4

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// These tests sign with the AWS SDK for Go v2 (its SigV4 signer, its S3
// client and its presigner) and send the requests over real connections to
// a server that authenticates with a Verifier.

var sdkCreds = aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSecret}

// sdkSigner signs as the S3 client does: the path goes in as the client
// escaped it, not escaped a second time.
func sdkSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

func signHeaderSDK(t testing.TB, req *http.Request, payloadHash string, at time.Time, creds aws.Credentials) {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := sdkSigner().SignHTTP(context.Background(), creds, req, payloadHash, "s3", testRegion, at); err != nil {
		t.Fatal(err)
	}
}

// presignSDK returns the presigned URL and the headers the client must send.
func presignSDK(t testing.TB, method, rawURL string, headers http.Header, expires time.Duration, at time.Time) (string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
	req.URL.RawQuery = q.Encode()
	u, signed, err := sdkSigner().PresignHTTP(context.Background(), sdkCreds, req, unsignedPayload, "s3", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	return u, signed
}

// oddKey exercises S3's path encoding: spaces, '+', sub-delims, UTF-8, an
// empty segment and a literal "..".
const oddKey = "dir/a b+c!*'()=&$@,;:é/../x//end~.txt"

// s3Path escapes a key as the S3 client does (every byte but unreserved
// characters and '/').
func s3Path(bucket, key string) string {
	var segs []string
	for s := range strings.SplitSeq(key, "/") {
		segs = append(segs, uriEncode(s))
	}
	return "/" + bucket + "/" + strings.Join(segs, "/")
}

func TestHeaderV4WithSDKSigner(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	now := time.Now().UTC()

	t.Run("GET with query and odd key", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.URL+s3Path("bucket", oddKey)+"?list-type=2&prefix=a%20b%2Bc&delimiter=%2F&empty=&uploads", nil)
		signHeaderSDK(t, req, emptySHA256, now, sdkCreds)
		res := mustOK(t, nil, req)
		if res.Kind != "header" || res.AccessKeyID != testAK || res.Region != testRegion || res.Payload != "sha256" || res.BodyLen != 0 {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("PUT with signed payload hash", func(t *testing.T) {
		body := "hello, signed world"
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/obj.txt", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("X-Amz-Meta-Color", "  blue   green ")
		req.Header.Add("X-Amz-Meta-Multi", "one")
		req.Header.Add("X-Amz-Meta-Multi", "two")
		signHeaderSDK(t, req, sha256Hex([]byte(body)), now, sdkCreds)
		res := mustOK(t, nil, req)
		if res.BodySHA256 != sha256Hex([]byte(body)) || res.Length != int64(len(body)) {
			t.Fatalf("result %+v", res)
		}
		want := "content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-color;x-amz-meta-multi"
		if got := strings.Join(res.SignedHeaders, ";"); got != want {
			t.Fatalf("signed headers %s, want %s", got, want)
		}
	})
	t.Run("PUT with UNSIGNED-PAYLOAD", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/u.bin", strings.NewReader("anything"))
		signHeaderSDK(t, req, unsignedPayload, now, sdkCreds)
		res := mustOK(t, nil, req)
		if res.Payload != unsignedPayload || res.BodyLen != 8 {
			t.Fatalf("result %+v", res)
		}
	})
}

func TestHeaderV4Tampering(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	now := time.Now().UTC()
	const body = "0123456789"

	newSigned := func(t *testing.T, creds aws.Credentials) *http.Request {
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/key.txt?tagging=&x=1", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("X-Amz-Meta-Color", "blue")
		signHeaderSDK(t, req, sha256Hex([]byte(body)), now, creds)
		return req
	}
	// The untouched request passes: each case below fails because of its change.
	mustOK(t, nil, newSigned(t, sdkCreds))

	cases := []struct {
		name   string
		creds  aws.Credentials
		mutate func(r *http.Request)
		status int
		code   string
	}{
		{"method", sdkCreds, func(r *http.Request) { r.Method = "POST" }, 403, "SignatureDoesNotMatch"},
		{"path", sdkCreds, func(r *http.Request) { r.URL.Path = "/bucket/key.txT"; r.URL.RawPath = "" }, 403, "SignatureDoesNotMatch"},
		{"query added", sdkCreds, func(r *http.Request) { r.URL.RawQuery += "&versionId=2" }, 403, "SignatureDoesNotMatch"},
		{"query value", sdkCreds, func(r *http.Request) { r.URL.RawQuery = "tagging=&x=2" }, 403, "SignatureDoesNotMatch"},
		{"signed header", sdkCreds, func(r *http.Request) { r.Header.Set("X-Amz-Meta-Color", "red") }, 403, "SignatureDoesNotMatch"},
		{"content type", sdkCreds, func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }, 403, "SignatureDoesNotMatch"},
		{"host", sdkCreds, func(r *http.Request) { r.Host = "attacker.example:80" }, 403, "SignatureDoesNotMatch"},
		{"date second", sdkCreds, func(r *http.Request) {
			r.Header.Set("X-Amz-Date", now.Add(time.Second).Format(iso8601Basic))
		}, 403, "SignatureDoesNotMatch"},
		{"date day", sdkCreds, func(r *http.Request) {
			r.Header.Set("X-Amz-Date", now.Add(24*time.Hour).Format(iso8601Basic))
		}, 400, "AuthorizationHeaderMalformed"},
		{"signature", sdkCreds, func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-1]+string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", a[len(a)-1])+1)%16]))
		}, 403, "SignatureDoesNotMatch"},
		{"payload", sdkCreds, func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader("0123456780"))
		}, 400, "XAmzContentSHA256Mismatch"},
		{"payload hash header", sdkCreds, func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte("x")))
		}, 403, "SignatureDoesNotMatch"},
		{"unknown key", aws.Credentials{AccessKeyID: "AKIANOTKNOWN", SecretAccessKey: testSecret}, nil, 403, "InvalidAccessKeyId"},
		{"wrong secret", aws.Credentials{AccessKeyID: testAK, SecretAccessKey: "not-the-secret"}, nil, 403, "SignatureDoesNotMatch"},
		{"disabled key", aws.Credentials{AccessKeyID: "DISABLEDKEY", SecretAccessKey: "x"}, nil, 403, "AccessDenied"},
		{"unsigned x-amz header", sdkCreds, func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }, 403, "AccessDenied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := newSigned(t, tc.creds)
			if tc.mutate != nil {
				tc.mutate(req)
			}
			e := mustFail(t, nil, req, tc.status, tc.code)
			switch tc.name {
			case "unsigned x-amz header":
				if e.Message != "There were headers present in the request which were not signed" || e.Fields["HeadersNotSigned"] != "x-amz-acl" {
					t.Fatalf("error %+v", e)
				}
			case "disabled key":
				if e.Message != "The access key is disabled." {
					t.Fatalf("lookup error not passed through: %+v", e)
				}
			case "method":
				cr := e.Fields["CanonicalRequest"]
				if !strings.HasPrefix(cr, "POST\n/bucket/key.txt\ntagging=&x=1\ncontent-length:10\n") {
					t.Fatalf("CanonicalRequest %q", cr)
				}
				if e.Fields["CanonicalRequestBytes"] != hexBytes(cr) || !strings.HasPrefix(e.Fields["CanonicalRequestBytes"], "50 4f 53 54 0a") {
					t.Fatalf("CanonicalRequestBytes %q", e.Fields["CanonicalRequestBytes"])
				}
				sts := e.Fields["StringToSign"]
				if !strings.HasPrefix(sts, "AWS4-HMAC-SHA256\n"+now.Format(iso8601Basic)+"\n"+now.Format("20060102")+"/us-east-1/s3/aws4_request\n") ||
					e.Fields["StringToSignBytes"] != hexBytes(sts) || e.Fields["AWSAccessKeyId"] != testAK || len(e.Fields["SignatureProvided"]) != 64 {
					t.Fatalf("fields %v", e.Fields)
				}
			case "payload":
				if e.Fields["ClientComputedContentSHA256"] != sha256Hex([]byte(body)) || e.Fields["S3ComputedContentSHA256"] != sha256Hex([]byte("0123456780")) {
					t.Fatalf("fields %v", e.Fields)
				}
			}
		})
	}
}

// TestAltHost signs for a public host name while the request reaches the
// server at its own address, as behind a proxy that rewrites Host.
func TestAltHost(t *testing.T) {
	const public = "storage.example.com"
	now := time.Now().UTC()
	newReq := func(url string) *http.Request {
		req, _ := http.NewRequest("GET", url+"/bucket/k", nil)
		req.Host = public
		signHeaderSDK(t, req, emptySHA256, now, sdkCreds)
		req.Host = "" // sent with the server's own address
		return req
	}
	plain := newTestServer(t, false, Options{})
	e := mustFail(t, nil, newReq(plain.URL), 403, "SignatureDoesNotMatch")
	if !strings.Contains(e.Fields["CanonicalRequest"], "\nhost:127.0.0.1:") {
		t.Fatalf("error shows %q", e.Fields["CanonicalRequest"])
	}
	alt := newTestServer(t, false, Options{AltHost: func(*http.Request) string { return public }})
	mustOK(t, nil, newReq(alt.URL))
}

func TestHeaderV4Skew(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	signedAt := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	newReq := func() *http.Request {
		req, _ := http.NewRequest("GET", ts.URL+"/bucket/k", nil)
		signHeaderSDK(t, req, emptySHA256, signedAt, sdkCreds)
		return req
	}
	ts.Clock.Set(signedAt.Add(14 * time.Minute))
	mustOK(t, nil, newReq())
	ts.Clock.Set(signedAt.Add(-14 * time.Minute))
	mustOK(t, nil, newReq())

	ts.Clock.Set(signedAt.Add(16 * time.Minute))
	e := mustFail(t, nil, newReq(), 403, "RequestTimeTooSkewed")
	if e.Fields["RequestTime"] != "20300102T120000Z" || e.Fields["ServerTime"] != "2030-01-02T12:16:00Z" || e.Fields["MaxAllowedSkewMilliseconds"] != "900000" {
		t.Fatalf("fields %v", e.Fields)
	}
	ts.Clock.Set(signedAt.Add(-16 * time.Minute))
	mustFail(t, nil, newReq(), 403, "RequestTimeTooSkewed")
}

func TestPresignedV4WithSDK(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	signedAt := time.Now().UTC().Truncate(time.Second)
	ts.Clock.Set(signedAt)

	t.Run("signer GET", func(t *testing.T) {
		u, hdr := presignSDK(t, "GET", ts.URL+s3Path("bucket", oddKey)+"?response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22", nil, 15*time.Minute, signedAt)
		req, _ := http.NewRequest("GET", u, nil)
		for k, vs := range hdr {
			if k != "Host" {
				req.Header[k] = vs
			}
		}
		res := mustOK(t, nil, req)
		if res.Kind != "presigned" || res.ExpiresIn != 15*time.Minute || res.Payload != unsignedPayload {
			t.Fatalf("result %+v", res)
		}
	})

	// The S3 presigner, as an application server would use it.
	client := s3.New(s3.Options{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(testAK, testSecret, ""),
		BaseEndpoint: aws.String(ts.URL),
		UsePathStyle: true,
	})
	presigner := s3.NewPresignClient(client, func(o *s3.PresignOptions) {
		o.Expires = 10 * time.Minute
		o.Presigner = presignerAt{signedAt}
	})

	t.Run("presigner PUT with content type and metadata", func(t *testing.T) {
		p, err := presigner.PresignPutObject(context.Background(), &s3.PutObjectInput{
			Bucket:      aws.String("bucket"),
			Key:         aws.String(oddKey),
			ContentType: aws.String("image/png"),
			Metadata:    map[string]string{"owner": "alice"},
		})
		if err != nil {
			t.Fatal(err)
		}
		body := []byte("\x89PNG not really")
		req, _ := http.NewRequest(p.Method, p.URL, bytes.NewReader(body))
		for k, vs := range p.SignedHeader {
			if k != "Host" {
				req.Header[k] = vs
			}
		}
		res := mustOK(t, nil, req)
		if res.Kind != "presigned" || res.BodySHA256 != sha256Hex(body) || res.ExpiresIn != 10*time.Minute {
			t.Fatalf("result %+v", res)
		}

		// Without the signed Content-Type the signature no longer holds.
		req, _ = http.NewRequest(p.Method, p.URL, bytes.NewReader(body))
		for k, vs := range p.SignedHeader {
			if k != "Host" && k != "Content-Type" {
				req.Header[k] = vs
			}
		}
		mustFail(t, nil, req, 403, "SignatureDoesNotMatch")
	})

	p, err := presigner.PresignGetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k.txt")})
	if err != nil {
		t.Fatal(err)
	}
	get := func(rawURL string, hdr ...string) *http.Request {
		req, _ := http.NewRequest("GET", rawURL, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return req
	}
	t.Run("presigner GET", func(t *testing.T) {
		mustOK(t, nil, get(p.URL))
	})
	t.Run("tampered", func(t *testing.T) {
		u, _ := url.Parse(p.URL)
		q := u.Query()
		sig := q.Get("X-Amz-Signature")
		q.Set("X-Amz-Signature", strings.Repeat("0", len(sig)))
		u.RawQuery = q.Encode()
		mustFail(t, nil, get(u.String()), 403, "SignatureDoesNotMatch")

		u, _ = url.Parse(p.URL)
		u.Path = "/bucket/other.txt"
		mustFail(t, nil, get(u.String()), 403, "SignatureDoesNotMatch")

		mustFail(t, nil, get(p.URL+"&x-id=PutObject"), 403, "SignatureDoesNotMatch")

		req := get(p.URL)
		req.Method = "DELETE"
		mustFail(t, nil, req, 403, "SignatureDoesNotMatch")
	})
	t.Run("unsigned x-amz headers", func(t *testing.T) {
		e := mustFail(t, nil, get(p.URL, "X-Amz-Meta-Owner", "mallory", "X-Amz-Acl", "public-read"), 403, "AccessDenied")
		if e.Fields["HeadersNotSigned"] != "x-amz-acl, x-amz-meta-owner" {
			t.Fatalf("fields %v", e.Fields)
		}
		// S3 lets x-amz-content-sha256 through unsigned.
		mustOK(t, nil, get(p.URL, "X-Amz-Content-Sha256", unsignedPayload))
	})
	t.Run("expired", func(t *testing.T) {
		ts.Clock.Set(signedAt.Add(10*time.Minute + time.Second))
		defer ts.Clock.Set(signedAt)
		e := mustFail(t, nil, get(p.URL), 403, "AccessDenied")
		if e.Message != "Request has expired" || e.Fields["X-Amz-Expires"] != "600" ||
			e.Fields["Expires"] != formatServerTime(signedAt.Add(10*time.Minute)) ||
			e.Fields["ServerTime"] != formatServerTime(signedAt.Add(10*time.Minute+time.Second)) {
			t.Fatalf("error %+v", e)
		}
		// As in S3, expiry is reported before the signature is looked at.
		u, _ := url.Parse(p.URL)
		u.Path = "/bucket/other.txt"
		e = mustFail(t, nil, get(u.String()), 403, "AccessDenied")
		if e.Message != "Request has expired" {
			t.Fatalf("error %+v", e)
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		ts.Clock.Set(signedAt.Add(-16 * time.Minute))
		defer ts.Clock.Set(signedAt)
		e := mustFail(t, nil, get(p.URL), 403, "AccessDenied")
		if e.Message != "Request is not yet valid" || e.Fields["X-Amz-Date"] != strconv.FormatInt(signedAt.UnixMilli(), 10) ||
			e.Fields["Expires"] != formatServerTime(signedAt.Add(10*time.Minute)) {
			t.Fatalf("error %+v", e)
		}
	})
	t.Run("payload hash in the query", func(t *testing.T) {
		// As the JavaScript presigner does: the hash rides in the query,
		// lower-case, and the body must match it.
		body := []byte("exact bytes only")
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/hashed.bin?X-Amz-Expires=60&x-amz-content-sha256="+sha256Hex(body), nil)
		u, _, err := sdkSigner().PresignHTTP(context.Background(), sdkCreds, req, sha256Hex(body), "s3", testRegion, signedAt)
		if err != nil {
			t.Fatal(err)
		}
		put, _ := http.NewRequest("PUT", u, bytes.NewReader(body))
		if res := mustOK(t, nil, put); res.Payload != "sha256" {
			t.Fatalf("result %+v", res)
		}
		put, _ = http.NewRequest("PUT", u, strings.NewReader("other bytes, same size"[:len(body)]))
		mustFail(t, nil, put, 400, "XAmzContentSHA256Mismatch")
	})
	t.Run("header and query", func(t *testing.T) {
		e := mustFail(t, nil, get(p.URL, "Authorization", "AWS4-HMAC-SHA256 Credential=x"), 400, "InvalidArgument")
		if !strings.HasPrefix(e.Message, "Only one auth mechanism allowed") || e.Fields["ArgumentName"] != "Authorization" {
			t.Fatalf("error %+v", e)
		}
	})
}

// presignerAt presigns at a fixed time so that the test controls expiry,
// with the S3 client's signer settings (path not escaped twice).
type presignerAt struct{ at time.Time }

func (p presignerAt) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return sdkSigner().PresignHTTP(ctx, creds, r, payloadHash, service, region, p.at, optFns...)
}

// TestS3ClientEndToEnd drives the S3 client of the SDK over TLS, where it
// sends PutObject as an aws-chunked body with a trailing CRC32 checksum
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
func TestS3ClientEndToEnd(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "")
	ts := newTestServer(t, true, Options{})
	client := s3.New(s3.Options{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(testAK, testSecret, ""),
		BaseEndpoint: aws.String(ts.URL),
		UsePathStyle: true,
		HTTPClient:   ts.Client(),
		// What a client built from the shared config gets by default.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
	})
	ctx := context.Background()
	data := make([]byte, 300<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}

	// A seekable body: the SDK hashes it first and signs the hash or sends
	// UNSIGNED-PAYLOAD with the checksum in a header.
	_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(oddKey), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	res := <-ts.Results
	if res.Kind != "header" || res.BodySHA256 != sha256Hex(data) || res.BodyLen != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}

	// A stream that cannot seek: the SDK sends it aws-chunked with the
	// checksum as a trailer.
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("bucket"), Key: aws.String("streamed.bin"),
		Body: struct{ io.Reader }{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		t.Fatalf("PutObject (stream): %v", err)
	}
	res = <-ts.Results
	if res.Payload != streamingUnsignedTrailer || res.BodySHA256 != sha256Hex(data) || res.Length != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(data))
	if got, want := res.Trailer["x-amz-checksum-crc32"], base64.StdEncoding.EncodeToString(crc[:]); got != want {
		t.Fatalf("trailer crc32 %q, want %q (trailers %v)", got, want, res.Trailer)
	}

	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(oddKey), Range: aws.String("bytes=0-9")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	out.Body.Close()
	if res := <-ts.Results; res.Kind != "header" {
		t.Fatalf("result %+v", res)
	}

	// A wrong secret gets the S3 error the SDK understands.
	bad := s3.New(s3.Options{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(testAK, "wrong", ""),
		BaseEndpoint: aws.String(ts.URL),
		UsePathStyle: true,
		HTTPClient:   ts.Client(),
	})
	_, err = bad.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k")})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("HeadObject with wrong secret: %v", err)
	}
	_, err = bad.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k")})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("DeleteObject with wrong secret: %v", err)
	}
}
