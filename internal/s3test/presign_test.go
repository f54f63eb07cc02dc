package s3test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/sigv4"
	"nfyio.dev/storage/presign"
)

// These tests use presigned URLs the way their holders do: a browser, curl
// or a partner system with plain net/http, no SDK, no retries. The URLs are
// minted by our presign package, aws-sdk-go-v2's PresignClient and v4
// signer, minio-go, and by hand for Signature Version 2.

// psError is an S3 error body with the extra elements presigned requests
// can fail with.
type psError struct {
	Code             string
	Message          string
	HeadersNotSigned string
	StringToSign     string
	CanonicalRequest string
	AWSAccessKeyID   string `xml:"AWSAccessKeyId"`
	XAmzExpires      string `xml:"X-Amz-Expires"`
	XAmzDate         string `xml:"X-Amz-Date"`
	Expires          string
	ServerTime       string
}

// psClient is what a URL holder has: no SDK, and no transparent gzip
// (response-content-encoding=gzip must reach the test as sent).
var psClient = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 32}}

// call sends one request and returns the response with its body read.
// hdr may hold "Host" (as SDK presigners list it); it is sent as the Host.
func psCall(t testing.TB, method, rawURL string, hdr http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	return psSend(t, psClient, method, rawURL, hdr, body)
}

// send is call with another client.
func psSend(t testing.TB, client *http.Client, method, rawURL string, hdr http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	for k, vs := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = vs[0]
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return resp, b
}

// mustStatus fails the test unless resp has status want.
func psStatus(t testing.TB, what string, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d; body:\n%s", what, resp.StatusCode, want, body)
	}
}

// mustFail checks an S3 error response and returns its parsed body.
func psFail(t testing.TB, what string, resp *http.Response, body []byte, status int, code, message string) psError {
	t.Helper()
	var e psError
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d; body:\n%s", what, resp.StatusCode, status, body)
	}
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: error body is not XML (%v):\n%s", what, err, body)
	}
	if e.Code != code || (message != "" && e.Message != message) {
		t.Fatalf("%s: got %s %q, want %s %q; body:\n%s", what, e.Code, e.Message, code, message, body)
	}
	return e
}

// rootSigner mints URLs for srv with the root key, signing at now() (the
// wall clock when now is nil).
func psSigner(srv *Server, now func() time.Time) *presign.Signer {
	return &presign.Signer{
		Endpoint:    srv.URL,
		Region:      Region,
		Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey},
		Now:         now,
	}
}

