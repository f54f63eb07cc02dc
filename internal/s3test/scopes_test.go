package s3test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/presign"
)

// This file proves the access-key scopes end to end: every S3 operation the
// server routes, run with keys holding each scope, header-signed by the SDK
// and presigned, must be allowed exactly when the key holds the scope(s) the
// operation needs, and otherwise refused with AccessDenied naming the scope.

// scNoSync makes the many small metadata transactions of these tests cheap;
// durability is not what they test.
func scNoSync(c *server.Config) { c.NoSync = true }

// scNewKey creates an access key on srv through the key service and returns
// its ID and secret.
func scNewKey(t *testing.T, srv *Server, spec iam.KeySpec) (id, secret string) {
	t.Helper()
	k, secret, err := srv.Srv.Keys().Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("create key %+v: %v", spec, err)
	}
	return k.ID, secret
}

// scStatus returns the HTTP status of an SDK error, 0 when there is none.
func scStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// scMessage returns the S3 error message of an SDK error.
func scMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// scWantDenied fails unless err is AccessDenied whose message contains want.
// HEAD answers carry no body, so for them only the 403 status is checked.
func scWantDenied(t *testing.T, err error, head bool, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want AccessDenied (%s), got success", want)
	}
	if head {
		if scStatus(err) != http.StatusForbidden {
			t.Fatalf("want 403 (%s), got %v", want, err)
		}
		return
	}
	if apiCode(err) != "AccessDenied" || scStatus(err) != http.StatusForbidden {
		t.Fatalf("want 403 AccessDenied (%s), got %v", want, err)
	}
	if !strings.Contains(scMessage(err), want) {
		t.Fatalf("AccessDenied message %q does not say %q", scMessage(err), want)
	}
}

// scPresignDoer is an HTTP client for the SDK that sends each request the SDK
// built presigned in the query instead of signed in headers, the way the
// SDK's presign client signs (UNSIGNED-PAYLOAD, every header signed). It lets
// one operation table drive both authentication kinds through the same
// real client, request serialisation and error parsing.
type scPresignDoer struct {
	creds   aws.Credentials
	expires time.Duration
	client  *http.Client
}

// scHeaderAuth are what the SDK's header signing added; a presigned
// request carries its authentication in the query instead.
var scHeaderAuth = []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token"}

func (d *scPresignDoer) Do(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		// Chunk signatures chain from a header signature; there is no
		// presigned form of them.
		return nil, fmt.Errorf("presign %s %s: aws-chunked bodies cannot be presigned", r.Method, r.URL.Path)
	}
	out := r.Clone(r.Context())
	for _, h := range scHeaderAuth {
		out.Header.Del(h)
	}
	// SDK bookkeeping headers change between attempts; leave them unsigned
	// and unsent.
	for _, h := range []string{"Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "X-Amz-User-Agent"} {
		out.Header.Del(h)
	}
	q := out.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(d.expires/time.Second)))
	out.URL.RawQuery = q.Encode()
	signedURL, signed, err := v4.NewSigner().PresignHTTP(r.Context(), d.creds, out, "UNSIGNED-PAYLOAD", "s3", Region, time.Now(),
		func(o *v4.SignerOptions) {
			// Headers stay headers (hoisting x-amz-checksum-* into the
			// query would hide them from the store), and S3 paths are
			// escaped once.
			o.DisableHeaderHoisting = true
			o.DisableURIPathEscaping = true
		})
	if err != nil {
		return nil, fmt.Errorf("presign %s %s: %w", r.Method, r.URL.Path, err)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, signedURL, r.Body)
	if err != nil {
		return nil, fmt.Errorf("presigned request: %w", err)
	}
	req.ContentLength = r.ContentLength
	for k, v := range out.Header {
		req.Header[k] = v
	}
	for k, v := range signed {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	return d.client.Do(req)
}

// scPresignedSDK returns an SDK client whose requests reach srv presigned.
// Request checksums are computed only when an operation requires them, so
// they travel in headers rather than in aws-chunked trailers.
func (s *Server) scPresignedSDK(t *testing.T, ak, sk string) *s3.Client {
	return s.SDKWith(t, ak, sk, func(o *s3.Options) {
		o.HTTPClient = &scPresignDoer{
			creds:   aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk},
			expires: 10 * time.Minute,
			client:  &http.Client{},
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.RetryMaxAttempts = 1
	})
}

// scFixture is the state the operation table runs against: a bucket
// with one object, made with the root key.
type scFixture struct {
	t      *testing.T
	root   *s3.Client
	bucket string
	object string
	n      atomic.Int64
}

// unique returns a fresh name for an object or bucket of one case.
func (f *scFixture) unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, f.n.Add(1))
}

func (f *scFixture) put(bucket, key string) {
	f.t.Helper()
	_, err := f.root.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("fixture body"),
	})
	if err != nil {
		f.t.Fatalf("fixture put %s/%s: %v", bucket, key, err)
	}
}

func (f *scFixture) exists(bucket, key string) bool {
	f.t.Helper()
	_, err := f.root.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true
	}
	if scStatus(err) != http.StatusNotFound {
		f.t.Fatalf("fixture head %s/%s: %v", bucket, key, err)
	}
	return false
}

func (f *scFixture) bucketExists(bucket string) bool {
	f.t.Helper()
	_, err := f.root.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return true
	}
	if scStatus(err) != http.StatusNotFound {
		f.t.Fatalf("fixture head bucket %s: %v", bucket, err)
	}
	return false
}

