package s3test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
)

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// apiCode returns the S3 error code of an SDK error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Fatalf("want error %s, got %v", code, err)
	}
}

func mustCreate(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}

func getBody(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuckets(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()

	mustCreate(t, c, "alpha")
	mustCreate(t, c, "beta.bucket-1")
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "BucketAlreadyOwnedByYou")
	for _, bad := range []string{"ab", "Upper", "under_score", "-start", "end-", "a..b", "192.168.1.1", "xn--abc", strings.Repeat("a", 64)} {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bad)})
		wantCode(t, err, "InvalidBucketName")
	}
	// A location constraint for another region is accepted.
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("gamma"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
	if err != nil {
		t.Fatal(err)
	}

	list, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range list.Buckets {
		names = append(names, *b.Name)
		if b.CreationDate == nil || time.Since(*b.CreationDate) > time.Minute {
			t.Errorf("bucket %s creation date %v", *b.Name, b.CreationDate)
		}
	}
	if strings.Join(names, ",") != "alpha,beta.bucket-1,gamma" {
		t.Fatalf("ListBuckets = %v", names)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("missing")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("HeadBucket missing: %v", err)
	}
	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	if err != nil || loc.LocationConstraint != "" {
		t.Fatalf("GetBucketLocation = %v, %v (us-east-1 is reported as empty)", loc, err)
	}
	ver, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("alpha")})
	if err != nil || ver.Status != "" {
		t.Fatalf("GetBucketVersioning = %+v, %v", ver, err)
	}

	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "BucketNotEmpty")
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k"), Body: strings.NewReader("x")})
	wantCode(t, err, "NoSuchBucket")
}

func TestObjectRoundTripWithChecksums(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "objs")

	for _, size := range []int{0, 1, 1000, 64 << 10, 64<<10 + 1, 3 << 20} {
		for _, alg := range []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256} {
			key := fmt.Sprintf("obj-%d-%s", size, alg)
			body := randBytes(size)
			in := &s3.PutObjectInput{Bucket: aws.String("objs"), Key: aws.String(key), Body: bytes.NewReader(body),
				ContentType: aws.String("application/x-test"), Metadata: map[string]string{"color": "blue", "Mixed-Case": "v"},
				ContentDisposition: aws.String(`attachment; filename="a b.bin"`), CacheControl: aws.String("max-age=60"),
				ContentLanguage: aws.String("en"), ContentEncoding: aws.String("identity")}
			if alg != "" {
				in.ChecksumAlgorithm = alg
			}
			put, err := c.PutObject(ctx, in)
			if err != nil {
				t.Fatalf("put %s: %v", key, err)
			}
			sum := md5.Sum(body)
			if want := fmt.Sprintf(`"%x"`, sum); aws.ToString(put.ETag) != want {
				t.Fatalf("put %s ETag %s, want %s", key, aws.ToString(put.ETag), want)
			}
			get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			got, err := io.ReadAll(get.Body)
			get.Body.Close()
			if err != nil {
				t.Fatalf("read %s: %v", key, err)
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("%s: body differs (%d vs %d bytes)", key, len(got), len(body))
			}
			if aws.ToString(get.ContentType) != "application/x-test" || get.Metadata["color"] != "blue" || get.Metadata["mixed-case"] != "v" ||
				aws.ToString(get.ContentDisposition) != `attachment; filename="a b.bin"` || aws.ToString(get.CacheControl) != "max-age=60" ||
				aws.ToString(get.ContentLanguage) != "en" || aws.ToString(get.ContentEncoding) != "identity" {
				t.Fatalf("%s: headers %+v", key, get)
			}
			switch alg {
			case types.ChecksumAlgorithmCrc32:
				if get.ChecksumCRC32 == nil || *get.ChecksumCRC32 != aws.ToString(put.ChecksumCRC32) {
					t.Fatalf("%s: CRC32 %v vs put %v", key, get.ChecksumCRC32, put.ChecksumCRC32)
				}
			case types.ChecksumAlgorithmSha256:
				if get.ChecksumSHA256 == nil || *get.ChecksumSHA256 != aws.ToString(put.ChecksumSHA256) {
					t.Fatalf("%s: SHA256 %v vs put %v", key, get.ChecksumSHA256, put.ChecksumSHA256)
				}
			case types.ChecksumAlgorithmCrc64nvme:
				if get.ChecksumCRC64NVME == nil || *get.ChecksumCRC64NVME != aws.ToString(put.ChecksumCRC64NVME) {
					t.Fatalf("%s: CRC64NVME %v vs put %v", key, get.ChecksumCRC64NVME, put.ChecksumCRC64NVME)
				}
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("objs"), Key: aws.String(key)})
			if err != nil || aws.ToInt64(head.ContentLength) != int64(size) || aws.ToString(head.ETag) != aws.ToString(put.ETag) {
				t.Fatalf("head %s: %+v %v", key, head, err)
			}
		}
	}
	// aws-chunked framing is never stored or replayed.
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("objs"), Key: aws.String("obj-1000-CRC32")})
	if err != nil || aws.ToString(head.ContentEncoding) != "identity" {
		t.Fatalf("content-encoding %v %v", head.ContentEncoding, err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String("nope")})
	wantCode(t, err, "NoSuchKey")
}

