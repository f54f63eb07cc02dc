package s3test

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"nfyio.dev/storage/internal/server"
)

// TestDirectIORoundTrip runs the large-body paths with --direct-io: PUTs
// through the pipelined copy (SDK aws-chunked bodies with trailing
// checksums, and a plain signed body), a multipart upload with a copied
// part, and CopyObject, each read back byte for byte.
func TestDirectIORoundTrip(t *testing.T) {
	NoEnv(t)
	srv := Start(t, func(c *server.Config) { c.DirectIO = true })
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "direct")

	for _, tc := range []struct {
		size int
		alg  types.ChecksumAlgorithm
	}{
		{4 << 20, ""},
		{9<<20 + 777, types.ChecksumAlgorithmCrc32c},
		{5<<20 - 1, types.ChecksumAlgorithmSha256},
	} {
		key := fmt.Sprintf("obj-%d-%s", tc.size, tc.alg)
		body := randBytes(tc.size)
		in := &s3.PutObjectInput{Bucket: aws.String("direct"), Key: aws.String(key), Body: bytes.NewReader(body)}
		if tc.alg != "" {
			in.ChecksumAlgorithm = tc.alg
		}
		put, err := c.PutObject(ctx, in)
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		if want := fmt.Sprintf(`"%x"`, md5.Sum(body)); aws.ToString(put.ETag) != want {
			t.Fatalf("put %s: ETag %s, want %s", key, aws.ToString(put.ETag), want)
		}
		if !bytes.Equal(getBody(t, c, "direct", key), body) {
			t.Fatalf("%s: body differs", key)
		}
	}

	// A plain signed body (no aws-chunked framing), the way presigned and
	// raw HTTP uploads arrive.
	plain := randBytes(6<<20 + 3)
	resp := srv.Signed(t, http.MethodPut, "/direct/plain", plain, nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain PUT: %s", resp.Status)
	}
	if !bytes.Equal(getBody(t, c, "direct", "plain"), plain) {
		t.Fatal("plain: body differs")
	}

	// Multipart: a 5 MiB part written directly, a copied part, a short
	// last part.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("direct"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	part1 := randBytes(5 << 20)
	p1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("direct"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("direct"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(2), CopySource: aws.String("direct/plain"), CopySourceRange: aws.String("bytes=1-5242880")})
	if err != nil {
		t.Fatal(err)
	}
	part3 := randBytes(1000)
	p3, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("direct"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(3), Body: bytes.NewReader(part3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("direct"), Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: p1.ETag}, {PartNumber: aws.Int32(2), ETag: p2.CopyPartResult.ETag}, {PartNumber: aws.Int32(3), ETag: p3.ETag},
		}}}); err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{part1, plain[1 : 5<<20+1], part3}, nil)
	if !bytes.Equal(getBody(t, c, "direct", "mp"), want) {
		t.Fatal("multipart object differs")
	}

	// CopyObject of the whole multipart object into one new blob.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("direct"), Key: aws.String("mp-copy"), CopySource: aws.String("direct/mp")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("direct"), Key: aws.String("mp-copy"), Range: aws.String("bytes=5242000-5243999")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, want[5242000:5244000]) {
		t.Fatal("copied object: range across the part boundary differs")
	}
	if !bytes.Equal(getBody(t, c, "direct", "mp-copy"), want) {
		t.Fatal("copied object differs")
	}
}
