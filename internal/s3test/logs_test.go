package s3test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/presign"
)

// prSecrets collects every secret-bearing string the test's requests
// carry, to look for them in the logs afterwards.
type prSecrets struct {
	mu   sync.Mutex
	vals map[string]string // value -> where it came from
}

func (s *prSecrets) add(what string, vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string]string{}
	}
	for _, v := range vals {
		if v == "" {
			continue
		}
		s.vals[v] = what
		// Logs may escape what they print: look for the escaped forms too.
		s.vals[url.QueryEscape(v)] = what + " (query-escaped)"
		s.vals[strconv.Quote(v)[1:len(strconv.Quote(v))-1]] = what + " (JSON-escaped)"
	}
}

var (
	prSigV4Auth  = regexp.MustCompile(`Credential=([^,]+), ?SignedHeaders=[^,]+, ?Signature=([0-9a-f]+)`)
	prSigV2Auth  = regexp.MustCompile(`^AWS ([^:]+):(.+)$`)
	prQuerySecrs = []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature", presign.OnceParam}
)

// addURL records the credential parameters of a presigned URL.
func (s *prSecrets) addURL(what, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	q := u.Query()
	for _, name := range prQuerySecrs {
		s.add(what+" "+name, q.Get(name))
	}
}

// addAuth records the signature and credential of an Authorization header.
func (s *prSecrets) addAuth(what, authz string) {
	if m := prSigV4Auth.FindStringSubmatch(authz); m != nil {
		s.add(what+" credential", m[1])
		s.add(what+" signature", m[2])
	}
	if m := prSigV2Auth.FindStringSubmatch(authz); m != nil {
		s.add(what+" V2 signature", m[2])
	}
	s.add(what+" Authorization", authz)
}

// prRecorder is a transport that records the Authorization header and
// presigned query of every request it sends.
type prRecorder struct {
	next    http.RoundTripper
	secrets *prSecrets
}

func (r *prRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if a := req.Header.Get("Authorization"); a != "" {
		r.secrets.addAuth(req.Method+" "+req.URL.Path, a)
	}
	r.secrets.addURL(req.Method+" "+req.URL.Path, req.URL.String())
	return r.next.RoundTrip(req)
}

// prSigV2URL presigns a GET with Signature Version 2 query parameters.
func prSigV2URL(base, bucket, key, secret string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte("GET\n\n\n" + exp + "\n/" + bucket + "/" + key))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	return base + "/" + bucket + "/" + key + "?AWSAccessKeyId=" + RootAccessKey + "&Expires=" + exp + "&Signature=" + url.QueryEscape(sig)
}

func prGet(t *testing.T, client *http.Client, method, raw string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, raw, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code := ""
	if i, j := bytes.Index(b, []byte("<Code>")), bytes.Index(b, []byte("</Code>")); i >= 0 && j > i {
		code = string(b[i+6 : j])
	}
	return resp.StatusCode, code
}