func TestRangesAndConditionals(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "ranges")
	body := randBytes(200 << 10)
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("0123456789")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ranges"), Key: aws.String("small"), Body: bytes.NewReader(small)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, rng string
		from, to int // inclusive
		size     int
	}{
		{"k", "bytes=0-0", 0, 0, len(body)},
		{"k", "bytes=100-199", 100, 199, len(body)},
		{"k", "bytes=1000-", 1000, len(body) - 1, len(body)},
		{"k", "bytes=-500", len(body) - 500, len(body) - 1, len(body)},
		{"k", "bytes=0-99999999", 0, len(body) - 1, len(body)},
		{"small", "bytes=2-5", 2, 5, len(small)},
		{"small", "bytes=-100", 0, 9, len(small)},
	} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String(tc.key), Range: aws.String(tc.rng)})
		if err != nil {
			t.Fatalf("%s: %v", tc.rng, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		src := body
		if tc.key == "small" {
			src = small
		}
		if !bytes.Equal(got, src[tc.from:tc.to+1]) {
			t.Fatalf("%s: wrong bytes", tc.rng)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, tc.size); aws.ToString(out.ContentRange) != want {
			t.Fatalf("%s: Content-Range %q want %q", tc.rng, aws.ToString(out.ContentRange), want)
		}
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), Range: aws.String(fmt.Sprintf("bytes=%d-", len(body)))})
	wantCode(t, err, "InvalidRange")
	resp := srv.Signed(t, "GET", "/ranges/k", nil, http.Header{"Range": {"bytes=999999999-"}}, "")
	if resp.StatusCode != 416 || ErrorCode(t, resp) != "InvalidRange" {
		t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
	}

	etag := aws.ToString(put.ETag)
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), IfMatch: aws.String(`"nope"`)})
	wantCode(t, err, "PreconditionFailed")
	if _, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), IfMatch: aws.String(etag)}); err != nil {
		t.Fatal(err)
	}
	resp = srv.Signed(t, "GET", "/ranges/k", nil, http.Header{"If-None-Match": {etag}}, "")
	if resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	resp = srv.Signed(t, "GET", "/ranges/k", nil, http.Header{"If-Modified-Since": {future}}, "")
	if resp.StatusCode != 304 {
		t.Fatalf("If-Modified-Since future: %d", resp.StatusCode)
	}
	resp = srv.Signed(t, "GET", "/ranges/k", nil, http.Header{"If-Unmodified-Since": {past}}, "")
	if resp.StatusCode != 412 || ErrorCode(t, resp) != "PreconditionFailed" {
		t.Fatalf("If-Unmodified-Since past: %d", resp.StatusCode)
	}
	// If-Match true wins over a false If-Unmodified-Since (RFC 7232, as S3).
	resp = srv.Signed(t, "GET", "/ranges/k", nil, http.Header{"If-Match": {etag}, "If-Unmodified-Since": {past}}, "")
	if resp.StatusCode != 200 {
		t.Fatalf("If-Match + If-Unmodified-Since: %d", resp.StatusCode)
	}

	// Create-only writes.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), Body: strings.NewReader("new"), IfNoneMatch: aws.String("*")})
	wantCode(t, err, "PreconditionFailed")
	if _, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ranges"), Key: aws.String("fresh"), Body: strings.NewReader("new"), IfNoneMatch: aws.String("*")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), Body: strings.NewReader("new"), IfMatch: aws.String(`"other"`)})
	wantCode(t, err, "PreconditionFailed")
	if !bytes.Equal(getBody(t, c, "ranges", "k"), body) {
		t.Fatal("a refused conditional write changed the object")
	}
}

