package iam

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeySize is the length of the AES-256 master key in bytes.
const MasterKeySize = 32

// sealVersion is the first byte of every sealed secret, so that a later change
// of algorithm or key can tell old blobs from new ones.
const sealVersion byte = 1

// sealAAD binds a sealed secret to the key it belongs to. The fixed prefix
// separates this use of the master key from any other use it may get later.
func sealAAD(keyID string) []byte {
	return []byte("nfyio/access-key-secret/v1\x00" + keyID)
}

// Sealer seals secrets at rest with AES-256-GCM under a master key.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("iam: master key is %d bytes, want %d", len(masterKey), MasterKeySize)
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("iam: master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("iam: master key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain for the access key keyID. The key ID is authenticated
// additional data, so a sealed secret copied onto another key fails to open.
// The result is version byte || random nonce || ciphertext+tag.
func (s *Sealer) Seal(plain []byte, keyID string) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	// Random nonces are safe here: a store holds far fewer than the 2^32
	// secrets at which GCM nonce collisions become a concern.
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("iam: seal: nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+ns], plain, sealAAD(keyID)), nil
}

// ErrUnseal is returned by Open when a sealed secret is damaged, was sealed
// for another key ID, or under another master key.
var ErrUnseal = errors.New("iam: sealed secret cannot be opened (wrong master key, wrong key ID or damaged)")

// Open decrypts a secret sealed for keyID.
func (s *Sealer) Open(sealed []byte, keyID string) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrUnseal, len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrUnseal, sealed[0])
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealAAD(keyID))
	if err != nil {
		// The AEAD error says nothing more useful than "authentication failed".
		return nil, ErrUnseal
	}
	return plain, nil
}

// ParseMasterKey decodes a master key given as base64 (standard or URL
// alphabet, padded or not) or hex; it must decode to exactly 32 bytes.
func ParseMasterKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	// 64 hex digits are also valid base64 (of 48 bytes), so hex is tried first
	// by length: a 32-byte key is 64 hex digits or 43/44 base64 characters.
	if len(text) == 2*MasterKeySize {
		if b, err := hex.DecodeString(text); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			if len(b) != MasterKeySize {
				return nil, fmt.Errorf("iam: master key decodes to %d bytes, want %d", len(b), MasterKeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("iam: master key is neither base64 nor hex of %d bytes", MasterKeySize)
}

// LoadOrCreateMasterKey returns the master key. envValue, when not empty,
// wins (base64 or hex of 32 bytes). Otherwise the key is read from the file
// at path, which holds it in base64 so an operator can move it into the
// environment; if the file does not exist a random key is created there
// (file mode 0600, directory 0700).
//
// Creation is safe against two processes starting at once: the key is
// written to a temporary file and hard-linked into place, which fails if
// another process got there first, and then that process's key is read.
func LoadOrCreateMasterKey(envValue string, path string) ([]byte, error) {
	if envValue != "" {
		k, err := ParseMasterKey(envValue)
		if err != nil {
			return nil, fmt.Errorf("master key from environment: %w", err)
		}
		return k, nil
	}
	if path == "" {
		return nil, errors.New("iam: no master key given and no key file path")
	}
	if k, err := readMasterKeyFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("iam: create master key directory: %w", err)
	}
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("iam: generate master key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return nil, fmt.Errorf("iam: create master key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after the link (or a failure) the temp name is not needed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("iam: master key file mode: %w", err)
	}
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("iam: write master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("iam: sync master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("iam: close master key file: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created the key first; use theirs.
			return readMasterKeyFile(path)
		}
		return nil, fmt.Errorf("iam: install master key file: %w", err)
	}
	syncDir(dir)
	return key, nil
}

func readMasterKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("iam: read master key file: %w", err)
	}
	k, err := ParseMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

// syncDir makes a new directory entry durable. Failure only weakens crash
// safety of a file that was already written and synced, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