func psPresign(t testing.TB, s *presign.Signer, bucket, key string, o presign.Options) presign.URL {
	t.Helper()
	u, err := s.Presign(bucket, key, o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// presignHTTP presigns a request with aws-sdk-go-v2's v4 signer, the way
// the SDK's own presigner does (UNSIGNED-PAYLOAD, expiry in the query), so
// that requests no SDK helper covers (CompleteMultipartUpload, odd expiry
// values) can be minted too.
func psPresignHTTP(t testing.TB, method, rawURL string, hdr http.Header, expires string, at time.Time) (string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", expires)
	req.URL.RawQuery = q.Encode()
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
	u, signed, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		PresignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", Region, at)
	if err != nil {
		t.Fatal(err)
	}
	return u, signed
}

// setQuery returns rawURL with query parameter name replaced by value,
// leaving everything else (and so the signature) as it was.
func psSetQuery(t testing.TB, rawURL, name, value string) string {
	t.Helper()
	base, query, _ := strings.Cut(rawURL, "?")
	parts := strings.Split(query, "&")
	found := false
	for i, p := range parts {
		if k, _, _ := strings.Cut(p, "="); k == name {
			parts[i] = name + "=" + url.QueryEscape(value)
			found = true
		}
	}
	if !found {
		t.Fatalf("%s has no query parameter %s", rawURL, name)
	}
	return base + "?" + strings.Join(parts, "&")
}

// blobFiles counts the files the blob store holds (committed blobs and
// temporary files alike), to prove that a refused upload stored nothing.
func psBlobFiles(t testing.TB, srv *Server) int {
	t.Helper()
	if !srv.Embedded() {
		return len(srv.BlobRefs(t))
	}
	n := 0
	err := filepath.WalkDir(filepath.Join(srv.DataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() != "LOCK" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func psNotExist(t testing.TB, c *s3.Client, bucket, key string) {
	t.Helper()
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("%s/%s: want NotFound, got %v", bucket, key, err)
	}
}

func psMD5(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func psSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// TestPresignedEveryOperation: SigV4 query authentication works for every
// operation a browser or partner needs, whoever minted the URL.
func TestPresignedEveryOperation(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	ctx := context.Background()
	c := srv.SDK(t)
	const bucket = "presigned"
	mustCreate(t, c, bucket)
	pc := s3.NewPresignClient(c, s3.WithPresignExpires(15*time.Minute))
	signer := psSigner(srv, nil)

	t.Run("sdk put get head delete", func(t *testing.T) {
		key := "sdk/hello world+ünï.txt"
		body := []byte("hello from a presigned PUT")
		put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ContentType: aws.String("text/plain")})
		if err != nil {
			t.Fatal(err)
		}
		hdr := put.SignedHeader.Clone()
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "text/plain")
		}
		resp, rb := psCall(t, put.Method, put.URL, hdr, body)
		psStatus(t, "PUT", resp, rb, 200)
		if want := `"` + fmt.Sprintf("%x", md5.Sum(body)) + `"`; resp.Header.Get("ETag") != want {
			t.Fatalf("PUT ETag %q, want %q", resp.Header.Get("ETag"), want)
		}

		get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, get.Method, get.URL, get.SignedHeader, nil)
		psStatus(t, "GET", resp, rb, 200)
		if !bytes.Equal(rb, body) || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("GET: %q (%s)", rb, resp.Header.Get("Content-Type"))
		}

		head, err := pc.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, head.Method, head.URL, head.SignedHeader, nil)
		psStatus(t, "HEAD", resp, rb, 200)
		if resp.ContentLength != int64(len(body)) || len(rb) != 0 {
			t.Fatalf("HEAD: length %d, body %q", resp.ContentLength, rb)
		}

		del, err := pc.PresignDeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, del.Method, del.URL, del.SignedHeader, nil)
		psStatus(t, "DELETE", resp, rb, 204)
		psNotExist(t, c, bucket, key)
	})

	t.Run("browser multipart and listing", func(t *testing.T) {
		key := "sdk/multi part.bin"
		// Create: a presigned POST ?uploads from our package.
		cu := psPresign(t, signer, bucket, key, presign.Options{Method: "POST", Query: url.Values{"uploads": {""}}})
		resp, rb := psCall(t, cu.Method, cu.URL, cu.Headers, nil)
		psStatus(t, "CreateMultipartUpload", resp, rb, 200)
		var created struct{ UploadId string }
		if err := xml.Unmarshal(rb, &created); err != nil || created.UploadId == "" {
			t.Fatalf("CreateMultipartUpload body %s: %v", rb, err)
		}
		id := created.UploadId

		// Part 1 with the SDK's presigner, part 2 with ours.
		part1, part2 := randBytes(5<<20), randBytes(1000)
		p1, err := pc.PresignUploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, p1.Method, p1.URL, p1.SignedHeader, part1)
		psStatus(t, "UploadPart 1", resp, rb, 200)
		etag1 := resp.Header.Get("ETag")
		p2, err := signer.PresignUploadPart(bucket, key, id, 2, presign.Options{})
		if err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, p2.Method, p2.URL, p2.Headers, part2)
		psStatus(t, "UploadPart 2", resp, rb, 200)
		etag2 := resp.Header.Get("ETag")

		// Complete with the v4 signer's PresignHTTP: no SDK helper exists.
		completeURL, signed := psPresignHTTP(t, "POST", srv.URL+"/"+bucket+"/"+strings.ReplaceAll(key, " ", "%20")+"?uploadId="+url.QueryEscape(id), nil, "900", time.Now())
		doc := fmt.Sprintf("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part><Part><PartNumber>2</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>", etag1, etag2)
		hdr := signed.Clone()
		hdr.Set("Content-Type", "application/xml")
		resp, rb = psCall(t, "POST", completeURL, hdr, []byte(doc))
		psStatus(t, "CompleteMultipartUpload", resp, rb, 200)
		if !strings.Contains(string(rb), "<CompleteMultipartUploadResult") {
			t.Fatalf("CompleteMultipartUpload body: %s", rb)
		}
		if got := getBody(t, c, bucket, key); !bytes.Equal(got, append(append([]byte(nil), part1...), part2...)) {
			t.Fatalf("multipart object: %d bytes, want %d", len(got), len(part1)+len(part2))
		}

		// ListObjectsV2 of the bucket, presigned with our package.
		lu := psPresign(t, signer, bucket, "", presign.Options{Query: url.Values{"list-type": {"2"}, "prefix": {"sdk/"}}})
		resp, rb = psCall(t, lu.Method, lu.URL, lu.Headers, nil)
		psStatus(t, "ListObjectsV2", resp, rb, 200)
		var list struct {
			KeyCount int
			Contents []struct{ Key string }
		}
		if err := xml.Unmarshal(rb, &list); err != nil {
			t.Fatal(err)
		}
		if list.KeyCount != 1 || len(list.Contents) != 1 || list.Contents[0].Key != key {
			t.Fatalf("ListObjectsV2: %s", rb)
		}

		// The same listing through the v4 signer's PresignHTTP.
		lu2, signed := psPresignHTTP(t, "GET", srv.URL+"/"+bucket+"?list-type=2&prefix=sdk%2F&max-keys=10", nil, "60", time.Now())
		resp, rb = psCall(t, "GET", lu2, signed, nil)
		psStatus(t, "ListObjectsV2 (PresignHTTP)", resp, rb, 200)
		if !strings.Contains(string(rb), "<Key>"+key+"</Key>") {
			t.Fatalf("ListObjectsV2 (PresignHTTP): %s", rb)
		}
	})

	t.Run("minio-go", func(t *testing.T) {
		mc := srv.Minio(t)
		key := "minio/obj ect.bin"
		body := randBytes(100 << 10)
		pu, err := mc.PresignedPutObject(ctx, bucket, key, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, rb := psCall(t, "PUT", pu.String(), nil, body)
		psStatus(t, "minio PUT", resp, rb, 200)

		gu, err := mc.PresignedGetObject(ctx, bucket, key, 10*time.Minute, url.Values{"response-content-type": {"application/x-minio"}})
		if err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, "GET", gu.String(), nil, nil)
		psStatus(t, "minio GET", resp, rb, 200)
		if !bytes.Equal(rb, body) || resp.Header.Get("Content-Type") != "application/x-minio" {
			t.Fatalf("minio GET: %d bytes, type %q", len(rb), resp.Header.Get("Content-Type"))
		}

		hu, err := mc.PresignedHeadObject(ctx, bucket, key, 10*time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, "HEAD", hu.String(), nil, nil)
		psStatus(t, "minio HEAD", resp, rb, 200)
		if resp.ContentLength != int64(len(body)) {
			t.Fatalf("minio HEAD length %d", resp.ContentLength)
		}
	})
}

