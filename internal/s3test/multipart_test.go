package s3test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/presign"
)

const mpMiB = 1 << 20

// --- expected values, computed independently of the server ---

// mpSplit cuts data into parts of size bytes (the last one shorter).
func mpSplit(data []byte, size int) [][]byte {
	var parts [][]byte
	for len(data) > size {
		parts = append(parts, data[:size])
		data = data[size:]
	}
	return append(parts, data)
}

// mpETag is S3's ETag of a multipart object: the MD5 of the parts'
// binary MD5s, a dash and the part count.
func mpETag(parts [][]byte) string {
	all := md5.New()
	for _, p := range parts {
		sum := md5.Sum(p)
		all.Write(sum[:])
	}
	return hex.EncodeToString(all.Sum(nil)) + "-" + strconv.Itoa(len(parts))
}

func mpMD5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func mpHash(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "CRC64NVME":
		// CRC-64/NVME in the reflected form hash/crc64 takes.
		return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5))
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	panic("unknown algorithm " + alg)
}

func mpDigest(alg string, b []byte) []byte {
	h := mpHash(alg)
	h.Write(b)
	return h.Sum(nil)
}

func mpB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// mpChecksum is the base64 checksum of b, as in x-amz-checksum-* headers.
func mpChecksum(alg string, b []byte) string { return mpB64(mpDigest(alg, b)) }

// mpComposite is S3's COMPOSITE checksum: the checksum of the concatenated
// raw part checksums, a dash and the part count.
func mpComposite(alg string, parts [][]byte) string {
	var cat []byte
	for _, p := range parts {
		cat = append(cat, mpDigest(alg, p)...)
	}
	return mpChecksum(alg, cat) + "-" + strconv.Itoa(len(parts))
}

func mpSHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// --- blob accounting ---

// mpAssertNoOrphans stops the server, then compares the blob files on disk
// with the blobs the metadata references (objects' segments and the parts of
// uploads still in progress): every file must be referenced and every
// reference must have its file.
func mpAssertNoOrphans(t *testing.T, srv *Server) {
	t.Helper()
	ctx := context.Background()
	meta, _ := srv.Srv.Storage()
	refs := map[string]string{} // blob -> what references it
	buckets, err := meta.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buckets {
		opts := storage.ListOptions{MaxKeys: 1000}
		for {
			page, err := meta.ListObjects(ctx, b.Name, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Objects {
				for _, s := range o.Segments {
					refs[s.Blob] = "object " + b.Name + "/" + o.Key
				}
			}
			if !page.IsTruncated {
				break
			}
			opts.After = page.NextAfter
		}
		uopts := storage.ListUploadsOptions{MaxUploads: 1000}
		for {
			page, err := meta.ListUploads(ctx, b.Name, uopts)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page.Uploads {
				parts, _, err := meta.ListParts(ctx, u.Bucket, u.Key, u.ID, 0, 10000)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range parts {
					refs[p.Segment.Blob] = fmt.Sprintf("part %d of upload %s of %s/%s", p.Number, u.ID, u.Bucket, u.Key)
				}
			}
			if !page.IsTruncated || len(page.Uploads) == 0 {
				break
			}
			last := page.Uploads[len(page.Uploads)-1]
			uopts.KeyMarker, uopts.UploadIDMarker = last.Key, last.ID
		}
	}
	files := srv.BlobRefs(t)
	for f := range files {
		if _, ok := refs[f]; !ok {
			t.Errorf("orphan blob %s: no object or upload references it", f)
		}
	}
	for ref, what := range refs {
		if !files[ref] {
			t.Errorf("%s references blob %s, which is missing", what, ref)
		}
	}
}

// --- clients ---

// mpTLSClient serves the store's handler over TLS as well and returns an SDK
// client for it: over https the SDK sends streamed bodies as aws-chunked
// with a trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER), its default.
func mpTLSClient(t *testing.T, srv *Server) (*s3.Client, func()) {
	t.Helper()
	ts := httptest.NewTLSServer(srv.Srv.Handler())
	var once sync.Once
	stop := func() { once.Do(ts.Close) }
	t.Cleanup(stop)
	tr := ts.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c := srv.SDK(t, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(ts.URL)
		o.HTTPClient = &http.Client{Transport: tr}
	})
	return c, stop
}

func mpHdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// mpWantStatus checks a raw response's status and S3 error code.
func mpWantStatus(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	got := ErrorCode(t, resp)
	if resp.StatusCode != status || got != code {
		t.Fatalf("%s %s: got %d %q, want %d %q", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, got, status, code)
	}
}

func mpCreate(t *testing.T, c *s3.Client, in *s3.CreateMultipartUploadInput) string {
	t.Helper()
	out, err := c.CreateMultipartUpload(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", aws.ToString(in.Key), err)
	}
	return aws.ToString(out.UploadId)
}

func mpUploadPart(t *testing.T, c *s3.Client, bucket, key, id string, n int32, body []byte, alg types.ChecksumAlgorithm) *s3.UploadPartOutput {
	t.Helper()
	out, err := c.UploadPart(context.Background(), &s3.UploadPartInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id),
		PartNumber: aws.Int32(n), Body: bytes.NewReader(body), ChecksumAlgorithm: alg,
	})
	if err != nil {
		t.Fatalf("UploadPart %d: %v", n, err)
	}
	return out
}

func mpComplete(c *s3.Client, bucket, key, id string, parts ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
	return c.CompleteMultipartUpload(context.Background(), &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
}

func mpPart(n int32, etag string) types.CompletedPart {
	return types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etag)}
}

func mpGetRange(t *testing.T, c *s3.Client, bucket, key, rng string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(rng)})
	if err != nil {
		t.Fatalf("GET %s %s: %v", key, rng, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GET %s %s: read: %v", key, rng, err)
	}
	return b, out
}

func mpUploads(t *testing.T, c *s3.Client, bucket string) []types.MultipartUpload {
	t.Helper()
	out, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	return out.Uploads
}

// --- tests ---

