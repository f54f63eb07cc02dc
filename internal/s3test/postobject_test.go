package s3test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/presign"
)

// poField is one form field; forms are sent in the order given, fields
// sorted by name (the order does not matter to the store), then the file.
type poField struct{ name, value string }

func poSortedFields(m map[string]string) []poField {
	out := make([]poField, 0, len(m))
	for k, v := range m {
		out = append(out, poField{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// poPost sends a POST Object form and returns the response (not following
// redirects). filename "" sends the file part without a filename; a nil
// file sends no file part.
func poPost(t *testing.T, target string, fields []poField, filename string, file io.Reader, extraHeaders http.Header) *http.Response {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, f := range fields {
			if err := mw.WriteField(f.name, f.value); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		if file != nil {
			var w io.Writer
			var err error
			if filename == "" {
				w, err = mw.CreateFormField("file")
			} else {
				w, err = mw.CreateFormFile("file", filename)
			}
			if err == nil {
				_, err = io.Copy(w, file)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	req, err := http.NewRequest(http.MethodPost, target, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for k, v := range extraHeaders {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type poError struct {
	Code, Message, ArgumentName, ArgumentValue         string
	ProposedSize, MaxSizeAllowed, MinSizeAllowed       string
	MaxPostPreDataLengthBytes, StringToSign, RequestId string
}

func poErr(t *testing.T, resp *http.Response) poError {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	var e poError
	if err := xml.Unmarshal(b, &e); err != nil {
		t.Fatalf("status %d, body is not an S3 error: %s", resp.StatusCode, b)
	}
	return e
}

func poWantErr(t *testing.T, resp *http.Response, status int, code, msg string) poError {
	t.Helper()
	e := poErr(t, resp)
	if resp.StatusCode != status || e.Code != code || (msg != "" && e.Message != msg) {
		t.Fatalf("got %d %s %q, want %d %s %q", resp.StatusCode, e.Code, e.Message, status, code, msg)
	}
	return e
}

func poAbsent(t *testing.T, c *s3.Client, bucket, key string) {
	t.Helper()
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		t.Fatalf("%s/%s exists after a refused upload", bucket, key)
	}
}

func poSigner(srv *Server, id, secret string) *presign.Signer {
	return &presign.Signer{Endpoint: srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: id, SecretAccessKey: secret}}
}

func poWith(fields map[string]string, extra ...poField) []poField {
	out := poSortedFields(fields)
	return append(out, extra...)
}

func TestPostObjectUploads(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	ctx := context.Background()
	mustCreate(t, c, "forms")
	signer := poSigner(srv, RootAccessKey, RootSecretKey)

	t.Run("201 with metadata and filename", func(t *testing.T) {
		post, err := signer.PresignPost("forms", presign.PostOptions{
			Key: "user/42/${filename}", ContentType: "image/png", MaxSize: 1 << 20, MinSize: 1,
			SuccessActionStatus: 201, Metadata: map[string]string{"Owner": "eric"},
		})
		if err != nil {
			t.Fatal(err)
		}
		content := []byte("\x89PNG not really")
		resp := poPost(t, post.URL, poSortedFields(post.Fields), "cat.png", bytes.NewReader(content), nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		sum := md5.Sum(content)
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		var pr struct {
			XMLName                     xml.Name `xml:"PostResponse"`
			Location, Bucket, Key, ETag string
		}
		if err := xml.Unmarshal(body, &pr); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		wantLoc := srv.URL + "/forms/user%2F42%2Fcat.png"
		if pr.Bucket != "forms" || pr.Key != "user/42/cat.png" || pr.ETag != etag || pr.Location != wantLoc {
			t.Fatalf("PostResponse %+v", pr)
		}
		if resp.Header.Get("ETag") != etag || resp.Header.Get("Location") != wantLoc {
			t.Fatalf("headers %v", resp.Header)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("forms"), Key: aws.String("user/42/cat.png")})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, content) || aws.ToString(out.ContentType) != "image/png" || out.Metadata["owner"] != "eric" {
			t.Fatalf("stored %q type %q meta %v", got, aws.ToString(out.ContentType), out.Metadata)
		}
	})

	t.Run("204 default, large file streamed", func(t *testing.T) {
		post, err := signer.PresignPost("forms", presign.PostOptions{Key: "big.bin"})
		if err != nil {
			t.Fatal(err)
		}
		content := randBytes(3<<20 + 17)
		resp := poPost(t, post.URL, poSortedFields(post.Fields), "big.bin", bytes.NewReader(content), nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d: %v", resp.StatusCode, poErr(t, resp))
		}
		sum := md5.Sum(content)
		if resp.Header.Get("ETag") != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Fatalf("ETag %s", resp.Header.Get("ETag"))
		}
		if got := getBody(t, c, "forms", "big.bin"); !bytes.Equal(got, content) {
			t.Fatal("stored bytes differ")
		}
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("forms"), Key: aws.String("big.bin")})
		if err != nil || aws.ToString(head.ContentType) != "binary/octet-stream" {
			t.Fatalf("default content type: %v %v", err, head)
		}
	})

	t.Run("200", func(t *testing.T) {
		post, err := signer.PresignPost("forms", presign.PostOptions{Key: "ok200", SuccessActionStatus: 200})
		if err != nil {
			t.Fatal(err)
		}
		resp := poPost(t, post.URL, poSortedFields(post.Fields), "x", strings.NewReader("two hundred"), nil)
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(b) != 0 {
			t.Fatalf("status %d body %q", resp.StatusCode, b)
		}
	})

	t.Run("redirect", func(t *testing.T) {
		post, err := signer.PresignPost("forms", presign.PostOptions{Key: "dir/re direct", SuccessActionRedirect: "https://app.example.com/done?from=form"})
		if err != nil {
			t.Fatal(err)
		}
		resp := poPost(t, post.URL, poSortedFields(post.Fields), "x", strings.NewReader("redirected"), nil)
		sum := md5.Sum([]byte("redirected"))
		want := "https://app.example.com/done?from=form&bucket=forms&key=dir%2Fre+direct&etag=%22" + hex.EncodeToString(sum[:]) + "%22"
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Fatalf("status %d Location %q\nwant %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if string(getBody(t, c, "forms", "dir/re direct")) != "redirected" {
			t.Fatal("redirected upload not stored")
		}
	})

	t.Run("checksum field", func(t *testing.T) {
		post, err := signer.PresignPost("forms", presign.PostOptions{Key: "summed",
			Conditions: []any{[]any{"starts-with", "$x-amz-checksum-sha256", ""}}})
		if err != nil {
			t.Fatal(err)
		}
		content := []byte("checked content")
		wrong := base64.StdEncoding.EncodeToString(make([]byte, 32))
		resp := poPost(t, post.URL, poWith(post.Fields, poField{"x-amz-checksum-sha256", wrong}), "x", bytes.NewReader(content), nil)
		poWantErr(t, resp, 400, "BadDigest", "")
		poAbsent(t, c, "forms", "summed")
		digest := sha256.Sum256(content)
		right := base64.StdEncoding.EncodeToString(digest[:])
		resp = poPost(t, post.URL, poWith(post.Fields, poField{"x-amz-checksum-sha256", right}), "x", bytes.NewReader(content), nil)
		if resp.StatusCode != 204 || resp.Header.Get("X-Amz-Checksum-Sha256") != right {
			t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
		}
	})

	t.Run("fields after the file are ignored", func(t *testing.T) {
		post, err := signer.PresignPost("forms", presign.PostOptions{Key: "after"})
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, f := range poSortedFields(post.Fields) {
			mw.WriteField(f.name, f.value)
		}
		fw, _ := mw.CreateFormFile("file", "a")
		fw.Write([]byte("first"))
		mw.WriteField("x-amz-meta-late", "ignored")
		mw.Close()
		resp, err := http.Post(post.URL, mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("forms"), Key: aws.String("after")})
		if err != nil || len(out.Metadata) != 0 {
			t.Fatalf("%v %v", err, out.Metadata)
		}
	})
}

func TestPostObjectRefusals(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	mustCreate(t, c, "forms")
	signer := poSigner(srv, RootAccessKey, RootSecretKey)
	post, err := signer.PresignPost("forms", presign.PostOptions{KeyStartsWith: "user/42/", MinSize: 2, MaxSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	fields := func(override map[string]string) []poField {
		m := map[string]string{}
		for k, v := range post.Fields {
			m[k] = v
		}
		for k, v := range override {
			if v == "" {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return poSortedFields(m)
	}
	file := func(s string) io.Reader { return strings.NewReader(s) }

	// Sanity: the form as signed works.
	if resp := poPost(t, post.URL, fields(nil), "fine.txt", file("12345"), nil); resp.StatusCode != 204 {
		t.Fatalf("valid form: %d %+v", resp.StatusCode, poErr(t, resp))
	}

	e := poWantErr(t, poPost(t, post.URL, fields(nil), "big.txt", file("12345678901"), nil), 400, "EntityTooLarge", "")
	if e.ProposedSize != "11" || e.MaxSizeAllowed != "10" {
		t.Fatalf("EntityTooLarge %+v", e)
	}
	poAbsent(t, c, "forms", "user/42/big.txt")
	e = poWantErr(t, poPost(t, post.URL, fields(nil), "small.txt", file("1"), nil), 400, "EntityTooSmall", "")
	if e.ProposedSize != "1" || e.MinSizeAllowed != "2" {
		t.Fatalf("EntityTooSmall %+v", e)
	}
	poAbsent(t, c, "forms", "user/42/small.txt")

	poWantErr(t, poPost(t, post.URL, fields(map[string]string{"key": "user/43/x"}), "x", file("12345"), nil),
		403, "AccessDenied", `Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "user/42/"]`)
	poAbsent(t, c, "forms", "user/43/x")
	poWantErr(t, poPost(t, post.URL, fields(map[string]string{"x-amz-meta-extra": "1"}), "x", file("12345"), nil),
		403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-extra")
	// The policy is signed: changing it breaks the signature.
	e = poWantErr(t, poPost(t, post.URL, fields(map[string]string{"policy": post.Fields["policy"] + "AA=="}), "x", file("12345"), nil),
		403, "SignatureDoesNotMatch", "")
	if e.StringToSign != post.Fields["policy"]+"AA==" {
		t.Fatalf("StringToSign %q", e.StringToSign)
	}
	// Posting to another bucket fails the bucket condition.
	mustCreate(t, c, "other-forms")
	poWantErr(t, poPost(t, srv.URL+"/other-forms", fields(nil), "x", file("12345"), nil),
		403, "AccessDenied", `Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "forms"]`)

	poWantErr(t, poPost(t, post.URL, fields(nil), "x", nil, nil), 400, "InvalidArgument", "POST requires exactly one file upload per request.")
	e = poWantErr(t, poPost(t, post.URL, fields(map[string]string{"key": ""}), "x", file("12345"), nil), 400, "InvalidArgument",
		"Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
	if e.ArgumentName != "key" {
		t.Fatalf("%+v", e)
	}
	poWantErr(t, poPost(t, post.URL, []poField{{"key", "user/42/anon"}}, "x", file("12345"), nil), 403, "AccessDenied", "Access Denied")
	poWantErr(t, poPost(t, post.URL, fields(map[string]string{"x-amz-signature": ""}), "x", file("12345"), nil), 400, "InvalidArgument", "")
	poWantErr(t, poPost(t, post.URL, fields(map[string]string{"x-amz-credential": "NOSUCHKEY/20250101/us-east-1/s3/aws4_request"}), "x", file("12345"), nil),
		403, "InvalidAccessKeyId", "")
	poWantErr(t, poPost(t, post.URL, fields(map[string]string{"x-amz-meta-big": strings.Repeat("b", 21000)}), "x", file("12345"), nil),
		400, "MaxPostPreDataLengthExceeded", "Your POST request fields preceeding the upload file was too large.")
	poWantErr(t, poPost(t, srv.URL+"/no-such-bucket", fields(nil), "x", file("12345"), nil), 404, "NoSuchBucket", "")

	// Expired: signed an hour ago for 15 minutes.
	old := poSigner(srv, RootAccessKey, RootSecretKey)
	old.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	expired, err := old.PresignPost("forms", presign.PostOptions{Key: "late", Expires: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	poWantErr(t, poPost(t, expired.URL, poSortedFields(expired.Fields), "x", file("late"), nil),
		403, "AccessDenied", "Invalid according to Policy: Policy expired.")
	poAbsent(t, c, "forms", "late")

	// A body cut short stores nothing.
	trunc, err := signer.PresignPost("forms", presign.PostOptions{Key: "truncated"})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range poSortedFields(trunc.Fields) {
		mw.WriteField(f.name, f.value)
	}
	fw, _ := mw.CreateFormFile("file", "t")
	fw.Write(randBytes(200 << 10))
	resp, err := http.Post(trunc.URL, mw.FormDataContentType(), &body) // never closed: no final boundary
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("truncated form: %d", resp.StatusCode)
	}
	poAbsent(t, c, "forms", "truncated")

	// A multipart type without boundary is malformed.
	req, _ := http.NewRequest(http.MethodPost, post.URL, strings.NewReader("x"))
	req.Header.Set("Content-Type", "multipart/form-data")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	poWantErr(t, resp, 400, "MalformedPOSTRequest", "")
	resp.Body.Close()
}

// poSignV2 builds a Signature Version 2 POST form.
func poSignV2(policy, id, secret string) (fields map[string]string) {
	p := base64.StdEncoding.EncodeToString([]byte(policy))
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(p))
	return map[string]string{"policy": p, "AWSAccessKeyId": id, "signature": base64.StdEncoding.EncodeToString(m.Sum(nil))}
}

func TestPostObjectSigV2(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	mustCreate(t, c, "forms")
	exp := time.Now().Add(10 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	policy := `{"expiration": "` + exp + `", "conditions": [{"bucket": "forms"}, ["starts-with", "$key", "v2/"], {"acl": "private"}, ["starts-with", "$Content-Type", "text/plain"], ["content-length-range", 0, 1024]]}`
	f := poSignV2(policy, RootAccessKey, RootSecretKey)
	f["key"], f["acl"], f["Content-Type"] = "v2/foo.txt", "private", "text/plain"
	resp := poPost(t, srv.URL+"/forms", poSortedFields(f), "foo.txt", strings.NewReader("bar"), nil)
	if resp.StatusCode != 204 {
		t.Fatalf("SigV2 form: %d %+v", resp.StatusCode, poErr(t, resp))
	}
	if string(getBody(t, c, "forms", "v2/foo.txt")) != "bar" {
		t.Fatal("SigV2 upload not stored")
	}
	f["signature"] = base64.StdEncoding.EncodeToString(make([]byte, 20))
	poWantErr(t, poPost(t, srv.URL+"/forms", poSortedFields(f), "foo.txt", strings.NewReader("bar"), nil), 403, "SignatureDoesNotMatch", "")
	// Field names are case-insensitive, as in S3.
	f = poSignV2(policy, RootAccessKey, RootSecretKey)
	fields := []poField{{"kEy", "v2/case.txt"}, {"aCl", "private"}, {"content-type", "text/plain"}, {"pOLICy", f["policy"]}, {"awsaccesskeyid", f["AWSAccessKeyId"]}, {"Signature", f["signature"]}}
	if resp := poPost(t, srv.URL+"/forms", fields, "x", strings.NewReader("case"), nil); resp.StatusCode != 204 {
		t.Fatalf("mixed-case fields: %d %+v", resp.StatusCode, poErr(t, resp))
	}
}

// TestPostObjectKeyLimits: the key that signed the policy is held to its
// scopes, prefix and presign limits.
func TestPostObjectKeyLimits(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	mustCreate(t, c, "forms")
	mk := func(spec iam.KeySpec) *presign.Signer {
		spec.Scopes = []string{iam.ScopeWriteObjects}
		k, secret, err := srv.Srv.Keys().Create(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		return poSigner(srv, k.ID, secret)
	}
	send := func(s *presign.Signer, o presign.PostOptions, content string) *http.Response {
		post, err := s.PresignPost("forms", o)
		if err != nil {
			t.Fatal(err)
		}
		return poPost(t, post.URL, poSortedFields(post.Fields), "f.txt", strings.NewReader(content), nil)
	}
	prefixed := mk(iam.KeySpec{Prefix: "users/ann/"})
	if resp := send(prefixed, presign.PostOptions{Key: "users/ann/a"}, "a"); resp.StatusCode != 204 {
		t.Fatalf("inside prefix: %d %+v", resp.StatusCode, poErr(t, resp))
	}
	poWantErr(t, send(prefixed, presign.PostOptions{Key: "users/bob/a"}, "a"), 403, "AccessDenied", "Access Denied: key outside prefix users/ann/")
	// The prefix applies to the key after ${filename}.
	poWantErr(t, send(prefixed, presign.PostOptions{Key: "${filename}"}, "a"), 403, "AccessDenied", "Access Denied: key outside prefix users/ann/")

	limited := mk(iam.KeySpec{MaxObjectSize: 100, ContentTypes: []string{"image/*"}, MaxURLTTL: time.Hour})
	poWantErr(t, send(limited, presign.PostOptions{Key: "a", ContentType: "image/png"}, "a"), 403, "AccessDenied",
		"Access Denied: upload size must be signed, the key limits uploads to 100 bytes")
	poWantErr(t, send(limited, presign.PostOptions{Key: "a", ContentType: "image/png", MaxSize: 1000}, "a"), 403, "AccessDenied",
		"Access Denied: upload size 1000 exceeds the key's limit of 100 bytes")
	poWantErr(t, send(limited, presign.PostOptions{Key: "a", MaxSize: 100}, "a"), 403, "AccessDenied",
		"Access Denied: content type must be signed, the key allows only image/*")
	poWantErr(t, send(limited, presign.PostOptions{Key: "a", ContentType: "text/html", MaxSize: 100}, "a"), 403, "AccessDenied",
		"Access Denied: content type text/html is not allowed for this key")
	poWantErr(t, send(limited, presign.PostOptions{Key: "a", ContentType: "image/png", MaxSize: 100, Expires: 2 * time.Hour}, "a"), 403, "AccessDenied", "")
	if resp := send(limited, presign.PostOptions{Key: "ok.png", ContentType: "image/png", MaxSize: 100}, "png"); resp.StatusCode != 204 {
		t.Fatalf("within limits: %d %+v", resp.StatusCode, poErr(t, resp))
	}
	poAbsent(t, c, "forms", "a")
}

func TestPostObjectMinio(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	mc := srv.Minio(t)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "minio-forms", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	policy := func(expires time.Time, maxSize int64) (string, map[string]string) {
		p := minio.NewPostPolicy()
		p.SetBucket("minio-forms")
		p.SetKeyStartsWith("uploads/")
		p.SetExpires(expires)
		p.SetContentType("text/plain")
		p.SetContentLengthRange(1, maxSize)
		p.SetUserMetadata("origin", "minio")
		u, form, err := mc.PresignedPostPolicy(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return u.String(), form
	}
	with := func(form map[string]string, k, v string) []poField {
		m := map[string]string{}
		for a, b := range form {
			m[a] = b
		}
		m[k] = v
		return poSortedFields(m)
	}
	u, form := policy(time.Now().Add(10*time.Minute), 64)
	if resp := poPost(t, u, with(form, "key", "uploads/m.txt"), "m.txt", strings.NewReader("from minio"), nil); resp.StatusCode != 204 {
		t.Fatalf("minio policy: %d %+v", resp.StatusCode, poErr(t, resp))
	}
	obj, err := mc.StatObject(ctx, "minio-forms", "uploads/m.txt", minio.StatObjectOptions{})
	if err != nil || obj.Size != 10 || obj.ContentType != "text/plain" || obj.UserMetadata["Origin"] != "minio" {
		t.Fatalf("stat %v %+v", err, obj)
	}
	poWantErr(t, poPost(t, u, with(form, "key", "uploads/big.txt"), "b", strings.NewReader(strings.Repeat("x", 65)), nil), 400, "EntityTooLarge", "")
	poWantErr(t, poPost(t, u, with(form, "key", "elsewhere/m.txt"), "m", strings.NewReader("x"), nil), 403, "AccessDenied",
		`Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "uploads/"]`)
	u, form = policy(time.Now().Add(-time.Minute), 64)
	poWantErr(t, poPost(t, u, with(form, "key", "uploads/late.txt"), "l", strings.NewReader("x"), nil), 403, "AccessDenied",
		"Invalid according to Policy: Policy expired.")
}

// poBoto3 runs boto3's generate_presigned_post in Debian's Python.
func poBoto3(t *testing.T, srv *Server, args map[string]any) (string, map[string]string) {
	t.Helper()
	script := `
import json, sys
import boto3
from botocore.config import Config
a = json.loads(sys.argv[1])
s3 = boto3.client("s3", endpoint_url=a["endpoint"], region_name="us-east-1",
    aws_access_key_id=a["id"], aws_secret_access_key=a["secret"],
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
post = s3.generate_presigned_post(Bucket=a["bucket"], Key=a["key"], Fields=a.get("fields"),
    Conditions=a.get("conditions"), ExpiresIn=a["expires"])
print(json.dumps(post))
`
	args["endpoint"], args["id"], args["secret"] = srv.URL, RootAccessKey, RootSecretKey
	raw, _ := json.Marshal(args)
	cmd := exec.Command("/usr/bin/python3", "-c", script, string(raw))
	// No AWS_* from this machine (a CA bundle, profiles) reaches boto3.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("boto3: %v\n%s", err, stderr)
	}
	var post struct {
		URL    string            `json:"url"`
		Fields map[string]string `json:"fields"`
	}
	if err := json.Unmarshal(out, &post); err != nil {
		t.Fatalf("boto3 output %s: %v", out, err)
	}
	return post.URL, post.Fields
}

func TestPostObjectBoto3(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil || exec.Command("/usr/bin/python3", "-c", "import boto3").Run() != nil {
		if os.Getenv("NFYIO_REQUIRE_E2E") == "1" {
			t.Fatal("/usr/bin/python3 with boto3 is required (apt-get install -y python3-boto3)")
		}
		t.Skip("/usr/bin/python3 has no boto3")
	}
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	mustCreate(t, c, "boto-forms")
	u, fields := poBoto3(t, srv, map[string]any{
		"bucket": "boto-forms", "key": "uploads/${filename}", "expires": 600,
		"fields":     map[string]string{"success_action_status": "201", "Content-Type": "text/plain"},
		"conditions": []any{map[string]string{"success_action_status": "201"}, map[string]string{"Content-Type": "text/plain"}, []any{"content-length-range", 1, 64}},
	})
	resp := poPost(t, u, poSortedFields(fields), "hello.txt", strings.NewReader("hello from boto3"), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("boto3 form: %d %+v", resp.StatusCode, poErr(t, resp))
	}
	if string(getBody(t, c, "boto-forms", "uploads/hello.txt")) != "hello from boto3" {
		t.Fatal("boto3 upload not stored")
	}
	poWantErr(t, poPost(t, u, poSortedFields(fields), "big.txt", strings.NewReader(strings.Repeat("x", 65)), nil), 400, "EntityTooLarge", "")
	poAbsent(t, c, "boto-forms", "uploads/big.txt")
	moved := map[string]string{}
	for k, v := range fields {
		moved[k] = v
	}
	moved["key"] = "private/${filename}"
	poWantErr(t, poPost(t, u, poSortedFields(moved), "x.txt", strings.NewReader("x"), nil), 403, "AccessDenied",
		`Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "uploads/"]`)
	poAbsent(t, c, "boto-forms", "private/x.txt")

	u, fields = poBoto3(t, srv, map[string]any{"bucket": "boto-forms", "key": "late.txt", "expires": -60})
	poWantErr(t, poPost(t, u, poSortedFields(fields), "late.txt", strings.NewReader("late"), nil), 403, "AccessDenied",
		"Invalid according to Policy: Policy expired.")
	poAbsent(t, c, "boto-forms", "late.txt")
}

// TestPostObjectCORS: a page on another origin posting a form reads the
// answer, errors included, when the bucket allows POST from it.
func TestPostObjectCORS(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	c := srv.SDK(t)
	mustCreate(t, c, "cors-forms")
	corsPut(t, c, "cors-forms", &types.CORSConfiguration{CORSRules: []types.CORSRule{{AllowedOrigins: []string{corsOrigin}, AllowedMethods: []string{"POST"}, ExposeHeaders: []string{"Location"}}}})
	post, err := poSigner(srv, RootAccessKey, RootSecretKey).PresignPost("cors-forms", presign.PostOptions{Key: "k", MaxSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	origin := http.Header{"Origin": {corsOrigin}}
	resp := poPost(t, post.URL, poSortedFields(post.Fields), "k", strings.NewReader("ok"), origin)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != corsOrigin || resp.Header.Get("Access-Control-Expose-Headers") != "ETag, Location" {
		t.Fatalf("%d %v", resp.StatusCode, corsHeaders(resp.Header))
	}
	resp = poPost(t, post.URL, poSortedFields(post.Fields), "k", strings.NewReader("too long"), origin)
	if resp.StatusCode != 400 || resp.Header.Get("Access-Control-Allow-Origin") != corsOrigin {
		t.Fatalf("%d %v", resp.StatusCode, corsHeaders(resp.Header))
	}
}