// TestPresignedExpiry: the validity window is S3's, checked when the
// request starts.
func TestPresignedExpiry(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	const bucket = "expiry"
	mustCreate(t, c, bucket)
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}

	t.Run("X-Amz-Expires range", func(t *testing.T) {
		u := psPresign(t, psSigner(srv, nil), bucket, "k", presign.Options{Expires: presign.MaxExpires})
		resp, rb := psCall(t, "GET", u.URL, nil, nil)
		psStatus(t, "604800 s", resp, rb, 200)

		const week = "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"
		for _, tc := range []struct{ value, msg string }{
			{"604801", week},
			{"99999999999999999999", week},
			{"-1", "X-Amz-Expires must be non-negative"},
			{"soon", "X-Amz-Expires should be a number"},
		} {
			resp, rb := psCall(t, "GET", psSetQuery(t, u.URL, "X-Amz-Expires", tc.value), nil, nil)
			psFail(t, "X-Amz-Expires="+tc.value, resp, rb, 400, "AuthorizationQueryParametersError", tc.msg)
		}

		// Zero is well formed and expired at once, as on S3 (a validly
		// signed URL, so nothing else can be what is refused).
		zero, hdr := psPresignHTTP(t, "GET", srv.URL+"/"+bucket+"/k", nil, "0", time.Now().Add(-time.Second))
		resp, rb = psCall(t, "GET", zero, hdr, nil)
		e := psFail(t, "X-Amz-Expires=0", resp, rb, 403, "AccessDenied", "Request has expired")
		if e.XAmzExpires != "0" {
			t.Fatalf("X-Amz-Expires element %q", e.XAmzExpires)
		}
		one, hdr := psPresignHTTP(t, "GET", srv.URL+"/"+bucket+"/k", nil, "1", time.Now())
		resp, rb = psCall(t, "GET", one, hdr, nil)
		psStatus(t, "X-Amz-Expires=1", resp, rb, 200)
	})

	t.Run("expired", func(t *testing.T) {
		signedAt := time.Now().Add(-2 * time.Hour)
		u := psPresign(t, psSigner(srv, func() time.Time { return signedAt }), bucket, "k", presign.Options{Expires: time.Hour})
		before := time.Now().UTC().Truncate(time.Second)
		resp, rb := psCall(t, "GET", u.URL, nil, nil)
		e := psFail(t, "expired GET", resp, rb, 403, "AccessDenied", "Request has expired")
		if e.XAmzExpires != "3600" || e.Expires != u.Expires.UTC().Format("2006-01-02T15:04:05Z") {
			t.Fatalf("expired: X-Amz-Expires %q Expires %q, want 3600 and %s", e.XAmzExpires, e.Expires, u.Expires)
		}
		st, err := time.Parse("2006-01-02T15:04:05Z", e.ServerTime)
		if err != nil || st.Before(before) || st.After(time.Now().Add(time.Second)) {
			t.Fatalf("ServerTime %q (%v)", e.ServerTime, err)
		}
		// Expired PUT and DELETE change nothing.
		pu := psPresign(t, psSigner(srv, func() time.Time { return signedAt }), bucket, "k", presign.Options{Method: "PUT", Expires: time.Hour})
		resp, rb = psCall(t, "PUT", pu.URL, nil, []byte("overwritten"))
		psFail(t, "expired PUT", resp, rb, 403, "AccessDenied", "Request has expired")
		du := psPresign(t, psSigner(srv, func() time.Time { return signedAt }), bucket, "k", presign.Options{Method: "DELETE", Expires: time.Hour})
		resp, rb = psCall(t, "DELETE", du.URL, nil, nil)
		psFail(t, "expired DELETE", resp, rb, 403, "AccessDenied", "Request has expired")
		if got := getBody(t, c, bucket, "k"); string(got) != "v" {
			t.Fatalf("object changed by expired URLs: %q", got)
		}
	})

	t.Run("not yet valid", func(t *testing.T) {
		signedAt := time.Now().Add(time.Hour)
		u := psPresign(t, psSigner(srv, func() time.Time { return signedAt }), bucket, "k", presign.Options{Expires: time.Hour})
		resp, rb := psCall(t, "GET", u.URL, nil, nil)
		e := psFail(t, "future GET", resp, rb, 403, "AccessDenied", "Request is not yet valid")
		if e.XAmzDate == "" || e.ServerTime == "" || e.Expires != u.Expires.UTC().Format("2006-01-02T15:04:05Z") {
			t.Fatalf("not yet valid elements: %+v", e)
		}
		// A signer whose clock is a few minutes ahead is within the skew.
		ahead := time.Now().Add(5 * time.Minute)
		u = psPresign(t, psSigner(srv, func() time.Time { return ahead }), bucket, "k", presign.Options{Expires: time.Minute})
		resp, rb = psCall(t, "GET", u.URL, nil, nil)
		psStatus(t, "5 min ahead", resp, rb, 200)
	})

	t.Run("unknown key and wrong secret", func(t *testing.T) {
		s := psSigner(srv, nil)
		s.Credentials = presign.Credentials{AccessKeyID: "NOSUCHACCESSKEY00001", SecretAccessKey: RootSecretKey}
		resp, rb := psCall(t, "GET", psPresign(t, s, bucket, "k", presign.Options{}).URL, nil, nil)
		e := psFail(t, "unknown key", resp, rb, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		if e.AWSAccessKeyID != "NOSUCHACCESSKEY00001" {
			t.Fatalf("AWSAccessKeyId element %q", e.AWSAccessKeyID)
		}
		s.Credentials = presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: "not-the-secret"}
		resp, rb = psCall(t, "GET", psPresign(t, s, bucket, "k", presign.Options{}).URL, nil, nil)
		e = psFail(t, "wrong secret", resp, rb, 403, "SignatureDoesNotMatch", "")
		if !strings.HasPrefix(e.StringToSign, "AWS4-HMAC-SHA256\n") || !strings.HasPrefix(e.CanonicalRequest, "GET\n/expiry/k\n") {
			t.Fatalf("SignatureDoesNotMatch elements: %+v", e)
		}
	})

	t.Run("checked when the request starts", func(t *testing.T) {
		// The URL is valid for 2 s; the upload starts at once and its body
		// takes 3 s to arrive. S3 accepts it: expiry gates the start.
		u := psPresign(t, psSigner(srv, nil), bucket, "slow", presign.Options{Method: "PUT", Expires: 2 * time.Second})
		first, second := randBytes(64<<10), randBytes(1000)
		pr, pw := io.Pipe()
		go func() {
			if _, err := pw.Write(first); err != nil {
				pw.CloseWithError(err)
				return
			}
			time.Sleep(3 * time.Second)
			_, err := pw.Write(second)
			pw.CloseWithError(err)
		}()
		req, err := http.NewRequest("PUT", u.URL, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(first) + len(second))
		resp, err := psClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		psStatus(t, "slow PUT", resp, rb, 200)
		if !u.Expires.Before(time.Now()) {
			t.Fatalf("the URL had not expired when the upload finished; the test proves nothing")
		}
		if got := getBody(t, c, bucket, "slow"); !bytes.Equal(got, append(first, second...)) {
			t.Fatalf("slow upload stored %d bytes", len(got))
		}
		// And the same URL is refused now.
		resp2, rb2 := psCall(t, "PUT", u.URL, nil, []byte("late"))
		psFail(t, "late PUT", resp2, rb2, 403, "AccessDenied", "Request has expired")
	})
}