// TestMultipartUploadManager uploads a 70 MiB object with the SDK's upload
// manager at its defaults (5 MiB parts sent by 5 goroutines, CRC32 part
// checksums in trailers over TLS), then reads it back whole, by range across
// three parts and by part number.
func TestMultipartUploadManager(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c, stopTLS := mpTLSClient(t, srv)
	ctx := context.Background()
	mustCreate(t, c, "big")
	data := randBytes(70*mpMiB + 1234)
	parts := mpSplit(data, int(manager.DefaultUploadPartSize))

	// The issue names the upload manager: most applications still use it.
	//lint:ignore SA1019 deprecated in favour of transfermanager, still what users run
	up := manager.NewUploader(c)
	//lint:ignore SA1019 see above
	out, err := up.Upload(ctx, &s3.PutObjectInput{
		Bucket: aws.String("big"), Key: aws.String("dir/seventy.bin"), Body: bytes.NewReader(data),
		ContentType: aws.String("application/x-seventy"), Metadata: map[string]string{"origin": "manager"},
	})
	if err != nil {
		t.Fatalf("upload manager: %v", err)
	}
	if len(out.CompletedParts) != len(parts) {
		t.Fatalf("manager uploaded %d parts, want %d", len(out.CompletedParts), len(parts))
	}
	if got, want := aws.ToString(out.ETag), `"`+mpETag(parts)+`"`; got != want {
		t.Fatalf("ETag %s, want %s", got, want)
	}
	wantCRC := mpComposite("CRC32", parts)
	if got := aws.ToString(out.ChecksumCRC32); got != wantCRC || out.ChecksumType != types.ChecksumTypeComposite {
		t.Fatalf("Complete checksum %q %q, want %q COMPOSITE", got, out.ChecksumType, wantCRC)
	}
	if n := len(mpUploads(t, c, "big")); n != 0 {
		t.Fatalf("%d uploads still listed after completion", n)
	}

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("dir/seventy.bin"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.ContentType) != "application/x-seventy" || head.Metadata["origin"] != "manager" {
		t.Fatalf("HEAD: length %d type %q meta %v", aws.ToInt64(head.ContentLength), aws.ToString(head.ContentType), head.Metadata)
	}
	// The S3 reference: HeadObject with checksum mode returns the checksum of
	// the part checksums, suffixed "-N", with x-amz-checksum-type COMPOSITE.
	if aws.ToString(head.ChecksumCRC32) != wantCRC || head.ChecksumType != types.ChecksumTypeComposite {
		t.Fatalf("HEAD checksum %q %q, want %q COMPOSITE", aws.ToString(head.ChecksumCRC32), head.ChecksumType, wantCRC)
	}
	raw := srv.Signed(t, http.MethodHead, "/big/dir/seventy.bin", nil, mpHdr("X-Amz-Checksum-Mode", "ENABLED"), "")
	if raw.Header.Get("X-Amz-Checksum-Crc32") != wantCRC || raw.Header.Get("X-Amz-Checksum-Type") != "COMPOSITE" {
		t.Fatalf("raw HEAD checksum headers %v", raw.Header)
	}
	if !strings.HasSuffix(wantCRC, "-15") {
		t.Fatalf("composite %q should end in -15", wantCRC)
	}

	// A whole GET with the SDK's default response validation (checksum mode
	// on): it must accept the composite value instead of failing.
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("dir/seventy.bin")})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, get.Body)
	get.Body.Close()
	if err != nil || n != int64(len(data)) || hex.EncodeToString(h.Sum(nil)) != mpSHA256Hex(data) {
		t.Fatalf("GET: %d bytes, err %v, digest mismatch=%v", n, err, hex.EncodeToString(h.Sum(nil)) != mpSHA256Hex(data))
	}

	// A range across three parts: the tail of part 1, all of part 2, the
	// head of part 3.
	a, b := 5*mpMiB-7, 10*mpMiB+7
	body, rout := mpGetRange(t, c, "big", "dir/seventy.bin", fmt.Sprintf("bytes=%d-%d", a, b))
	if !bytes.Equal(body, data[a:b+1]) {
		t.Fatalf("range across parts: %d bytes, wrong content", len(body))
	}
	if got, want := aws.ToString(rout.ContentRange), fmt.Sprintf("bytes %d-%d/%d", a, b, len(data)); got != want {
		t.Fatalf("Content-Range %q, want %q", got, want)
	}
	// A suffix range lands in the short last part.
	body, _ = mpGetRange(t, c, "big", "dir/seventy.bin", "bytes=-2000")
	if !bytes.Equal(body, data[len(data)-2000:]) {
		t.Fatal("suffix range across the last part boundary: wrong content")
	}

	// Reading by part number.
	ph, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("dir/seventy.bin"), PartNumber: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(ph.PartsCount) != int32(len(parts)) || aws.ToInt64(ph.ContentLength) != int64(len(parts[2])) ||
		aws.ToString(ph.ContentRange) != fmt.Sprintf("bytes %d-%d/%d", 10*mpMiB, 15*mpMiB-1, len(data)) {
		t.Fatalf("HEAD partNumber=3: count %d length %d range %q", aws.ToInt32(ph.PartsCount), aws.ToInt64(ph.ContentLength), aws.ToString(ph.ContentRange))
	}
	last, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("dir/seventy.bin"), PartNumber: aws.Int32(int32(len(parts)))})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := io.ReadAll(last.Body)
	last.Body.Close()
	if err != nil || !bytes.Equal(lb, parts[len(parts)-1]) || aws.ToInt32(last.PartsCount) != int32(len(parts)) {
		t.Fatalf("GET last part: %d bytes, err %v, parts count %d", len(lb), err, aws.ToInt32(last.PartsCount))
	}

	// The object references one blob per part; nothing else is stored.
	if got := len(srv.BlobRefs(t)); got != len(parts) {
		t.Fatalf("%d blob files, want one per part (%d)", got, len(parts))
	}
	stopTLS()
	mpAssertNoOrphans(t, srv)
}

// TestMultipartManagerCRC64NVME uploads with the manager and a CRC64NVME
// checksum: a FULL_OBJECT checksum the store combines from the parts' CRCs,
// which Complete checks against the whole-object value the client sent and
// which the SDK then validates on GET.
func TestMultipartManagerCRC64NVME(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c, stopTLS := mpTLSClient(t, srv)
	ctx := context.Background()
	mustCreate(t, c, "nvme")
	data := randBytes(12*mpMiB + 77)
	want := mpChecksum("CRC64NVME", data)

	//lint:ignore SA1019 the upload manager is what applications still use
	out, err := manager.NewUploader(c).Upload(ctx, &s3.PutObjectInput{
		Bucket: aws.String("nvme"), Key: aws.String("full.bin"), Body: bytes.NewReader(data),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme, ChecksumCRC64NVME: aws.String(want),
	})
	if err != nil {
		t.Fatalf("upload manager: %v", err)
	}
	if aws.ToString(out.ChecksumCRC64NVME) != want || out.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("Complete checksum %q %q, want %q FULL_OBJECT", aws.ToString(out.ChecksumCRC64NVME), out.ChecksumType, want)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("nvme"), Key: aws.String("full.bin"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ChecksumCRC64NVME) != want || head.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("HEAD checksum %q %q, want %q FULL_OBJECT", aws.ToString(head.ChecksumCRC64NVME), head.ChecksumType, want)
	}
	// The SDK validates a FULL_OBJECT checksum against the bytes it reads.
	if got := getBody(t, c, "nvme", "full.bin"); !bytes.Equal(got, data) {
		t.Fatal("GET returned other bytes")
	}

	// A whole-object value that does not match the parts fails Complete and
	// leaves the upload in place.
	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("nvme"), Key: aws.String("bad.bin"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme, ChecksumType: types.ChecksumTypeFullObject})
	parts := mpSplit(data, 6*mpMiB)
	var done []types.CompletedPart
	for i, p := range parts {
		o := mpUploadPart(t, c, "nvme", "bad.bin", id, int32(i+1), p, types.ChecksumAlgorithmCrc64nvme)
		if aws.ToString(o.ChecksumCRC64NVME) != mpChecksum("CRC64NVME", p) {
			t.Fatalf("part %d checksum %q", i+1, aws.ToString(o.ChecksumCRC64NVME))
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: o.ETag, ChecksumCRC64NVME: o.ChecksumCRC64NVME})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("nvme"), Key: aws.String("bad.bin"), UploadId: aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}, ChecksumType: types.ChecksumTypeFullObject,
		ChecksumCRC64NVME: aws.String(mpChecksum("CRC64NVME", data[1:])),
	})
	wantCode(t, err, "BadDigest")
	if n := len(mpUploads(t, c, "nvme")); n != 1 {
		t.Fatalf("%d uploads listed after a failed Complete, want 1", n)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("nvme"), Key: aws.String("bad.bin"), UploadId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	stopTLS()
	mpAssertNoOrphans(t, srv)
}

