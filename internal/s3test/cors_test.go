package s3test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	miniocors "github.com/minio/minio-go/v7/pkg/cors"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/server"
	"nfyio.dev/storage/presign"
)

// The S3 texts a page sees when CORS refuses it.
const (
	corsOrigin     = "https://app.example.com"
	corsVary       = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
	corsNotAllowed = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."
	corsDisabled   = "CORSResponse: CORS is not enabled for this bucket."
	corsNoBucket   = "CORSResponse: Bucket not found"
	corsNoOrigin   = "Insufficient information. Origin request header needed."
)

// corsSite is the rule most tests use: the app may GET and PUT with its
// headers; everyone may HEAD.
var corsSite = &types.CORSConfiguration{CORSRules: []types.CORSRule{
	{
		ID:             aws.String("site"),
		AllowedOrigins: []string{"https://*.example.com"},
		AllowedMethods: []string{"GET", "PUT"},
		AllowedHeaders: []string{"x-amz-*", "content-type"},
		ExposeHeaders:  []string{"ETag", "x-amz-version-id"},
		MaxAgeSeconds:  aws.Int32(600),
	},
	{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"HEAD"}},
}}

// corsSiteHeaders are the headers a request matched by the site rule gets.
func corsSiteHeaders() http.Header {
	return http.Header{
		"Access-Control-Allow-Origin":      {corsOrigin},
		"Access-Control-Allow-Methods":     {"GET, PUT"},
		"Access-Control-Expose-Headers":    {"ETag, x-amz-version-id"},
		"Access-Control-Max-Age":           {"600"},
		"Access-Control-Allow-Credentials": {"true"},
		"Vary":                             {corsVary},
	}
}

// corsEveryone are the headers of the "*" HEAD rule: no credentials.
func corsEveryone() http.Header {
	return http.Header{
		"Access-Control-Allow-Origin":   {"*"},
		"Access-Control-Allow-Methods":  {"HEAD"},
		"Access-Control-Expose-Headers": {"ETag"},
		"Vary":                          {corsVary},
	}
}

// corsHeaders keeps the CORS headers of a response.
func corsHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
			out[k] = v
		}
	}
	return out
}

type corsError struct {
	Code, Message, Method, ResourceType, BucketName, Resource string
}

func corsErrorBody(t *testing.T, resp *http.Response) corsError {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e corsError
	if len(b) > 0 {
		if err := xml.Unmarshal(b, &e); err != nil {
			t.Fatalf("error body is not XML: %v\n%s", err, b)
		}
	}
	return e
}

// corsSend sends an unsigned request with the given headers.
func corsSend(t *testing.T, method, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func corsPut(t *testing.T, c *s3.Client, bucket string, cfg *types.CORSConfiguration) {
	t.Helper()
	if _, err := c.PutBucketCors(context.Background(), &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: cfg}); err != nil {
		t.Fatalf("PutBucketCors %s: %v", bucket, err)
	}
}

