package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"nfyio.dev/storage/internal/s3test"
)

// keysEnv starts a store and points the client environment at it with the
// root key; it returns the store.
func keysEnv(t *testing.T) *s3test.Server {
	t.Helper()
	cleanEnv(t)
	s3test.NoEnv(t)
	srv := s3test.Start(t)
	t.Setenv("NFYIO_ENDPOINT_URL", srv.URL)
	t.Setenv("NFYIO_ACCESS_KEY_ID", s3test.RootAccessKey)
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", s3test.RootSecretKey)
	return srv
}

// nfyio runs the command in-process and returns its output and exit code.
func nfyio(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// mustNfyio runs the command and fails the test unless it exits 0 quietly.
func mustNfyio(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := nfyio(args...)
	if code != 0 || errOut != "" {
		t.Fatalf("nfyio %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// failNfyio runs the command and fails the test unless it exits 1 with a
// message on stderr containing every one of want.
func failNfyio(t *testing.T, want []string, args ...string) {
	t.Helper()
	out, errOut, code := nfyio(args...)
	if code != 1 {
		t.Fatalf("nfyio %s: want exit 1, got %d (stdout %q, stderr %q)", strings.Join(args, " "), code, out, errOut)
	}
	// One readable line, not a dump of the answer.
	if strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "<") {
		t.Fatalf("nfyio %s: stderr is not one plain line: %q", strings.Join(args, " "), errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Fatalf("nfyio %s: stderr %q lacks %q", strings.Join(args, " "), errOut, w)
		}
	}
}

// cliKey is the admin API's JSON for a key, as "--json" prints it.
type cliKey struct {
	AccessKeyID     string     `json:"accessKeyId"`
	SecretAccessKey *string    `json:"secretAccessKey"`
	Name            string     `json:"name"`
	Status          string     `json:"status"`
	Scopes          []string   `json:"scopes"`
	Buckets         []string   `json:"buckets"`
	Prefix          string     `json:"prefix"`
	Expires         *time.Time `json:"expires"`
	MaxURLTTL       string     `json:"maxUrlTtl"`
	MaxObjectSize   int64      `json:"maxObjectSize"`
	ContentTypes    []string   `json:"contentTypes"`
}

func decodeKey(t *testing.T, out string) cliKey {
	t.Helper()
	var k cliKey
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("not a key as JSON: %v\n%s", err, out)
	}
	return k
}

// s3Code is the S3 error code of an SDK error.
func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// putWith uploads one small object with the given key pair.
func putWith(srv *s3test.Server, t *testing.T, id, secret, bucket, key string) error {
	c := srv.SDKWith(t, id, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")})
	return err
}

func TestKeysCLI(t *testing.T) {
	srv := keysEnv(t)
	if _, err := srv.SDK(t).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}

	// create --json: every setting round-trips, and the secret is there.
	out := mustNfyio(t, "keys", "create", "--name", "uploader", "--scopes", "read:objects,write:objects",
		"--bucket", "photos", "--prefix", "users/", "--expires", "720h", "--max-url-ttl", "15m",
		"--max-object-size", "10MiB", "--content-types", "image/*,application/pdf", "--json")
	k := decodeKey(t, out)
	if k.AccessKeyID == "" || k.SecretAccessKey == nil || len(*k.SecretAccessKey) < 20 {
		t.Fatalf("create printed no usable key: %s", out)
	}
	id, secret := k.AccessKeyID, *k.SecretAccessKey
	if k.Name != "uploader" || k.Status != "active" || !slices.Equal(k.Scopes, []string{"read:objects", "write:objects"}) ||
		!slices.Equal(k.Buckets, []string{"photos"}) || k.Prefix != "users/" || k.MaxURLTTL != "15m0s" ||
		k.MaxObjectSize != 10<<20 || !slices.Equal(k.ContentTypes, []string{"image/*", "application/pdf"}) {
		t.Errorf("created key %+v does not carry the flags", k)
	}
	if k.Expires == nil || k.Expires.Before(time.Now().Add(719*time.Hour)) || k.Expires.After(time.Now().Add(721*time.Hour)) {
		t.Errorf("expires %v, want about 720h from now", k.Expires)
	}
	// The key works, within its restriction only.
	if err := putWith(srv, t, id, secret, "photos", "users/1/a.png"); err != nil {
		t.Fatalf("the created key cannot write inside its prefix: %v", err)
	}
	if err := putWith(srv, t, id, secret, "photos", "elsewhere.png"); s3Code(err) != "AccessDenied" {
		t.Fatalf("the created key wrote outside its prefix: %v", err)
	}

	// create without --json shows the secret once, readably.
	out = mustNfyio(t, "keys", "create", "--name", "reader", "--scopes", "read:objects")
	if !strings.Contains(out, "SecretAccessKey:") || !strings.Contains(out, "shown once") {
		t.Errorf("create output does not show the secret once:\n%s", out)
	}
	secrets := []string{secret, s3test.RootSecretKey, secretLine(t, out)}

	// list and show never print a secret.
	noSecret := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("%s printed a secret:\n%s", what, out)
			}
		}
		if strings.Contains(strings.ToLower(out), "secret") {
			t.Fatalf("%s mentions a secret:\n%s", what, out)
		}
	}
	out = mustNfyio(t, "keys", "list")
	noSecret("list", out)
	if !strings.Contains(out, id) || !strings.Contains(out, "uploader") || !strings.Contains(out, s3test.RootAccessKey) {
		t.Errorf("list lacks the keys:\n%s", out)
	}
	out = mustNfyio(t, "keys", "list", "--json")
	noSecret("list --json", out)
	var list struct{ Keys []cliKey }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(list.Keys) != 3 {
		t.Errorf("list --json shows %d keys, want 3 (root and two created)", len(list.Keys))
	}
	out = mustNfyio(t, "keys", "show", id)
	noSecret("show", out)
	for _, want := range []string{"AccessKeyId:      " + id, "Status:           active", "Prefix:           users/", "MaxURLTTL:        15m0s", "MaxObjectSize:    10485760"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out = mustNfyio(t, "keys", "show", id, "--json")
	noSecret("show --json", out)
	if got := decodeKey(t, out); got.AccessKeyID != id || got.SecretAccessKey != nil {
		t.Errorf("show --json: %+v", got)
	}

	// disable and enable take effect at once.
	mustNfyio(t, "keys", "disable", id)
	if got := decodeKey(t, mustNfyio(t, "keys", "show", id, "--json")); got.Status != "disabled" {
		t.Errorf("status after disable: %s", got.Status)
	}
	if err := putWith(srv, t, id, secret, "photos", "users/1/b.png"); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("a disabled key was accepted: %v", err)
	}
	mustNfyio(t, "keys", "enable", id)
	if err := putWith(srv, t, id, secret, "photos", "users/1/b.png"); err != nil {
		t.Fatalf("a re-enabled key was refused: %v", err)
	}

	// rotate: a new secret, printed once; the old one stops working.
	rotated := decodeKey(t, mustNfyio(t, "keys", "rotate", id, "--json"))
	if rotated.SecretAccessKey == nil || *rotated.SecretAccessKey == secret || rotated.AccessKeyID != id {
		t.Fatalf("rotate: %+v", rotated)
	}
	if err := putWith(srv, t, id, secret, "photos", "users/1/c.png"); s3Code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("the old secret still works after rotate: %v", err)
	}
	if err := putWith(srv, t, id, *rotated.SecretAccessKey, "photos", "users/1/c.png"); err != nil {
		t.Fatalf("the new secret does not work: %v", err)
	}

	// delete: gone for the API and for S3.
	mustNfyio(t, "keys", "delete", id)
	failNfyio(t, []string{"NoSuchAccessKey", id}, "keys", "show", id)
	if err := putWith(srv, t, id, *rotated.SecretAccessKey, "photos", "users/1/d.png"); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("a deleted key was accepted: %v", err)
	}
}