// TestMultipartMinio uploads files with minio-go's FPutObject: its default
// client sends parts concurrently as STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// signed chunks; a client with trailing headers adds CRC32C checksums in
// signed trailers.
func TestMultipartMinio(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	ctx := context.Background()
	mc := srv.Minio(t)
	if err := mc.MakeBucket(ctx, "mini", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := randBytes(70*mpMiB + 777)
	src := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := mc.FPutObject(ctx, "mini", "f.bin", src, minio.PutObjectOptions{ContentType: "video/mp4", UserMetadata: map[string]string{"who": "minio"}})
	if err != nil {
		t.Fatalf("FPutObject: %v", err)
	}
	// minio-go picks its own part size; HEAD partNumber=1 tells which.
	st, err := mc.StatObject(ctx, "mini", "f.bin", minio.StatObjectOptions{PartNumber: 1})
	if err != nil {
		t.Fatal(err)
	}
	parts := mpSplit(data, int(st.Size))
	if len(parts) < 2 {
		t.Fatalf("part 1 is %d bytes: not a multipart upload", st.Size)
	}
	if want := mpETag(parts); info.ETag != want {
		t.Fatalf("FPutObject ETag %s, want %s", info.ETag, want)
	}
	st, err = mc.StatObject(ctx, "mini", "f.bin", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(data)) || st.ContentType != "video/mp4" || st.UserMetadata["Who"] != "minio" {
		t.Fatalf("stat: size %d type %q meta %v", st.Size, st.ContentType, st.UserMetadata)
	}
	dst := filepath.Join(dir, "dst.bin")
	if err := mc.FGetObject(ctx, "mini", "f.bin", dst, minio.GetObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("FGetObject: %d bytes, err %v", len(got), err)
	}

	// Signed chunks with a signed trailer carrying each part's CRC32C.
	tc, err := minio.New(srv.Addr, &minio.Options{
		Creds: miniocreds.NewStaticV4(RootAccessKey, RootSecretKey, ""), Region: Region, TrailingHeaders: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	small := data[:20*mpMiB+5]
	tinfo, err := tc.PutObject(ctx, "mini", "trailer.bin", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{PartSize: 5 * mpMiB})
	if err != nil {
		t.Fatalf("PutObject with trailers: %v", err)
	}
	tparts := mpSplit(small, 5*mpMiB)
	if tinfo.ETag != mpETag(tparts) {
		t.Fatalf("ETag %s, want %s", tinfo.ETag, mpETag(tparts))
	}
	c := srv.SDK(t)
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("mini"), Key: aws.String("trailer.bin"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if head.ChecksumCRC32C == nil {
		t.Fatalf("no CRC32C stored for an upload whose parts carried one (type %q)", head.ChecksumType)
	}
	var wantC string
	switch head.ChecksumType {
	case types.ChecksumTypeComposite:
		wantC = mpComposite("CRC32C", tparts)
	case types.ChecksumTypeFullObject:
		wantC = mpChecksum("CRC32C", small)
	}
	if aws.ToString(head.ChecksumCRC32C) != wantC {
		t.Fatalf("CRC32C %q (%s), want %q", aws.ToString(head.ChecksumCRC32C), head.ChecksumType, wantC)
	}
	if n := len(mpUploads(t, c, "mini")); n != 0 {
		t.Fatalf("%d uploads left", n)
	}
	mpAssertNoOrphans(t, srv)
}

// TestMultipartLifecycle drives each operation with the SDK's low-level
// calls: creation with content headers, metadata and a checksum algorithm,
// parts sent concurrently and out of order, a part replaced, listing,
// completion that references the parts' blobs without copying them, and
// reads by part number.
func TestMultipartLifecycle(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "life")
	const key = "photos/big.raw"

	cout, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String("life"), Key: aws.String(key),
		ContentType: aws.String("image/x-raw"), CacheControl: aws.String("max-age=60"), ContentDisposition: aws.String("attachment"),
		Metadata: map[string]string{"camera": "x100", "Mixed-Case": "v"}, ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(cout.UploadId)
	if cout.ChecksumAlgorithm != types.ChecksumAlgorithmSha256 || cout.ChecksumType != types.ChecksumTypeComposite {
		t.Fatalf("create: checksum %q %q", cout.ChecksumAlgorithm, cout.ChecksumType)
	}
	// An unfinished upload is listed, with its checksum algorithm.
	ups := mpUploads(t, c, "life")
	if len(ups) != 1 || aws.ToString(ups[0].Key) != key || aws.ToString(ups[0].UploadId) != id || ups[0].ChecksumAlgorithm != types.ChecksumAlgorithmSha256 || ups[0].Initiated == nil {
		t.Fatalf("uploads %+v", ups)
	}

	data := randBytes(11*mpMiB + 3)
	parts := mpSplit(data, 5*mpMiB)
	// Part 2 first with content that is then replaced.
	stale := mpUploadPart(t, c, "life", key, id, 2, randBytes(5*mpMiB), types.ChecksumAlgorithmSha256)
	// All three parts at once, launched last part first.
	outs := make([]*s3.UploadPartOutput, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i := len(parts) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], errs[i] = c.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: aws.String("life"), Key: aws.String(key), UploadId: aws.String(id),
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(parts[i]), ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
			})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		if got := aws.ToString(outs[i].ETag); got != `"`+mpMD5Hex(parts[i])+`"` {
			t.Fatalf("part %d ETag %s", i+1, got)
		}
		if got := aws.ToString(outs[i].ChecksumSHA256); got != mpChecksum("SHA256", parts[i]) {
			t.Fatalf("part %d SHA256 %s", i+1, got)
		}
	}
	if aws.ToString(stale.ETag) == aws.ToString(outs[1].ETag) {
		t.Fatal("replacement part has the stale part's ETag")
	}

	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("life"), Key: aws.String(key), UploadId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 3 || aws.ToBool(lp.IsTruncated) || lp.ChecksumAlgorithm != types.ChecksumAlgorithmSha256 {
		t.Fatalf("ListParts: %d parts truncated=%v alg %q", len(lp.Parts), aws.ToBool(lp.IsTruncated), lp.ChecksumAlgorithm)
	}
	for i, p := range lp.Parts {
		if aws.ToInt32(p.PartNumber) != int32(i+1) || aws.ToInt64(p.Size) != int64(len(parts[i])) ||
			aws.ToString(p.ETag) != aws.ToString(outs[i].ETag) || aws.ToString(p.ChecksumSHA256) != mpChecksum("SHA256", parts[i]) || p.LastModified == nil {
			t.Fatalf("ListParts part %d: %+v", i+1, p)
		}
	}

	// The replaced part's blob is gone already: one blob per current part.
	before := srv.BlobRefs(t)
	if len(before) != 3 {
		t.Fatalf("%d blob files before completion, want 3", len(before))
	}
	var done []types.CompletedPart
	for i, o := range outs {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: o.ETag, ChecksumSHA256: o.ChecksumSHA256})
	}
	comp, err := mpComplete(c, "life", key, id, done...)
	if err != nil {
		t.Fatalf("complete: %v", err)
	}
	if got, want := aws.ToString(comp.ETag), `"`+mpETag(parts)+`"`; got != want {
		t.Fatalf("ETag %s, want %s", got, want)
	}
	wantSHA := mpComposite("SHA256", parts)
	if aws.ToString(comp.ChecksumSHA256) != wantSHA || comp.ChecksumType != types.ChecksumTypeComposite ||
		aws.ToString(comp.Bucket) != "life" || aws.ToString(comp.Key) != key {
		t.Fatalf("complete result %+v", comp)
	}
	// Completion moved no bytes: the object is made of the parts' blobs.
	after := srv.BlobRefs(t)
	if fmt.Sprint(mpSortedKeys(after)) != fmt.Sprint(mpSortedKeys(before)) {
		t.Fatalf("blob files changed by completion: before %v after %v", mpSortedKeys(before), mpSortedKeys(after))
	}
	if n := len(mpUploads(t, c, "life")); n != 0 {
		t.Fatalf("%d uploads listed after completion", n)
	}
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("life"), Key: aws.String(key), UploadId: aws.String(id)})
	wantCode(t, err, "NoSuchUpload")
	_, err = mpComplete(c, "life", key, id, done...)
	wantCode(t, err, "NoSuchUpload")

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("life"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ContentType) != "image/x-raw" || aws.ToString(head.CacheControl) != "max-age=60" ||
		aws.ToString(head.ContentDisposition) != "attachment" || head.Metadata["camera"] != "x100" || head.Metadata["mixed-case"] != "v" ||
		aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.ETag) != aws.ToString(comp.ETag) {
		t.Fatalf("HEAD %+v", head)
	}
	if aws.ToString(head.ChecksumSHA256) != wantSHA || head.ChecksumType != types.ChecksumTypeComposite {
		t.Fatalf("HEAD checksum %q %q, want %q COMPOSITE", aws.ToString(head.ChecksumSHA256), head.ChecksumType, wantSHA)
	}
	if got := getBody(t, c, "life", key); !bytes.Equal(got, data) {
		t.Fatal("GET after completion returned other bytes")
	}
	mpAssertNoOrphans(t, srv)
}

func mpSortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestMultipartPartNumberReads reads parts of a multipart object and of a
// plain one with partNumber on GET and HEAD.
func TestMultipartPartNumberReads(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "pnum")
	data := randBytes(10*mpMiB + 999)
	parts := mpSplit(data, 5*mpMiB)
	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("pnum"), Key: aws.String("mp")})
	var done []types.CompletedPart
	for i, p := range parts {
		o := mpUploadPart(t, c, "pnum", "mp", id, int32(i+1), p, "")
		done = append(done, mpPart(int32(i+1), aws.ToString(o.ETag)))
	}
	if _, err := mpComplete(c, "pnum", "mp", id, done...); err != nil {
		t.Fatal(err)
	}

	var off int
	for i, p := range parts {
		n := int32(i + 1)
		get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pnum"), Key: aws.String("mp"), PartNumber: aws.Int32(n)})
		if err != nil {
			t.Fatalf("GET partNumber=%d: %v", n, err)
		}
		b, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil || !bytes.Equal(b, p) {
			t.Fatalf("GET partNumber=%d: %d bytes, err %v", n, len(b), err)
		}
		wantRange := fmt.Sprintf("bytes %d-%d/%d", off, off+len(p)-1, len(data))
		if aws.ToInt32(get.PartsCount) != 3 || aws.ToString(get.ContentRange) != wantRange || aws.ToString(get.ETag) != `"`+mpETag(parts)+`"` {
			t.Fatalf("GET partNumber=%d: count %d range %q etag %s", n, aws.ToInt32(get.PartsCount), aws.ToString(get.ContentRange), aws.ToString(get.ETag))
		}
		off += len(p)
	}
	// Raw: 206 with x-amz-mp-parts-count.
	resp := srv.Signed(t, http.MethodHead, "/pnum/mp?partNumber=2", nil, nil, "")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("X-Amz-Mp-Parts-Count") != "3" || resp.ContentLength != int64(len(parts[1])) {
		t.Fatalf("HEAD partNumber=2: %d, parts count %q, length %d", resp.StatusCode, resp.Header.Get("X-Amz-Mp-Parts-Count"), resp.ContentLength)
	}
	mpWantStatus(t, srv.Signed(t, http.MethodGet, "/pnum/mp?partNumber=4", nil, nil, ""), http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber")
	mpWantStatus(t, srv.Signed(t, http.MethodGet, "/pnum/mp?partNumber=0", nil, nil, ""), http.StatusBadRequest, "InvalidArgument")
	mpWantStatus(t, srv.Signed(t, http.MethodGet, "/pnum/mp?partNumber=1", nil, mpHdr("Range", "bytes=0-1"), ""), http.StatusBadRequest, "InvalidRequest")
	_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("pnum"), Key: aws.String("mp"), PartNumber: aws.Int32(9)})
	if err == nil || !strings.Contains(err.Error(), "416") {
		t.Fatalf("HEAD partNumber=9: %v", err)
	}

	// A plain object is one part.
	plain := randBytes(100 << 10)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pnum"), Key: aws.String("plain"), Body: bytes.NewReader(plain)}); err != nil {
		t.Fatal(err)
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pnum"), Key: aws.String("plain"), PartNumber: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(b, plain) || get.PartsCount != nil {
		t.Fatalf("plain partNumber=1: %d bytes, parts count %v", len(b), get.PartsCount)
	}
	mpWantStatus(t, srv.Signed(t, http.MethodGet, "/pnum/plain?partNumber=2", nil, nil, ""), http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber")
	// Without partNumber a plain HEAD carries no part count.
	if resp := srv.Signed(t, http.MethodHead, "/pnum/plain", nil, nil, ""); resp.Header.Get("X-Amz-Mp-Parts-Count") != "" {
		t.Fatal("plain object reports a part count")
	}
	mpAssertNoOrphans(t, srv)
}

// TestMultipartChecksumAlgorithms completes one upload per algorithm and
// checksum type and checks the object's checksum against an independent
// computation; the SDK validates FULL_OBJECT values on GET.
func TestMultipartChecksumAlgorithms(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "sums")
	data := randBytes(5*mpMiB + 100<<10)
	parts := mpSplit(data, 5*mpMiB)
	cases := []struct {
		alg types.ChecksumAlgorithm
		typ types.ChecksumType
	}{
		{types.ChecksumAlgorithmCrc32, types.ChecksumTypeComposite},
		{types.ChecksumAlgorithmCrc32c, types.ChecksumTypeComposite},
		{types.ChecksumAlgorithmSha1, types.ChecksumTypeComposite},
		{types.ChecksumAlgorithmCrc32, types.ChecksumTypeFullObject},
		{types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject},
		{types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject},
	}
	for _, tc := range cases {
		alg := string(tc.alg)
		key := alg + "-" + string(tc.typ)
		id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumAlgorithm: tc.alg, ChecksumType: tc.typ})
		var done []types.CompletedPart
		for i, p := range parts {
			o := mpUploadPart(t, c, "sums", key, id, int32(i+1), p, tc.alg)
			cp := types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: o.ETag,
				ChecksumCRC32: o.ChecksumCRC32, ChecksumCRC32C: o.ChecksumCRC32C, ChecksumCRC64NVME: o.ChecksumCRC64NVME, ChecksumSHA1: o.ChecksumSHA1}
			done = append(done, cp)
		}
		want := mpComposite(alg, parts)
		if tc.typ == types.ChecksumTypeFullObject {
			want = mpChecksum(alg, data)
		}
		if _, err := mpComplete(c, "sums", key, id, done...); err != nil {
			t.Fatalf("%s: complete: %v", key, err)
		}
		resp := srv.Signed(t, http.MethodHead, "/sums/"+key, nil, mpHdr("X-Amz-Checksum-Mode", "ENABLED"), "")
		if got := resp.Header.Get("X-Amz-Checksum-" + alg); got != want || resp.Header.Get("X-Amz-Checksum-Type") != string(tc.typ) {
			t.Fatalf("%s: HEAD checksum %q type %q, want %q", key, got, resp.Header.Get("X-Amz-Checksum-Type"), want)
		}
		if got := getBody(t, c, "sums", key); !bytes.Equal(got, data) {
			t.Fatalf("%s: GET returned other bytes", key)
		}
		mpCheckPartChecksums(t, srv, c, "sums", key, alg, tc.typ, parts)
	}
	// A FULL_OBJECT upload of one part: that part is the whole object, so
	// partNumber=1 carries the object's checksum.
	id1 := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String("one"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32, ChecksumType: types.ChecksumTypeFullObject})
	o1 := mpUploadPart(t, c, "sums", "one", id1, 1, parts[0], types.ChecksumAlgorithmCrc32)
	if _, err := mpComplete(c, "sums", "one", id1, types.CompletedPart{PartNumber: aws.Int32(1), ETag: o1.ETag, ChecksumCRC32: o1.ChecksumCRC32}); err != nil {
		t.Fatal(err)
	}
	mpCheckPartChecksums(t, srv, c, "sums", "one", "CRC32", types.ChecksumTypeFullObject, parts[:1])

	// Combinations S3 refuses.
	for _, bad := range []struct {
		alg types.ChecksumAlgorithm
		typ types.ChecksumType
	}{{types.ChecksumAlgorithmSha256, types.ChecksumTypeFullObject}, {types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeComposite}} {
		_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String("x"), ChecksumAlgorithm: bad.alg, ChecksumType: bad.typ})
		wantCode(t, err, "InvalidRequest")
	}
	// A part whose checksum algorithm differs from the upload's.
	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String("mismatch"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("sums"), Key: aws.String("mismatch"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), Body: bytes.NewReader(parts[1]), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	wantCode(t, err, "InvalidRequest")
	// A part checksum in Complete that is not the recorded one.
	o := mpUploadPart(t, c, "sums", "mismatch", id, 1, parts[1], types.ChecksumAlgorithmSha256)
	_, err = mpComplete(c, "sums", "mismatch", id, types.CompletedPart{PartNumber: aws.Int32(1), ETag: o.ETag, ChecksumSHA256: aws.String(mpChecksum("SHA256", parts[0]))})
	wantCode(t, err, "InvalidPart")
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String("mismatch"), UploadId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	mpAssertNoOrphans(t, srv)
}

