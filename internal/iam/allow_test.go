package iam_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// wantScope is written out independently of the package's table so that a
// wrong entry there shows up here.
var wantScope = map[string]string{
	"ListBuckets":             "read:buckets",
	"HeadBucket":              "read:buckets",
	"GetBucketLocation":       "read:buckets",
	"GetBucketVersioning":     "read:buckets",
	"GetBucketCors":           "read:buckets",
	"GetBucketPolicy":         "read:buckets",
	"GetBucketTagging":        "read:buckets",
	"CreateBucket":            "write:buckets",
	"DeleteBucket":            "write:buckets",
	"PutBucketVersioning":     "write:buckets",
	"PutBucketCors":           "write:buckets",
	"DeleteBucketCors":        "write:buckets",
	"PutBucketPolicy":         "write:buckets",
	"DeleteBucketPolicy":      "write:buckets",
	"ListObjects":             "read:objects",
	"ListObjectsV2":           "read:objects",
	"ListObjectVersions":      "read:objects",
	"ListMultipartUploads":    "read:objects",
	"ListParts":               "read:objects",
	"GetObject":               "read:objects",
	"HeadObject":              "read:objects",
	"PutObject":               "write:objects",
	"CopyObject":              "write:objects",
	"PostObject":              "write:objects",
	"CreateMultipartUpload":   "write:objects",
	"UploadPart":              "write:objects",
	"UploadPartCopy":          "write:objects",
	"CompleteMultipartUpload": "write:objects",
	"DeleteObject":            "delete:objects",
	"DeleteObjects":           "delete:objects",
	"AbortMultipartUpload":    "delete:objects",
	"Admin":                   "admin",
}

func TestScopeFor(t *testing.T) {
	for op, want := range wantScope {
		got, ok := iam.ScopeFor(op)
		if !ok || got != want {
			t.Errorf("ScopeFor(%q) = %q, %v; want %q", op, got, ok, want)
		}
	}
	for _, op := range []string{"", "Frobnicate", "getobject", "Get"} {
		if s, ok := iam.ScopeFor(op); ok {
			t.Errorf("ScopeFor(%q) = %q, want unknown", op, s)
		}
	}
}

func principal(scopes ...string) *iam.Principal {
	return &iam.Principal{Key: storage.AccessKey{ID: "AKTEST", Scopes: scopes}}
}

// accessDenied fails the test unless err is AccessDenied whose message
// contains want.
func accessDenied(t *testing.T, err error, want, what string) {
	t.Helper()
	var e *s3err.Error
	if !errors.As(err, &e) || e.Code != "AccessDenied" || e.Status != 403 {
		t.Fatalf("%s: err = %v, want AccessDenied", what, err)
	}
	if !strings.Contains(e.Message, want) {
		t.Fatalf("%s: message %q does not mention %q", what, e.Message, want)
	}
}

// TestAllowEveryOpEveryScope runs every operation against a key holding no
// scope, each single scope, and all non-admin scopes together.
func TestAllowEveryOpEveryScope(t *testing.T) {
	scopeSets := [][]string{nil}
	for _, s := range iam.AllScopes {
		scopeSets = append(scopeSets, []string{s})
	}
	scopeSets = append(scopeSets, []string{"read:objects", "write:objects", "delete:objects", "read:buckets", "write:buckets"})
	for op, need := range wantScope {
		bucket, key := "photos", "a/b.jpg"
		if op == "ListBuckets" || op == "Admin" {
			bucket, key = "", ""
		}
		for _, scopes := range scopeSets {
			p := principal(scopes...)
			err := iam.Allow(p, op, bucket, key)
			has := false
			for _, s := range scopes {
				has = has || s == need || s == "admin"
			}
			what := op + " with " + strings.Join(scopes, ",")
			if has {
				if err != nil {
					t.Errorf("%s: %v, want allowed", what, err)
				}
				continue
			}
			accessDenied(t, err, "Access Denied: key lacks scope "+need, what)
		}
	}
}

