package admin_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/admin"
	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
)

type fixture struct {
	t   *testing.T
	svc *iam.Service
	url string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	meta := openMetaAt(t, filepath.Join(t.TempDir(), "meta.db"))
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := iam.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := iam.NewService(meta, sealer)
	srv := httptest.NewServer(admin.New(svc))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
	}
	return &fixture{t: t, svc: svc, url: srv.URL}
}

// do sends a request and decodes a JSON answer into out (when not nil). It
// returns the status and the raw body.
func (f *fixture) do(method, path, body string, out any) (int, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.url+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		f.t.Errorf("%s %s: Cache-Control %q", method, path, resp.Header.Get("Cache-Control"))
	}
	if len(raw) > 0 && resp.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q", method, path, resp.Header.Get("Content-Type"))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			f.t.Fatalf("%s %s: answer %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// wantError checks an error answer's status and code.
func (f *fixture) wantError(method, path, body string, status int, code string) admin.ErrorBody {
	f.t.Helper()
	var eb admin.ErrorBody
	got, raw := f.do(method, path, body, &eb)
	if got != status || eb.Error != code || eb.Message == "" {
		f.t.Fatalf("%s %s: %d %s, want %d %s", method, path, got, raw, status, code)
	}
	return eb
}

const keys = "/_nfyio/admin/keys"

func TestAdminKeyLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()

	var created admin.Key
	status, _ := f.do("POST", keys, `{"name":"uploader","scopes":["write:objects","read:objects"],"buckets":["photos"],
		"prefix":"users/","expires":"720h","maxUrlTtl":"15m","maxObjectSize":"10MiB","contentTypes":["image/*"]}`, &created)
	if status != http.StatusCreated {
		t.Fatalf("create: %d", status)
	}
	if created.AccessKeyID == "" || len(created.SecretAccessKey) != 40 || created.Status != "active" ||
		created.MaxURLTTL != "15m0s" || created.MaxObjectSize != 10<<20 || created.Prefix != "users/" ||
		!slices.Equal(created.Buckets, []string{"photos"}) || created.Expires == nil {
		t.Fatalf("created key %+v", created)
	}
	if d := time.Until(*created.Expires); d < 719*time.Hour || d > 721*time.Hour {
		t.Fatalf("expires %v is not 720h from now", created.Expires)
	}
	// The secret works for signature lookup.
	if s, p, err := f.svc.Secret(ctx, created.AccessKeyID); err != nil || s != created.SecretAccessKey || p.Key.MaxURLTTL != 15*time.Minute {
		t.Fatalf("Secret after create: %v", err)
	}

	// Get and list never show a secret.
	var got admin.Key
	status, raw := f.do("GET", keys+"/"+created.AccessKeyID, "", &got)
	if status != 200 || got.AccessKeyID != created.AccessKeyID || got.SecretAccessKey != "" || got.Name != "uploader" {
		t.Fatalf("get: %d %s", status, raw)
	}
	var list admin.KeyList
	status, raw = f.do("GET", keys, "", &list)
	if status != 200 || len(list.Keys) != 1 {
		t.Fatalf("list: %d %s", status, raw)
	}
	if bytes.Contains(raw, []byte(created.SecretAccessKey)) || bytes.Contains(raw, []byte("secretAccessKey")) {
		t.Fatal("list answer carries a secret")
	}

	// Disable, enable, rotate: each takes effect on the lookup at once.
	var k admin.Key
	if status, raw := f.do("POST", keys+"/"+created.AccessKeyID+"/disable", "", &k); status != 200 || k.Status != "disabled" {
		t.Fatalf("disable: %d %s", status, raw)
	}
	if _, _, err := f.svc.Secret(ctx, created.AccessKeyID); s3err.As(err).Code != "InvalidAccessKeyId" {
		t.Fatalf("disabled key lookup: %v", err)
	}
	if status, raw := f.do("POST", keys+"/"+created.AccessKeyID+"/enable", "", &k); status != 200 || k.Status != "active" {
		t.Fatalf("enable: %d %s", status, raw)
	}
	var rotated admin.Key
	if status, raw := f.do("POST", keys+"/"+created.AccessKeyID+"/rotate", "", &rotated); status != 200 ||
		len(rotated.SecretAccessKey) != 40 || rotated.SecretAccessKey == created.SecretAccessKey {
		t.Fatalf("rotate: %d %s", status, raw)
	}
	if s, _, err := f.svc.Secret(ctx, created.AccessKeyID); err != nil || s != rotated.SecretAccessKey {
		t.Fatalf("lookup after rotate: %v", err)
	}

	if status, raw := f.do("DELETE", keys+"/"+created.AccessKeyID, "", nil); status != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("delete: %d %s", status, raw)
	}
	if _, _, err := f.svc.Secret(ctx, created.AccessKeyID); s3err.As(err).Code != "InvalidAccessKeyId" {
		t.Fatalf("deleted key lookup: %v", err)
	}
	f.wantError("GET", keys+"/"+created.AccessKeyID, "", 404, "NoSuchAccessKey")
	f.wantError("DELETE", keys+"/"+created.AccessKeyID, "", 404, "NoSuchAccessKey")
	f.wantError("POST", keys+"/"+created.AccessKeyID+"/rotate", "", 404, "NoSuchAccessKey")
	f.wantError("POST", keys+"/"+created.AccessKeyID+"/disable", "", 404, "NoSuchAccessKey")
}

