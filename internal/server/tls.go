package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// certCheckInterval is how often a handshake may look at the certificate
// files: often enough that a renewed certificate is served within seconds,
// rarely enough that handshakes do not stat files.
const certCheckInterval = 3 * time.Second

// certReloader serves a certificate pair from files and loads it again when
// either file changes (a renewal by an ACME client, a rotated secret), so
// the store never needs a restart for a new certificate.
type certReloader struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

// fileStamp identifies a version of a file cheaply.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// newCertReloader loads the pair once: a server must not start with a
// certificate it cannot serve.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, interval: certCheckInterval, now: time.Now, log: log}
	changed, err := c.reload()
	if err != nil {
		return nil, err
	}
	if !changed {
		return nil, errors.New("tls: certificate not loaded")
	}
	c.checked = c.now()
	return c, nil
}

// reload loads the pair if either file differs from what is being served.
// On failure the previous certificate stays in use and the stamps are not
// updated, so the next check tries again: during a rotation the new
// certificate may briefly sit next to the old key.
func (c *certReloader) reload() (bool, error) {
	cs, err := stampOf(c.certFile)
	if err != nil {
		return false, fmt.Errorf("tls certificate: %w", err)
	}
	ks, err := stampOf(c.keyFile)
	if err != nil {
		return false, fmt.Errorf("tls key: %w", err)
	}
	if c.cert != nil && cs == c.stamp[0] && ks == c.stamp[1] {
		return false, nil
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return false, fmt.Errorf("tls: load %s and %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert = &pair
	c.stamp = [2]fileStamp{cs, ks}
	return true, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= c.interval {
		c.checked = now
		changed, err := c.reload()
		switch {
		case err != nil:
			c.log.Warn("TLS certificate reload failed; serving the previous one", "err", err)
		case changed:
			c.log.Info("TLS certificate reloaded", "cert", c.certFile)
		}
	}
	return c.cert, nil
}

// tlsConfig builds the listener's TLS configuration from cfg, or returns
// nil for plain HTTP. HTTP/2 is negotiated by net/http itself (ServeTLS
// adds h2 to NextProtos because TLSNextProto is left alone).
func tlsConfig(cfg *Config) (*tls.Config, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	switch {
	case cfg.TLSSelfSigned && (certFile != "" || keyFile != ""):
		return nil, errors.New("tls: give either a certificate and key or the self-signed option, not both")
	case cfg.TLSSelfSigned:
		var err error
		if certFile, keyFile, err = SelfSignedCert(cfg.DataDir); err != nil {
			return nil, err
		}
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("tls: a certificate needs its key: set both the certificate and the key file")
	}
	r, err := newCertReloader(certFile, keyFile, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, nil
}

// Self-signed certificate files, kept in the data directory.
const (
	selfSignedCert = "tls-self-signed.crt"
	selfSignedKey  = "tls-self-signed.key"
)

// SelfSignedCert returns the paths of a self-signed ECDSA certificate for
// localhost, 127.0.0.1 and ::1 kept in dataDir, creating it the first time
// (and again once it is about to expire). For local development only:
// clients must trust the certificate file explicitly.
func SelfSignedCert(dataDir string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dataDir, selfSignedCert)
	keyFile = filepath.Join(dataDir, selfSignedKey)
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && pair.Leaf != nil &&
		time.Now().Add(24*time.Hour).Before(pair.Leaf.NotAfter) {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", "", fmt.Errorf("tls: create %s: %w", dataDir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", fmt.Errorf("tls: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"nfyio development"}},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// A CA flag lets clients add the file to their trusted roots
		// as it is (a self-signed leaf that is its own issuer).
		IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("tls: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("tls: encode key: %w", err)
	}
	// The key first: a crash between the two writes leaves a pair that
	// does not load, which the next start replaces.
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// writeFileAtomic writes data to a temporary file and renames it over path,
// so readers see the old file or the new one, never a partial one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("tls: write %s: %w", path, werr)
	}
	return nil
}

// Scheme is the URL scheme clients use: https when TLS is configured.
func (s *Server) Scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}