func TestAllowBucketAndPrefixRestrictions(t *testing.T) {
	all := []string{"read:objects", "write:objects", "delete:objects", "read:buckets", "write:buckets"}
	p := &iam.Principal{Key: storage.AccessKey{ID: "K", Scopes: all, Buckets: []string{"photos", "team-*"}, Prefix: "users/42/"}}
	cases := []struct {
		op, bucket, key string
		deny            string // "" = allowed
	}{
		{"GetObject", "photos", "users/42/a.jpg", ""},
		{"PutObject", "team-red", "users/42/x", ""},
		{"GetObject", "photos", "users/43/a.jpg", "key outside prefix users/42/"},
		{"GetObject", "photos", "users/42", "key outside prefix users/42/"},
		{"DeleteObject", "photos", "", "key outside prefix users/42/"},
		{"GetObject", "other", "users/42/a.jpg", "bucket not allowed"},
		{"GetObject", "team", "users/42/a.jpg", "bucket not allowed"},
		{"PostObject", "photos", "users/42/upload.png", ""},
		{"PostObject", "photos", "upload.png", "key outside prefix users/42/"},
		{"CreateMultipartUpload", "photos", "users/42/big", ""},
		{"AbortMultipartUpload", "photos", "elsewhere/big", "key outside prefix users/42/"},
		// Listings: the listing prefix must be inside the key's prefix.
		{"ListObjectsV2", "photos", "users/42/", ""},
		{"ListObjectsV2", "photos", "users/42/2024/", ""},
		{"ListObjectsV2", "photos", "users/4", "key outside prefix users/42/"},
		{"ListObjects", "photos", "", "key outside prefix users/42/"},
		{"ListMultipartUploads", "photos", "", "key outside prefix users/42/"},
		{"ListObjectsV2", "other", "users/42/", "bucket not allowed"},
		// Bucket reads are fine; bucket writes would reach outside the prefix.
		{"HeadBucket", "photos", "", ""},
		{"GetBucketLocation", "team-x", "", ""},
		{"GetBucketCors", "photos", "", ""},
		{"HeadBucket", "other", "", "bucket not allowed"},
		{"PutBucketCors", "photos", "", "cannot change buckets"},
		{"DeleteBucket", "photos", "", "cannot change buckets"},
		{"CreateBucket", "team-new", "", "cannot change buckets"},
		{"ListBuckets", "", "", ""},
	}
	for _, c := range cases {
		err := iam.Allow(p, c.op, c.bucket, c.key)
		what := c.op + " " + c.bucket + "/" + c.key
		if c.deny == "" {
			if err != nil {
				t.Errorf("%s: %v, want allowed", what, err)
			}
			continue
		}
		accessDenied(t, err, c.deny, what)
	}

	// Without a prefix, bucket writes are allowed inside the bucket list.
	q := &iam.Principal{Key: storage.AccessKey{ID: "K", Scopes: all, Buckets: []string{"photos"}}}
	if err := iam.Allow(q, "CreateBucket", "photos", ""); err != nil {
		t.Errorf("CreateBucket in list: %v", err)
	}
	accessDenied(t, iam.Allow(q, "CreateBucket", "videos", ""), "bucket not allowed", "CreateBucket outside list")
	if err := iam.Allow(q, "GetObject", "photos", "any/key"); err != nil {
		t.Errorf("GetObject without prefix restriction: %v", err)
	}
}

func TestAllowKeyState(t *testing.T) {
	accessDenied(t, iam.Allow(nil, "GetObject", "b", "k"), "Access Denied", "anonymous")

	p := principal("admin")
	p.Key.Disabled = true
	accessDenied(t, iam.Allow(p, "GetObject", "b", "k"), "key disabled", "disabled")
	if p.CanSeeBucket("b") {
		t.Error("disabled key sees buckets")
	}

	p = principal("admin")
	p.Key.Expires = time.Now().Add(-time.Second)
	accessDenied(t, iam.Allow(p, "GetObject", "b", "k"), "key expired", "expired")
	if p.CanSeeBucket("b") {
		t.Error("expired key sees buckets")
	}

	p.Key.Expires = time.Now().Add(time.Hour)
	if err := iam.Allow(p, "GetObject", "b", "k"); err != nil {
		t.Errorf("key expiring later: %v", err)
	}

	// Unknown operations are for admin keys only.
	if err := iam.Allow(principal("admin"), "SelectObjectContent", "b", "k"); err != nil {
		t.Errorf("admin on unknown op: %v", err)
	}
	accessDenied(t, iam.Allow(principal("read:objects", "write:objects"), "SelectObjectContent", "b", "k"), "not permitted", "unknown op")
}

func TestCanSeeBucket(t *testing.T) {
	p := principal("read:buckets")
	for _, b := range []string{"a", "photos", "x-y"} {
		if !p.CanSeeBucket(b) {
			t.Errorf("unrestricted key cannot see %q", b)
		}
	}
	p.Key.Buckets = []string{"photos", "logs-*"}
	for b, want := range map[string]bool{"photos": true, "logs-2024": true, "logs-": true, "logs": false, "photos2": false, "": false} {
		if got := p.CanSeeBucket(b); got != want {
			t.Errorf("CanSeeBucket(%q) = %v, want %v", b, got, want)
		}
	}
	var anon *iam.Principal
	if anon.CanSeeBucket("photos") {
		t.Error("anonymous sees buckets")
	}
}

func BenchmarkAllow(b *testing.B) {
	p := &iam.Principal{Key: storage.AccessKey{ID: "K", Scopes: []string{"read:objects", "write:objects"}, Buckets: []string{"photos", "team-*"}, Prefix: "users/42/"}}
	for b.Loop() {
		if err := iam.Allow(p, "PutObject", "team-red", "users/42/file.bin"); err != nil {
			b.Fatal(err)
		}
	}
}