func TestBucketCorsConfiguration(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "cors-conf")

	// No configuration yet: NoSuchCORSConfiguration naming the bucket.
	resp := srv.Signed(t, http.MethodGet, "/cors-conf?cors", nil, nil, "")
	if e := corsErrorBody(t, resp); resp.StatusCode != 404 || e.Code != "NoSuchCORSConfiguration" ||
		e.Message != "The CORS configuration does not exist" || e.BucketName != "cors-conf" {
		t.Fatalf("GetBucketCors without configuration: %d %+v", resp.StatusCode, e)
	}
	_, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors-conf")})
	wantCode(t, err, "NoSuchCORSConfiguration")

	corsPut(t, c, "cors-conf", corsSite)
	out, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors-conf")})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.CORSRules, corsSite.CORSRules) {
		t.Fatalf("GetBucketCors returned\n%+v\nwant\n%+v", out.CORSRules, corsSite.CORSRules)
	}

	// Refused configurations change nothing.
	bad := []struct {
		name string
		cfg  types.CORSRule
		code string
		msg  string
	}{
		{"method", types.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PATCH"}},
			"InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"},
		{"origin wildcards", types.CORSRule{AllowedOrigins: []string{"*example*.com"}, AllowedMethods: []string{"GET"}},
			"InvalidRequest", `AllowedOrigin "*example*.com" can not have more than one wildcard.`},
		{"header wildcards", types.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}, AllowedHeaders: []string{"x-*-*"}},
			"InvalidRequest", `AllowedHeader "x-*-*" can not have more than one wildcard.`},
		{"expose wildcard", types.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}, ExposeHeaders: []string{"*"}},
			"InvalidRequest", `ExposeHeader "*" contains wildcard. We currently do not support wildcard for ExposeHeader.`},
	}
	for _, tc := range bad {
		_, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors-conf"),
			CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{tc.cfg}}})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || (tc.msg != "" && ae.ErrorMessage() != tc.msg) {
			t.Errorf("%s: got %v, want %s %q", tc.name, err, tc.code, tc.msg)
		}
	}
	tooMany := &types.CORSConfiguration{}
	for range 101 {
		tooMany.CORSRules = append(tooMany.CORSRules, types.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}})
	}
	_, err = c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors-conf"), CORSConfiguration: tooMany})
	wantCode(t, err, "MalformedXML")
	tooMany.CORSRules = tooMany.CORSRules[:100]
	if _, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors-conf"), CORSConfiguration: tooMany}); err != nil {
		t.Fatalf("100 rules refused: %v", err)
	}
	corsPut(t, c, "cors-conf", corsSite)

	for _, raw := range []struct {
		body, code string
	}{
		{"", "MissingRequestBodyError"},
		{"<CORSConfiguration><CORSRule>", "MalformedXML"},
		{"<CORSConfiguration></CORSConfiguration>", "MalformedXML"},
		{"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>", "MalformedXML"},
		{"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>", "MalformedXML"},
		{"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Bogus/></CORSRule></CORSConfiguration>", "MalformedXML"},
	} {
		resp := srv.Signed(t, http.MethodPut, "/cors-conf?cors", []byte(raw.body), nil, "")
		if e := corsErrorBody(t, resp); resp.StatusCode != 400 || e.Code != raw.code {
			t.Errorf("PUT ?cors %q: %d %+v, want 400 %s", raw.body, resp.StatusCode, e, raw.code)
		}
	}
	// A Content-MD5 that does not match is refused.
	resp = srv.Signed(t, http.MethodPut, "/cors-conf?cors",
		[]byte(`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`),
		http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}, "")
	if e := corsErrorBody(t, resp); e.Code != "BadDigest" {
		t.Errorf("wrong Content-MD5: %d %+v", resp.StatusCode, e)
	}
	out, err = c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors-conf")})
	if err != nil || !reflect.DeepEqual(out.CORSRules, corsSite.CORSRules) {
		t.Fatalf("a refused PutBucketCors changed the configuration: %v %+v", err, out)
	}

	// minio-go writes the same document.
	mc := srv.Minio(t)
	mcfg := miniocors.NewConfig([]miniocors.Rule{{AllowedOrigin: []string{"http://localhost:3000"}, AllowedMethod: []string{"GET", "POST"}, MaxAgeSeconds: 60}})
	if err := mc.SetBucketCors(ctx, "cors-conf", mcfg); err != nil {
		t.Fatalf("minio SetBucketCors: %v", err)
	}
	got, err := mc.GetBucketCors(ctx, "cors-conf")
	if err != nil || len(got.CORSRules) != 1 || got.CORSRules[0].AllowedOrigin[0] != "http://localhost:3000" || got.CORSRules[0].MaxAgeSeconds != 60 {
		t.Fatalf("minio GetBucketCors: %v %+v", err, got)
	}

	if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("cors-conf")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors-conf")})
	wantCode(t, err, "NoSuchCORSConfiguration")
	if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("cors-conf")}); err != nil {
		t.Fatalf("deleting an absent configuration: %v", err)
	}
	for _, call := range []func() error{
		func() error {
			_, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("no-such-bucket")})
			return err
		},
		func() error {
			_, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("no-such-bucket"), CORSConfiguration: corsSite})
			return err
		},
		func() error {
			_, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("no-such-bucket")})
			return err
		},
	} {
		wantCode(t, call(), "NoSuchBucket")
	}
}