func (f *scFixture) createUpload(key string) string {
	f.t.Helper()
	out, err := f.root.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	if err != nil {
		f.t.Fatalf("fixture create upload %s: %v", key, err)
	}
	return aws.ToString(out.UploadId)
}

// scState is what one case's setup prepared for its run.
type scState struct {
	bucket, key, upload, etag string
}

// scOp is one S3 operation of the table.
type scOp struct {
	name string
	// need lists the scopes the operation needs, in the order the server
	// checks them: the refusal names the first one the key lacks.
	need []string
	// head marks HEAD operations, whose refusals carry no message.
	head bool
	// tolerant marks operations the store may answer NotImplemented (or
	// another non-authorization error) once authorized: for them "allowed"
	// means "not refused by authorization".
	tolerant bool
	// setup prepares state with the root key; nil means the shared fixture.
	setup func(f *scFixture) scState
	run   func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error
	// verify checks the store afterwards: a refused change changed nothing.
	verify func(t *testing.T, f *scFixture, st scState, allowed bool)
}

func scDrain(out *s3.GetObjectOutput, err error) error {
	if err != nil {
		return err
	}
	defer out.Body.Close()
	_, err = io.Copy(io.Discard, out.Body)
	return err
}

func scOps() []scOp {
	const (
		ro = iam.ScopeReadObjects
		wo = iam.ScopeWriteObjects
		do = iam.ScopeDeleteObjects
		rb = iam.ScopeReadBuckets
		wb = iam.ScopeWriteBuckets
	)
	shared := func(f *scFixture) scState { return scState{bucket: f.bucket, key: f.object} }
	freshKey := func(f *scFixture) scState { return scState{bucket: f.bucket, key: f.unique("new")} }
	withObject := func(f *scFixture) scState {
		st := scState{bucket: f.bucket, key: f.unique("victim")}
		f.put(st.bucket, st.key)
		return st
	}
	withUpload := func(f *scFixture) scState {
		st := scState{bucket: f.bucket, key: f.unique("mpu")}
		st.upload = f.createUpload(st.key)
		return st
	}
	objectStays := func(t *testing.T, f *scFixture, st scState, allowed bool) {
		if got := f.exists(st.bucket, st.key); got == allowed {
			t.Errorf("after the delete (allowed=%v) object %s exists=%v", allowed, st.key, got)
		}
	}
	objectMade := func(t *testing.T, f *scFixture, st scState, allowed bool) {
		if got := f.exists(st.bucket, st.key); got != allowed {
			t.Errorf("after the write (allowed=%v) object %s exists=%v", allowed, st.key, got)
		}
	}
	b := aws.String
	return []scOp{
		{name: "ListBuckets", need: []string{rb},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
				return err
			}},
		{name: "CreateBucket", need: []string{wb},
			setup: func(f *scFixture) scState { return scState{bucket: f.unique("made")} },
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b(st.bucket)})
				return err
			},
			verify: func(t *testing.T, f *scFixture, st scState, allowed bool) {
				if got := f.bucketExists(st.bucket); got != allowed {
					t.Errorf("after CreateBucket (allowed=%v) bucket exists=%v", allowed, got)
				}
			}},
		{name: "HeadBucket", need: []string{rb}, head: true,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "DeleteBucket", need: []string{wb},
			setup: func(f *scFixture) scState {
				st := scState{bucket: f.unique("doomed")}
				mustCreate(f.t, f.root, st.bucket)
				return st
			},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b(st.bucket)})
				return err
			},
			verify: func(t *testing.T, f *scFixture, st scState, allowed bool) {
				if got := f.bucketExists(st.bucket); got == allowed {
					t.Errorf("after DeleteBucket (allowed=%v) bucket exists=%v", allowed, got)
				}
			}},
		{name: "GetBucketLocation", need: []string{rb},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "GetBucketVersioning", need: []string{rb},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "PutBucketVersioning", need: []string{wb}, tolerant: true,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: b(f.bucket),
					VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}})
				return err
			}},
		{name: "GetBucketAcl", need: []string{rb},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "PutBucketAcl", need: []string{wb},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: b(f.bucket), ACL: types.BucketCannedACLPrivate})
				return err
			}},
		{name: "GetBucketCors", need: []string{rb}, tolerant: true,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "PutBucketCors", need: []string{wb}, tolerant: true,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: b(f.bucket), CORSConfiguration: &types.CORSConfiguration{
					CORSRules: []types.CORSRule{{AllowedMethods: []string{"GET"}, AllowedOrigins: []string{"https://example.com"}}},
				}})
				return err
			}},
		{name: "DeleteBucketCors", need: []string{wb}, tolerant: true,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "ListObjects", need: []string{ro},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "ListObjectsV2", need: []string{ro},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b(f.bucket)})
				return err
			}},
		{name: "ListObjectVersions", need: []string{ro},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "ListMultipartUploads", need: []string{ro},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b(f.bucket)})
				return err
			}},
		{name: "GetObject", need: []string{ro}, setup: shared,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				return scDrain(c.GetObject(ctx, &s3.GetObjectInput{Bucket: b(st.bucket), Key: b(st.key)}))
			}},
		{name: "HeadObject", need: []string{ro}, head: true, setup: shared,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b(st.bucket), Key: b(st.key)})
				return err
			}},
		{name: "GetObjectAcl", need: []string{ro}, setup: shared,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: b(st.bucket), Key: b(st.key)})
				return err
			}},
		{name: "PutObjectAcl", need: []string{wo}, setup: shared,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b(st.bucket), Key: b(st.key), ACL: types.ObjectCannedACLPrivate})
				return err
			}},
		{name: "PutObject", need: []string{wo}, setup: freshKey,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b(st.bucket), Key: b(st.key), Body: bytes.NewReader([]byte("hello scopes"))})
				return err
			},
			verify: objectMade},
		{name: "CopyObject", need: []string{wo, ro}, setup: freshKey,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b(st.bucket), Key: b(st.key), CopySource: b(f.bucket + "/" + f.object)})
				return err
			},
			verify: objectMade},
		{name: "DeleteObject", need: []string{do}, setup: withObject,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b(st.bucket), Key: b(st.key)})
				return err
			},
			verify: objectStays},
		{name: "DeleteObjects", need: []string{do}, setup: withObject,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b(st.bucket),
					Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: b(st.key)}}}})
				if err != nil {
					return err
				}
				if len(out.Errors) > 0 {
					return fmt.Errorf("DeleteObjects: per-key error %s: %s", aws.ToString(out.Errors[0].Code), aws.ToString(out.Errors[0].Message))
				}
				return nil
			},
			verify: objectStays},
		{name: "CreateMultipartUpload", need: []string{wo}, setup: freshKey,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b(st.bucket), Key: b(st.key)})
				return err
			}},
		{name: "UploadPart", need: []string{wo}, setup: withUpload,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b(st.bucket), Key: b(st.key), UploadId: b(st.upload),
					PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part one"))})
				return err
			}},
		{name: "UploadPartCopy", need: []string{wo, ro}, setup: withUpload,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b(st.bucket), Key: b(st.key), UploadId: b(st.upload),
					PartNumber: aws.Int32(1), CopySource: b(f.bucket + "/" + f.object)})
				return err
			}},
		{name: "CompleteMultipartUpload", need: []string{wo},
			setup: func(f *scFixture) scState {
				st := withUpload(f)
				out, err := f.root.UploadPart(context.Background(), &s3.UploadPartInput{Bucket: b(st.bucket), Key: b(st.key), UploadId: b(st.upload),
					PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("the only part"))})
				if err != nil {
					f.t.Fatalf("fixture upload part: %v", err)
				}
				st.etag = aws.ToString(out.ETag)
				return st
			},
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b(st.bucket), Key: b(st.key), UploadId: b(st.upload),
					MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: b(st.etag)}}}})
				return err
			},
			verify: objectMade},
		{name: "AbortMultipartUpload", need: []string{do}, setup: withUpload,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b(st.bucket), Key: b(st.key), UploadId: b(st.upload)})
				return err
			},
			verify: func(t *testing.T, f *scFixture, st scState, allowed bool) {
				_, err := f.root.ListParts(context.Background(), &s3.ListPartsInput{Bucket: b(st.bucket), Key: b(st.key), UploadId: b(st.upload)})
				if gone := apiCode(err) == "NoSuchUpload"; gone != allowed {
					t.Errorf("after AbortMultipartUpload (allowed=%v) ListParts gave %v", allowed, err)
				}
			}},
		{name: "ListParts", need: []string{ro}, setup: withUpload,
			run: func(ctx context.Context, c *s3.Client, f *scFixture, st scState) error {
				_, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b(st.bucket), Key: b(st.key), UploadId: b(st.upload)})
				return err
			}},
	}
}

