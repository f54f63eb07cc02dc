package sigv4

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// These tests use minio-go, a second, independent implementation of the
// signing side: its client (which uploads with signed aws-chunked bodies
// over plain HTTP), and its signer package for the signed-trailer and
// Signature Version 2 forms.

func randomData(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func minioClient(t *testing.T, ts *testServer, creds *credentials.Credentials) *minio.Client {
	t.Helper()
	u, _ := url.Parse(ts.URL)
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       false,
		Region:       testRegion,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMinioClient(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	ctx := context.Background()
	data := randomData(t, 200<<10+123) // four chunks of 64 KiB and a short one

	t.Run("PutObject signed streaming", func(t *testing.T) {
		c := minioClient(t, ts, credentials.NewStaticV4(testAK, testSecret, ""))
		_, err := c.PutObject(ctx, "bucket", "dir/obj one.bin", bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ContentType: "application/octet-stream", UserMetadata: map[string]string{"color": "blue"}})
		if err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		res := <-ts.Results
		if !strings.HasPrefix(res.Payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") || res.BodySHA256 != sha256Hex(data) || res.Length != int64(len(data)) {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("presigned GET and PUT", func(t *testing.T) {
		c := minioClient(t, ts, credentials.NewStaticV4(testAK, testSecret, ""))
		u, err := c.PresignedGetObject(ctx, "bucket", "a b/c+d.txt", time.Hour, url.Values{"response-content-type": {"text/plain"}})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", u.String(), nil)
		if res := mustOK(t, nil, req); res.Kind != "presigned" || res.ExpiresIn != time.Hour {
			t.Fatalf("result %+v", res)
		}
		<-ts.Results
		u, err = c.PresignedPutObject(ctx, "bucket", "up.bin", 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ = http.NewRequest("PUT", u.String(), bytes.NewReader(data[:1000]))
		if res := mustOK(t, nil, req); res.BodySHA256 != sha256Hex(data[:1000]) {
			t.Fatalf("result %+v", res)
		}
		<-ts.Results
	})
	t.Run("Signature Version 2 client", func(t *testing.T) {
		c := minioClient(t, ts, credentials.NewStaticV2(testAK, testSecret, ""))
		_, err := c.PutObject(ctx, "bucket", "v2/obj (1).bin", bytes.NewReader(data[:5000]), 5000, minio.PutObjectOptions{})
		if err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		if res := <-ts.Results; res.Kind != "header-v2" || res.BodySHA256 != sha256Hex(data[:5000]) {
			t.Fatalf("result %+v", res)
		}
		u, err := c.PresignedGetObject(ctx, "bucket", "v2/a b.txt", time.Hour, url.Values{"response-content-disposition": {`attachment; filename="x y"`}})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", u.String(), nil)
		if res := mustOK(t, nil, req); res.Kind != "presigned-v2" {
			t.Fatalf("result %+v", res)
		}
		<-ts.Results
	})
}

// crc32Trailer is an x-amz-checksum-crc32 trailer value.
func crc32Trailer(b []byte) string {
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(crc[:])
}

// minioSHA256 is the hasher interface minio-go's streaming signer takes,
// backed by the standard library.
type minioSHA256 struct{ hash.Hash }

func (minioSHA256) Close() {}

func newMinioSHA256() minioSHA256 { return minioSHA256{sha256.New()} }

func TestMinioSignedTrailer(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	data := randomData(t, 150<<10)
	trailerValue := crc32Trailer(data)

	newReq := func(t *testing.T) *http.Request {
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/trailer.bin", bytes.NewReader(data))
		req.Trailer = http.Header{"x-amz-checksum-crc32": {trailerValue}}
		return signer.StreamingSignV4(req, testAK, testSecret, "", testRegion, int64(len(data)), time.Now().UTC(), newMinioSHA256())
	}
	res := mustOK(t, nil, newReq(t))
	if res.Payload != streamingSignedTrailer || res.BodySHA256 != sha256Hex(data) || res.Trailer["x-amz-checksum-crc32"] != trailerValue {
		t.Fatalf("result %+v", res)
	}

	// The trailer value is signed: changing it on the wire is caught.
	req := newReq(t)
	encoded, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(encoded, []byte(trailerValue), []byte(crc32Trailer([]byte("other"))), 1)
	if bytes.Equal(bad, encoded) {
		t.Fatal("trailer not found in the encoded body")
	}
	req.Body = io.NopCloser(bytes.NewReader(bad))
	mustFail(t, nil, req, 403, "SignatureDoesNotMatch")
}

func TestMinioUnsignedTrailer(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	data := randomData(t, 70<<10)
	req, _ := http.NewRequest("PUT", ts.URL+"/bucket/unsigned-trailer.bin", bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
	req = signer.SignV4Trailer(*req, testAK, testSecret, "", testRegion, http.Header{"x-amz-checksum-crc32": {crc32Trailer(data)}})
	res := mustOK(t, nil, req)
	if res.Payload != streamingUnsignedTrailer || res.BodySHA256 != sha256Hex(data) || res.Trailer["x-amz-checksum-crc32"] != crc32Trailer(data) {
		t.Fatalf("result %+v", res)
	}
}

func TestPresignedV2(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	now := time.Now().UTC().Truncate(time.Second)
	ts.Clock.Set(now)

	newReq := func(method, path string, expires int64) *http.Request {
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		return signer.PreSignV2(*req, testAK, testSecret, expires, false)
	}
	req := newReq("GET", "/bucket/dir/a%20b.txt?versionId=3&response-content-type=text%2Fplain", 600)
	if res := mustOK(t, nil, req); res.Kind != "presigned-v2" || res.ExpiresIn != 600*time.Second {
		t.Fatalf("result %+v", res)
	}

	// Sub-resources are signed, other parameters are not (as in S3).
	req = newReq("GET", "/bucket/k?uploadId=1", 600)
	req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "uploadId=1", "uploadId=2", 1)
	mustFail(t, nil, req, 403, "SignatureDoesNotMatch")

	req = newReq("GET", "/bucket/k", 600)
	req.Method = "HEAD"
	if _, e := do(t, nil, req); e == nil || e.Status != 403 {
		t.Fatalf("HEAD with GET signature: %+v", e)
	}

	req = newReq("GET", "/bucket/k", 600)
	req.URL.Path = "/bucket/k2"
	e := mustFail(t, nil, req, 403, "SignatureDoesNotMatch")
	if e.Fields["StringToSign"] != "GET\n\n\n"+strconv.FormatInt(now.Unix()+600, 10)+"\n/bucket/k2" || e.Fields["AWSAccessKeyId"] != testAK {
		t.Fatalf("fields %v", e.Fields)
	}

	ts.Clock.Set(now.Add(601 * time.Second))
	e = mustFail(t, nil, newReq("GET", "/bucket/k", 600), 403, "AccessDenied")
	if e.Message != "Request has expired" || e.Fields["Expires"] != formatServerTime(now.Add(600*time.Second)) || e.Fields["ServerTime"] != formatServerTime(now.Add(601*time.Second)) {
		t.Fatalf("error %+v", e)
	}
	ts.Clock.Set(now)

	req, _ = http.NewRequest("GET", ts.URL+"/bucket/k?AWSAccessKeyId="+testAK+"&Signature=abc", nil)
	e = mustFail(t, nil, req, 403, "AccessDenied")
	if e.Message != "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters" {
		t.Fatalf("error %+v", e)
	}
}

func TestHeaderV2(t *testing.T) {
	ts := newTestServer(t, false, Options{})
	body := []byte("v2 body")
	newReq := func() *http.Request {
		req, _ := http.NewRequest("PUT", ts.URL+"/bucket/k.txt?acl", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("X-Amz-Meta-A", "x   y") // V2 keeps inner spaces
		return signer.SignV2(*req, testAK, testSecret, false)
	}
	if res := mustOK(t, nil, newReq()); res.Kind != "header-v2" {
		t.Fatalf("result %+v", res)
	}
	req := newReq()
	req.Header.Set("X-Amz-Meta-A", "z")
	mustFail(t, nil, req, 403, "SignatureDoesNotMatch")

	req = newReq()
	req.Header.Set("Authorization", "AWS "+testAK)
	e := mustFail(t, nil, req, 400, "InvalidArgument")
	if e.Message != "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature" {
		t.Fatalf("error %+v", e)
	}

	ts.Clock.Set(time.Now().Add(time.Hour))
	mustFail(t, nil, newReq(), 403, "RequestTimeTooSkewed")
}

func TestPostPolicy(t *testing.T) {
	ctx := context.Background()
	v := NewVerifier(testLookup, Options{})
	now := time.Now().UTC()
	policy := base64.StdEncoding.EncodeToString([]byte(`{"expiration":"2030-01-01T00:00:00Z","conditions":[{"bucket":"b"}]}`))

	v4fields := func() map[string]string {
		return map[string]string{
			"key":              "uploads/${filename}",
			"policy":           policy,
			"x-amz-algorithm":  "AWS4-HMAC-SHA256",
			"x-amz-credential": testAK + "/" + now.Format("20060102") + "/" + testRegion + "/s3/aws4_request",
			"x-amz-date":       now.Format(iso8601Basic),
			"x-amz-signature":  signer.PostPresignSignatureV4(policy, now, testSecret, testRegion),
		}
	}
	a, err := v.VerifyPostPolicy(ctx, v4fields())
	if err != nil {
		t.Fatalf("v4: %v", err)
	}
	if a.Kind != PostPolicyV4 || a.AccessKeyID != testAK || a.Region != testRegion || a.Kind.String() != "post-policy" {
		t.Fatalf("auth %+v", a)
	}

	f := v4fields()
	f["policy"] = base64.StdEncoding.EncodeToString([]byte(`{"expiration":"2031-01-01T00:00:00Z","conditions":[]}`))
	_, err = v.VerifyPostPolicy(ctx, f)
	se := asS3(t, err, "SignatureDoesNotMatch")
	if sts, _ := field(se, "StringToSign"); sts != f["policy"] {
		t.Fatalf("StringToSign %q", sts)
	}

	f = v4fields()
	delete(f, "policy")
	se = asS3(t, func() error { _, err := v.VerifyPostPolicy(ctx, f); return err }(), "InvalidArgument")
	if arg, _ := field(se, "ArgumentName"); arg != "policy" {
		t.Fatalf("error %+v", se)
	}

	f = v4fields()
	f["x-amz-credential"] = "NOPE/" + now.Format("20060102") + "/" + testRegion + "/s3/aws4_request"
	_, err = v.VerifyPostPolicy(ctx, f)
	asS3(t, err, "InvalidAccessKeyId")

	f = v4fields()
	f["x-amz-credential"] = testAK + "/" + now.Format("20060102") + "/" + testRegion + "/ec2/aws4_request"
	_, err = v.VerifyPostPolicy(ctx, f)
	asS3(t, err, "InvalidArgument")

	v2fields := map[string]string{
		"policy":         policy,
		"awsaccesskeyid": testAK,
		"signature":      signer.PostPresignSignatureV2(policy, testSecret),
	}
	a, err = v.VerifyPostPolicy(ctx, v2fields)
	if err != nil || a.Kind != PostPolicyV2 {
		t.Fatalf("v2: %+v %v", a, err)
	}
	v2fields["signature"] = signer.PostPresignSignatureV2(policy, "wrong")
	_, err = v.VerifyPostPolicy(ctx, v2fields)
	asS3(t, err, "SignatureDoesNotMatch")

	a, err = v.VerifyPostPolicy(ctx, map[string]string{"key": "k", "policy": policy})
	if err != nil || a.Kind != Anonymous {
		t.Fatalf("anonymous: %+v %v", a, err)
	}
}