func TestCopyObject(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "src")
	mustCreate(t, c, "dst")
	body := randBytes(300 << 10)
	key := "dir/a key+with%odd chars/ü.bin"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("image/png"), Metadata: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}
	source := "src/" + url.PathEscape(key)
	source = strings.ReplaceAll(source, "%2F", "/")
	out, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), CopySource: aws.String(source)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(getBody(t, c, "dst", "copy"), body) {
		t.Fatal("copy body differs")
	}
	head, _ := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy")})
	if aws.ToString(head.ContentType) != "image/png" || head.Metadata["a"] != "1" || aws.ToString(head.ETag) != aws.ToString(out.CopyObjectResult.ETag) {
		t.Fatalf("COPY directive lost metadata: %+v", head)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy2"), CopySource: aws.String(source),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/plain"), Metadata: map[string]string{"b": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	head, _ = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy2")})
	if aws.ToString(head.ContentType) != "text/plain" || head.Metadata["b"] != "2" || head.Metadata["a"] != "" {
		t.Fatalf("REPLACE directive: %+v", head)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String(key), CopySource: aws.String(source)})
	wantCode(t, err, "InvalidRequest")
	if _, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String(key), CopySource: aws.String(source),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("image/webp")}); err != nil {
		t.Fatalf("copy onto itself with REPLACE: %v", err)
	}
	head, _ = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String(key)})
	if aws.ToString(head.ContentType) != "image/webp" {
		t.Fatalf("self copy content type %v", head.ContentType)
	}
	if !bytes.Equal(getBody(t, c, "src", key), body) {
		t.Fatal("self copy changed the body")
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("x"), CopySource: aws.String("src/missing")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("x"), CopySource: aws.String(source), CopySourceIfMatch: aws.String(`"zzz"`)})
	wantCode(t, err, "PreconditionFailed")
}

func TestListing(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "list")
	keys := []string{"a", "a/b", "a/b/c", "a/c", "b+plus", "b%percent", "b space", "c/", "c/..", "c/../d", "ünï/ç", "z" + strings.Repeat("k", 1000)}
	for _, k := range keys {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("list"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)

	// Page through v2 two at a time.
	var got []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("list"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			got = append(got, *o.Key)
		}
	}
	if strings.Join(got, "|") != strings.Join(sorted, "|") {
		t.Fatalf("v2 pages:\n got %q\nwant %q", got, sorted)
	}
	// Delimiter.
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, cp := range out.CommonPrefixes {
		prefixes = append(prefixes, *cp.Prefix)
	}
	if strings.Join(prefixes, ",") != "a/,c/,ünï/" {
		t.Fatalf("common prefixes %v", prefixes)
	}
	if aws.ToInt32(out.KeyCount) != int32(len(out.Contents)+len(out.CommonPrefixes)) {
		t.Fatalf("KeyCount %d", aws.ToInt32(out.KeyCount))
	}
	// Prefix + delimiter + start-after.
	out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), Prefix: aws.String("a/"), Delimiter: aws.String("/"), StartAfter: aws.String("a/b")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || *out.Contents[0].Key != "a/c" || len(out.CommonPrefixes) != 1 || *out.CommonPrefixes[0].Prefix != "a/b/" {
		t.Fatalf("prefix+start-after: %+v", out)
	}
	// v1 with marker.
	v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("list"), Marker: aws.String("b space"), MaxKeys: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.Contents) != 3 || *v1.Contents[0].Key != "b%percent" || !aws.ToBool(v1.IsTruncated) || v1.Contents[0].Owner == nil {
		t.Fatalf("v1 marker page: %+v", v1.Contents)
	}
	// encoding-type=url round-trips odd keys (the SDK decodes them).
	enc, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), EncodingType: types.EncodingTypeUrl, Prefix: aws.String("b")})
	if err != nil {
		t.Fatal(err)
	}
	var encKeys []string
	for _, o := range enc.Contents {
		// aws-sdk-go-v2 leaves encoded keys to the caller.
		k, err := url.QueryUnescape(*o.Key)
		if err != nil {
			t.Fatal(err)
		}
		encKeys = append(encKeys, k)
	}
	if strings.Join(encKeys, "|") != "b space|b%percent|b+plus" {
		t.Fatalf("encoded listing %q", encKeys)
	}
	resp := srv.Signed(t, "GET", "/list?list-type=2&encoding-type=url&prefix=b", nil, nil, "")
	raw, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(raw), "<Key>b%20space</Key>") || !strings.Contains(string(raw), "<Key>b%2Bplus</Key>") {
		t.Fatalf("raw encoded listing: %s", raw)
	}
	// Fetch-owner and max-keys validation.
	resp = srv.Signed(t, "GET", "/list?list-type=2&max-keys=abc", nil, nil, "")
	if resp.StatusCode != 400 || ErrorCode(t, resp) != "InvalidArgument" {
		t.Fatalf("bad max-keys: %d", resp.StatusCode)
	}
	// Object versions of an unversioned bucket: one null version each.
	vers, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("list"), MaxKeys: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	if len(vers.Versions) != 5 || aws.ToString(vers.Versions[0].VersionId) != "null" || !aws.ToBool(vers.Versions[0].IsLatest) ||
		!aws.ToBool(vers.IsTruncated) || aws.ToString(vers.NextKeyMarker) != *vers.Versions[4].Key {
		t.Fatalf("versions: %+v", vers)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("list"), Key: aws.String("a"), VersionId: aws.String("null")}); err != nil {
		t.Fatalf("GET versionId=null: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("list"), Key: aws.String("a"), VersionId: aws.String("null")}); err != nil {
		t.Fatalf("DELETE versionId=null: %v", err)
	}
}