// rawPut sends a PUT over a bare connection: the declared Content-Length,
// then only body, then end of input. net/http refuses to send a body that
// disagrees with its length, so truncated uploads need this.
func psRawPut(t testing.TB, srv *Server, rawURL string, hdr http.Header, declared int64, body []byte) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", u.RequestURI(), u.Host, declared)
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp, rb
}

// TestPresignedSignedHeaders: what was signed must be sent as signed, and
// what was not signed cannot ride along.
func TestPresignedSignedHeaders(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	const bucket = "signed"
	mustCreate(t, c, bucket)
	signer := psSigner(srv, nil)
	const notSigned = "There were headers present in the request which were not signed"

	t.Run("unsigned x-amz headers", func(t *testing.T) {
		u := psPresign(t, signer, bucket, "plain", presign.Options{Method: "PUT"})
		hdr := http.Header{"X-Amz-Meta-Owner": {"mallory"}, "X-Amz-Acl": {"public-read"}}
		resp, rb := psCall(t, "PUT", u.URL, hdr, []byte("x"))
		e := psFail(t, "unsigned headers", resp, rb, 403, "AccessDenied", notSigned)
		if e.HeadersNotSigned != "x-amz-acl, x-amz-meta-owner" {
			t.Fatalf("HeadersNotSigned %q", e.HeadersNotSigned)
		}
		hdr = http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}
		resp, rb = psCall(t, "PUT", u.URL, hdr, []byte("x"))
		e = psFail(t, "unsigned checksum header", resp, rb, 403, "AccessDenied", notSigned)
		if e.HeadersNotSigned != "x-amz-checksum-crc32" {
			t.Fatalf("HeadersNotSigned %q", e.HeadersNotSigned)
		}
		psNotExist(t, c, bucket, "plain")
		// Ordinary headers need no signature: a browser sends many.
		hdr = http.Header{"Content-Type": {"image/png"}, "Cache-Control": {"no-cache"}, "Origin": {"https://app.example.com"}}
		resp, rb = psCall(t, "PUT", u.URL, hdr, []byte("x"))
		psStatus(t, "plain PUT", resp, rb, 200)
	})

	t.Run("content type", func(t *testing.T) {
		u := psPresign(t, signer, bucket, "report.pdf", presign.Options{Method: "PUT", ContentType: "application/pdf"})
		for _, ct := range []string{"text/html", ""} {
			hdr := http.Header{}
			if ct != "" {
				hdr.Set("Content-Type", ct)
			}
			resp, rb := psCall(t, "PUT", u.URL, hdr, []byte("%PDF-1.7"))
			e := psFail(t, "content type "+ct, resp, rb, 403, "SignatureDoesNotMatch", "")
			if !strings.Contains(e.CanonicalRequest, "\ncontent-type:"+ct+"\n") {
				t.Fatalf("CanonicalRequest does not show the type sent:\n%s", e.CanonicalRequest)
			}
		}
		psNotExist(t, c, bucket, "report.pdf")
		resp, rb := psCall(t, "PUT", u.URL, u.Headers, []byte("%PDF-1.7"))
		psStatus(t, "application/pdf", resp, rb, 200)
		head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("report.pdf")})
		if err != nil || aws.ToString(head.ContentType) != "application/pdf" {
			t.Fatalf("stored type %v, %v", head, err)
		}
	})

	t.Run("content length", func(t *testing.T) {
		// Larger than the inline threshold, so an accepted body would be a
		// blob file: the count of blob files proves nothing was kept.
		const n = 100 << 10
		body := randBytes(n + 1)
		u := psPresign(t, signer, bucket, "sized", presign.Options{Method: "PUT", ContentLength: n})
		files := psBlobFiles(t, srv)
		for _, size := range []int{n + 1, n - 1, 0} {
			resp, rb := psCall(t, "PUT", u.URL, nil, body[:size])
			e := psFail(t, fmt.Sprintf("%d bytes", size), resp, rb, 403, "SignatureDoesNotMatch", "")
			if !strings.Contains(e.CanonicalRequest, fmt.Sprintf("\ncontent-length:%d\n", size)) {
				t.Fatalf("CanonicalRequest does not show the length sent:\n%s", e.CanonicalRequest)
			}
		}
		// The signed length declared, fewer bytes sent, then the client
		// goes away: refused as incomplete, nothing kept.
		resp, rb := psRawPut(t, srv, u.URL, nil, n, body[:n/2])
		psFail(t, "truncated body", resp, rb, 400, "IncompleteBody", "")
		psNotExist(t, c, bucket, "sized")
		if got := psBlobFiles(t, srv); got != files {
			t.Fatalf("refused uploads left %d blob files behind", got-files)
		}
		resp, rb = psCall(t, "PUT", u.URL, u.Headers, body[:n])
		psStatus(t, "exact length", resp, rb, 200)
		if got := getBody(t, c, bucket, "sized"); !bytes.Equal(got, body[:n]) {
			t.Fatalf("stored %d bytes", len(got))
		}
	})

	t.Run("metadata", func(t *testing.T) {
		u := psPresign(t, signer, bucket, "owned", presign.Options{Method: "PUT", Metadata: map[string]string{"owner": "alice"}})
		for _, hdr := range []http.Header{{"X-Amz-Meta-Owner": {"bob"}}, {}} {
			resp, rb := psCall(t, "PUT", u.URL, hdr, []byte("x"))
			psFail(t, fmt.Sprintf("metadata %v", hdr), resp, rb, 403, "SignatureDoesNotMatch", "")
		}
		hdr := u.Headers.Clone()
		hdr.Set("X-Amz-Meta-Extra", "sneaked")
		resp, rb := psCall(t, "PUT", u.URL, hdr, []byte("x"))
		e := psFail(t, "extra metadata", resp, rb, 403, "AccessDenied", notSigned)
		if e.HeadersNotSigned != "x-amz-meta-extra" {
			t.Fatalf("HeadersNotSigned %q", e.HeadersNotSigned)
		}
		psNotExist(t, c, bucket, "owned")
		resp, rb = psCall(t, "PUT", u.URL, u.Headers, []byte("x"))
		psStatus(t, "signed metadata", resp, rb, 200)
		head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("owned")})
		if err != nil || head.Metadata["owner"] != "alice" {
			t.Fatalf("stored metadata %v, %v", head, err)
		}
	})

	t.Run("Content-MD5", func(t *testing.T) {
		good, bad := []byte("the real document"), []byte("a different document")
		u := psPresign(t, signer, bucket, "digest", presign.Options{Method: "PUT", ContentMD5: psMD5(good)})
		// Another MD5 than the signed one: the signature fails.
		resp, rb := psCall(t, "PUT", u.URL, http.Header{"Content-Md5": {psMD5(bad)}}, bad)
		psFail(t, "other Content-MD5", resp, rb, 403, "SignatureDoesNotMatch", "")
		// The signed MD5 with another body: the body fails.
		resp, rb = psCall(t, "PUT", u.URL, u.Headers, bad)
		psFail(t, "other body", resp, rb, 400, "BadDigest", "")
		psNotExist(t, c, bucket, "digest")
		resp, rb = psCall(t, "PUT", u.URL, u.Headers, good)
		psStatus(t, "Content-MD5", resp, rb, 200)
	})

	t.Run("checksum header", func(t *testing.T) {
		good, bad := []byte("checksummed"), []byte("tampered!!!")
		u := psPresign(t, signer, bucket, "summed", presign.Options{Method: "PUT", Headers: http.Header{"X-Amz-Checksum-Sha256": {psSHA256(good)}}})
		resp, rb := psCall(t, "PUT", u.URL, u.Headers, bad)
		psFail(t, "checksum of other body", resp, rb, 400, "BadDigest", "The x-amz-checksum-sha256 you specified did not match the calculated checksum.")
		psNotExist(t, c, bucket, "summed")
		resp, rb = psCall(t, "PUT", u.URL, u.Headers, good)
		psStatus(t, "checksum", resp, rb, 200)
		if resp.Header.Get("X-Amz-Checksum-Sha256") != psSHA256(good) {
			t.Fatalf("response checksum %q", resp.Header.Get("X-Amz-Checksum-Sha256"))
		}
	})

	t.Run("JavaScript presigner PutObject URL", func(t *testing.T) {
		// What @aws-sdk/s3-request-presigner emits for PutObjectCommand:
		// only host signed, and the checksum of an EMPTY body hoisted into
		// the query. S3 ignores those parameters; so must we, or every
		// browser upload through such a URL fails.
		u := psPresign(t, signer, bucket, "from-js.png", presign.Options{Method: "PUT", Expires: 15 * time.Minute, Query: url.Values{
			"X-Amz-Content-Sha256":         {"UNSIGNED-PAYLOAD"},
			"x-amz-checksum-crc32":         {"AAAAAA=="},
			"x-amz-sdk-checksum-algorithm": {"CRC32"},
			"x-id":                         {"PutObject"},
		}})
		if !strings.Contains(u.URL, "X-Amz-SignedHeaders=host&") && !strings.HasSuffix(u.URL, "X-Amz-SignedHeaders=host") {
			t.Fatalf("URL signs more than host: %s", u.URL)
		}
		body := randBytes(3000)
		resp, rb := psCall(t, "PUT", u.URL, http.Header{"Content-Type": {"image/png"}}, body)
		psStatus(t, "JS-style PUT", resp, rb, 200)
		get, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("from-js.png")})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(get.Body)
		get.Body.Close()
		if !bytes.Equal(got, body) || aws.ToString(get.ContentType) != "image/png" {
			t.Fatalf("stored %d bytes of %s", len(got), aws.ToString(get.ContentType))
		}
	})
}