func TestAdminCreateInputs(t *testing.T) {
	f := newFixture(t)
	var k admin.Key
	exp := time.Now().Add(240 * time.Hour).UTC().Truncate(time.Second)
	body := `{"accessKeyId":"imported-key","secretAccessKey":"imported-secret-1","scopes":["read:objects"],
		"expires":"` + exp.Format(time.RFC3339) + `","maxUrlTtl":900,"maxObjectSize":5000000}`
	if status, raw := f.do("POST", keys, body, &k); status != 201 {
		t.Fatalf("create imported: %d %s", status, raw)
	}
	if k.AccessKeyID != "imported-key" || k.SecretAccessKey != "imported-secret-1" || k.MaxURLTTL != "15m0s" ||
		k.MaxObjectSize != 5000000 || !k.Expires.Equal(exp) {
		t.Fatalf("imported key %+v", k)
	}
	if status, raw := f.do("POST", keys, `{"scopes":["read:objects"],"expires":"30d","maxObjectSize":"5MB"}`, &k); status != 201 ||
		k.MaxObjectSize != 5_000_000 || time.Until(*k.Expires) < 29*24*time.Hour {
		t.Fatalf("days and MB: %d %s", status, raw)
	}

	f.wantError("POST", keys, `{"accessKeyId":"imported-key","scopes":["read:objects"]}`, 409, "AccessKeyExists")
	for name, body := range map[string]string{
		"unknown scope":    `{"scopes":["read:all"]}`,
		"no scopes":        `{"name":"x"}`,
		"past expiry":      `{"scopes":["read:objects"],"expires":"2001-01-01T00:00:00Z"}`,
		"bad expiry":       `{"scopes":["read:objects"],"expires":"tomorrow"}`,
		"negative expiry":  `{"scopes":["read:objects"],"expires":"-5h"}`,
		"bad ttl":          `{"scopes":["read:objects"],"maxUrlTtl":"soon"}`,
		"fractional ttl":   `{"scopes":["read:objects"],"maxUrlTtl":1.5}`,
		"negative size":    `{"scopes":["read:objects"],"maxObjectSize":-1}`,
		"bad size unit":    `{"scopes":["read:objects"],"maxObjectSize":"10 parsecs"}`,
		"bad content type": `{"scopes":["write:objects"],"contentTypes":["html"]}`,
		"admin restricted": `{"scopes":["admin"],"buckets":["b"]}`,
		"bad id":           `{"accessKeyId":"a/b","scopes":["read:objects"]}`,
	} {
		eb := f.wantError("POST", keys, body, 400, "InvalidArgument")
		if name == "unknown scope" && !strings.Contains(eb.Message, "read:all") {
			t.Errorf("unknown scope message %q does not name it", eb.Message)
		}
	}
	f.wantError("POST", keys, `{"scope":["admin"]}`, 400, "MalformedJSON")
	f.wantError("POST", keys, `{"scopes":"admin"}`, 400, "MalformedJSON")
	f.wantError("POST", keys, `{"scopes":["admin"]`, 400, "MalformedJSON")
	f.wantError("POST", keys, `{"scopes":["admin"]}{}`, 400, "MalformedJSON")
	f.wantError("POST", keys, ``, 400, "MalformedJSON")
	f.wantError("POST", keys, `{"name":"`+strings.Repeat("a", 70<<10)+`"}`, 413, "RequestTooLarge")

	// Nothing from the rejected requests was stored.
	var list admin.KeyList
	f.do("GET", keys, "", &list)
	if len(list.Keys) != 2 {
		t.Fatalf("%d keys stored, want 2", len(list.Keys))
	}
}