// mpCheckPartChecksums reads each part of a completed upload with checksum
// mode on. A COMPOSITE object's part carries its own checksum (the SDK
// checks the part's bytes against it); a FULL_OBJECT object's part carries
// the object's checksum only if it is the whole object; a Range read
// carries none.
func mpCheckPartChecksums(t *testing.T, srv *Server, c *s3.Client, bucket, key, alg string, typ types.ChecksumType, parts [][]byte) {
	t.Helper()
	for i, p := range parts {
		n := i + 1
		want, wantType := "", ""
		switch {
		case typ == types.ChecksumTypeComposite:
			want, wantType = mpChecksum(alg, p), "COMPOSITE"
		case len(parts) == 1:
			want, wantType = mpChecksum(alg, p), "FULL_OBJECT"
		}
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			resp := srv.Signed(t, method, fmt.Sprintf("/%s/%s?partNumber=%d", bucket, key, n), nil, mpHdr("X-Amz-Checksum-Mode", "ENABLED"), "")
			resp.Body.Close()
			if got := resp.Header.Get("X-Amz-Checksum-" + alg); got != want || resp.Header.Get("X-Amz-Checksum-Type") != wantType {
				t.Fatalf("%s %s part %d: checksum %q type %q, want %q %q", method, key, n, got, resp.Header.Get("X-Amz-Checksum-Type"), want, wantType)
			}
		}
		get, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			PartNumber: aws.Int32(int32(n)), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatalf("SDK GET %s part %d: %v", key, n, err)
		}
		b, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil || !bytes.Equal(b, p) {
			t.Fatalf("SDK GET %s part %d: %d bytes, %v", key, n, len(b), err)
		}
	}
	resp := srv.Signed(t, http.MethodGet, "/"+bucket+"/"+key, nil, mpHdr("X-Amz-Checksum-Mode", "ENABLED", "Range", "bytes=0-99"), "")
	resp.Body.Close()
	if got := resp.Header.Get("X-Amz-Checksum-" + alg); got != "" {
		t.Fatalf("%s: Range read carries checksum %q", key, got)
	}
}