// TestPresignedResponseOverrides: response-* parameters of a signed GET or
// HEAD replace the stored headers, byte for byte.
func TestPresignedResponseOverrides(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	ctx := context.Background()
	c := srv.SDK(t)
	const bucket = "overrides"
	mustCreate(t, c, bucket)
	body := []byte("%PDF-1.7 pretend")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("r/2026.bin"), Body: bytes.NewReader(body),
		ContentType: aws.String("binary/octet-stream"), CacheControl: aws.String("max-age=60")}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Content-Type":        "application/pdf",
		"Content-Language":    "de-DE",
		"Expires":             "Wed, 21 Oct 2026 07:28:00 GMT",
		"Cache-Control":       "private, no-store",
		"Content-Disposition": `attachment; filename="Report-2026.pdf"`,
		"Content-Encoding":    "gzip",
	}
	opts := presign.Options{
		ResponseContentType:        want["Content-Type"],
		ResponseContentLanguage:    want["Content-Language"],
		ResponseExpires:            want["Expires"],
		ResponseCacheControl:       want["Cache-Control"],
		ResponseContentDisposition: want["Content-Disposition"],
		ResponseContentEncoding:    want["Content-Encoding"],
	}
	check := func(t *testing.T, what string, resp *http.Response, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s = %q, want %q", what, k, got, v)
			}
		}
	}
	for _, method := range []string{"GET", "HEAD"} {
		o := opts
		o.Method = method
		u := psPresign(t, psSigner(srv, nil), bucket, "r/2026.bin", o)
		resp, rb := psCall(t, method, u.URL, nil, nil)
		psStatus(t, method, resp, rb, 200)
		check(t, method, resp, want)
		if method == "GET" && !bytes.Equal(rb, body) {
			t.Fatalf("GET body %q", rb)
		}
	}

	// RFC 5987 / RFC 6266 extended filename, through both presigners.
	const ext = `attachment; filename*=UTF-8''na%C3%AFve%20file.pdf`
	u := psPresign(t, psSigner(srv, nil), bucket, "r/2026.bin", presign.Options{ResponseContentDisposition: ext})
	resp, rb := psCall(t, "GET", u.URL, nil, nil)
	psStatus(t, "RFC 5987 GET", resp, rb, 200)
	check(t, "RFC 5987 GET", resp, map[string]string{"Content-Disposition": ext, "Content-Type": "binary/octet-stream", "Cache-Control": "max-age=60"})
	pc := s3.NewPresignClient(c)
	get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("r/2026.bin"),
		ResponseContentDisposition: aws.String(ext), ResponseContentType: aws.String("application/pdf"), ResponseCacheControl: aws.String("no-cache")})
	if err != nil {
		t.Fatal(err)
	}
	resp, rb = psCall(t, get.Method, get.URL, get.SignedHeader, nil)
	psStatus(t, "SDK overrides", resp, rb, 200)
	check(t, "SDK overrides", resp, map[string]string{"Content-Disposition": ext, "Content-Type": "application/pdf", "Cache-Control": "no-cache"})
	head, err := pc.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("r/2026.bin"),
		ResponseContentDisposition: aws.String(`attachment; filename="Report-2026.pdf"`)})
	if err != nil {
		t.Fatal(err)
	}
	resp, rb = psCall(t, head.Method, head.URL, head.SignedHeader, nil)
	psStatus(t, "SDK HEAD overrides", resp, rb, 200)
	check(t, "SDK HEAD overrides", resp, map[string]string{"Content-Disposition": `attachment; filename="Report-2026.pdf"`})

	// The overrides are signed: changing one breaks the URL.
	tampered := psSetQuery(t, psPresign(t, psSigner(srv, nil), bucket, "r/2026.bin", opts).URL, "response-content-type", "text/html")
	resp, rb = psCall(t, "GET", tampered, nil, nil)
	psFail(t, "tampered override", resp, rb, 403, "SignatureDoesNotMatch", "")
}

