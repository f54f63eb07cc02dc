package iam_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

type env struct {
	svc    *iam.Service
	meta   storage.Meta
	sealer *iam.Sealer
	path   string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.db")
	meta := openMetaAt(t, path)
	sealer := newSealer(t)
	return &env{svc: iam.NewService(meta, sealer), meta: meta, sealer: sealer, path: path}
}

func s3code(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestServiceCreateGetList(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	exp := time.Now().Add(48 * time.Hour)
	k, secret, err := e.svc.Create(ctx, iam.KeySpec{
		Name: "uploader", Scopes: []string{"write:objects", "read:objects", "write:objects"},
		Buckets: []string{"photos"}, Prefix: "u/", Expires: exp, MaxURLTTL: 15 * time.Minute,
		MaxObjectSize: 1 << 20, ContentTypes: []string{"Image/*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Z0-9]{20}$`).MatchString(k.ID) {
		t.Errorf("generated id %q is not 20 characters of A-Z0-9", k.ID)
	}
	if raw, err := base64.StdEncoding.DecodeString(secret); err != nil || len(secret) != 40 || len(raw) != 30 {
		t.Errorf("generated secret %d chars (%v), want 40 base64 characters", len(secret), err)
	}
	if k.SealedSecret != nil {
		t.Error("Create returned the sealed secret")
	}
	if !slices.Equal(k.Scopes, []string{"write:objects", "read:objects"}) {
		t.Errorf("scopes not deduplicated: %v", k.Scopes)
	}
	if !slices.Equal(k.ContentTypes, []string{"image/*"}) {
		t.Errorf("content types not normalised: %v", k.ContentTypes)
	}

	got, err := e.svc.Get(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SealedSecret != nil || got.Name != "uploader" || got.Prefix != "u/" || got.MaxURLTTL != 15*time.Minute ||
		got.MaxObjectSize != 1<<20 || !got.Expires.Equal(k.Expires) || !got.Created.Equal(k.Created) {
		t.Errorf("Get = %+v, want what Create returned %+v", got, k)
	}
	// Storage holds the sealed secret, which opens to the secret, and only for this key.
	stored, err := e.meta.GetAccessKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.sealer.Open(stored.SealedSecret, k.ID)
	if err != nil || string(plain) != secret {
		t.Fatalf("stored sealed secret opens to %q, %v", plain, err)
	}

	s, p, err := e.svc.Secret(ctx, k.ID)
	if err != nil || s != secret {
		t.Fatalf("Secret = %q, %v", s, err)
	}
	if p.Key.ID != k.ID || p.Key.SealedSecret != nil || !slices.Equal(p.Key.Buckets, []string{"photos"}) {
		t.Errorf("principal %+v", p.Key)
	}

	k2, _, err := e.svc.Create(ctx, iam.KeySpec{ID: "my-app.key_1", Secret: "s3cr3t-value/+=", Scopes: []string{"read:buckets"}})
	if err != nil {
		t.Fatal(err)
	}
	if s, _, err := e.svc.Secret(ctx, k2.ID); err != nil || s != "s3cr3t-value/+=" {
		t.Fatalf("given secret: %q, %v", s, err)
	}
	if _, _, err := e.svc.Create(ctx, iam.KeySpec{ID: "my-app.key_1", Scopes: []string{"read:buckets"}}); !errors.Is(err, storage.ErrKeyExists) {
		t.Fatalf("duplicate id: err = %v, want ErrKeyExists", err)
	}
	list, err := e.svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("List has %d keys, want 2", len(list))
	}
	for _, k := range list {
		if k.SealedSecret != nil {
			t.Errorf("List returned a sealed secret for %s", k.ID)
		}
	}
}

func TestServiceValidation(t *testing.T) {
	e := newEnv(t)
	bad := map[string]iam.KeySpec{
		"no scopes":           {},
		"unknown scope":       {Scopes: []string{"read:everything"}},
		"short id":            {ID: "ab", Scopes: []string{"admin"}},
		"id with slash":       {ID: "abc/def", Scopes: []string{"admin"}},
		"short secret":        {Secret: "1234567", Scopes: []string{"admin"}},
		"secret with space":   {Secret: "12345678 9", Scopes: []string{"admin"}},
		"admin with bucket":   {Scopes: []string{"admin"}, Buckets: []string{"b"}},
		"admin with prefix":   {Scopes: []string{"admin", "read:objects"}, Prefix: "p/"},
		"past expiry":         {Scopes: []string{"read:objects"}, Expires: time.Now().Add(-time.Minute)},
		"negative ttl":        {Scopes: []string{"read:objects"}, MaxURLTTL: -time.Second},
		"negative size":       {Scopes: []string{"read:objects"}, MaxObjectSize: -1},
		"bad content type":    {Scopes: []string{"write:objects"}, ContentTypes: []string{"image"}},
		"wild type":           {Scopes: []string{"write:objects"}, ContentTypes: []string{"*/png"}},
		"bad bucket pattern":  {Scopes: []string{"read:objects"}, Buckets: []string{"a["}},
		"empty bucket":        {Scopes: []string{"read:objects"}, Buckets: []string{""}},
		"name with control":   {Name: "a\nb", Scopes: []string{"read:objects"}},
		"prefix with NUL":     {Scopes: []string{"read:objects"}, Prefix: "a\x00"},
		"bucket with slash":   {Scopes: []string{"read:objects"}, Buckets: []string{"a/b"}},
		"content type params": {Scopes: []string{"write:objects"}, ContentTypes: []string{"text/plain; charset=utf-8"}},
	}
	for name, spec := range bad {
		if _, _, err := e.svc.Create(t.Context(), spec); !errors.Is(err, iam.ErrInvalidSpec) {
			t.Errorf("%s: err = %v, want ErrInvalidSpec", name, err)
		}
	}
	if keys, _ := e.svc.List(t.Context()); len(keys) != 0 {
		t.Fatalf("rejected specs stored %d keys", len(keys))
	}
}

func TestServiceSecretErrors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, _, err := e.svc.Secret(ctx, "NOSUCHKEY")
	if s3code(err) != "InvalidAccessKeyId" {
		t.Fatalf("unknown key: %v", err)
	}
	var se *s3err.Error
	errors.As(err, &se)
	if !slices.Contains(se.Fields, s3err.Field{Name: "AWSAccessKeyId", Value: "NOSUCHKEY"}) {
		t.Errorf("InvalidAccessKeyId lacks AWSAccessKeyId: %+v", se.Fields)
	}

	// A key that expired while stored.
	sealed, _ := e.sealer.Seal([]byte("secret-old"), "EXPIRED1")
	if err := e.meta.PutAccessKey(ctx, storage.AccessKey{ID: "EXPIRED1", SealedSecret: sealed, Scopes: []string{"read:objects"},
		Created: time.Now().Add(-time.Hour).UTC(), Expires: time.Now().Add(-time.Minute).UTC()}); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Secret(ctx, "EXPIRED1")
	if s3code(err) != "AccessDenied" || !strings.Contains(err.Error(), "key expired") {
		t.Fatalf("expired key: %v", err)
	}

	// A key sealed under another master key: internal error, not a wrong secret.
	other := newSealer(t)
	sealed, _ = other.Seal([]byte("secret-x"), "FOREIGN1")
	if err := e.meta.PutAccessKey(ctx, storage.AccessKey{ID: "FOREIGN1", SealedSecret: sealed, Scopes: []string{"read:objects"}, Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Secret(ctx, "FOREIGN1")
	if s3code(err) != "InternalError" || !errors.Is(err, iam.ErrUnseal) {
		t.Fatalf("foreign sealed secret: %v", err)
	}
	if strings.Contains(err.Error(), "secret-x") {
		t.Fatal("error text contains the secret")
	}
}

func TestServiceChangesInvalidateCache(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var changed []string
	e.svc.SetOnChange(func(id string) { changed = append(changed, id) })
	if _, _, err := e.svc.Create(ctx, iam.KeySpec{ID: "ADMIN1", Scopes: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	k, old, err := e.svc.Create(ctx, iam.KeySpec{Name: "app", Scopes: []string{"read:objects"}})
	if err != nil {
		t.Fatal(err)
	}
	// Warm the cache.
	if s, _, err := e.svc.Secret(ctx, k.ID); err != nil || s != old {
		t.Fatalf("Secret: %q %v", s, err)
	}

	newSecret, err := e.svc.Rotate(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == old || len(newSecret) != 40 {
		t.Fatalf("rotated secret %q", newSecret)
	}
	if s, _, err := e.svc.Secret(ctx, k.ID); err != nil || s != newSecret {
		t.Fatalf("after rotate Secret = %q, %v; want the new secret", s, err)
	}

	if err := e.svc.Disable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Secret(ctx, k.ID); s3code(err) != "InvalidAccessKeyId" {
		t.Fatalf("disabled key: %v, want InvalidAccessKeyId", err)
	}
	if got, _ := e.svc.Get(ctx, k.ID); !got.Disabled {
		t.Fatal("Get does not show the key disabled")
	}
	if err := e.svc.Enable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if s, _, err := e.svc.Secret(ctx, k.ID); err != nil || s != newSecret {
		t.Fatalf("re-enabled key: %q, %v", s, err)
	}

	if err := e.svc.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Secret(ctx, k.ID); s3code(err) != "InvalidAccessKeyId" {
		t.Fatalf("deleted key: %v, want InvalidAccessKeyId", err)
	}
	if _, err := e.svc.Get(ctx, k.ID); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
	for _, op := range []func() error{
		func() error { return e.svc.Disable(ctx, k.ID) },
		func() error { return e.svc.Enable(ctx, k.ID) },
		func() error { return e.svc.Delete(ctx, k.ID) },
		func() error { _, err := e.svc.Rotate(ctx, k.ID); return err },
	} {
		if err := op(); !errors.Is(err, storage.ErrKeyNotFound) {
			t.Fatalf("change of a deleted key: %v, want ErrKeyNotFound", err)
		}
	}
	want := []string{"ADMIN1", k.ID, k.ID, k.ID, k.ID, k.ID}
	if !slices.Equal(changed, want) {
		t.Fatalf("change notifications %v, want %v", changed, want)
	}
}

// TestServiceInvalidateAcrossNodes models two server nodes sharing one Meta:
// node B keeps serving its cached secret until told to invalidate.
func TestServiceInvalidateAcrossNodes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	nodeB := iam.NewService(e.meta, e.sealer)
	k, old, err := e.svc.Create(ctx, iam.KeySpec{Scopes: []string{"read:objects"}})
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := nodeB.Secret(ctx, k.ID); s != old {
		t.Fatal("node B does not see the new key")
	}
	fresh, err := e.svc.Rotate(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := nodeB.Secret(ctx, k.ID); s != old {
		t.Fatal("node B read through its cache; the cache is not used")
	}
	nodeB.Invalidate(k.ID)
	if s, _, _ := nodeB.Secret(ctx, k.ID); s != fresh {
		t.Fatal("node B still serves the old secret after Invalidate")
	}
	if err := e.svc.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	nodeB.InvalidateAll()
	if _, _, err := nodeB.Secret(ctx, k.ID); s3code(err) != "InvalidAccessKeyId" {
		t.Fatalf("node B after InvalidateAll: %v", err)
	}
}

func TestServiceLastAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a1, _, err := e.svc.Create(ctx, iam.KeySpec{Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	user, _, err := e.svc.Create(ctx, iam.KeySpec{Scopes: []string{"read:objects"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Disable(ctx, a1.ID); !errors.Is(err, iam.ErrLastAdmin) {
		t.Fatalf("disable last admin: %v", err)
	}
	if err := e.svc.Delete(ctx, a1.ID); !errors.Is(err, iam.ErrLastAdmin) {
		t.Fatalf("delete last admin: %v", err)
	}
	if err := e.svc.Disable(ctx, user.ID); err != nil {
		t.Fatalf("disable non-admin: %v", err)
	}
	a2, _, err := e.svc.Create(ctx, iam.KeySpec{Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Disable(ctx, a1.ID); err != nil {
		t.Fatalf("disable one of two admins: %v", err)
	}
	if err := e.svc.Delete(ctx, a2.ID); !errors.Is(err, iam.ErrLastAdmin) {
		t.Fatalf("delete the remaining admin: %v", err)
	}
	// A disabled admin is not the last one: it can go.
	if err := e.svc.Delete(ctx, a1.ID); err != nil {
		t.Fatalf("delete disabled admin: %v", err)
	}
	// An expired admin key does not count as a way in.
	sealed, _ := e.sealer.Seal([]byte("whatever1"), "OLDADMIN")
	if err := e.meta.PutAccessKey(ctx, storage.AccessKey{ID: "OLDADMIN", SealedSecret: sealed, Scopes: []string{"admin"},
		Created: time.Now().UTC(), Expires: time.Now().Add(-time.Hour).UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Disable(ctx, a2.ID); !errors.Is(err, iam.ErrLastAdmin) {
		t.Fatalf("disable admin while only an expired one remains: %v", err)
	}
}

// TestNoSecretInStorageFile reads the raw metadata file and looks for every
// secret, plain and in its usual encodings.
func TestNoSecretInStorageFile(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var secrets []string
	for i := range 5 {
		_, s, err := e.svc.Create(ctx, iam.KeySpec{Name: "k", Scopes: []string{"read:objects"}})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s)
		if i == 0 {
			k, _ := e.svc.List(ctx)
			r, err := e.svc.Rotate(ctx, k[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, r)
		}
	}
	_, s, err := e.svc.Create(ctx, iam.KeySpec{ID: "GIVENKEY", Secret: "given-secret-value-123", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, s)
	if err := e.meta.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("GIVENKEY")) {
		t.Fatal("key id not found in the file: the test reads the wrong file")
	}
	for _, s := range secrets {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s))} {
			if bytes.Contains(raw, []byte(form)) {
				t.Fatalf("secret %q found in the metadata file", s)
			}
		}
		if raw64, err := base64.StdEncoding.DecodeString(s); err == nil && bytes.Contains(raw, raw64) {
			t.Fatalf("decoded secret bytes found in the metadata file")
		}
	}
}

func BenchmarkSecretCached(b *testing.B) {
	e := newEnv(b)
	k, _, err := e.svc.Create(b.Context(), iam.KeySpec{Scopes: []string{"read:objects"}})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := e.svc.Secret(b.Context(), k.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestServiceConcurrentLookupsAndRotation checks that a lookup racing with a
// rotation never leaves the old secret in the cache.
func TestServiceConcurrentLookupsAndRotation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k, _, err := e.svc.Create(ctx, iam.KeySpec{Scopes: []string{"read:objects"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, _, err := e.svc.Secret(ctx, k.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer func() { close(done); wg.Wait() }()
	for i := range 200 {
		fresh, err := e.svc.Rotate(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s, _, err := e.svc.Secret(ctx, k.ID); err != nil || s != fresh {
			t.Fatalf("rotation %d: the lookup gives a stale secret (%v)", i, err)
		}
	}
}