// scSets are the keys the table runs with: each scope alone, and read
// plus write objects, which copies need. A nil set is an anonymous caller.
var scSets = [][]string{
	nil,
	{iam.ScopeReadObjects},
	{iam.ScopeWriteObjects},
	{iam.ScopeDeleteObjects},
	{iam.ScopeReadBuckets},
	{iam.ScopeWriteBuckets},
	{iam.ScopeAdmin},
	{iam.ScopeReadObjects, iam.ScopeWriteObjects},
}

// scMissing returns the first scope of need the key lacks ("" if none).
func scMissing(have, need []string) string {
	if slices.Contains(have, iam.ScopeAdmin) {
		return ""
	}
	for _, n := range need {
		if !slices.Contains(have, n) {
			return n
		}
	}
	return ""
}

func TestScopeMatrix(t *testing.T) {
	NoEnv(t)
	srv := Start(t, scNoSync)
	ctx := context.Background()
	f := &scFixture{t: t, root: srv.SDK(t), bucket: "scope-matrix", object: "fixture/object.txt"}
	mustCreate(t, f.root, f.bucket)
	f.put(f.bucket, f.object)
	ops := scOps()

	// Every operation the router knows must be in the table, so a new
	// operation cannot ship without a scope proof.
	covered := map[string]bool{"PostObject": true} // TestPostObjectScopes
	for _, op := range ops {
		covered[op.name] = true
	}
	for _, op := range scRoutedOps(t) {
		if !covered[op] {
			t.Errorf("operation %s is routed but missing from the scope table", op)
		}
	}

	for _, set := range scSets {
		setName := "anonymous"
		if set != nil {
			setName = strings.Join(set, "+")
		}
		type client struct {
			mode string
			c    *s3.Client
		}
		var clients []client
		if set == nil {
			// No key, nothing to presign with: an unsigned request.
			clients = append(clients, client{"unsigned", srv.SDK(t, func(o *s3.Options) {
				o.Credentials = aws.AnonymousCredentials{}
				o.RetryMaxAttempts = 1
			})})
		} else {
			id, secret := scNewKey(t, srv, iam.KeySpec{Name: setName, Scopes: set})
			clients = append(clients,
				client{"header", srv.SDKWith(t, id, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })},
				client{"presigned", srv.scPresignedSDK(t, id, secret)})
		}
		for _, cl := range clients {
			for _, op := range ops {
				t.Run(setName+"/"+cl.mode+"/"+op.name, func(t *testing.T) {
					f.t = t
					st := scState{bucket: f.bucket}
					if op.setup != nil {
						st = op.setup(f)
					}
					err := op.run(ctx, cl.c, f, st)
					missing := scMissing(set, op.need)
					allowed := set != nil && missing == ""
					switch {
					case !allowed && set == nil:
						scWantDenied(t, err, op.head, "Access Denied")
					case !allowed:
						scWantDenied(t, err, op.head, "key lacks scope "+missing)
					case op.tolerant:
						if apiCode(err) == "AccessDenied" || scStatus(err) == http.StatusForbidden {
							t.Fatalf("want the operation authorized, got %v", err)
						}
					case err != nil:
						t.Fatalf("want success, got %v", err)
					}
					if op.verify != nil {
						op.verify(t, f, st, allowed)
					}
				})
			}
		}
	}
}