// TestBucketCorsScopes: reading the configuration needs read:buckets,
// changing it write:buckets, and a key restricted to a prefix cannot change
// it (it governs the whole bucket).
func TestBucketCorsScopes(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	root := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, root, "cors-scopes")
	corsPut(t, root, "cors-scopes", corsSite)
	mk := func(spec iam.KeySpec) *s3.Client {
		k, secret, err := srv.Srv.Keys().Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return srv.SDKWith(t, k.ID, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	}
	reader := mk(iam.KeySpec{Scopes: []string{iam.ScopeReadBuckets}})
	writer := mk(iam.KeySpec{Scopes: []string{iam.ScopeWriteBuckets}})
	prefixed := mk(iam.KeySpec{Scopes: []string{iam.ScopeWriteBuckets, iam.ScopeReadBuckets}, Prefix: "users/"})

	if _, err := reader.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors-scopes")}); err != nil {
		t.Fatalf("read:buckets GetBucketCors: %v", err)
	}
	_, err := reader.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors-scopes"), CORSConfiguration: corsSite})
	wantCode(t, err, "AccessDenied")
	_, err = reader.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("cors-scopes")})
	wantCode(t, err, "AccessDenied")
	_, err = writer.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("cors-scopes")})
	wantCode(t, err, "AccessDenied")
	_, err = prefixed.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors-scopes"), CORSConfiguration: corsSite})
	wantCode(t, err, "AccessDenied")
	if _, err := writer.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("cors-scopes"), CORSConfiguration: corsSite}); err != nil {
		t.Fatalf("write:buckets PutBucketCors: %v", err)
	}
	if _, err := writer.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("cors-scopes")}); err != nil {
		t.Fatalf("write:buckets DeleteBucketCors: %v", err)
	}
}

// TestCorsPreflight: OPTIONS needs no signature and answers from the rule
// that matches, with S3's headers and refusals.
func TestCorsPreflight(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	mustCreate(t, c, "cors-pre")
	mustCreate(t, c, "no-cors")
	corsPut(t, c, "cors-pre", corsSite)
	key := "/cors-pre/dir/object.txt"

	allowedHeaders := corsSiteHeaders()
	allowedHeaders.Set("Access-Control-Allow-Headers", "content-type, x-amz-meta-name")
	type want struct {
		status  int
		headers http.Header
		err     corsError
	}
	forbidden := func(msg, method, resource string) want {
		return want{403, http.Header{}, corsError{Code: "AccessForbidden", Message: msg, Method: method, ResourceType: resource}}
	}
	bad := func(msg string) want {
		return want{400, http.Header{}, corsError{Code: "BadRequest", Message: msg}}
	}
	// A presigned URL's query does not make its preflight need a valid
	// signature: the browser sends the preflight without one.
	presigned := key + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=NOPE%2F20200101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20200101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
	cases := []struct {
		name, path string
		hdr        map[string]string
		want       want
	}{
		{"bucket", "/cors-pre", map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "GET"}, want{200, corsSiteHeaders(), corsError{}}},
		{"object with headers", key, map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-Name"}, want{200, allowedHeaders, corsError{}}},
		{"presigned URL", presigned, map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "PUT"}, want{200, corsSiteHeaders(), corsError{}}},
		{"null origin", "/cors-pre/no/such/key", map[string]string{"Origin": "null", "Access-Control-Request-Method": "HEAD"}, want{200, corsEveryone(), corsError{}}},
		{"method not allowed", key, map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "DELETE"}, forbidden(corsNotAllowed, "DELETE", "OBJECT")},
		{"origin not allowed", "/cors-pre", map[string]string{"Origin": "https://example.org", "Access-Control-Request-Method": "GET"}, forbidden(corsNotAllowed, "GET", "BUCKET")},
		{"header not allowed", key, map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}, forbidden(corsNotAllowed, "GET", "OBJECT")},
		{"no configuration", "/no-cors/key", map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "GET"}, forbidden(corsDisabled, "GET", "OBJECT")},
		{"no configuration bucket", "/no-cors", map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "PUT"}, forbidden(corsDisabled, "PUT", "BUCKET")},
		{"no bucket", "/missing-bucket/key", map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "GET"}, forbidden(corsNoBucket, "GET", "OBJECT")},
		{"no origin", key, map[string]string{"Access-Control-Request-Method": "GET"}, bad(corsNoOrigin)},
		{"no method", key, map[string]string{"Origin": corsOrigin}, bad("Invalid Access-Control-Request-Method: null")},
		{"bad method", key, map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "PATCH"}, bad("Invalid Access-Control-Request-Method: PATCH")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := corsSend(t, http.MethodOptions, srv.URL+tc.path, tc.hdr)
			got := corsHeaders(resp.Header)
			e := corsErrorBody(t, resp)
			if resp.StatusCode != tc.want.status || !reflect.DeepEqual(got, tc.want.headers) || e != tc.want.err {
				t.Fatalf("got %d %v %+v\nwant %d %v %+v", resp.StatusCode, got, e, tc.want.status, tc.want.headers, tc.want.err)
			}
		})
	}
}