// presignV2 builds a Signature Version 2 query-string URL by hand:
// base64(HMAC-SHA1(secret, METHOD\nContent-MD5\nContent-Type\nExpires\n/bucket/key[?sub-resources]))
// where the response-* overrides are sub-resources, signed unencoded.
func psPresignV2(base, method, bucket, key, contentType string, expires time.Time, overrides url.Values) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	resource := "/" + bucket + "/" + key
	names := make([]string, 0, len(overrides))
	for k := range overrides {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		resource += sep + k + "=" + overrides.Get(k)
	}
	sts := method + "\n\n" + contentType + "\n" + exp + "\n" + resource
	m := hmac.New(sha1.New, []byte(RootSecretKey))
	m.Write([]byte(sts))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	q := url.Values{"AWSAccessKeyId": {RootAccessKey}, "Expires": {exp}, "Signature": {sig}}
	for k, v := range overrides {
		q[k] = v
	}
	return base + "/" + bucket + "/" + key + "?" + q.Encode()
}

// TestPresignedV2: legacy query-string URLs (AWSAccessKeyId, Expires,
// Signature) still minted by old tools.
func TestPresignedV2(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	const bucket = "legacy"
	mustCreate(t, c, bucket)
	in := time.Now().Add(10 * time.Minute)

	u := psPresignV2(srv.URL, "PUT", bucket, "v2/report.txt", "text/plain", in, nil)
	resp, rb := psCall(t, "PUT", u, http.Header{"Content-Type": {"text/html"}}, []byte("v2 body"))
	e := psFail(t, "V2 PUT, other type", resp, rb, 403, "SignatureDoesNotMatch", "")
	if !strings.HasPrefix(e.StringToSign, "PUT\n\ntext/html\n") {
		t.Fatalf("StringToSign %q", e.StringToSign)
	}
	resp, rb = psCall(t, "PUT", u, http.Header{"Content-Type": {"text/plain"}}, []byte("v2 body"))
	psStatus(t, "V2 PUT", resp, rb, 200)

	resp, rb = psCall(t, "GET", psPresignV2(srv.URL, "GET", bucket, "v2/report.txt", "", in, nil), nil, nil)
	psStatus(t, "V2 GET", resp, rb, 200)
	if string(rb) != "v2 body" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("V2 GET %q %s", rb, resp.Header.Get("Content-Type"))
	}
	resp, rb = psCall(t, "HEAD", psPresignV2(srv.URL, "HEAD", bucket, "v2/report.txt", "", in, nil), nil, nil)
	psStatus(t, "V2 HEAD", resp, rb, 200)

	disp := `attachment; filename="Report-2026.pdf"`
	resp, rb = psCall(t, "GET", psPresignV2(srv.URL, "GET", bucket, "v2/report.txt", "", in,
		url.Values{"response-content-disposition": {disp}, "response-content-type": {"application/pdf"}}), nil, nil)
	psStatus(t, "V2 GET with overrides", resp, rb, 200)
	if resp.Header.Get("Content-Disposition") != disp || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("V2 overrides: %v", resp.Header)
	}

	resp, rb = psCall(t, "GET", psPresignV2(srv.URL, "GET", bucket, "v2/report.txt", "", time.Now().Add(-time.Minute), nil), nil, nil)
	e = psFail(t, "V2 expired", resp, rb, 403, "AccessDenied", "Request has expired")
	if e.Expires == "" || e.ServerTime == "" {
		t.Fatalf("V2 expired elements %+v", e)
	}
	// A one-time token on a V2 URL is refused, not honoured: the V2
	// signature does not cover it, so dropping it would make the URL
	// reusable. Refused every time, and nothing is spent or served.
	onceV2 := psPresignV2(srv.URL, "GET", bucket, "v2/report.txt", "", in, nil) + "&" + presign.OnceParam + "=v2-token"
	for range 2 {
		resp, rb = psCall(t, "GET", onceV2, nil, nil)
		psFail(t, "V2 one-time", resp, rb, 400, "InvalidRequest", "One-time URLs (X-Nfyio-Once) must be signed with Signature Version 4: a Version 2 signature does not cover the token.")
	}
	// Stretching the expiry of a V2 URL breaks its signature.
	stretched := psSetQuery(t, psPresignV2(srv.URL, "GET", bucket, "v2/report.txt", "", in, nil), "Expires", strconv.FormatInt(in.Add(time.Hour).Unix(), 10))
	resp, rb = psCall(t, "GET", stretched, nil, nil)
	psFail(t, "V2 stretched", resp, rb, 403, "SignatureDoesNotMatch", "")
}