// scRoutedOps reads the operation names the router produces from its source,
// so that an operation added to route.go without a row in the scope table
// fails TestScopeMatrix. The catch-alls for unsupported subresources are
// left out: they answer NotImplemented to everyone.
func scRoutedOps(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "s3api", "route.go"))
	if err != nil {
		t.Fatalf("read the router source: %v", err)
	}
	var ops []string
	for _, m := range regexp.MustCompile(`return "([A-Z][A-Za-z0-9]+)"`).FindAllStringSubmatch(string(src), -1) {
		if !strings.HasPrefix(m[1], "Unsupported") && !slices.Contains(ops, m[1]) {
			ops = append(ops, m[1])
		}
	}
	if len(ops) < 20 {
		t.Fatalf("found only %d operations in route.go: %v", len(ops), ops)
	}
	return ops
}

// scPostUpload sends a browser-form upload: the signed fields, then the file.
func scPostUpload(t *testing.T, post presign.Post, filename string, content []byte) *http.Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for name, value := range post.Fields {
		if err := mw.WriteField(name, value); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(post.URL, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatalf("POST %s: %v", post.URL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// scErrorBody reads an S3 error response: its code and message.
func scErrorBody(t *testing.T, resp *http.Response) (code, message string) {
	t.Helper()
	var e struct{ Code, Message string }
	b, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(b, &e); err != nil {
		return "", string(b)
	}
	return e.Code, e.Message
}

// TestPostObjectScopes: a browser-form upload is authenticated by its policy
// signature, and the key that signed it needs write:objects.
func TestPostObjectScopes(t *testing.T) {
	NoEnv(t)
	srv := Start(t, scNoSync)
	root := srv.SDK(t)
	mustCreate(t, root, "post-scopes")
	for _, set := range scSets[1:] {
		t.Run(strings.Join(set, "+"), func(t *testing.T) {
			id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: set})
			signer := presign.Signer{Endpoint: srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: id, SecretAccessKey: secret}}
			key := "posted/" + strings.Join(set, "+")
			post, err := signer.PresignPost("post-scopes", presign.PostOptions{Key: key, Expires: 10 * time.Minute, SuccessActionStatus: 201})
			if err != nil {
				t.Fatal(err)
			}
			resp := scPostUpload(t, post, "a.txt", []byte("posted by a form"))
			if resp.StatusCode == http.StatusNotImplemented {
				t.Skip("the store does not implement POST uploads yet")
			}
			if missing := scMissing(set, []string{iam.ScopeWriteObjects}); missing != "" {
				code, msg := scErrorBody(t, resp)
				if resp.StatusCode != http.StatusForbidden || code != "AccessDenied" || !strings.Contains(msg, "key lacks scope "+missing) {
					t.Fatalf("want 403 AccessDenied naming %s, got %d %s %q", missing, resp.StatusCode, code, msg)
				}
				if (&scFixture{t: t, root: root}).exists("post-scopes", key) {
					t.Fatal("a refused POST upload stored the object")
				}
				return
			}
			if resp.StatusCode != http.StatusCreated {
				code, msg := scErrorBody(t, resp)
				t.Fatalf("want 201, got %d %s %q", resp.StatusCode, code, msg)
			}
			if got := getBody(t, root, "post-scopes", key); string(got) != "posted by a form" {
				t.Fatalf("stored %q", got)
			}
		})
	}
}