// TestCorsActualRequests: requests with an Origin get the matching rule's
// headers, on errors too, so a page can read the error document.
func TestCorsActualRequests(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "cors-act")
	corsPut(t, c, "cors-act", corsSite)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cors-act"), Key: aws.String("key"), Body: strings.NewReader("data")}); err != nil {
		t.Fatal(err)
	}
	signer := presign.Signer{Endpoint: srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}}
	get, err := signer.Presign("cors-act", "key", presign.Options{Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	head, err := signer.Presign("cors-act", "key", presign.Options{Method: http.MethodHead, Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	missing, err := signer.Presign("cors-act", "missing-key", presign.Options{Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	put, err := signer.Presign("cors-act", "uploaded", presign.Options{Method: http.MethodPut, Expires: time.Minute, ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, url string
		hdr               map[string]string
		status            int
		headers           http.Header
		code              string
	}{
		{"presigned GET", "GET", get.URL, map[string]string{"Origin": corsOrigin}, 200, corsSiteHeaders(), ""},
		{"presigned PUT", "PUT", put.URL, map[string]string{"Origin": corsOrigin, "Content-Type": "text/plain"}, 200, corsSiteHeaders(), ""},
		{"HEAD from anywhere", "HEAD", head.URL, map[string]string{"Origin": "https://example.org"}, 200, corsEveryone(), ""},
		{"GET from elsewhere", "GET", get.URL, map[string]string{"Origin": "https://example.org"}, 200, http.Header{}, ""},
		{"no origin", "GET", get.URL, nil, 200, http.Header{}, ""},
		{"404 carries the headers", "GET", missing.URL, map[string]string{"Origin": corsOrigin}, 404, corsSiteHeaders(), "NoSuchKey"},
		{"403 carries the headers", "PUT", srv.URL + "/cors-act/key", map[string]string{"Origin": corsOrigin}, 403, corsSiteHeaders(), "AccessDenied"},
		{"bad signature carries the headers", "GET", get.URL[:len(get.URL)-4] + "0000", map[string]string{"Origin": corsOrigin}, 403, corsSiteHeaders(), "SignatureDoesNotMatch"},
		{"method the rule lacks", "DELETE", srv.URL + "/cors-act/key", map[string]string{"Origin": corsOrigin}, 403, http.Header{}, "AccessDenied"},
		// As S3 does, Access-Control-Request-Method picks the rule's method.
		{"request method header", "DELETE", srv.URL + "/cors-act/key", map[string]string{"Origin": corsOrigin, "Access-Control-Request-Method": "GET"}, 403, corsSiteHeaders(), "AccessDenied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := corsSend(t, tc.method, tc.url, tc.hdr)
			got := corsHeaders(resp.Header)
			if resp.StatusCode != tc.status || !reflect.DeepEqual(got, tc.headers) {
				t.Fatalf("got %d %v\nwant %d %v", resp.StatusCode, got, tc.status, tc.headers)
			}
			if tc.code != "" {
				if e := corsErrorBody(t, resp); e.Code != tc.code {
					t.Fatalf("error %+v, want %s", e, tc.code)
				}
			}
		})
	}
	// The configuration of another bucket, or none, is read afresh: a
	// change applies to the next request.
	corsPut(t, c, "cors-act", &types.CORSConfiguration{CORSRules: []types.CORSRule{{AllowedOrigins: []string{"https://other.example.net"}, AllowedMethods: []string{"GET"}}}})
	resp := corsSend(t, "GET", get.URL, map[string]string{"Origin": corsOrigin})
	if got := corsHeaders(resp.Header); len(got) != 0 {
		t.Fatalf("removed origin still allowed: %v", got)
	}
	if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("cors-act")}); err != nil {
		t.Fatal(err)
	}
	resp = corsSend(t, "GET", get.URL, map[string]string{"Origin": "https://other.example.net"})
	if got := corsHeaders(resp.Header); len(got) != 0 {
		t.Fatalf("deleted configuration still applies: %v", got)
	}
}

// TestCorsOperatorDefault: --cors-allow-origin covers buckets without a
// configuration of their own; a bucket's own rules replace it.
func TestCorsOperatorDefault(t *testing.T) {
	NoEnv(t)
	srv := Start(t, func(c *server.Config) { c.CORSAllowOrigin = []string{"http://localhost:*", "https://app.example.com"} })
	c := srv.SDK(t)
	mustCreate(t, c, "plain")
	mustCreate(t, c, "own-rules")
	corsPut(t, c, "own-rules", &types.CORSConfiguration{CORSRules: []types.CORSRule{{AllowedOrigins: []string{"https://other.example.net"}, AllowedMethods: []string{"GET"}}}})

	pre := func(path, origin, method, headers string) *http.Response {
		return corsSend(t, http.MethodOptions, srv.URL+path, map[string]string{
			"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})
	}
	resp := pre("/plain/a/b", "http://localhost:5173", "PUT", "content-type, x-amz-date, authorization")
	h := resp.Header
	if resp.StatusCode != 200 || h.Get("Access-Control-Allow-Origin") != "http://localhost:5173" ||
		h.Get("Access-Control-Allow-Methods") != "GET, PUT, POST, DELETE, HEAD" ||
		h.Get("Access-Control-Allow-Headers") != "content-type, x-amz-date, authorization" ||
		!strings.HasPrefix(h.Get("Access-Control-Expose-Headers"), "ETag, ") || h.Get("Access-Control-Max-Age") != "3600" {
		t.Fatalf("default rule preflight: %d %v", resp.StatusCode, corsHeaders(h))
	}
	if resp := pre("/plain/a", "https://evil.example.com", "GET", ""); resp.StatusCode != 403 {
		t.Fatalf("unlisted origin: %d", resp.StatusCode)
	}
	// The bucket's own rules replace the default.
	if resp := pre("/own-rules/a", "http://localhost:5173", "GET", ""); resp.StatusCode != 403 {
		t.Fatalf("default applied over the bucket's rules: %d", resp.StatusCode)
	}
	if resp := pre("/own-rules/a", "https://other.example.net", "GET", ""); resp.StatusCode != 200 {
		t.Fatalf("bucket rule: %d", resp.StatusCode)
	}
	// A missing bucket is covered by the default, so the page can read
	// the NoSuchBucket that follows.
	if resp := pre("/missing/a", "https://app.example.com", "GET", ""); resp.StatusCode != 200 {
		t.Fatalf("missing bucket preflight: %d", resp.StatusCode)
	}
	resp = corsSend(t, "GET", srv.URL+"/missing/a", map[string]string{"Origin": "https://app.example.com"})
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("error on a missing bucket: %d %v", resp.StatusCode, corsHeaders(resp.Header))
	}
	// Signed requests from the browser of a listed origin work as usual.
	resp = srv.Signed(t, http.MethodPut, "/plain/signed", []byte("x"), http.Header{"Origin": {"https://app.example.com"}}, "")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("signed PUT: %d %v", resp.StatusCode, corsHeaders(resp.Header))
	}
}