func TestDeleteObjects(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "del")
	var ids []types.ObjectIdentifier
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("k%02d", i)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("del"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	ids = append(ids, types.ObjectIdentifier{Key: aws.String("never-existed")})
	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: ids[:10]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 10 || len(out.Errors) != 0 {
		t.Fatalf("deleted %d errors %d", len(out.Deleted), len(out.Errors))
	}
	out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: ids[10:], Quiet: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Fatalf("quiet: deleted %d errors %d", len(out.Deleted), len(out.Errors))
	}
	list, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("del")})
	if len(list.Contents) != 0 {
		t.Fatalf("left %d objects", len(list.Contents))
	}
	// Malformed XML changes nothing.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("del"), Key: aws.String("keep"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	bad := []byte("<Delete><Object><Key>keep</Key></Object>")
	sum := md5.Sum(bad)
	resp := srv.Signed(t, "POST", "/del?delete", bad, http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(sum[:])}}, "")
	if resp.StatusCode != 400 || ErrorCode(t, resp) != "MalformedXML" {
		t.Fatalf("malformed delete: %d", resp.StatusCode)
	}
	// Without Content-MD5 or a checksum S3 refuses the request.
	good := []byte("<Delete><Object><Key>keep</Key></Object></Delete>")
	resp = srv.Signed(t, "POST", "/del?delete", good, nil, "")
	if resp.StatusCode != 400 || ErrorCode(t, resp) != "InvalidRequest" {
		t.Fatalf("delete without md5: %d", resp.StatusCode)
	}
	if string(getBody(t, c, "del", "keep")) != "x" {
		t.Fatal("refused DeleteObjects deleted something")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "bad")
	orig := []byte("original content")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bad"), Key: aws.String("k"), Body: bytes.NewReader(orig)}); err != nil {
		t.Fatal(err)
	}
	body := []byte("replacement body")
	for _, tc := range []struct {
		name, code string
		status     int
		hdr        http.Header
		hash       string
	}{
		{"malformed Content-MD5", "InvalidDigest", 400, http.Header{"Content-Md5": {"not-base64!"}}, ""},
		{"wrong Content-MD5", "BadDigest", 400, http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(make([]byte, 16))}}, ""},
		{"wrong crc32", "BadDigest", 400, http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, ""},
		{"wrong sha256 checksum", "BadDigest", 400, http.Header{"X-Amz-Checksum-Sha256": {base64.StdEncoding.EncodeToString(make([]byte, 32))}}, ""},
		{"payload hash mismatch", "XAmzContentSHA256Mismatch", 400, nil, strings.Repeat("ab", 32)},
	} {
		resp := srv.Signed(t, "PUT", "/bad/k", body, tc.hdr, tc.hash)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d", tc.name, resp.StatusCode)
		}
		if code := ErrorCode(t, resp); code != tc.code {
			t.Errorf("%s: code %s want %s", tc.name, code, tc.code)
		}
	}
	// Over-long key.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bad"), Key: aws.String(strings.Repeat("k", 1025)), Body: strings.NewReader("x")})
	wantCode(t, err, "KeyTooLongError")
	if !bytes.Equal(getBody(t, c, "bad", "k"), orig) {
		t.Fatal("a refused PUT changed the object")
	}
	list, _ := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bad")})
	if len(list.Contents) != 1 {
		t.Fatalf("refused PUTs stored objects: %d", len(list.Contents))
	}
}

func TestMinioStreamingUpload(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	mc := srv.Minio(t)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "mini", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 100, 70 << 10, 1<<20 + 17} {
		body := randBytes(size)
		key := fmt.Sprintf("m-%d", size)
		info, err := mc.PutObject(ctx, "mini", key, bytes.NewReader(body), int64(size), minio.PutObjectOptions{ContentType: "text/x", UserMetadata: map[string]string{"k": "v"}})
		if err != nil {
			t.Fatalf("minio put %d: %v", size, err)
		}
		if info.Size != int64(size) {
			t.Fatalf("size %d", info.Size)
		}
		obj, err := mc.GetObject(ctx, "mini", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("minio get %d: %v", size, err)
		}
		st, err := mc.StatObject(ctx, "mini", key, minio.StatObjectOptions{})
		if err != nil || st.ContentType != "text/x" || st.UserMetadata["K"] != "v" {
			t.Fatalf("stat: %+v %v", st, err)
		}
	}
	var n int
	for o := range mc.ListObjects(ctx, "mini", minio.ListObjectsOptions{}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("listed %d", n)
	}
}
