package s3test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"nfyio.dev/storage/internal/childproc"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/presign"
)

// These tests put a real nginx in front of the store, as deployments do,
// and check which proxy set-ups keep presigned URLs working. A signature
// covers the Host header, so the store must verify against the host the
// client used, which a proxy may rewrite on the way.

// proxyPublicHost is the name clients use in the public-URL case; the test's
// HTTP client resolves it to the nginx listener.
const proxyPublicHost = "storage.example.com"

// nginxPath finds the nginx binary, or skips the test unless
// NFYIO_REQUIRE_NGINX=1 says it must run.
func nginxPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("NFYIO_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx not found and NFYIO_REQUIRE_NGINX=1 (Debian: apt-get install nginx-light)")
	}
	t.Skip("nginx not found (Debian: apt-get install nginx-light); set NFYIO_REQUIRE_NGINX=1 to make this a failure")
	return ""
}

// nginxTLS is a certificate for proxyPublicHost that nginx serves and the test
// client trusts.
type nginxTLS struct {
	certFile, keyFile string
	pool              *x509.CertPool
}

func newNginxTLS(t *testing.T, dir string) *nginxTLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: proxyPublicHost},
		DNSNames:     []string{proxyPublicHost},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tl := &nginxTLS{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	tl.pool.AddCert(cert)
	if err := os.WriteFile(tl.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tl.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tl
}

// startNginx runs nginx in the foreground with a config of its own in a
// temp dir, listening on a loopback port and proxying to upstream with
// the given extra location directives. It returns the listen address and
// stops nginx when the test ends.
func startNginx(t *testing.T, upstream, directives string, tl *nginxTLS) string {
	t.Helper()
	bin := nginxPath(t)
	dir := t.TempDir()
	addr := FreePort(t)
	listen, tlsConf := addr, ""
	if tl != nil {
		listen += " ssl"
		tlsConf = fmt.Sprintf("ssl_certificate %s;\n        ssl_certificate_key %s;", tl.certFile, tl.keyFile)
	}
	// master_process off: one process running as the test's user, so it
	// can read the temp dir and a single signal stops everything.
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    client_max_body_size 0;
    server {
        listen %[2]s;
        server_name %[3]s;
        %[4]s
        location / {
            proxy_pass http://%[5]s;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
            %[6]s
        }
    }
}
`, dir, listen, proxyPublicHost, tlsConf, upstream, directives)
	runNginx(t, bin, dir, addr, conf)
	return addr
}

// runNginx writes conf into dir, runs nginx in the foreground on it (killed
// if the test binary dies, stopped when the test ends) and waits until it
// listens on addr.
func runNginx(t *testing.T, bin, dir, addr, conf string) {
	t.Helper()
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	var out SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := childproc.Start(cmd); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	errorLog := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return out.String() + string(b)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case err := <-exited:
			t.Fatalf("nginx exited (%v):\n%s", err, errorLog())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s:\n%s", addr, errorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publicClient reaches https://storage.example.com at the nginx listener
// addr, trusting the test certificate: what a browser on the internet does
// with DNS and a real certificate.
func proxyClient(tl *nginxTLS, addr string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: tl.pool, ServerName: proxyPublicHost},
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if a == proxyPublicHost+":443" {
				a = addr
			}
			return d.DialContext(ctx, network, a)
		},
	}}
}

// roundTrip uploads through a presigned PUT and reads the object back
// through a presigned GET, both minted for endpoint and sent with client.
func proxyRoundTrip(t *testing.T, client *http.Client, endpoint, key string) (put, get *http.Response, putBody, getBody []byte) {
	t.Helper()
	s := &presign.Signer{Endpoint: endpoint, Region: Region, Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
	body := randBytes(200 << 10)
	pu := psPresign(t, s, "proxied", key, presign.Options{Method: "PUT", ContentType: "application/pdf"})
	put, putBody = psSend(t, client, "PUT", pu.URL, pu.Headers, body)
	if put.StatusCode != 200 {
		return put, nil, putBody, nil
	}
	gu := psPresign(t, s, "proxied", key, presign.Options{ResponseContentDisposition: `attachment; filename="Report-2026.pdf"`})
	get, getBody = psSend(t, client, "GET", gu.URL, nil, nil)
	if get.StatusCode == 200 && !bytes.Equal(getBody, body) {
		t.Fatalf("GET through the proxy returned %d bytes, want the %d uploaded", len(getBody), len(body))
	}
	return put, get, putBody, getBody
}

func proxiedStore(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv := Start(t, opts...)
	if _, err := srv.SDK(t).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("proxied")}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestBehindNginx(t *testing.T) {
	nginxPath(t)
	NoEnv(t)
	const key = "reports/Q1 2026/ünï+plus.pdf"

	t.Run("Host preserved needs no flags", func(t *testing.T) {
		srv := proxiedStore(t)
		addr := startNginx(t, srv.Addr, "proxy_set_header Host $http_host;", nil)
		put, get, pb, gb := proxyRoundTrip(t, http.DefaultClient, "http://"+addr, key)
		psStatus(t, "PUT via nginx", put, pb, 200)
		psStatus(t, "GET via nginx", get, gb, 200)
		if cd := get.Header.Get("Content-Disposition"); cd != `attachment; filename="Report-2026.pdf"` {
			t.Fatalf("Content-Disposition through nginx: %q", cd)
		}
		// Header-signed SDK traffic (aws-chunked uploads) passes too.
		c := s3.New(s3.Options{}, func(o *s3.Options) {
			o.BaseEndpoint = aws.String("http://" + addr)
			o.UsePathStyle = true
			o.Region = Region
			o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}, nil
			})
		})
		if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("proxied"), Key: aws.String("sdk.bin"), Body: bytes.NewReader(randBytes(70 << 10))}); err != nil {
			t.Fatalf("SDK PutObject via nginx: %v", err)
		}

		// A refused upload's error reaches the uploader through the proxy
		// (nginx sends the whole body before it reads the answer; were the
		// store to close on the unread body, the client would get a 502).
		s := &presign.Signer{Endpoint: "http://" + addr, Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey},
			Now: func() time.Time { return time.Now().Add(-time.Hour) }}
		pu := psPresign(t, s, "proxied", "late.bin", presign.Options{Method: "PUT", Expires: time.Minute})
		resp, rb := psCall(t, "PUT", pu.URL, nil, randBytes(3<<20))
		psFail(t, "expired PUT via nginx", resp, rb, 403, "AccessDenied", "Request has expired")
	})

	t.Run("Host rewritten needs trust-proxy", func(t *testing.T) {
		// nginx's default: Host becomes the upstream address; the client's
		// host travels in X-Forwarded-Host.
		const directives = `proxy_set_header Host $proxy_host;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;`
		plain := proxiedStore(t)
		addr := startNginx(t, plain.Addr, directives, nil)
		put, _, pb, _ := proxyRoundTrip(t, http.DefaultClient, "http://"+addr, key)
		e := psFail(t, "PUT via rewriting nginx, no --trust-proxy", put, pb, 403, "SignatureDoesNotMatch", "")
		if !strings.Contains(e.CanonicalRequest, "\nhost:"+plain.Addr+"\n") {
			t.Fatalf("CanonicalRequest should show the host the store used (%s):\n%s", plain.Addr, e.CanonicalRequest)
		}

		trusting := proxiedStore(t, func(c *server.Config) { c.TrustProxy = true })
		addr = startNginx(t, trusting.Addr, directives, nil)
		put, get, pb, gb := proxyRoundTrip(t, http.DefaultClient, "http://"+addr, key)
		psStatus(t, "PUT with --trust-proxy", put, pb, 200)
		psStatus(t, "GET with --trust-proxy", get, gb, 200)
	})

	t.Run("public URL on another host name", func(t *testing.T) {
		// TLS ends at nginx for https://storage.example.com; the store
		// sees only the upstream address and is told its public URL.
		tl := newNginxTLS(t, t.TempDir())
		const directives = `proxy_set_header Host $proxy_host;
            proxy_set_header X-Forwarded-Proto https;`

		plain := proxiedStore(t)
		addr := startNginx(t, plain.Addr, directives, tl)
		put, _, pb, _ := proxyRoundTrip(t, proxyClient(tl, addr), "https://"+proxyPublicHost, key)
		e := psFail(t, "PUT via public name, no --public-url", put, pb, 403, "SignatureDoesNotMatch", "")
		if !strings.Contains(e.CanonicalRequest, "\nhost:"+plain.Addr+"\n") {
			t.Fatalf("CanonicalRequest should show the host the store used (%s):\n%s", plain.Addr, e.CanonicalRequest)
		}

		// proxiedStore creates its bucket with a client that signs for the
		// store's own address: with a public URL set, internal clients
		// keep working.
		public := proxiedStore(t, func(c *server.Config) { c.PublicURL = "https://" + proxyPublicHost })
		addr = startNginx(t, public.Addr, directives, tl)
		put, get, pb, gb := proxyRoundTrip(t, proxyClient(tl, addr), "https://"+proxyPublicHost, key)
		psStatus(t, "PUT with --public-url", put, pb, 200)
		psStatus(t, "GET with --public-url", get, gb, 200)

		// A URL minted for the public host with the default port spelt out
		// is the same URL: clients leave :443 out of Host.
		get2, gb2 := psSend(t, proxyClient(tl, addr), "GET",
			psPresign(t, &presign.Signer{Endpoint: "https://" + proxyPublicHost + ":443", Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}},
				"proxied", key, presign.Options{}).URL, nil, nil)
		psStatus(t, "GET for :443", get2, gb2, 200)
	})
}

// TestVirtualHostedBehindNginx: with --domain and the proxy of
// docs/deploy.md, which passes the client's Host through, virtual-hosted
// requests reach the store with the bucket in Host, so routing and SigV4
// both see what the client addressed and signed: no flag is needed.
func TestVirtualHostedBehindNginx(t *testing.T) {
	nginxPath(t)
	NoEnv(t)
	const domain = "s3.nfyio.test"
	srv := Start(t, func(c *server.Config) { c.Domain = domain })
	addr := startNginx(t, srv.Addr, "proxy_set_header Host $http_host;", nil)
	_, port, _ := net.SplitHostPort(addr)
	endpoint := "http://" + domain + ":" + port
	hc := loopbackClient(addr) // every host name reaches nginx
	c := srv.SDK(t, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = false
		o.HTTPClient = hc
	})
	ctx := context.Background()
	mustCreate(t, c, "vproxied")
	body := randBytes(70 << 10)
	const key = "dir/a b+ü.bin"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vproxied"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("virtual-hosted SDK put via nginx: %v", err)
	}
	if got := getBody(t, c, "vproxied", key); !bytes.Equal(got, body) {
		t.Fatalf("virtual-hosted SDK get via nginx: %d bytes, want %d", len(got), len(body))
	}
	// The store saw a virtual-hosted request, not a path-style one that
	// happened to work: the object is where the path-style client finds it.
	if got := getBody(t, srv.SDK(t), "vproxied", key); !bytes.Equal(got, body) {
		t.Fatal("path-style read of the object written virtual-hosted differs")
	}

	s := &presign.Signer{Endpoint: endpoint, Region: Region, VirtualHosted: true,
		Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
	put := psPresign(t, s, "vproxied", "presigned.pdf", presign.Options{Method: "PUT", ContentType: "application/pdf"})
	if !strings.HasPrefix(put.URL, "http://vproxied."+domain+":") {
		t.Fatalf("presigned URL is not virtual-hosted: %s", put.URL)
	}
	resp, rb := psSend(t, hc, "PUT", put.URL, put.Headers, body)
	psStatus(t, "presigned virtual-hosted PUT via nginx", resp, rb, 200)
	get := psPresign(t, s, "vproxied", "presigned.pdf", presign.Options{})
	resp, rb = psSend(t, hc, "GET", get.URL, nil, nil)
	psStatus(t, "presigned virtual-hosted GET via nginx", resp, rb, 200)
	if !bytes.Equal(rb, body) {
		t.Fatalf("presigned virtual-hosted GET via nginx: %d bytes, want %d", len(rb), len(body))
	}
}

// TestSignedHostSettings checks, without a proxy, which host signatures are
// verified for under --public-url and --trust-proxy, so the rules hold on a
// machine without nginx too.
func TestSignedHostSettings(t *testing.T) {
	NoEnv(t)
	signFor := func(endpoint string) string {
		s := &presign.Signer{Endpoint: endpoint, Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
		return psPresign(t, s, "proxied", "k", presign.Options{}).URL
	}
	// get sends a URL minted for one host to the store at srv, with the
	// given Host and extra headers, as a proxy would forward it.
	get := func(srv *Server, rawURL, host string, hdr http.Header) (*http.Response, []byte) {
		_, query, _ := strings.Cut(rawURL, "?")
		h := hdr.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Host", host)
		return psCall(t, "GET", srv.URL+"/proxied/k?"+query, h, nil)
	}
	put := func(srv *Server) {
		if _, err := srv.SDK(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("proxied"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("public URL", func(t *testing.T) {
		srv := proxiedStore(t, func(c *server.Config) { c.PublicURL = "https://" + proxyPublicHost + ":443/" })
		put(srv) // header-signed for the store's own address: accepted
		public := signFor("https://" + proxyPublicHost)
		for _, host := range []string{srv.Addr, "10.0.0.5:9000", proxyPublicHost} {
			resp, rb := get(srv, public, host, nil)
			psStatus(t, "public URL received as "+host, resp, rb, 200)
		}
		resp, rb := get(srv, signFor(srv.URL), srv.Addr, nil)
		psStatus(t, "internal URL", resp, rb, 200)
		resp, rb = get(srv, signFor("https://elsewhere.example.com"), srv.Addr, nil)
		e := psFail(t, "URL for another host", resp, rb, 403, "SignatureDoesNotMatch", "")
		if !strings.Contains(e.CanonicalRequest, "\nhost:"+srv.Addr+"\n") {
			t.Fatalf("CanonicalRequest should show the host received:\n%s", e.CanonicalRequest)
		}
	})

	t.Run("X-Forwarded-Host", func(t *testing.T) {
		u := signFor("https://" + proxyPublicHost)
		fwd := http.Header{"X-Forwarded-Host": {proxyPublicHost + ", proxy.internal"}, "X-Forwarded-Proto": {"https"}}

		plain := proxiedStore(t)
		put(plain)
		resp, rb := get(plain, u, plain.Addr, fwd)
		e := psFail(t, "X-Forwarded-Host without --trust-proxy", resp, rb, 403, "SignatureDoesNotMatch", "")
		if !strings.Contains(e.CanonicalRequest, "\nhost:"+plain.Addr+"\n") {
			t.Fatalf("an untrusted X-Forwarded-Host was used:\n%s", e.CanonicalRequest)
		}

		trusting := proxiedStore(t, func(c *server.Config) { c.TrustProxy = true })
		put(trusting)
		resp, rb = get(trusting, u, trusting.Addr, fwd)
		psStatus(t, "X-Forwarded-Host with --trust-proxy", resp, rb, 200)
		resp, rb = get(trusting, signFor(trusting.URL), trusting.Addr, nil)
		psStatus(t, "no X-Forwarded-Host with --trust-proxy", resp, rb, 200)
	})

	// A proxy that rewrites Host sends the client's host in
	// X-Forwarded-Host: with --trust-proxy, a virtual-hosted request is
	// routed by that host, the same one its signature is checked against.
	t.Run("virtual-hosted via X-Forwarded-Host", func(t *testing.T) {
		srv := proxiedStore(t, func(c *server.Config) { c.TrustProxy = true; c.Domain = proxyPublicHost })
		put(srv)
		s := &presign.Signer{Endpoint: "https://" + proxyPublicHost, VirtualHosted: true,
			Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
		u := psPresign(t, s, "proxied", "k", presign.Options{}).URL
		_, query, _ := strings.Cut(u, "?")
		h := http.Header{"X-Forwarded-Host": {"proxied." + proxyPublicHost}, "X-Forwarded-Proto": {"https"}}
		h.Set("Host", srv.Addr)
		resp, rb := psCall(t, "GET", srv.URL+"/k?"+query, h, nil)
		psStatus(t, "virtual-hosted GET with the bucket host in X-Forwarded-Host", resp, rb, 200)
		if string(rb) != "v" {
			t.Fatalf("body %q, want %q", rb, "v")
		}
	})
}
