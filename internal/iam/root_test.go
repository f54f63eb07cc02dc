package iam_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/storage"
)

// readCreds parses the credentials file the way AWS tools read its default
// profile.
func readCreds(t *testing.T, path string) (id, secret string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("credentials file mode %o, want 600", m)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		case section == "default":
			k, v, _ := strings.Cut(line, "=")
			switch strings.TrimSpace(k) {
			case "aws_access_key_id":
				id = strings.TrimSpace(v)
			case "aws_secret_access_key":
				secret = strings.TrimSpace(v)
			}
		}
	}
	return id, secret
}

func TestEnsureRootGenerated(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	creds := filepath.Join(t.TempDir(), "sub", "root.credentials")
	var out strings.Builder
	if err := e.svc.EnsureRoot(ctx, "", "", &out, creds); err != nil {
		t.Fatal(err)
	}
	id, secret := readCreds(t, creds)
	if !regexp.MustCompile(`^[A-Z0-9]{20}$`).MatchString(id) || len(secret) != 40 {
		t.Fatalf("credentials file holds %q / %d-char secret", id, len(secret))
	}
	printed := out.String()
	if !strings.Contains(printed, id) || !strings.Contains(printed, secret) || !strings.Contains(printed, creds) {
		t.Fatalf("output does not show id, secret and file:\n%s", printed)
	}
	s, p, err := e.svc.Secret(ctx, id)
	if err != nil || s != secret {
		t.Fatalf("root secret lookup: %v", err)
	}
	if !p.Key.Root || !p.HasScope(iam.ScopeAdmin) {
		t.Fatalf("root principal %+v", p.Key)
	}

	// Later starts change nothing and print nothing.
	out.Reset()
	if err := e.svc.EnsureRoot(ctx, "", "", &out, creds); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("second start printed %q", out.String())
	}
	keys, _ := e.svc.List(ctx)
	if len(keys) != 1 {
		t.Fatalf("%d keys after second start", len(keys))
	}

	// The operator deleted root after making another admin: it stays deleted.
	other, _, err := e.svc.Create(ctx, iam.KeySpec{Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.EnsureRoot(ctx, "", "", &out, ""); err != nil {
		t.Fatal(err)
	}
	if keys, _ := e.svc.List(ctx); len(keys) != 1 || keys[0].ID != other.ID {
		t.Fatalf("keys after restart without root: %+v", keys)
	}
}

func TestEnsureRootFromEnv(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	creds := filepath.Join(t.TempDir(), "root.credentials")
	var out strings.Builder
	if err := e.svc.EnsureRoot(ctx, "rootuser", "rootpass-1", &out, creds); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "rootpass-1") {
		t.Fatal("a secret from the environment was printed")
	}
	if id, s := readCreds(t, creds); id != "rootuser" || s != "rootpass-1" {
		t.Fatalf("credentials file: %q %q", id, s)
	}
	if s, p, err := e.svc.Secret(ctx, "rootuser"); err != nil || s != "rootpass-1" || !p.Key.Root {
		t.Fatalf("env root: %q %v", s, err)
	}

	// Same values: nothing happens.
	out.Reset()
	if err := e.svc.EnsureRoot(ctx, "rootuser", "rootpass-1", &out, creds); err != nil || out.Len() != 0 {
		t.Fatalf("unchanged env: %v, printed %q", err, out.String())
	}

	// Changed secret: the stored one follows, at once.
	if err := e.svc.EnsureRoot(ctx, "rootuser", "rootpass-2", &out, creds); err != nil {
		t.Fatal(err)
	}
	if s, _, err := e.svc.Secret(ctx, "rootuser"); err != nil || s != "rootpass-2" {
		t.Fatalf("after secret change: %q %v", s, err)
	}
	if _, s := readCreds(t, creds); s != "rootpass-2" {
		t.Fatalf("credentials file not updated: %q", s)
	}

	// Changed ID: the new key is root, the old one is disabled, not deleted.
	if err := e.svc.EnsureRoot(ctx, "newroot", "newroot-pass", &out, ""); err != nil {
		t.Fatal(err)
	}
	if _, p, err := e.svc.Secret(ctx, "newroot"); err != nil || !p.Key.Root {
		t.Fatalf("new root: %v", err)
	}
	old, err := e.svc.Get(ctx, "rootuser")
	if err != nil {
		t.Fatal(err)
	}
	if old.Root || !old.Disabled {
		t.Fatalf("old root after replacement: %+v", old)
	}

	// Bad env values are refused, and half a pair is an error.
	if err := e.svc.EnsureRoot(ctx, "x", "", &out, ""); err == nil {
		t.Fatal("id without secret accepted")
	}
	if err := e.svc.EnsureRoot(ctx, "another", "short", &out, ""); !errors.Is(err, iam.ErrInvalidSpec) {
		t.Fatalf("short env secret: %v", err)
	}
}

func TestEnsureRootAdoptsExistingKey(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// An ordinary key already uses the ID the environment names as root.
	if _, _, err := e.svc.Create(ctx, iam.KeySpec{ID: "ops", Secret: "ops-secret-0", Scopes: []string{"read:objects"}, Prefix: "x/"}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := e.svc.EnsureRoot(ctx, "ops", "ops-secret-1", &out, ""); err != nil {
		t.Fatal(err)
	}
	s, p, err := e.svc.Secret(ctx, "ops")
	if err != nil || s != "ops-secret-1" {
		t.Fatalf("adopted root: %q %v", s, err)
	}
	if !p.Key.Root || p.Key.Prefix != "" || !p.HasScope(iam.ScopeAdmin) {
		t.Fatalf("adopted root key %+v", p.Key)
	}
}

func TestEnsureRootRecoversFromLockout(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var out strings.Builder
	if err := e.svc.EnsureRoot(ctx, "", "", &out, ""); err != nil {
		t.Fatal(err)
	}
	keys, _ := e.svc.List(ctx)
	rootID := keys[0].ID
	// Disable root behind the service's back (as a stale node might).
	if err := e.meta.UpdateAccessKey(ctx, rootID, nil, func(k *storage.AccessKey) error { k.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := e.svc.EnsureRoot(ctx, "", "", &out, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "enabled again") {
		t.Fatalf("output %q", out.String())
	}
	e.svc.Invalidate(rootID)
	if _, _, err := e.svc.Secret(ctx, rootID); err != nil {
		t.Fatalf("root after recovery: %v", err)
	}
}