// secretLine returns the secret from create's human-readable output.
func secretLine(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "SecretAccessKey:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no secret in:\n%s", out)
	return ""
}

func TestKeysCLIErrors(t *testing.T) {
	keysEnv(t)

	// Unknown keys: a clear message and exit 1, for every command.
	for _, sub := range []string{"show", "disable", "enable", "rotate", "delete"} {
		failNfyio(t, []string{"NoSuchAccessKey", "access key NOSUCHKEY0000 does not exist"}, "keys", sub, "NOSUCHKEY0000")
	}
	// Bad input is the server's to judge and the CLI's to report.
	failNfyio(t, []string{"InvalidArgument", "unknown scope"}, "keys", "create", "--scopes", "read:everything")
	failNfyio(t, []string{"InvalidArgument", "max"}, "keys", "create", "--scopes", "read:objects", "--max-object-size", "ten")
	// The last admin key cannot be deleted: the operator would be locked out.
	failNfyio(t, []string{"LastAdminKey"}, "keys", "delete", s3test.RootAccessKey)
	// Usage errors exit 2.
	if _, errOut, code := nfyio("keys", "create", "--name", "x"); code != 2 || !strings.Contains(errOut, "--scopes is required") {
		t.Errorf("create without scopes: exit %d, %q", code, errOut)
	}
	if _, _, code := nfyio("keys", "show"); code != 2 {
		t.Errorf("show without an ID: exit %d", code)
	}
	if _, _, code := nfyio("keys", "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}

	// A key without scope admin is told so, and nothing changes.
	reader := decodeKey(t, mustNfyio(t, "keys", "create", "--scopes", "read:objects,read:buckets", "--json"))
	t.Setenv("NFYIO_ACCESS_KEY_ID", reader.AccessKeyID)
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", *reader.SecretAccessKey)
	failNfyio(t, []string{"AccessDenied", "needs a key with scope admin"}, "keys", "list")
	failNfyio(t, []string{"AccessDenied", "needs a key with scope admin"}, "keys", "create", "--scopes", "admin")
	failNfyio(t, []string{"AccessDenied", "needs a key with scope admin"}, "keys", "delete", s3test.RootAccessKey)

	// Wrong credentials are reported as the store's S3 error.
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", "not-the-secret-of-this-key")
	failNfyio(t, []string{"SignatureDoesNotMatch"}, "keys", "list")
	t.Setenv("NFYIO_ACCESS_KEY_ID", "NOSUCHKEY0000")
	failNfyio(t, []string{"InvalidAccessKeyId"}, "keys", "list")

	// Root's keys are still all there.
	t.Setenv("NFYIO_ACCESS_KEY_ID", s3test.RootAccessKey)
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", s3test.RootSecretKey)
	var list struct{ Keys []cliKey }
	if err := json.Unmarshal([]byte(mustNfyio(t, "keys", "list", "--json")), &list); err != nil || len(list.Keys) != 2 {
		t.Fatalf("after the refused calls: %v, %d keys, want 2", err, len(list.Keys))
	}

	// An unreachable store is a clear error too.
	t.Setenv("NFYIO_ENDPOINT_URL", "http://"+s3test.FreePort(t))
	failNfyio(t, []string{"nfyio keys list", "reach"}, "keys", "list")

}