// TestBucketAndPrefixRestriction: a key limited to one bucket and a key
// prefix sees and touches nothing outside them, header-signed or presigned.
func TestBucketAndPrefixRestriction(t *testing.T) {
	NoEnv(t)
	srv := Start(t, scNoSync)
	ctx := context.Background()
	root := srv.SDK(t)
	f := &scFixture{t: t, root: root}
	for _, b := range []string{"inside", "outside", "team-a", "team-b"} {
		mustCreate(t, root, b)
	}
	f.put("inside", "users/42/a.txt")
	f.put("inside", "users/7/a.txt")
	f.put("inside", "top.txt")
	f.put("outside", "users/42/a.txt")

	id, secret := scNewKey(t, srv, iam.KeySpec{
		Scopes:  []string{iam.ScopeReadObjects, iam.ScopeWriteObjects, iam.ScopeDeleteObjects, iam.ScopeReadBuckets, iam.ScopeWriteBuckets},
		Buckets: []string{"inside"},
		Prefix:  "users/42/",
	})
	b := aws.String
	for _, mode := range []string{"header", "presigned"} {
		t.Run(mode, func(t *testing.T) {
			f.t = t
			c := srv.SDKWith(t, id, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
			if mode == "presigned" {
				c = srv.scPresignedSDK(t, id, secret)
			}
			lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			if err != nil {
				t.Fatalf("ListBuckets: %v", err)
			}
			if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "inside" {
				t.Errorf("ListBuckets shows %v, want only inside", scBucketNames(lb.Buckets))
			}

			// Listing inside the prefix works and shows only it.
			lo, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b("inside"), Prefix: b("users/42/")})
			if err != nil {
				t.Fatalf("list with the key's prefix: %v", err)
			}
			var listed []string
			for _, o := range lo.Contents {
				if k := aws.ToString(o.Key); strings.HasPrefix(k, "users/42/") {
					listed = append(listed, k)
				} else {
					t.Errorf("listing shows %s, outside the prefix", k)
				}
			}
			if !slices.Contains(listed, "users/42/a.txt") {
				t.Errorf("listing %v lacks users/42/a.txt", listed)
			}
			if _, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b("inside"), Prefix: b("users/42/a")}); err != nil {
				t.Errorf("list with a longer prefix: %v", err)
			}
			if _, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b("inside"), Prefix: b("users/42/")}); err != nil {
				t.Errorf("list uploads with the key's prefix: %v", err)
			}
			_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b("inside")})
			scWantDenied(t, err, false, "key outside prefix users/42/")
			_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b("inside"), Prefix: b("users/")})
			scWantDenied(t, err, false, "key outside prefix users/42/")
			_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b("outside"), Prefix: b("users/42/")})
			scWantDenied(t, err, false, "bucket not allowed")

			// Objects.
			if err := scDrain(c.GetObject(ctx, &s3.GetObjectInput{Bucket: b("inside"), Key: b("users/42/a.txt")})); err != nil {
				t.Errorf("get inside the prefix: %v", err)
			}
			scWantDenied(t, scDrain(c.GetObject(ctx, &s3.GetObjectInput{Bucket: b("inside"), Key: b("users/7/a.txt")})), false, "key outside prefix")
			scWantDenied(t, scDrain(c.GetObject(ctx, &s3.GetObjectInput{Bucket: b("inside"), Key: b("top.txt")})), false, "key outside prefix")
			scWantDenied(t, scDrain(c.GetObject(ctx, &s3.GetObjectInput{Bucket: b("outside"), Key: b("users/42/a.txt")})), false, "bucket not allowed")
			_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b("outside"), Key: b("users/42/a.txt")})
			scWantDenied(t, err, true, "")

			objKey := "users/42/" + mode + ".txt"
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b("inside"), Key: b(objKey), Body: strings.NewReader("mine")}); err != nil {
				t.Errorf("put inside the prefix: %v", err)
			}
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b("inside"), Key: b("users/43/x"), Body: strings.NewReader("no")})
			scWantDenied(t, err, false, "key outside prefix")
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b("outside"), Key: b(objKey), Body: strings.NewReader("no")})
			scWantDenied(t, err, false, "bucket not allowed")
			if f.exists("inside", "users/43/x") || f.exists("outside", objKey) {
				t.Error("a refused put stored an object")
			}

			// A copy needs its source inside the restriction too.
			_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b("inside"), Key: b("users/42/copy"), CopySource: b("outside/users/42/a.txt")})
			scWantDenied(t, err, false, "bucket not allowed")
			_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b("inside"), Key: b("users/42/copy"), CopySource: b("inside/top.txt")})
			scWantDenied(t, err, false, "key outside prefix")
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b("inside"), Key: b("users/42/copy"), CopySource: b("inside/users/42/a.txt")}); err != nil {
				t.Errorf("copy inside the prefix: %v", err)
			}

			// A batch delete removes what lies inside and refuses the rest
			// key by key.
			f.put("inside", "users/42/batch")
			out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b("inside"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
				{Key: b("users/42/batch")}, {Key: b("top.txt")},
			}}})
			if err != nil {
				t.Fatalf("DeleteObjects inside the bucket: %v", err)
			}
			if len(out.Deleted) != 1 || aws.ToString(out.Deleted[0].Key) != "users/42/batch" {
				t.Errorf("DeleteObjects deleted %d keys, want users/42/batch", len(out.Deleted))
			}
			if len(out.Errors) != 1 || aws.ToString(out.Errors[0].Key) != "top.txt" || aws.ToString(out.Errors[0].Code) != "AccessDenied" {
				t.Errorf("DeleteObjects errors %+v, want AccessDenied for top.txt", out.Errors)
			}
			if f.exists("inside", "users/42/batch") || !f.exists("inside", "top.txt") {
				t.Error("DeleteObjects removed the wrong objects")
			}
			_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b("inside"), Key: b("users/7/a.txt")})
			scWantDenied(t, err, false, "key outside prefix")

			// Buckets: the allowed one can be seen, no other; bucket
			// changes would reach keys outside the prefix.
			if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b("inside")}); err != nil {
				t.Errorf("HeadBucket inside: %v", err)
			}
			_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b("outside")})
			scWantDenied(t, err, true, "")
			_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b("created-" + mode)})
			scWantDenied(t, err, false, "bucket not allowed")
			_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b("inside")})
			scWantDenied(t, err, false, "cannot change buckets")
			if !f.bucketExists("inside") || f.bucketExists("created-"+mode) {
				t.Error("a refused bucket change happened")
			}
		})
	}

	// Bucket patterns: "team-*" reaches the team buckets only.
	gid, gsecret := scNewKey(t, srv, iam.KeySpec{Scopes: []string{iam.ScopeReadBuckets, iam.ScopeReadObjects}, Buckets: []string{"team-*"}})
	gc := srv.SDKWith(t, gid, gsecret)
	lb, err := gc.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := scBucketNames(lb.Buckets); !slices.Equal(got, []string{"team-a", "team-b"}) {
		t.Errorf("pattern key sees %v, want [team-a team-b]", got)
	}
	if _, err := gc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b("team-b")}); err != nil {
		t.Errorf("pattern key lists team-b: %v", err)
	}
	_, err = gc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b("inside")})
	scWantDenied(t, err, false, "bucket not allowed")
}

