package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPair writes a self-signed certificate with serial and its key to
// dir, returning the PEM blocks too.
func testPair(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func serialOf(t *testing.T, c *tls.Certificate) int64 {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// TestCertReloader: a changed pair is picked up at the next check after
// the interval, not before; a half-rotated pair (new certificate, old key)
// keeps the previous certificate in service until the key follows.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c1, k1 := testPair(t, 1)
	writeFile(t, certFile, c1)
	writeFile(t, keyFile, k1)
	logs := &strings.Builder{}
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	r.checked = now
	get := func() int64 {
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return serialOf(t, c)
	}
	if got := get(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}

	c2, k2 := testPair(t, 2)
	writeFile(t, certFile, c2)
	writeFile(t, keyFile, k2)
	if got := get(); got != 1 {
		t.Fatalf("reloaded before the interval: serial %d", got)
	}
	now = now.Add(certCheckInterval)
	if got := get(); got != 2 {
		t.Fatalf("after the interval: serial %d, want 2", got)
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("reload not logged: %s", logs)
	}

	// Half a rotation: certificate 3 next to key 2.
	c3, k3 := testPair(t, 3)
	writeFile(t, certFile, c3)
	now = now.Add(certCheckInterval)
	if got := get(); got != 2 {
		t.Fatalf("mismatched pair served: serial %d", got)
	}
	if !strings.Contains(logs.String(), "reload failed") {
		t.Errorf("failed reload not logged: %s", logs)
	}
	writeFile(t, keyFile, k3)
	now = now.Add(certCheckInterval)
	if got := get(); got != 3 {
		t.Fatalf("completed rotation: serial %d, want 3", got)
	}

	// Files gone (a volume unmounted): keep serving what we have.
	os.Remove(certFile)
	now = now.Add(certCheckInterval)
	if got := get(); got != 3 {
		t.Fatalf("after the files vanished: serial %d", got)
	}
}

func TestTLSConfigChoices(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if c, err := tlsConfig(&Config{DataDir: dir, Logger: log}); c != nil || err != nil {
		t.Fatalf("no TLS options: %v %v", c, err)
	}
	if _, err := tlsConfig(&Config{DataDir: dir, Logger: log, TLSCert: "c.pem"}); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	if _, err := tlsConfig(&Config{DataDir: dir, Logger: log, TLSCert: "c.pem", TLSKey: "k.pem", TLSSelfSigned: true}); err == nil {
		t.Fatal("files and self-signed together were accepted")
	}
	if _, err := tlsConfig(&Config{DataDir: dir, Logger: log, TLSCert: filepath.Join(dir, "none"), TLSKey: filepath.Join(dir, "none")}); err == nil {
		t.Fatal("missing files were accepted")
	}
	c, err := tlsConfig(&Config{DataDir: dir, Logger: log, TLSSelfSigned: true})
	if err != nil || c == nil {
		t.Fatalf("self-signed: %v", err)
	}
	cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("self-signed key is %T, want ECDSA", leaf.PublicKey)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("self-signed certificate does not cover %s: %v", host, err)
		}
	}
	info, err := os.Stat(filepath.Join(dir, selfSignedKey))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", info, err)
	}
	// Created once: a second call keeps the same files.
	before, _ := os.ReadFile(filepath.Join(dir, selfSignedCert))
	if _, _, err := SelfSignedCert(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, selfSignedCert))
	if string(before) != string(after) {
		t.Error("the self-signed certificate was recreated")
	}
	// A certificate about to expire is replaced.
	c1, k1 := testPair(t, 7) // valid for one more hour
	writeFile(t, filepath.Join(dir, selfSignedCert), c1)
	writeFile(t, filepath.Join(dir, selfSignedKey), k1)
	if _, _, err := SelfSignedCert(dir); err != nil {
		t.Fatal(err)
	}
	renewed, _ := os.ReadFile(filepath.Join(dir, selfSignedCert))
	if string(renewed) == string(c1) {
		t.Error("an expiring self-signed certificate was kept")
	}
}