func TestAdminLastAdminKey(t *testing.T) {
	f := newFixture(t)
	var a1, a2 admin.Key
	f.do("POST", keys, `{"name":"admin-1","scopes":["admin"]}`, &a1)
	f.wantError("POST", keys+"/"+a1.AccessKeyID+"/disable", "", 409, "LastAdminKey")
	f.wantError("DELETE", keys+"/"+a1.AccessKeyID, "", 409, "LastAdminKey")
	f.do("POST", keys, `{"name":"admin-2","scopes":["admin"]}`, &a2)
	if status, raw := f.do("DELETE", keys+"/"+a1.AccessKeyID, "", nil); status != 204 {
		t.Fatalf("delete one of two admins: %d %s", status, raw)
	}
	f.wantError("POST", keys+"/"+a2.AccessKeyID+"/disable", "", 409, "LastAdminKey")
	if _, _, err := f.svc.Secret(t.Context(), a2.AccessKeyID); err != nil {
		t.Fatalf("remaining admin unusable: %v", err)
	}
}

func TestAdminRouting(t *testing.T) {
	f := newFixture(t)
	var k admin.Key
	f.do("POST", keys, `{"scopes":["read:objects"]}`, &k)
	id := k.AccessKeyID

	f.wantError("PUT", keys, "", 405, "MethodNotAllowed")
	f.wantError("POST", keys+"/"+id, "", 405, "MethodNotAllowed")
	f.wantError("GET", keys+"/"+id+"/rotate", "", 405, "MethodNotAllowed")
	f.wantError("POST", keys+"/"+id+"/explode", "", 404, "NotFound")
	f.wantError("GET", "/_nfyio/admin/users", "", 404, "NotFound")
	f.wantError("GET", "/_nfyio/admin/", "", 404, "NotFound")
	f.wantError("GET", "/other", "", 404, "NotFound")
	f.wantError("GET", keys+"/"+id+"/rotate/more", "", 404, "NotFound")

	// A trailing slash on the collection is the collection.
	var list admin.KeyList
	if status, _ := f.do("GET", keys+"/", "", &list); status != 200 || len(list.Keys) != 1 {
		t.Fatalf("GET keys/: %d", status)
	}
	req, _ := http.NewRequest("PATCH", f.url+keys, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("Allow header %q", resp.Header.Get("Allow"))
	}
}

func TestParseSizeAndDuration(t *testing.T) {
	sizes := map[string]int64{"0": 0, "1024": 1024, "1KiB": 1024, "1kb": 1000, "10MiB": 10 << 20, "2 GB": 2e9, "1T": 1 << 40, "7B": 7}
	for in, want := range sizes {
		if got, err := admin.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MB", "99999999999TiB", "ten"} {
		if _, err := admin.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	durs := map[string]time.Duration{"15m": 15 * time.Minute, "720h": 720 * time.Hour, "30d": 30 * 24 * time.Hour, "1h30m": 90 * time.Minute}
	for in, want := range durs {
		if got, err := admin.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "xd", "week"} {
		if _, err := admin.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

// TestAdminReadsBodyBeforeActing: endpoints that take no body still read
// whatever body came, to its end, before they act, so a body the server's
// reader refuses (here: one over the size bound) refuses the request and
// leaves the key as it was.
func TestAdminReadsBodyBeforeActing(t *testing.T) {
	f := newFixture(t)
	var k admin.Key
	if status, raw := f.do("POST", keys, `{"scopes":["read:objects"]}`, &k); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, raw)
	}
	big := `{"pad":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, c := range []struct{ method, path string }{
		{"DELETE", keys + "/" + k.AccessKeyID},
		{"POST", keys + "/" + k.AccessKeyID + "/disable"},
		{"POST", keys + "/" + k.AccessKeyID + "/rotate"},
	} {
		f.wantError(c.method, c.path, big, http.StatusRequestEntityTooLarge, "RequestTooLarge")
	}
	got, err := f.svc.Get(t.Context(), k.AccessKeyID)
	if err != nil {
		t.Fatalf("key after refused requests: %v", err)
	}
	if got.Disabled {
		t.Fatal("a refused disable disabled the key")
	}
	if s, _, err := f.svc.Secret(t.Context(), k.AccessKeyID); err != nil || s != k.SecretAccessKey {
		t.Fatalf("a refused rotate changed the secret (%v)", err)
	}
	// A small body on a bodyless endpoint is read and ignored.
	var disabled admin.Key
	if status, raw := f.do("POST", keys+"/"+k.AccessKeyID+"/disable", `{}`, &disabled); status != http.StatusOK || disabled.Status != "disabled" {
		t.Fatalf("disable with a small body: %d %s", status, raw)
	}
}