// TestLogsHoldNoSecrets drives every kind of signed request, failing ones
// and a server-side failure included, then searches the whole log output
// (access log, error lines, the HTTP server's own log) for secrets,
// signatures and credential strings.
func TestLogsHoldNoSecrets(t *testing.T) {
	NoEnv(t)
	disk := &prDisk{free: -1}
	srv := Start(t, func(c *server.Config) {
		c.WrapBlobs = func(b storage.Blobs) storage.Blobs { disk.Blobs = b; return disk }
	})
	secrets := &prSecrets{}
	const wrongSecret = "wrong-secret-key-not-the-real-one-0123456"
	secrets.add("root secret", RootSecretKey)
	secrets.add("wrong secret", wrongSecret)
	rec := &http.Client{Transport: &prRecorder{next: &http.Transport{}, secrets: secrets}}
	ctx := context.Background()

	// SigV4 header auth (SDK, aws-chunked with trailers).
	c := srv.SDK(t, func(o *s3.Options) { o.HTTPClient = rec; o.RetryMaxAttempts = 1 })
	mustCreate(t, c, "logs")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("logs"), Key: aws.String("obj"), Body: strings.NewReader("hello logs")}); err != nil {
		t.Fatal(err)
	}
	getBody(t, c, "logs", "obj")
	// Signed chunks (minio-go over HTTP).
	mc, err := minio.New(srv.Addr, &minio.Options{Creds: miniocreds.NewStaticV4(RootAccessKey, RootSecretKey, ""), Region: Region,
		Transport: &prRecorder{next: &http.Transport{}, secrets: secrets}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "logs", "chunked", bytes.NewReader(randBytes(100<<10)), 100<<10, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wrong secret: SignatureDoesNotMatch.
	bad := srv.SDKWith(t, RootAccessKey, wrongSecret, func(o *s3.Options) { o.HTTPClient = rec; o.RetryMaxAttempts = 1 })
	_, err = bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs"), Key: aws.String("obj")})
	wantCode(t, err, "SignatureDoesNotMatch")
	_, err = bad.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("logs"), Key: aws.String("obj"), Body: strings.NewReader("nope")})
	wantCode(t, err, "SignatureDoesNotMatch")

	// SigV4 presigned: SDK presigner, the presign package (one-time URL,
	// session token), tampered and expired URLs.
	pc := s3.NewPresignClient(c)
	pg, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs"), Key: aws.String("obj")})
	if err != nil {
		t.Fatal(err)
	}
	plain := &http.Client{}
	if st, _ := prGet(t, rec, "GET", pg.URL, nil); st != 200 {
		t.Fatalf("presigned GET: %d", st)
	}
	pp, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("logs"), Key: aws.String("presigned-put")})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := prGet(t, rec, "PUT", pp.URL, []byte("put by URL")); st != 200 {
		t.Fatalf("presigned PUT: %d", st)
	}
	signer := &presign.Signer{Endpoint: srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
	once, err := signer.Presign("logs", "obj", presign.Options{Once: true})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := prGet(t, rec, "GET", once.URL, nil); st != 200 {
		t.Fatalf("one-time URL: %d", st)
	}
	if st, code := prGet(t, rec, "GET", once.URL, nil); st != 403 || code != "AccessDenied" {
		t.Fatalf("one-time URL reused: %d %s", st, code)
	}
	tampered := strings.Replace(pg.URL, "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	secrets.addURL("tampered", tampered)
	if st, code := prGet(t, plain, "GET", tampered, nil); st != 403 || code != "SignatureDoesNotMatch" {
		t.Fatalf("tampered URL: %d %s", st, code)
	}
	tokenSigner := *signer
	tokenSigner.Credentials.SessionToken = "session-token-that-must-stay-secret-123"
	secrets.add("session token", tokenSigner.Credentials.SessionToken)
	withToken, err := tokenSigner.Presign("logs", "obj", presign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prGet(t, rec, "GET", withToken.URL, nil)
	pastSigner := *signer
	pastSigner.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, err := pastSigner.Presign("logs", "obj", presign.Options{Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if st, code := prGet(t, rec, "GET", expired.URL, nil); st != 403 || code != "AccessDenied" {
		t.Fatalf("expired URL: %d %s", st, code)
	}

	// SigV2: presigned, a wrong signature, and header auth.
	v2 := prSigV2URL(srv.URL, "logs", "obj", RootSecretKey, time.Now().Add(time.Hour))
	if st, code := prGet(t, rec, "GET", v2, nil); st != 200 {
		t.Fatalf("SigV2 presigned GET: %d %s", st, code)
	}
	v2bad := prSigV2URL(srv.URL, "logs", "obj", wrongSecret, time.Now().Add(time.Hour))
	if st, code := prGet(t, rec, "GET", v2bad, nil); st != 403 || code != "SignatureDoesNotMatch" {
		t.Fatalf("SigV2 with a wrong secret: %d %s", st, code)
	}
	date := time.Now().UTC().Format(http.TimeFormat)
	m := hmac.New(sha1.New, []byte(RootSecretKey))
	m.Write([]byte("GET\n\n\n" + date + "\n/logs/obj"))
	req, _ := http.NewRequest("GET", srv.URL+"/logs/obj", nil)
	req.Header.Set("Date", date)
	req.Header.Set("Authorization", "AWS "+RootAccessKey+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := rec.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("SigV2 header auth: %s", resp.Status)
	}

	// A server-side failure (full disk) under a presigned PUT: its error
	// line carries the cause.
	disk.setFree(0)
	full, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("logs"), Key: aws.String("full")})
	if err != nil {
		t.Fatal(err)
	}
	if st, code := prGet(t, rec, "PUT", full.URL, randBytes(300<<10)); st != 507 {
		t.Fatalf("presigned PUT on a full disk: %d %s", st, code)
	}
	disk.setFree(-1)

	// The server's own connection log: a malformed request line.
	if conn, err := net.Dial("tcp", srv.Addr); err == nil {
		_, _ = conn.Write([]byte("GET /logs/obj?X-Amz-Signature=" + strings.Repeat("f", 64) + " HTTP/1.1\r\nHost: \x00bad\r\n\r\n"))
		_, _ = io.ReadAll(conn)
		conn.Close()
	}

	logs := srv.Log.String()
	// The log did see all of it (the search below is not vacuous).
	for _, want := range []string{`"error":"SignatureDoesNotMatch"`, `"auth":"presigned"`, `"auth":"presigned-v2"`, `"auth":"header-v2"`, "X-Amz-Signature=REDACTED",
		"Signature=REDACTED", "X-Amz-Credential=REDACTED", "X-Nfyio-Once=REDACTED", `"error":"InsufficientStorage"`, "request failed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log has no %s:\n%.3000s", want, logs)
		}
	}
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	if len(secrets.vals) < 30 {
		t.Fatalf("only %d secret strings recorded", len(secrets.vals))
	}
	for v, what := range secrets.vals {
		if len(v) < 8 {
			continue // too short to be a finding
		}
		if strings.Contains(logs, v) {
			t.Errorf("the log contains the %s %q", what, v)
		}
	}
	if strings.Contains(logs, "AWS4-HMAC-SHA256 Credential") {
		t.Error("the log contains an Authorization header")
	}
}