// TestMultipartPayloadModes uploads the parts of one upload in each way a
// client can send a body: a signed payload with a checksum header (SDK over
// http), UNSIGNED-PAYLOAD, aws-chunked with a trailer (SDK over https), and
// a presigned part URL as a browser would use.
func TestMultipartPayloadModes(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	tc, stopTLS := mpTLSClient(t, srv)
	ctx := context.Background()
	mustCreate(t, c, "modes")
	data := randBytes(15*mpMiB + 4321)
	parts := mpSplit(data, 5*mpMiB)
	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("modes"), Key: aws.String("k"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	etags := make([]string, len(parts))

	// 1: signed payload, checksum header.
	etags[0] = aws.ToString(mpUploadPart(t, c, "modes", "k", id, 1, parts[0], types.ChecksumAlgorithmCrc32c).ETag)
	// 2: UNSIGNED-PAYLOAD with the checksum in a header.
	resp := srv.Signed(t, http.MethodPut, "/modes/k?partNumber=2&uploadId="+url.QueryEscape(id), parts[1],
		mpHdr("X-Amz-Checksum-Crc32c", mpChecksum("CRC32C", parts[1])), "UNSIGNED-PAYLOAD")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Checksum-Crc32c") != mpChecksum("CRC32C", parts[1]) {
		t.Fatalf("unsigned part: %d %s", resp.StatusCode, ErrorCode(t, resp))
	}
	etags[1] = resp.Header.Get("ETag")
	// 3: a stream that cannot seek goes aws-chunked with a trailing checksum.
	o, err := tc.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("modes"), Key: aws.String("k"), UploadId: aws.String(id),
		PartNumber: aws.Int32(3), Body: struct{ io.Reader }{bytes.NewReader(parts[2])}, ContentLength: aws.Int64(int64(len(parts[2]))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatalf("trailer part: %v", err)
	}
	if aws.ToString(o.ChecksumCRC32C) != mpChecksum("CRC32C", parts[2]) {
		t.Fatalf("trailer part checksum %q", aws.ToString(o.ChecksumCRC32C))
	}
	etags[2] = aws.ToString(o.ETag)
	// 4: a presigned part URL, the body sent as is.
	signer := &presign.Signer{Endpoint: srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
	pu, err := signer.PresignUploadPart("modes", "k", id, 4, presign.Options{Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(pu.Method, pu.URL, bytes.NewReader(parts[3]))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range pu.Headers {
		req.Header[k] = v
	}
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusOK {
		t.Fatalf("presigned part: %d", presp.StatusCode)
	}
	etags[3] = presp.Header.Get("ETag")

	var done []types.CompletedPart
	for i, e := range etags {
		if e != `"`+mpMD5Hex(parts[i])+`"` {
			t.Fatalf("part %d ETag %s", i+1, e)
		}
		done = append(done, mpPart(int32(i+1), e))
	}
	// Complete without part checksums: the store has them from the uploads.
	comp, err := mpComplete(c, "modes", "k", id, done...)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(comp.ChecksumCRC32C) != mpComposite("CRC32C", parts) {
		t.Fatalf("composite %q, want %q", aws.ToString(comp.ChecksumCRC32C), mpComposite("CRC32C", parts))
	}
	if got := getBody(t, tc, "modes", "k"); !bytes.Equal(got, data) {
		t.Fatal("GET returned other bytes")
	}
	stopTLS()
	mpAssertNoOrphans(t, srv)
}

// TestMultipartCopyParts builds an object from ranges of other objects with
// UploadPartCopy, including a range that crosses a multipart source's part
// boundary.
func TestMultipartCopyParts(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "copies")
	mustCreate(t, c, "other")
	plain := randBytes(6*mpMiB + 11)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("other"), Key: aws.String("plain"), Body: bytes.NewReader(plain)}); err != nil {
		t.Fatal(err)
	}
	mp := randBytes(10*mpMiB + 5)
	mid := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("copies"), Key: aws.String("mp")})
	e1 := mpUploadPart(t, c, "copies", "mp", mid, 1, mp[:5*mpMiB], "").ETag
	e2 := mpUploadPart(t, c, "copies", "mp", mid, 2, mp[5*mpMiB:], "").ETag
	if _, err := mpComplete(c, "copies", "mp", mid, mpPart(1, aws.ToString(e1)), mpPart(2, aws.ToString(e2))); err != nil {
		t.Fatal(err)
	}

	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("copies"), Key: aws.String("joined"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	p1 := plain[1 : 5*mpMiB+2]
	p2 := mp[3*mpMiB : 9*mpMiB] // crosses the source's part boundary at 5 MiB
	p3 := []byte("tail bytes")
	r1, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("copies"), Key: aws.String("joined"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), CopySource: aws.String("other/plain"), CopySourceRange: aws.String(fmt.Sprintf("bytes=1-%d", 5*mpMiB+1))})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(r1.CopyPartResult.ETag); got != `"`+mpMD5Hex(p1)+`"` {
		t.Fatalf("copied part 1 ETag %s", got)
	}
	if got := aws.ToString(r1.CopyPartResult.ChecksumCRC32C); got != mpChecksum("CRC32C", p1) {
		t.Fatalf("copied part 1 CRC32C %q, want %q", got, mpChecksum("CRC32C", p1))
	}
	r2, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("copies"), Key: aws.String("joined"), UploadId: aws.String(id),
		PartNumber: aws.Int32(2), CopySource: aws.String("/copies/mp"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", 3*mpMiB, 9*mpMiB-1))})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(r2.CopyPartResult.ETag); got != `"`+mpMD5Hex(p2)+`"` {
		t.Fatalf("copied part 2 ETag %s", got)
	}
	r3 := mpUploadPart(t, c, "copies", "joined", id, 3, p3, types.ChecksumAlgorithmCrc32c)

	// Bad ranges and sources change nothing.
	for _, rng := range []string{"bytes=0-" + strconv.Itoa(len(plain)), "0-10", "bytes=5-1", "bytes=-10", "bytes=abc-def"} {
		_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("copies"), Key: aws.String("joined"), UploadId: aws.String(id),
			PartNumber: aws.Int32(1), CopySource: aws.String("other/plain"), CopySourceRange: aws.String(rng)})
		wantCode(t, err, "InvalidArgument")
	}
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("copies"), Key: aws.String("joined"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), CopySource: aws.String("other/missing")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("copies"), Key: aws.String("joined"), UploadId: aws.String("nope"),
		PartNumber: aws.Int32(1), CopySource: aws.String("other/plain")})
	wantCode(t, err, "NoSuchUpload")

	comp, err := mpComplete(c, "copies", "joined", id, mpPart(1, aws.ToString(r1.CopyPartResult.ETag)), mpPart(2, aws.ToString(r2.CopyPartResult.ETag)), mpPart(3, aws.ToString(r3.ETag)))
	if err != nil {
		t.Fatal(err)
	}
	all := [][]byte{p1, p2, p3}
	if aws.ToString(comp.ETag) != `"`+mpETag(all)+`"` || aws.ToString(comp.ChecksumCRC32C) != mpComposite("CRC32C", all) {
		t.Fatalf("complete: ETag %s CRC32C %s", aws.ToString(comp.ETag), aws.ToString(comp.ChecksumCRC32C))
	}
	want := bytes.Join(all, nil)
	if got := getBody(t, c, "copies", "joined"); !bytes.Equal(got, want) {
		t.Fatal("joined object has other bytes")
	}
	// The sources are untouched.
	if got := getBody(t, c, "copies", "mp"); !bytes.Equal(got, mp) {
		t.Fatal("multipart source changed")
	}
	mpAssertNoOrphans(t, srv)
}

