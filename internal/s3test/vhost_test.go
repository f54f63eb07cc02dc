package s3test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/presign"
)

// loopbackClient resolves every host name to the test server, so that
// BUCKET.s3.nfyio.test reaches it without DNS.
func loopbackClient(addr string) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestVirtualHostedAddressing(t *testing.T) {
	NoEnv(t)
	srv := Start(t, func(c *server.Config) { c.Domain = "s3.nfyio.test" })
	_, port, _ := net.SplitHostPort(srv.Addr)
	endpoint := "http://s3.nfyio.test:" + port
	hc := loopbackClient(srv.Addr)
	c := srv.SDK(t, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = false
		o.HTTPClient = hc
	})
	ctx := context.Background()
	mustCreate(t, c, "vhost")
	body := []byte("virtual hosted body")
	key := "dir/a b+c.txt"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("virtual-hosted put: %v", err)
	}
	if got := getBody(t, c, "vhost", key); !bytes.Equal(got, body) {
		t.Fatalf("virtual-hosted get: %q", got)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("vhost")})
	if err != nil || len(list.Contents) != 1 || *list.Contents[0].Key != key {
		t.Fatalf("virtual-hosted list: %+v %v", list, err)
	}
	// Path-style keeps working on the same server.
	if got := getBody(t, srv.SDK(t), "vhost", key); !bytes.Equal(got, body) {
		t.Fatalf("path-style get: %q", got)
	}
	// A presigned virtual-hosted URL.
	signer := presign.Signer{Endpoint: endpoint, Region: Region, VirtualHosted: true,
		Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
	u, err := signer.Presign("vhost", key, presign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.URL, "http://vhost.s3.nfyio.test:") {
		t.Fatalf("presigned URL is not virtual-hosted: %s", u.URL)
	}
	resp, err := hc.Get(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("presigned virtual-hosted GET: %d %q", resp.StatusCode, got)
	}
}