// prMetrics parses the Prometheus text format into series -> value.
func prMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetrics: requests by operation and status, the latency histogram,
// bytes in and out and authentication failures by reason, on the main
// listener's /_nfyio/metrics and the admin listener's /metrics.
func TestMetrics(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Srv.ServeAdmin(aln) }()
	admin := "http://" + aln.Addr().String()
	c := srv.SDK(t, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	mustCreate(t, c, "metrics")
	body := randBytes(123456)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("metrics"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	getBody(t, c, "metrics", "k")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("metrics"), Key: aws.String("missing")})
	wantCode(t, err, "NoSuchKey")

	// One failure of each reason.
	signer := &presign.Signer{Endpoint: srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
	past := *signer
	past.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	expired, err := past.Presign("metrics", "k", presign.Options{Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	plain := &http.Client{}
	if st, code := prGet(t, plain, "GET", expired.URL, nil); code != "AccessDenied" {
		t.Fatalf("expired: %d %s", st, code)
	}
	_, err = srv.SDKWith(t, RootAccessKey, "not-the-secret-at-all-0000000000000000", func(o *s3.Options) { o.RetryMaxAttempts = 1 }).
		GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("metrics"), Key: aws.String("k")})
	wantCode(t, err, "SignatureDoesNotMatch")
	key, secret, err := srv.Srv.Keys().Create(ctx, iam.KeySpec{Name: "reader", Scopes: []string{iam.ScopeReadObjects}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = srv.SDKWith(t, key.ID, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 }).
		PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("metrics"), Key: aws.String("denied"), Body: strings.NewReader("x")})
	wantCode(t, err, "AccessDenied")
	req, _ := http.NewRequest("GET", srv.URL+"/metrics/k", nil)
	const emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	req.Header.Set("X-Amz-Content-Sha256", emptySHA)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}, req, emptySHA, "s3", Region, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if code := ErrorCode(t, resp); code != "RequestTimeTooSkewed" {
		t.Fatalf("skewed: %s", code)
	}
	resp.Body.Close()
	once, err := signer.Presign("metrics", "k", presign.Options{Once: true})
	if err != nil {
		t.Fatal(err)
	}
	prGet(t, plain, "GET", once.URL, nil)
	if st, code := prGet(t, plain, "GET", once.URL, nil); code != "AccessDenied" {
		t.Fatalf("reuse: %d %s", st, code)
	}

	for _, src := range []string{srv.URL + "/_nfyio/metrics", admin + "/metrics"} {
		m := prMetrics(t, src)
		for series, min := range map[string]float64{
			`nfyio_requests_total{op="PutObject",status="200"}`:                  1,
			`nfyio_requests_total{op="GetObject",status="200"}`:                  1,
			`nfyio_requests_total{op="GetObject",status="404"}`:                  1,
			`nfyio_requests_total{op="GetObject",status="403"}`:                  4,
			`nfyio_request_duration_seconds_count{op="PutObject"}`:               1,
			`nfyio_request_duration_seconds_bucket{op="PutObject",le="+Inf"}`:    1,
			`nfyio_request_bytes_total{op="PutObject"}`:                          float64(len(body)),
			`nfyio_response_bytes_total{op="GetObject"}`:                         float64(len(body)),
			`nfyio_auth_failures_total{reason="expired"}`:                        1,
			`nfyio_auth_failures_total{reason="signature"}`:                      1,
			`nfyio_auth_failures_total{reason="scope"}`:                          1,
			`nfyio_auth_failures_total{reason="skew"}`:                           1,
			`nfyio_auth_failures_total{reason="reuse"}`:                          1,
			`nfyio_request_duration_seconds_bucket{op="GetObject",le="60"}`:      2,
			`nfyio_request_duration_seconds_sum{op="PutObject"}`:                 0,
			`nfyio_requests_total{op="CreateBucket",status="200"}`:               1,
			`nfyio_request_duration_seconds_bucket{op="CreateBucket",le="+Inf"}`: 1,
		} {
			got, ok := m[series]
			if !ok || got < min {
				t.Errorf("%s: %s = %v (present %v), want at least %v", src, series, got, ok, min)
			}
		}
	}
	for _, path := range []string{"/health/live", "/health/ready"} {
		resp, err := http.Get(admin + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	resp, err = http.Get(admin + "/_nfyio/metrics")
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("admin listener serves only its own paths: %v %v", resp, err)
	}
	resp.Body.Close()
}