// TestMultipartErrors sends what Complete and UploadPart must refuse, with
// S3's codes, and checks that the upload survives every refusal.
func TestMultipartErrors(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "errs")
	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("errs"), Key: aws.String("k")})
	p1 := randBytes(5 * mpMiB)
	p2 := randBytes(1000)
	p3 := randBytes(2000)
	e1 := aws.ToString(mpUploadPart(t, c, "errs", "k", id, 1, p1, "").ETag)
	e2 := aws.ToString(mpUploadPart(t, c, "errs", "k", id, 2, p2, "").ETag)
	e3 := aws.ToString(mpUploadPart(t, c, "errs", "k", id, 3, p3, "").ETag)
	// The highest part number is allowed; parts need not be contiguous.
	e10k := aws.ToString(mpUploadPart(t, c, "errs", "k", id, 10000, p3, "").ETag)

	_, err := mpComplete(c, "errs", "k", id, mpPart(1, `"`+mpMD5Hex(p2)+`"`))
	wantCode(t, err, "InvalidPart") // wrong ETag
	_, err = mpComplete(c, "errs", "k", id, mpPart(1, e1), mpPart(4, e3))
	wantCode(t, err, "InvalidPart") // unknown part
	_, err = mpComplete(c, "errs", "k", id, mpPart(2, e2), mpPart(1, e1))
	wantCode(t, err, "InvalidPartOrder")
	_, err = mpComplete(c, "errs", "k", id, mpPart(1, e1), mpPart(1, e1))
	wantCode(t, err, "InvalidPartOrder")
	_, err = mpComplete(c, "errs", "k", id, mpPart(1, e1), mpPart(2, e2), mpPart(3, e3))
	wantCode(t, err, "EntityTooSmall") // part 2 is small and not last
	_, err = mpComplete(c, "errs", "k", "no-such-upload", mpPart(1, e1))
	wantCode(t, err, "NoSuchUpload")
	_, err = mpComplete(c, "errs", "other-key", id, mpPart(1, e1))
	wantCode(t, err, "NoSuchUpload") // an upload ID belongs to its key
	_, err = mpComplete(c, "nobucket", "k", id, mpPart(1, e1))
	wantCode(t, err, "NoSuchBucket")

	q := "?uploadId=" + url.QueryEscape(id)
	mpWantStatus(t, srv.Signed(t, http.MethodPost, "/errs/k"+q, []byte("<CompleteMultipartUpload><Part>"), nil, ""), 400, "MalformedXML")
	mpWantStatus(t, srv.Signed(t, http.MethodPost, "/errs/k"+q, []byte("<CompleteMultipartUpload></CompleteMultipartUpload>"), nil, ""), 400, "MalformedXML")
	for _, n := range []string{"0", "10001", "abc", "-1"} {
		mpWantStatus(t, srv.Signed(t, http.MethodPut, "/errs/k"+q+"&partNumber="+n, []byte("x"), nil, ""), 400, "InvalidArgument")
	}
	mpWantStatus(t, srv.Signed(t, http.MethodPut, "/errs/k?partNumber=1&uploadId=nope", []byte("x"), nil, ""), 404, "NoSuchUpload")
	mpWantStatus(t, srv.Signed(t, http.MethodPut, "/errs/k"+q+"&partNumber=5", []byte("body"),
		mpHdr("X-Amz-Checksum-Crc32", mpChecksum("CRC32", []byte("other"))), ""), 400, "BadDigest")
	mpWantStatus(t, srv.Signed(t, http.MethodPut, "/errs/k"+q+"&partNumber=5", []byte("body"),
		mpHdr("Content-Md5", mpB64(md5.New().Sum(nil))), ""), 400, "BadDigest")
	mpWantStatus(t, srv.Signed(t, http.MethodGet, "/errs/k"+q+"&max-parts=abc", nil, nil, ""), 400, "InvalidArgument")
	mpWantStatus(t, srv.Signed(t, http.MethodGet, "/errs/k?uploadId=nope", nil, nil, ""), 404, "NoSuchUpload")
	mpWantStatus(t, srv.Signed(t, http.MethodDelete, "/errs/k?uploadId=nope", nil, nil, ""), 404, "NoSuchUpload")

	// A part over 5 GiB is refused from its declared length, before its
	// body is read. With Expect: 100-continue (as large-upload clients
	// send) the client sends the body only once the server starts reading
	// it, and this body fails long before 5 GiB if it is read.
	big, err := http.NewRequest(http.MethodPut, srv.URL+"/errs/k"+q+"&partNumber=6", &mpFailAfter{n: 64 * mpMiB})
	if err != nil {
		t.Fatal(err)
	}
	big.ContentLength = 5<<30 + 1
	big.Header.Set("Expect", "100-continue")
	resp := mpSignAndSend(t, big, "UNSIGNED-PAYLOAD")
	mpWantStatus(t, resp, 400, "EntityTooLarge")

	// Nothing above changed the upload.
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("errs"), Key: aws.String("k"), UploadId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	var nums []int32
	for _, p := range lp.Parts {
		nums = append(nums, aws.ToInt32(p.PartNumber))
	}
	if fmt.Sprint(nums) != "[1 2 3 10000]" {
		t.Fatalf("parts after refusals: %v", nums)
	}
	// Parts 1 and 10000 make an object; parts 2 and 3 are dropped with it.
	comp, err := mpComplete(c, "errs", "k", id, mpPart(1, e1), mpPart(10000, e10k))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(comp.ETag) != `"`+mpETag([][]byte{p1, p3})+`"` {
		t.Fatalf("ETag %s", aws.ToString(comp.ETag))
	}
	if got := getBody(t, c, "errs", "k"); !bytes.Equal(got, append(append([]byte{}, p1...), p3...)) {
		t.Fatal("object has other bytes")
	}
	// partNumber counts the object's parts, 1 to x-amz-mp-parts-count, as
	// downloaders that fetch by part number expect, whatever numbers the
	// parts were uploaded under.
	ph, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("errs"), Key: aws.String("k"), PartNumber: aws.Int32(2)})
	if err != nil || aws.ToInt32(ph.PartsCount) != 2 || aws.ToInt64(ph.ContentLength) != int64(len(p3)) {
		t.Fatalf("HEAD partNumber=2 of parts 1 and 10000: %+v %v", ph, err)
	}
	// A single part may be any size, and a last part may be tiny.
	sid := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("errs"), Key: aws.String("small")})
	se := mpUploadPart(t, c, "errs", "small", sid, 1, []byte("tiny"), "").ETag
	if _, err := mpComplete(c, "errs", "small", sid, mpPart(1, aws.ToString(se))); err != nil {
		t.Fatalf("single small part: %v", err)
	}
	if got := getBody(t, c, "errs", "small"); string(got) != "tiny" {
		t.Fatalf("small object %q", got)
	}

	// Abort: parts are deleted, the ID is gone for every operation.
	aid := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("errs"), Key: aws.String("aborted")})
	mpUploadPart(t, c, "errs", "aborted", aid, 1, p2, "")
	mpUploadPart(t, c, "errs", "aborted", aid, 2, p3, "")
	ab := srv.Signed(t, http.MethodDelete, "/errs/aborted?uploadId="+url.QueryEscape(aid), nil, nil, "")
	if ab.StatusCode != http.StatusNoContent {
		t.Fatalf("abort: %d", ab.StatusCode)
	}
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("errs"), Key: aws.String("aborted"), UploadId: aws.String(aid)})
	wantCode(t, err, "NoSuchUpload")
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("errs"), Key: aws.String("aborted"), UploadId: aws.String(aid), PartNumber: aws.Int32(3), Body: bytes.NewReader(p2)})
	wantCode(t, err, "NoSuchUpload")
	_, err = mpComplete(c, "errs", "aborted", aid, mpPart(1, mpMD5Hex(p2)))
	wantCode(t, err, "NoSuchUpload")
	if n := len(mpUploads(t, c, "errs")); n != 0 {
		t.Fatalf("%d uploads listed after complete and abort", n)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("errs"), Key: aws.String("aborted")}); err == nil {
		t.Fatal("an aborted upload made an object")
	}
	mpAssertNoOrphans(t, srv)
}

// mpFailAfter yields zeros, then fails: a body that must not be read far.
type mpFailAfter struct{ n int }