func scBucketNames(bs []types.Bucket) []string {
	var out []string
	for _, b := range bs {
		out = append(out, aws.ToString(b.Name))
	}
	slices.Sort(out)
	return out
}

// scZeros reads as an endless run of zero bytes, for large bodies that are
// streamed rather than held in memory.
type scZeros struct{}

func (scZeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ReadAt lets io.NewSectionReader make a seekable body of scZeros, which the
// SDK needs to hash a payload over plain HTTP.
func (scZeros) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}

// scSend sends a presigned request with a body of size bytes (scZeros
// when body is nil) and any extra, unsigned headers.
func scSend(t *testing.T, u presign.URL, body io.Reader, size int64, extra http.Header) *http.Response {
	t.Helper()
	if body == nil && size > 0 {
		body = io.LimitReader(scZeros{}, size)
	}
	req, err := http.NewRequest(u.Method, u.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for k, v := range u.Headers {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", u.Method, u.URL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func scWantStatus(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		code, msg := scErrorBody(t, resp)
		t.Fatalf("want %d, got %d %s %q", status, resp.StatusCode, code, msg)
	}
}

func scWantRefused(t *testing.T, resp *http.Response, want string) {
	t.Helper()
	code, msg := scErrorBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || code != "AccessDenied" || !strings.Contains(msg, want) {
		t.Fatalf("want 403 AccessDenied %q, got %d %s %q", want, resp.StatusCode, code, msg)
	}
}

// TestPresignPolicy: a key's presign policy (longest URL lifetime, largest
// upload, allowed content types) binds the URLs it signs, and only them:
// header-signed requests of the same key are not limited by it.
func TestPresignPolicy(t *testing.T) {
	NoEnv(t)
	srv := Start(t, scNoSync)
	ctx := context.Background()
	root := srv.SDK(t)
	f := &scFixture{t: t, root: root}
	mustCreate(t, root, "policy")
	f.put("policy", "read.txt")
	rw := []string{iam.ScopeReadObjects, iam.ScopeWriteObjects}
	signer := func(id, secret string) *presign.Signer {
		return &presign.Signer{Endpoint: srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: id, SecretAccessKey: secret}}
	}
	mustPresign := func(u presign.URL, err error) presign.URL {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}

	t.Run("max-url-ttl", func(t *testing.T) {
		id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: rw, MaxURLTTL: 15 * time.Minute})
		s := signer(id, secret)
		u := mustPresign(s.Presign("policy", "read.txt", presign.Options{Expires: time.Hour}))
		scWantRefused(t, scSend(t, u, nil, 0, nil), "URL lifetime 1h0m0s exceeds the key's limit of 15m0s")
		for _, ok := range []time.Duration{10 * time.Minute, 15 * time.Minute} {
			u = mustPresign(s.Presign("policy", "read.txt", presign.Options{Expires: ok}))
			scWantStatus(t, scSend(t, u, nil, 0, nil), http.StatusOK)
		}
		// URLs from the SDK's presigner are bound alike.
		c := srv.SDKWith(t, id, secret)
		pc := s3.NewPresignClient(c)
		long, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("policy"), Key: aws.String("read.txt")}, s3.WithPresignExpires(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		scWantRefused(t, scSend(t, presign.URL{URL: long.URL, Method: long.Method, Headers: long.SignedHeader}, nil, 0, nil), "exceeds the key's limit of 15m0s")
		short, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("policy"), Key: aws.String("read.txt")}, s3.WithPresignExpires(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		scWantStatus(t, scSend(t, presign.URL{URL: short.URL, Method: short.Method, Headers: short.SignedHeader}, nil, 0, nil), http.StatusOK)
		// Header-signed requests have no URL lifetime to limit.
		if err := scDrain(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("policy"), Key: aws.String("read.txt")})); err != nil {
			t.Fatalf("header-signed get: %v", err)
		}
	})

	t.Run("max-object-size", func(t *testing.T) {
		const limit = 10 << 20
		id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: rw, MaxObjectSize: limit})
		s := signer(id, secret)
		put := func(key string, signedLength int64) presign.URL {
			return mustPresign(s.Presign("policy", key, presign.Options{Method: http.MethodPut, ContentLength: signedLength, Expires: 10 * time.Minute}))
		}
		scWantRefused(t, scSend(t, put("size/unsigned", 0), nil, 1024, nil), "upload size must be signed, the key limits uploads to 10485760 bytes")
		scWantRefused(t, scSend(t, put("size/over", limit+1), nil, limit+1, nil), "upload size 10485761 exceeds the key's limit of 10485760 bytes")
		scWantStatus(t, scSend(t, put("size/small", 1<<20), nil, 1<<20, nil), http.StatusOK)
		scWantStatus(t, scSend(t, put("size/exact", limit), nil, limit, nil), http.StatusOK)
		if f.exists("policy", "size/unsigned") || f.exists("policy", "size/over") || !f.exists("policy", "size/exact") {
			t.Fatal("refused uploads were stored, or an allowed one was not")
		}
		// The limit is a presign policy: the key's header-signed requests
		// may upload more.
		c := srv.SDKWith(t, id, secret)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("policy"), Key: aws.String("size/header"),
			Body: io.NewSectionReader(scZeros{}, 0, limit+1)}); err != nil {
			t.Fatalf("header-signed put over the presign limit: %v", err)
		}

		// Multipart: parts are checked one by one, the object at completion.
		multipart := func(key string, partSizes ...int64) (uploadID string, complete presign.URL, body []byte) {
			create := mustPresign(s.Presign("policy", key, presign.Options{Method: http.MethodPost, Query: url.Values{"uploads": {""}}}))
			resp := scSend(t, create, nil, 0, nil)
			scWantStatus(t, resp, http.StatusOK)
			var init struct{ UploadId string }
			if err := xml.NewDecoder(resp.Body).Decode(&init); err != nil {
				t.Fatal(err)
			}
			unsignedPart := mustPresign(s.PresignUploadPart("policy", key, init.UploadId, 1, presign.Options{}))
			scWantRefused(t, scSend(t, unsignedPart, nil, 1024, nil), "upload size must be signed")
			var parts strings.Builder
			parts.WriteString("<CompleteMultipartUpload>")
			for i, size := range partSizes {
				u := mustPresign(s.PresignUploadPart("policy", key, init.UploadId, i+1, presign.Options{ContentLength: size}))
				resp := scSend(t, u, nil, size, nil)
				scWantStatus(t, resp, http.StatusOK)
				fmt.Fprintf(&parts, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, resp.Header.Get("ETag"))
			}
			parts.WriteString("</CompleteMultipartUpload>")
			complete = mustPresign(s.Presign("policy", key, presign.Options{Method: http.MethodPost, Query: url.Values{"uploadId": {init.UploadId}}}))
			return init.UploadId, complete, []byte(parts.String())
		}
		_, complete, body := multipart("size/mpu-ok", 5<<20, 1<<20)
		scWantStatus(t, scSend(t, complete, bytes.NewReader(body), int64(len(body)), nil), http.StatusOK)

		uploadID, complete, body := multipart("size/mpu-over", 6<<20, 5<<20)
		scWantRefused(t, scSend(t, complete, bytes.NewReader(body), int64(len(body)), nil), "upload size 11534336 exceeds the key's limit of 10485760 bytes")
		if f.exists("policy", "size/mpu-over") {
			t.Fatal("a refused completion made the object")
		}
		// The upload is still there; the key's header-signed request may
		// complete it.
		var in types.CompletedMultipartUpload
		if err := xml.Unmarshal(body, &struct {
			Parts *[]types.CompletedPart `xml:"Part"`
		}{&in.Parts}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("policy"), Key: aws.String("size/mpu-over"),
			UploadId: aws.String(uploadID), MultipartUpload: &in}); err != nil {
			t.Fatalf("header-signed completion: %v", err)
		}
	})

	t.Run("content-types", func(t *testing.T) {
		id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: rw, ContentTypes: []string{"image/*", "application/pdf"}})
		s := signer(id, secret)
		put := func(key, signedType string) presign.URL {
			return mustPresign(s.Presign("policy", key, presign.Options{Method: http.MethodPut, ContentType: signedType}))
		}
		body := []byte("not really a picture")
		send := func(u presign.URL, extra http.Header) *http.Response {
			return scSend(t, u, bytes.NewReader(body), int64(len(body)), extra)
		}
		scWantRefused(t, send(put("types/unsigned", ""), http.Header{"Content-Type": {"image/png"}}), "content type must be signed, the key allows only image/*, application/pdf")
		scWantRefused(t, send(put("types/html", "text/html"), nil), "content type text/html is not allowed for this key")
		scWantStatus(t, send(put("types/png", "image/png"), nil), http.StatusOK)
		scWantStatus(t, send(put("types/pdf", "application/pdf"), nil), http.StatusOK)
		head, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("policy"), Key: aws.String("types/png")})
		if err != nil || aws.ToString(head.ContentType) != "image/png" {
			t.Fatalf("stored png: %v %v", err, head)
		}
		if f.exists("policy", "types/unsigned") || f.exists("policy", "types/html") {
			t.Fatal("a refused upload was stored")
		}
		// A multipart upload fixes its type when it is created.
		create := func(signedType string) presign.URL {
			return mustPresign(s.Presign("policy", "types/mpu", presign.Options{Method: http.MethodPost, ContentType: signedType, Query: url.Values{"uploads": {""}}}))
		}
		scWantRefused(t, scSend(t, create("text/html"), nil, 0, nil), "content type text/html is not allowed")
		scWantStatus(t, scSend(t, create("image/jpeg"), nil, 0, nil), http.StatusOK)
		// Header-signed requests are not bound by the presign policy.
		c := srv.SDKWith(t, id, secret)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("policy"), Key: aws.String("types/header.html"),
			Body: bytes.NewReader(body), ContentType: aws.String("text/html")}); err != nil {
			t.Fatalf("header-signed put of text/html: %v", err)
		}
	})

	// A copy carries no body, so no signed length or type bounds it: the
	// object it would write is held to the policy instead, with the errors
	// a presigned PUT of that object gets.
	t.Run("copy", func(t *testing.T) {
		const limit = 1 << 20
		id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: rw, MaxObjectSize: limit, ContentTypes: []string{"image/*"}})
		s := signer(id, secret)
		for key, src := range map[string]struct {
			size  int64
			ctype string
		}{"copy/big.png": {limit + 1, "image/png"}, "copy/small.png": {1024, "image/png"}, "copy/small.html": {1024, "text/html"}} {
			if _, err := root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("policy"), Key: aws.String(key),
				Body: io.NewSectionReader(scZeros{}, 0, src.size), ContentType: aws.String(src.ctype)}); err != nil {
				t.Fatal(err)
			}
		}
		// copyURL presigns a CopyObject; replaceType "-" keeps the COPY
		// directive, anything else is REPLACE with that Content-Type ("" for none).
		copyURL := func(dst, src, replaceType string) presign.URL {
			o := presign.Options{Method: http.MethodPut, Headers: http.Header{"X-Amz-Copy-Source": {"policy/" + src}}}
			if replaceType != "-" {
				o.Headers.Set("X-Amz-Metadata-Directive", "REPLACE")
				o.ContentType = replaceType
			}
			return mustPresign(s.Presign("policy", dst, o))
		}
		scWantRefused(t, scSend(t, copyURL("copy/out-big", "copy/big.png", "-"), nil, 0, nil), "upload size 1048577 exceeds the key's limit of 1048576 bytes")
		scWantRefused(t, scSend(t, copyURL("copy/out-html", "copy/small.html", "-"), nil, 0, nil), "content type text/html is not allowed for this key")
		scWantRefused(t, scSend(t, copyURL("copy/out-replace-html", "copy/small.png", "text/html"), nil, 0, nil), "content type text/html is not allowed for this key")
		scWantRefused(t, scSend(t, copyURL("copy/out-replace-none", "copy/small.png", ""), nil, 0, nil), "content type binary/octet-stream is not allowed for this key")
		for _, key := range []string{"copy/out-big", "copy/out-html", "copy/out-replace-html", "copy/out-replace-none"} {
			if f.exists("policy", key) {
				t.Fatalf("refused copy wrote %s", key)
			}
		}
		scWantStatus(t, scSend(t, copyURL("copy/out-png", "copy/small.png", "-"), nil, 0, nil), http.StatusOK)
		scWantStatus(t, scSend(t, copyURL("copy/out-retyped", "copy/small.html", "image/gif"), nil, 0, nil), http.StatusOK)
		for key, want := range map[string]string{"copy/out-png": "image/png", "copy/out-retyped": "image/gif"} {
			head, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("policy"), Key: aws.String(key)})
			if err != nil || aws.ToString(head.ContentType) != want || aws.ToInt64(head.ContentLength) != 1024 {
				t.Fatalf("allowed copy %s: %v %+v", key, err, head)
			}
		}
		// Header-signed copies of the same key are not bound by the policy.
		c := srv.SDKWith(t, id, secret)
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("policy"), Key: aws.String("copy/header-big"),
			CopySource: aws.String("policy/copy/big.png")}); err != nil {
			t.Fatalf("header-signed copy over the presign limit: %v", err)
		}

		// UploadPartCopy: a presigned part copy is bounded like a presigned
		// part; parts copied otherwise are caught at presigned completion.
		create := mustPresign(s.Presign("policy", "copy/mpu", presign.Options{Method: http.MethodPost, ContentType: "image/png", Query: url.Values{"uploads": {""}}}))
		resp := scSend(t, create, nil, 0, nil)
		scWantStatus(t, resp, http.StatusOK)
		var init struct{ UploadId string }
		if err := xml.NewDecoder(resp.Body).Decode(&init); err != nil {
			t.Fatal(err)
		}
		partCopy := func(src string) presign.URL {
			return mustPresign(s.PresignUploadPart("policy", "copy/mpu", init.UploadId, 1, presign.Options{Headers: http.Header{"X-Amz-Copy-Source": {"policy/" + src}}}))
		}
		scWantRefused(t, scSend(t, partCopy("copy/big.png"), nil, 0, nil), "upload size 1048577 exceeds the key's limit of 1048576 bytes")
		parts, err := root.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("policy"), Key: aws.String("copy/mpu"), UploadId: aws.String(init.UploadId)})
		if err != nil || len(parts.Parts) != 0 {
			t.Fatalf("a refused part copy stored a part: %v %+v", err, parts)
		}
		scWantStatus(t, scSend(t, partCopy("copy/small.png"), nil, 0, nil), http.StatusOK)
		// The key's header-signed part copy may exceed the limit; the
		// presigned completion then refuses the object.
		pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("policy"), Key: aws.String("copy/mpu"), UploadId: aws.String(init.UploadId),
			PartNumber: aws.Int32(1), CopySource: aws.String("policy/copy/big.png")})
		if err != nil {
			t.Fatalf("header-signed part copy: %v", err)
		}
		done := fmt.Sprintf("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>", aws.ToString(pc.CopyPartResult.ETag))
		complete := mustPresign(s.Presign("policy", "copy/mpu", presign.Options{Method: http.MethodPost, Query: url.Values{"uploadId": {init.UploadId}}}))
		scWantRefused(t, scSend(t, complete, strings.NewReader(done), int64(len(done)), nil), "upload size 1048577 exceeds the key's limit of 1048576 bytes")
		if f.exists("policy", "copy/mpu") {
			t.Fatal("a refused completion made the object")
		}
	})
}