// TestPresignedOnce: a URL minted with Once works for exactly one request.
func TestPresignedOnce(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	ctx := context.Background()
	c := srv.SDK(t)
	const bucket = "once"
	mustCreate(t, c, bucket)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("file.txt"), Body: strings.NewReader("secret report")}); err != nil {
		t.Fatal(err)
	}
	signer := psSigner(srv, nil)
	const used = "Request has already been used"

	t.Run("first use only", func(t *testing.T) {
		u := psPresign(t, signer, bucket, "file.txt", presign.Options{Once: true, Expires: 10 * time.Minute})
		if !strings.Contains(u.URL, presign.OnceParam+"=") {
			t.Fatalf("no one-time token in %s", u.URL)
		}
		// A CORS preflight never authenticates, so whatever it is answered
		// it cannot spend the token; nor can a request the signature does
		// not cover. The first GET below proves the token is still unspent.
		psCall(t, "OPTIONS", u.URL, http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}}, nil)
		resp, rb := psCall(t, "HEAD", u.URL, nil, nil)
		psStatus(t, "HEAD with a GET URL", resp, rb, 403)
		resp, rb = psCall(t, "GET", psSetQuery(t, u.URL, presign.OnceParam, "forged-token"), nil, nil)
		psFail(t, "forged token", resp, rb, 403, "SignatureDoesNotMatch", "")

		resp, rb = psCall(t, "GET", u.URL, nil, nil)
		psStatus(t, "first GET", resp, rb, 200)
		if string(rb) != "secret report" {
			t.Fatalf("first GET %q", rb)
		}
		for i := 0; i < 2; i++ {
			resp, rb = psCall(t, "GET", u.URL, nil, nil)
			psFail(t, "second GET", resp, rb, 403, "AccessDenied", used)
		}
	})

	t.Run("twenty at once", func(t *testing.T) {
		u := psPresign(t, signer, bucket, "file.txt", presign.Options{Once: true})
		const n = 20
		var wg sync.WaitGroup
		statuses := make([]int, n)
		bodies := make([][]byte, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := psClient.Get(u.URL)
				if err != nil {
					statuses[i] = -1
					return
				}
				bodies[i], _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, st := range statuses {
			switch {
			case st == 200:
				ok++
			case st == 403 && strings.Contains(string(bodies[i]), "<Message>"+used+"</Message>"):
			default:
				t.Errorf("request %d: status %d %s", i, st, bodies[i])
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent uses succeeded, want exactly 1", ok, n)
		}
	})

	t.Run("one PUT", func(t *testing.T) {
		u := psPresign(t, signer, bucket, "upload.bin", presign.Options{Method: "PUT", Once: true})
		resp, rb := psCall(t, "PUT", u.URL, nil, []byte("first"))
		psStatus(t, "first PUT", resp, rb, 200)
		resp, rb = psCall(t, "PUT", u.URL, nil, []byte("second"))
		psFail(t, "second PUT", resp, rb, 403, "AccessDenied", used)
		if got := getBody(t, c, bucket, "upload.bin"); string(got) != "first" {
			t.Fatalf("stored %q", got)
		}
	})

	t.Run("a failed first use spends it", func(t *testing.T) {
		// Documented choice: the token is spent by the first request that
		// passes authentication and authorization, whatever its outcome.
		u := psPresign(t, signer, bucket, "later.txt", presign.Options{Once: true})
		resp, rb := psCall(t, "GET", u.URL, nil, nil)
		psFail(t, "GET before the object exists", resp, rb, 404, "NoSuchKey", "")
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("later.txt"), Body: strings.NewReader("now here")}); err != nil {
			t.Fatal(err)
		}
		resp, rb = psCall(t, "GET", u.URL, nil, nil)
		psFail(t, "GET after", resp, rb, 403, "AccessDenied", used)
	})
}