func (f *mpFailAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the server read a body it should have refused")
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

// mpSignAndSend signs req with the root key for payloadHash and sends it.
func mpSignAndSend(t *testing.T, req *http.Request, payloadHash string) *http.Response {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := mpSign(req, payloadHash); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func mpSign(req *http.Request, payloadHash string) error {
	creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
	return v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, "s3", Region, time.Now())
}

// TestMultipartListingPages pages through ListParts and ListMultipartUploads
// one entry at a time with their markers.
func TestMultipartListingPages(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "pages")

	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("pages"), Key: aws.String("a/1")})
	for _, n := range []int32{5, 1, 3} {
		mpUploadPart(t, c, "pages", "a/1", id, n, []byte(strconv.Itoa(int(n))), "")
	}
	var got []int32
	marker := ""
	for page := 0; ; page++ {
		in := &s3.ListPartsInput{Bucket: aws.String("pages"), Key: aws.String("a/1"), UploadId: aws.String(id), MaxParts: aws.Int32(1)}
		if marker != "" {
			in.PartNumberMarker = aws.String(marker)
		}
		out, err := c.ListParts(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Parts) != 1 || aws.ToInt32(out.MaxParts) != 1 {
			t.Fatalf("page %d: %d parts, max %d", page, len(out.Parts), aws.ToInt32(out.MaxParts))
		}
		got = append(got, aws.ToInt32(out.Parts[0].PartNumber))
		if next := aws.ToString(out.NextPartNumberMarker); next != strconv.Itoa(int(aws.ToInt32(out.Parts[0].PartNumber))) {
			t.Fatalf("page %d: NextPartNumberMarker %q", page, next)
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = aws.ToString(out.NextPartNumberMarker)
	}
	if fmt.Sprint(got) != "[1 3 5]" {
		t.Fatalf("parts by page: %v", got)
	}
	// The SDK's paginator follows the same markers.
	pg := s3.NewListPartsPaginator(c, &s3.ListPartsInput{Bucket: aws.String("pages"), Key: aws.String("a/1"), UploadId: aws.String(id), MaxParts: aws.Int32(2)})
	var pages, count int
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		count += len(out.Parts)
	}
	if pages != 2 || count != 3 {
		t.Fatalf("paginator: %d pages, %d parts", pages, count)
	}
	out, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("pages"), Key: aws.String("a/1"), UploadId: aws.String(id), PartNumberMarker: aws.String("5")})
	if err != nil || len(out.Parts) != 0 || aws.ToBool(out.IsTruncated) {
		t.Fatalf("after the last part: %v %v", out, err)
	}

	// Uploads: two for one key, and keys under prefixes.
	ids := map[string][]string{"a/1": {id}}
	for _, k := range []string{"a/1", "a/2", "b", "c/d/e", "c/f"} {
		ids[k] = append(ids[k], mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("pages"), Key: aws.String(k)}))
	}
	type entry struct{ key, id string }
	var seen []entry
	km, um := "", ""
	for page := 0; ; page++ {
		in := &s3.ListMultipartUploadsInput{Bucket: aws.String("pages"), MaxUploads: aws.Int32(1)}
		if km != "" {
			in.KeyMarker, in.UploadIdMarker = aws.String(km), aws.String(um)
		}
		out, err := c.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 1 || aws.ToInt32(out.MaxUploads) != 1 {
			t.Fatalf("page %d: %d uploads", page, len(out.Uploads))
		}
		u := out.Uploads[0]
		seen = append(seen, entry{aws.ToString(u.Key), aws.ToString(u.UploadId)})
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		km, um = aws.ToString(out.NextKeyMarker), aws.ToString(out.NextUploadIdMarker)
		if km != aws.ToString(u.Key) || um != aws.ToString(u.UploadId) {
			t.Fatalf("page %d: next markers %q %q, last upload %q %q", page, km, um, aws.ToString(u.Key), aws.ToString(u.UploadId))
		}
	}
	var keys []string
	byKey := map[string][]string{}
	for _, e := range seen {
		keys = append(keys, e.key)
		byKey[e.key] = append(byKey[e.key], e.id)
	}
	if strings.Join(keys, ",") != "a/1,a/1,a/2,b,c/d/e,c/f" {
		t.Fatalf("uploads by page: %v", keys)
	}
	for k, want := range ids {
		got := byKey[k]
		sort.Strings(got)
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("uploads of %s: %v, want %v", k, got, want)
		}
	}
	// The first upload of a/1 as marker lists the second one next.
	out2, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("pages"), MaxUploads: aws.Int32(1),
		KeyMarker: aws.String("a/1"), UploadIdMarker: aws.String(seen[0].id)})
	if err != nil || len(out2.Uploads) != 1 || aws.ToString(out2.Uploads[0].UploadId) != seen[1].id {
		t.Fatalf("after the first upload of a/1: %+v %v", out2, err)
	}
	// A key marker alone skips every upload of that key.
	out2, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("pages"), KeyMarker: aws.String("a/1")})
	if err != nil || len(out2.Uploads) != 4 || aws.ToString(out2.Uploads[0].Key) != "a/2" {
		t.Fatalf("after key a/1: %+v %v", out2, err)
	}

	// With a delimiter, one entry per page is an upload or a common prefix,
	// and the markers carry on past both.
	var items []string
	km, um = "", ""
	for page := 0; page < 10; page++ {
		in := &s3.ListMultipartUploadsInput{Bucket: aws.String("pages"), MaxUploads: aws.Int32(1), Delimiter: aws.String("/")}
		if km != "" {
			in.KeyMarker = aws.String(km)
			if um != "" {
				in.UploadIdMarker = aws.String(um)
			}
		}
		out, err := c.ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range out.CommonPrefixes {
			items = append(items, "prefix:"+aws.ToString(p.Prefix))
		}
		for _, u := range out.Uploads {
			items = append(items, aws.ToString(u.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		km, um = aws.ToString(out.NextKeyMarker), aws.ToString(out.NextUploadIdMarker)
		if km == "" {
			t.Fatalf("page %d: truncated without NextKeyMarker", page)
		}
	}
	if strings.Join(items, ",") != "prefix:a/,b,prefix:c/" {
		t.Fatalf("delimited pages: %v", items)
	}
	out3, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("pages"), Prefix: aws.String("c/"), Delimiter: aws.String("/")})
	if err != nil || len(out3.Uploads) != 1 || aws.ToString(out3.Uploads[0].Key) != "c/f" || len(out3.CommonPrefixes) != 1 || aws.ToString(out3.CommonPrefixes[0].Prefix) != "c/d/" {
		t.Fatalf("prefix c/: %+v %v", out3, err)
	}
	mpAssertNoOrphans(t, srv)
}

// TestMultipartSweeper: uploads left unfinished past UploadMaxAge are
// aborted by the background sweeper, their parts' blobs deleted.
func TestMultipartSweeper(t *testing.T) {
	NoEnv(t)
	srv := Start(t, func(cfg *server.Config) {
		cfg.UploadMaxAge = 500 * time.Millisecond
		cfg.SweepInterval = 20 * time.Millisecond
	})
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "sweep")
	id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("sweep"), Key: aws.String("left")})
	// The sweeper may win the race with this part; either way no blob may
	// remain.
	_, perr := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("sweep"), Key: aws.String("left"), UploadId: aws.String(id),
		PartNumber: aws.Int32(1), Body: bytes.NewReader(randBytes(200 << 10))})
	if perr != nil && apiCode(perr) != "NoSuchUpload" {
		t.Fatal(perr)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(mpUploads(t, c, "sweep")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stale upload was not swept")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("sweep"), Key: aws.String("left"), UploadId: aws.String(id)})
	wantCode(t, err, "NoSuchUpload")
	// The sweeper logs after it removed the upload and its blobs.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(srv.Log.String(), "aborted stale multipart upload"); {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper logged nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mpAssertNoOrphans(t, srv)
	if n := len(srv.BlobRefs(t)); n != 0 {
		t.Fatalf("%d blob files after sweeping", n)
	}
}

// TestMultipartCompleteRacesPartUpload re-uploads a part, again and again
// with the same bytes (so the same ETag, but a new blob each time), while
// the upload is completed. The completed object must be readable, and no
// blob may be lost or left behind: an object that kept a replaced part's
// blob would point at a deleted file.
func TestMultipartCompleteRacesPartUpload(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	mustCreate(t, c, "race")
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("k%d", i)
		id := mpCreate(t, c, &s3.CreateMultipartUploadInput{Bucket: aws.String("race"), Key: aws.String(key)})
		body := randBytes(8 << 10)
		etag := aws.ToString(mpUploadPart(t, c, "race", key, id, 1, body, "").ETag)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("race"), Key: aws.String(key), UploadId: aws.String(id),
						PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
					if apiCode(err) == "NoSuchUpload" {
						return
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		// Let the re-uploads get going, then complete in their midst.
		for j := 0; j < 3; j++ {
			mpUploadPart(t, c, "race", key, id, 1, body, "")
		}
		_, err := mpComplete(c, "race", key, id, mpPart(1, etag))
		close(stop)
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatalf("%s: re-upload: %v", key, e)
		}
		if err != nil {
			t.Fatalf("%s: complete: %v", key, err)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("race"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("%s: GET: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s: completed object: %d bytes, %v", key, len(got), err)
		}
	}
	mpAssertNoOrphans(t, srv)
}

// BenchmarkMultipartRoundTrip measures the fixed cost of a multipart upload:
// create, one 64 KiB part, complete, each a request to a real server.
func BenchmarkMultipartRoundTrip(b *testing.B) {
	NoEnv(b)
	srv := Start(b)
	c := srv.SDK(b)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	body := randBytes(64 << 10)
	b.SetBytes(int64(len(body)))
	for i := 0; b.Loop(); i++ {
		key := "k" + strconv.Itoa(i)
		cu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bench"), Key: aws.String(key)})
		if err != nil {
			b.Fatal(err)
		}
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bench"), Key: aws.String(key), UploadId: cu.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mpComplete(c, "bench", key, aws.ToString(cu.UploadId), mpPart(1, aws.ToString(up.ETag))); err != nil {
			b.Fatal(err)
		}
	}
}
