package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"nfyio.dev/storage/internal/s3test"
)

// TestIdleRelease: a running server trims its memory once requests stop,
// and says so in nfyio_idle_releases_total.
func TestIdleRelease(t *testing.T) {
	s3test.NoEnv(t)
	srv := s3test.Start(t)
	c := srv.SDK(t)
	ctx := t.Context()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("idle")}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("idle"), Key: aws.String(fmt.Sprintf("o%03d", i)),
			Body: bytes.NewReader(bytes.Repeat([]byte{'x'}, 4096)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("idle")})
	if err != nil || len(out.Contents) != 50 {
		t.Fatalf("list: %v", err)
	}

	// Each scrape is a request too, so scrape less often than the idle
	// delay, or the server would never be idle.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v := releases(t, srv.URL); v >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no idle release within 20 s of the last request")
		}
		time.Sleep(1500 * time.Millisecond)
	}
}

func releases(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/_nfyio/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "nfyio_idle_releases_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatal("no nfyio_idle_releases_total in /_nfyio/metrics")
	return 0
}