// TestPresignedRevocation: a URL is only as good as its key, checked on
// every request.
func TestPresignedRevocation(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	ctx := context.Background()
	c := srv.SDK(t)
	const bucket = "revoke"
	mustCreate(t, c, bucket)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc"), Body: strings.NewReader("doc")}); err != nil {
		t.Fatal(err)
	}
	keys := srv.Srv.Keys()
	k, secret, err := keys.Create(ctx, iam.KeySpec{Name: "web app", Scopes: []string{iam.ScopeReadObjects}})
	if err != nil {
		t.Fatal(err)
	}
	s := psSigner(srv, nil)
	s.Credentials = presign.Credentials{AccessKeyID: k.ID, SecretAccessKey: secret}
	u := psPresign(t, s, bucket, "doc", presign.Options{Expires: 24 * time.Hour})
	get := func() (*http.Response, []byte) { return psCall(t, "GET", u.URL, nil, nil) }

	resp, rb := get()
	psStatus(t, "before", resp, rb, 200)
	if err := keys.Disable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	resp, rb = get()
	psFail(t, "disabled key", resp, rb, 403, "InvalidAccessKeyId", "")
	if err := keys.Enable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	resp, rb = get()
	psStatus(t, "enabled again", resp, rb, 200)

	if _, err := keys.Rotate(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	resp, rb = get()
	psFail(t, "rotated secret", resp, rb, 403, "SignatureDoesNotMatch", "")

	u = psPresign(t, s, bucket, "doc", presign.Options{})
	if err := keys.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	resp, rb = get()
	psFail(t, "deleted key", resp, rb, 403, "InvalidAccessKeyId", "")
}

// BenchmarkPresignedVerify is the cost of checking one presigned GET with
// the signing key already derived and cached (the steady state of a
// download link that is used again and again).
func BenchmarkPresignedVerify(b *testing.B) {
	now := time.Now().UTC()
	s := &presign.Signer{Endpoint: "https://storage.example.com", Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey},
		Now: func() time.Time { return now }}
	u, err := s.Presign("photos", "2026/holiday photo.jpg", presign.Options{ResponseContentDisposition: `attachment; filename="holiday.jpg"`})
	if err != nil {
		b.Fatal(err)
	}
	v := sigv4.NewVerifier(func(context.Context, string) (string, error) { return RootSecretKey, nil }, sigv4.Options{Now: func() time.Time { return now }})
	r, err := http.NewRequest("GET", u.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	r.RequestURI = r.URL.RequestURI()
	if _, err := v.Verify(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet4KiB fetches a 4 KiB object end to end over loopback, through
// a presigned URL and with header signatures, so the two can be compared.
// "header-reused" replays one signed request (valid within the 15-minute
// skew) to show the server's cost alone; "header-per-request" signs each
// request as an SDK does.
func BenchmarkGet4KiB(b *testing.B) {
	NoEnv(b)
	srv := Start(b)
	c := srv.SDK(b)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	body := randBytes(4 << 10)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String("obj"), Body: bytes.NewReader(body)}); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// fetch reports failures with Error: RunParallel bodies may not
	// call Fatal.
	fetch := func(b *testing.B, req *http.Request) {
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || n != int64(len(body)) {
			b.Errorf("GET: %d, %d bytes, %v", resp.StatusCode, n, err)
		}
	}
	creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
	signed := func(b *testing.B) *http.Request {
		req, _ := http.NewRequest("GET", srv.URL+"/bench/obj", nil)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", Region, time.Now()); err != nil {
			b.Error(err)
		}
		return req
	}

	b.Run("presigned", func(b *testing.B) {
		u := psPresign(b, psSigner(srv, nil), "bench", "obj", presign.Options{})
		req, _ := http.NewRequest("GET", u.URL, nil)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			fetch(b, req)
		}
	})
	b.Run("header-reused", func(b *testing.B) {
		req := signed(b)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			fetch(b, req)
		}
	})
	b.Run("header-per-request", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			fetch(b, signed(b))
		}
	})
	b.Run("presigned-parallel", func(b *testing.B) {
		u := psPresign(b, psSigner(srv, nil), "bench", "obj", presign.Options{})
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req, _ := http.NewRequest("GET", u.URL, nil)
			for pb.Next() {
				fetch(b, req)
			}
		})
	})
	b.Run("header-reused-parallel", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := signed(b)
			for pb.Next() {
				fetch(b, req)
			}
		})
	})
}
