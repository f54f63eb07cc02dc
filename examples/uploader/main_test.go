package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3test"
)

// fixture is a store with a bucket, a key scoped to it, and the uploader
// serving in front of them.
type fixture struct {
	store *s3test.Server
	sdk   *s3.Client
	app   *app
	url   string
}

func start(t *testing.T) *fixture {
	t.Helper()
	s3test.NoEnv(t)
	store := s3test.Start(t)
	sdk := store.SDK(t)
	if _, err := sdk.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("uploads")}); err != nil {
		t.Fatal(err)
	}
	// The app holds a key that can only read and write objects in its bucket.
	k, secret, err := store.Srv.Keys().Create(context.Background(), iam.KeySpec{
		Name: "uploader", Scopes: []string{iam.ScopeReadObjects, iam.ScopeWriteObjects}, Buckets: []string{"uploads"},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(config{Endpoint: store.URL, Region: "us-east-1", AccessKey: k.ID, SecretKey: secret, Bucket: "uploads"})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(a.routes())
	t.Cleanup(web.Close)
	return &fixture{store: store, sdk: sdk, app: a, url: web.URL}
}

// browser is a client with its own cookie jar, like one user's browser.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func call(t *testing.T, c *http.Client, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

type uploadTarget struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Error   string            `json:"error"`
}

func login(t *testing.T, f *fixture, user string) *http.Client {
	t.Helper()
	c := browser(t)
	var out map[string]string
	if st := call(t, c, "POST", f.url+"/api/login", map[string]string{"user": user}, &out); st != 200 || out["user"] != user {
		t.Fatalf("login %s: %d %v", user, st, out)
	}
	return c
}

