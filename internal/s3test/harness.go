// Package s3test starts real servers for tests: a store listening on
// 127.0.0.1 with its data in a temp dir, and clients configured for it.
package s3test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/internal/testpg"
	"nfyio.dev/storage/internal/testweed"
)

// Root credentials every test server starts with.
const (
	RootAccessKey = "NFYIOTESTROOTKEY0001"
	RootSecretKey = "test-root-secret-key-0123456789abcdefghij"
	Region        = "us-east-1"
)

// Server is a running store for one test.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	Addr    string
	DataDir string
	Srv     *server.Server
	Log     *SyncBuffer // access log and errors
	// Backend is the storage the server runs on (see Backend()); tests that
	// look inside the embedded files skip on the others.
	Backend string
}

// Backend returns the storage backends the suite runs on, from
// NFYIO_TEST_BACKEND: "embedded" (default), "postgres", "seaweedfs" or
// "postgres+seaweedfs". make test runs the suite on each.
func Backend() string {
	if b := os.Getenv("NFYIO_TEST_BACKEND"); b != "" {
		return b
	}
	return "embedded"
}

// BlobRefs lists the blobs the server's blob store holds, through the
// store's own interface, so tests can count them on every backend.
func (s *Server) BlobRefs(t testing.TB) map[string]bool {
	t.Helper()
	_, blobs := s.Srv.Storage()
	refs := map[string]bool{}
	err := blobs.List(context.Background(), func(ref string, _ time.Time) error {
		refs[ref] = true
		return nil
	})
	if err != nil {
		t.Fatalf("list blobs: %v", err)
	}
	return refs
}

// Embedded reports whether the server keeps its data in DataDir only.
func (s *Server) Embedded() bool { return s.Backend == "embedded" }

// backendConfig points cfg at the shared-store backends the suite runs on.
func backendConfig(t testing.TB, cfg *server.Config) {
	b := Backend()
	if strings.Contains(b, "postgres") {
		cfg.Meta = testpg.Start(t)
	}
	if strings.Contains(b, "seaweedfs") {
		cfg.Blobs = "seaweedfs://" + strings.TrimPrefix(testweed.Start(t), "http://")
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Option changes the configuration of a test server.
type Option func(*server.Config)

// Start runs a store on 127.0.0.1:0 with storage in a temp dir; it stops
// when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	logBuf := &SyncBuffer{}
	cfg := server.Config{
		Address:       "127.0.0.1:0",
		DataDir:       t.TempDir(),
		RootAccessKey: RootAccessKey,
		RootSecretKey: RootSecretKey,
		Out:           io.Discard,
		Logger:        slog.New(slog.NewJSONHandler(logBuf, nil)),
		// As the server's flag sets it: deleted blob files are reused.
		RecycleBytes: 1 << 30,
	}
	backendConfig(t, &cfg)
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ln, err := srv.Listen()
	if err != nil {
		srv.Close()
		t.Fatalf("listen: %v", err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	addr := ln.Addr().String()
	return &Server{URL: srv.Scheme() + "://" + addr, Addr: addr, DataDir: cfg.DataDir, Srv: srv, Log: logBuf, Backend: Backend()}
}

// NoEnv clears the AWS variables of this machine (a CA bundle, profiles)
// that would change how SDK clients behave.
func NoEnv(t testing.TB) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// SDK returns an aws-sdk-go-v2 client with the SDK's default behaviour
// (request checksums when supported, so aws-chunked bodies with trailers).
func (s *Server) SDK(t testing.TB, opts ...func(*s3.Options)) *s3.Client {
	return s.SDKWith(t, RootAccessKey, RootSecretKey, opts...)
}

// SDKWith is SDK with other credentials.
func (s *Server) SDKWith(t testing.TB, ak, sk string, opts ...func(*s3.Options)) *s3.Client {
	t.Helper()
	base := []func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.URL)
		o.UsePathStyle = true
		o.Region = Region
		o.Credentials = credentials.NewStaticCredentialsProvider(ak, sk, "")
		o.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	}}
	return s3.New(s3.Options{}, append(base, opts...)...)
}

// Minio returns a minio-go client; over plain HTTP it uploads with
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD signed chunks.
func (s *Server) Minio(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Addr, &minio.Options{
		Creds:  miniocreds.NewStaticV4(RootAccessKey, RootSecretKey, ""),
		Secure: false,
		Region: Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Signed sends a request signed with SigV4 header auth by the SDK's signer;
// payloadHash "" means the SHA-256 of body. Tests use it to send what no
// SDK would: malformed bodies, wrong digests, extra headers.
func (s *Server) Signed(t testing.TB, method, path string, body []byte, hdr http.Header, payloadHash string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if payloadHash == "" {
		sum := sha256.Sum256(body)
		payloadHash = hex.EncodeToString(sum[:])
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, "s3", Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// ErrorCode reads an S3 error body and returns its <Code>.
func ErrorCode(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	i := strings.Index(s, "<Code>")
	j := strings.Index(s, "</Code>")
	if i < 0 || j < i {
		return ""
	}
	return s[i+6 : j]
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
