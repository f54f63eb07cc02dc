package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"nfyio.dev/storage/internal/s3test"
	"nfyio.dev/storage/internal/server"
)

// newPair makes a fresh self-signed pair in its own directory.
func newPair(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile, err := server.SelfSignedCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return certFile, keyFile, pool
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Write then rename, as certificate tools do.
	tmp := to + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// h2Client speaks only HTTP/2 over TLS.
func h2Client(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestHTTPSWithReload serves HTTPS from certificate files, speaks HTTP/2
// to a client that allows nothing else (S3 operations included), and
// serves a replaced certificate without a restart.
func TestHTTPSWithReload(t *testing.T) {
	s3test.NoEnv(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1, pool1 := newPair(t)
	c2, k2, pool2 := newPair(t)
	copyFile(t, c1, certFile)
	copyFile(t, k1, keyFile)
	srv := s3test.Start(t, func(c *server.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if srv.Srv.Scheme() != "https" {
		t.Fatalf("scheme %s", srv.Srv.Scheme())
	}
	base := "https://" + srv.Addr

	client := h2Client(pool1)
	resp, err := client.Get(base + "/_nfyio/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("got %s %s, want HTTP/2 200", resp.Proto, resp.Status)
	}

	// S3 over HTTP/2: streamed upload with a trailing checksum, ranged GET.
	c := srv.SDK(t, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(base)
		o.HTTPClient = client
	})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("http2")}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 40000)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("http2"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("http2"), Key: aws.String("k"), Range: aws.String("bytes=16-31")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "0123456789abcdef" {
		t.Fatalf("range over h2: %q", got)
	}

	// Plain HTTP to the TLS port is refused by the TLS layer.
	if resp, err := http.Get("http://" + srv.Addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %s", resp.Status)
		}
	}

	// Rotate the files; new handshakes see the new certificate within
	// a few seconds, with no restart.
	copyFile(t, k2, keyFile)
	copyFile(t, c2, certFile)
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: pool2, ServerName: "localhost"})
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate was not served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err = h2Client(pool2).Get(base + "/_nfyio/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after rotation: %s", resp.Status)
	}
	if !strings.Contains(srv.Log.String(), "TLS certificate reloaded") {
		t.Error("the reload was not logged")
	}
}