// put sends the file the way the page does: the returned method, URL and
// headers, nothing else.
func put(t *testing.T, target uploadTarget, content []byte, override map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(target.Method, target.URL, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range target.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range override {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestUploadListDownload(t *testing.T) {
	f := start(t)
	alice := login(t, f, "alice")

	var target uploadTarget
	if st := call(t, alice, "POST", f.url+"/api/get-upload-url", map[string]string{"filename": `C:\fakepath\report 1;v2.pdf`, "contentType": "application/pdf"}, &target); st != 200 {
		t.Fatalf("get-upload-url: %d %s", st, target.Error)
	}
	if target.Key != "users/alice/report 1;v2.pdf" || target.Method != "PUT" || target.Headers["Content-Type"] != "application/pdf" {
		t.Fatalf("target %+v", target)
	}
	u, _ := url.Parse(target.URL)
	if exp := u.Query().Get("X-Amz-Expires"); exp != "900" {
		t.Fatalf("upload URL valid for %s s, want 900", exp)
	}
	content := []byte("%PDF-1.7 pretend")
	// The Content-Type is signed: another type is refused.
	if resp := put(t, target, content, map[string]string{"Content-Type": "text/html"}); resp.StatusCode != 403 {
		t.Fatalf("PUT with another Content-Type: %d", resp.StatusCode)
	}
	if resp := put(t, target, content, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	head, err := f.sdk.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("uploads"), Key: aws.String(target.Key)})
	if err != nil || aws.ToString(head.ContentType) != "application/pdf" {
		t.Fatalf("stored object: %v %v", err, head)
	}

	var list struct {
		Files []fileEntry `json:"files"`
	}
	if st := call(t, alice, "GET", f.url+"/api/files", nil, &list); st != 200 || len(list.Files) != 1 ||
		list.Files[0].Name != "report 1;v2.pdf" || list.Files[0].Size != int64(len(content)) {
		t.Fatalf("files: %d %+v", st, list)
	}

	var dl map[string]string
	if st := call(t, alice, "GET", f.url+"/api/get-download-url?key="+url.QueryEscape(target.Key), nil, &dl); st != 200 {
		t.Fatalf("get-download-url: %d %v", st, dl)
	}
	resp, err := http.Get(dl["url"])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, content) {
		t.Fatalf("download: %d %q", resp.StatusCode, got)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename*=UTF-8''report%201%3Bv2.pdf" {
		t.Fatalf("Content-Disposition %q", cd)
	}
	du, _ := url.Parse(dl["url"])
	if du.Query().Get("X-Amz-Expires") != "3600" {
		t.Fatalf("download URL expiry %s", du.Query().Get("X-Amz-Expires"))
	}

	// Bob sees none of it and may not download it.
	bob := login(t, f, "bob")
	if st := call(t, bob, "GET", f.url+"/api/files", nil, &list); st != 200 || len(list.Files) != 0 {
		t.Fatalf("bob's files: %d %+v", st, list)
	}
	var e map[string]string
	for _, key := range []string{target.Key, "users/bob", "users/bob/", "users/bobby/x", "", "../users/alice/x"} {
		if st := call(t, bob, "GET", f.url+"/api/get-download-url?key="+url.QueryEscape(key), nil, &e); st != 403 {
			t.Fatalf("bob downloading %q: %d %v", key, st, e)
		}
	}
}

func TestRefusals(t *testing.T) {
	f := start(t)
	anon := browser(t)
	var e map[string]string
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/files"}, {"GET", "/api/me"}, {"GET", "/api/get-download-url?key=users/x/y"}, {"POST", "/api/get-upload-url"},
	} {
		var body any
		if tc.method == "POST" {
			body = map[string]string{"filename": "a"}
		}
		if st := call(t, anon, tc.method, f.url+tc.path, body, &e); st != 401 {
			t.Errorf("%s %s without a session: %d", tc.method, tc.path, st)
		}
	}
	for _, user := range []string{"", "Alice", "a b", "../x", strings.Repeat("a", 33)} {
		if st := call(t, anon, "POST", f.url+"/api/login", map[string]string{"user": user}, &e); st != 400 {
			t.Errorf("login %q: %d", user, st)
		}
	}
	// A forged or altered cookie is no session.
	forged := browser(t)
	u, _ := url.Parse(f.url)
	other, _ := newApp(config{Endpoint: f.store.URL, AccessKey: "x", SecretKey: "y", Bucket: "uploads"})
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: other.sessionValue("alice", time.Now().Add(time.Hour))}})
	if st := call(t, forged, "GET", f.url+"/api/me", nil, &e); st != 401 {
		t.Fatalf("cookie signed with another key: %d", st)
	}
	expired := browser(t)
	expired.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: f.app.sessionValue("alice", time.Now().Add(-time.Minute))}})
	if st := call(t, expired, "GET", f.url+"/api/me", nil, &e); st != 401 {
		t.Fatalf("expired session: %d", st)
	}

	alice := login(t, f, "alice")
	for _, in := range []map[string]string{
		{"filename": ""}, {"filename": "dir/"}, {"filename": ".."}, {"filename": "a\x01b"},
		{"filename": strings.Repeat("n", 201)}, {"filename": "ok", "contentType": "not a type"},
	} {
		if st := call(t, alice, "POST", f.url+"/api/get-upload-url", in, &e); st != 400 {
			t.Errorf("upload URL for %q: %d %v", in, st, e)
		}
	}
	// A form post (not JSON) cannot reach the API with the cookie.
	req, _ := http.NewRequest("POST", f.url+"/api/get-upload-url", strings.NewReader("filename=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("form post: %d", resp.StatusCode)
	}
	// A path in the name keeps only its last element, inside the prefix.
	var target uploadTarget
	if st := call(t, alice, "POST", f.url+"/api/get-upload-url", map[string]string{"filename": "../../users/bob/evil.txt"}, &target); st != 200 ||
		target.Key != "users/alice/evil.txt" || target.Headers["Content-Type"] != "application/octet-stream" {
		t.Fatalf("%d %+v", st, target)
	}
}

func TestPage(t *testing.T) {
	f := start(t)
	resp, err := http.Get(f.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="upload-form"`) {
		t.Fatalf("page: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' "+f.store.URL) {
		t.Fatalf("CSP %q does not let the page reach the store", csp)
	}
	resp, err = http.Get(f.url + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("app.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []config{
		{Endpoint: "http://127.0.0.1:9000", Bucket: "b"},
		{Endpoint: "http://127.0.0.1:9000", AccessKey: "a", SecretKey: "s"},
		{Endpoint: "ftp://x", AccessKey: "a", SecretKey: "s", Bucket: "b"},
		{Endpoint: "127.0.0.1:9000", AccessKey: "a", SecretKey: "s", Bucket: "b"},
	} {
		if _, err := newApp(cfg); err == nil {
			t.Errorf("newApp(%+v) accepted", cfg)
		}
	}
}
