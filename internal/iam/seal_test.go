package iam_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"nfyio.dev/storage/internal/iam"
)

func newSealer(t testing.TB) *iam.Sealer {
	t.Helper()
	key := make([]byte, iam.MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := iam.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := newSealer(t)
	for _, plain := range [][]byte{[]byte("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), {}, bytes.Repeat([]byte{0}, 1000)} {
		sealed, err := s.Seal(plain, "AKID1")
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) > 8 && bytes.Contains(sealed, plain) {
			t.Fatalf("sealed form contains the plain text")
		}
		got, err := s.Open(sealed, "AKID1")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
	}
	// Random nonces: sealing twice gives different bytes.
	a, _ := s.Seal([]byte("same"), "K")
	b, _ := s.Seal([]byte("same"), "K")
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same secret are identical")
	}
}

func TestSealTamper(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("secret-secret-secret"), "AKID1")
	if err != nil {
		t.Fatal(err)
	}
	// Flipping any single byte (version, nonce, ciphertext or tag) must fail.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := s.Open(bad, "AKID1"); !errors.Is(err, iam.ErrUnseal) {
			t.Fatalf("byte %d flipped: Open err = %v, want ErrUnseal", i, err)
		}
	}
	for _, n := range []int{0, 1, 12, len(sealed) - 1} {
		if _, err := s.Open(sealed[:n], "AKID1"); !errors.Is(err, iam.ErrUnseal) {
			t.Fatalf("truncated to %d: err = %v, want ErrUnseal", n, err)
		}
	}
	if _, err := s.Open(append(bytes.Clone(sealed), 0), "AKID1"); !errors.Is(err, iam.ErrUnseal) {
		t.Fatalf("extended: err = %v, want ErrUnseal", err)
	}
}

func TestSealWrongKeyIDOrMasterKey(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("secret"), "AKID1")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"AKID2", "AKID", "AKID1 ", ""} {
		if _, err := s.Open(sealed, id); !errors.Is(err, iam.ErrUnseal) {
			t.Fatalf("Open with key id %q: err = %v, want ErrUnseal", id, err)
		}
	}
	other := newSealer(t)
	if _, err := other.Open(sealed, "AKID1"); !errors.Is(err, iam.ErrUnseal) {
		t.Fatalf("Open under another master key: err = %v, want ErrUnseal", err)
	}
}

func TestNewSealerKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := iam.NewSealer(make([]byte, n)); err == nil {
			t.Fatalf("NewSealer accepted a %d-byte key", n)
		}
	}
}

func TestMasterKeyFromEnv(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "never-created")
	for _, env := range []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		hex.EncodeToString(key),
		" " + hex.EncodeToString(key) + "\n",
	} {
		got, err := iam.LoadOrCreateMasterKey(env, path)
		if err != nil {
			t.Fatalf("env %q: %v", env, err)
		}
		if !bytes.Equal(got, key) {
			t.Fatalf("env %q: got %x, want %x", env, got, key)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("key file was touched although the environment gave the key: %v", err)
	}
	for _, env := range []string{"short", base64.StdEncoding.EncodeToString(key[:16]), hex.EncodeToString(key[:31]), "!!!!"} {
		if _, err := iam.LoadOrCreateMasterKey(env, path); err == nil {
			t.Fatalf("env %q accepted", env)
		}
	}
}

func TestMasterKeyFileCreatedOnceWithPrivateModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "master.key")
	k1, err := iam.LoadOrCreateMasterKey("", path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key length %d", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("key file mode %o, want 600", m)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Fatalf("key dir mode %o, want 700", m)
	}
	// The file holds the key as base64 text, usable as the env value.
	text, _ := os.ReadFile(path)
	fromText, err := iam.LoadOrCreateMasterKey(string(text), "")
	if err != nil || !bytes.Equal(fromText, k1) {
		t.Fatalf("file content as env value: %x, %v", fromText, err)
	}
	k2, err := iam.LoadOrCreateMasterKey("", path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second load returned another key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("key dir holds %d entries, want only the key file", len(entries))
	}
}

func TestMasterKeyConcurrentCreation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = iam.LoadOrCreateMasterKey("", path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("concurrent starts ended with different master keys")
		}
	}
}

func TestMasterKeyFileDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := iam.LoadOrCreateMasterKey("", path); err == nil {
		t.Fatal("damaged key file accepted")
	}
	// It must not be silently replaced: the secrets sealed under it matter.
	b, _ := os.ReadFile(path)
	if string(b) != "not a key\n" {
		t.Fatal("damaged key file was overwritten")
	}
}
