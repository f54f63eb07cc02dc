package iam

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"nfyio.dev/storage/internal/storage"
)

// EnsureRoot makes sure a root key (scope admin, Root=true) exists.
//
//   - No root key and no usable admin key (first start, or every admin key
//     lost): create the root key from envID/envSecret, or generate one and
//     print it once to out. It is written to credsPath (mode 0600, AWS
//     credentials-file format, profile "default") unless credsPath is "".
//   - envID/envSecret given: the root key is the one they name. A stored
//     root key with that ID gets its secret updated when it differs; a root
//     key with another ID is replaced: the env key becomes root and the old
//     one is disabled (not deleted, so the operator decides).
//   - Otherwise (a root key exists, or the operator deleted it and other
//     admin keys remain) nothing changes.
//
// The plain secret is written to out only when it was generated here.
func (s *Service) EnsureRoot(ctx context.Context, envID, envSecret string, out io.Writer, credsPath string) error {
	if (envID == "") != (envSecret == "") {
		return errors.New("iam: the root access key id and secret must be given together")
	}
	keys, err := s.meta.ListAccessKeys(ctx)
	if err != nil {
		return fmt.Errorf("iam: ensure root key: %w", err)
	}
	now := time.Now()
	var root *storage.AccessKey
	usable := false
	for i := range keys {
		if keys[i].Root && root == nil {
			root = &keys[i]
		}
		if usableAdmin(&keys[i], now) {
			usable = true
		}
	}

	if envID != "" {
		if root != nil && root.ID == envID {
			return s.syncRootSecret(ctx, root, envSecret, out, credsPath)
		}
		if err := s.adoptRoot(ctx, envID, envSecret); err != nil {
			return err
		}
		fmt.Fprintf(out, "nfyio: root access key %s set from the environment\n", envID)
		if err := writeCredentials(credsPath, envID, envSecret); err != nil {
			return err
		}
		if root != nil {
			err := s.update(ctx, root.ID, nil, func(k *storage.AccessKey) error {
				k.Root = false
				k.Disabled = true
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "nfyio: previous root access key %s is now disabled; delete it when no longer needed\n", root.ID)
		}
		return nil
	}

	if usable {
		return nil
	}
	if root != nil {
		// Every admin key is disabled or expired: re-enable root, the
		// documented way back in (restart the server).
		err := s.update(ctx, root.ID, nil, func(k *storage.AccessKey) error {
			k.Disabled = false
			k.Expires = time.Time{}
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "nfyio: no usable admin key was left; root access key %s is enabled again\n", root.ID)
		return nil
	}
	k, secret, err := s.Create(ctx, KeySpec{Name: "root", Root: true})
	if err != nil {
		return fmt.Errorf("iam: create root key: %w", err)
	}
	// Print before writing the file: if the write fails the operator has
	// still seen the secret, which is stored nowhere else in plain text.
	fmt.Fprintf(out, "nfyio: created the root access key (the secret is shown only this once):\n"+
		"  access key id:     %s\n  secret access key: %s\n", k.ID, secret)
	if err := writeCredentials(credsPath, k.ID, secret); err != nil {
		return err
	}
	if credsPath != "" {
		fmt.Fprintf(out, "  kept in:           %s (AWS credentials file, profile default)\n", credsPath)
	}
	return nil
}

// syncRootSecret updates the stored root secret to the environment's.
func (s *Service) syncRootSecret(ctx context.Context, root *storage.AccessKey, envSecret string, out io.Writer, credsPath string) error {
	cur, err := s.sealer.Open(root.SealedSecret, root.ID)
	if err == nil && subtle.ConstantTimeCompare(cur, []byte(envSecret)) == 1 {
		return nil
	}
	// A secret that no longer opens (master key changed) is replaced too:
	// the environment is the operator's statement of what it should be.
	spec := KeySpec{ID: root.ID, Secret: envSecret, Root: true}
	if err := normalize(&spec, time.Now()); err != nil {
		return fmt.Errorf("iam: root key from environment: %w", err)
	}
	if err := s.setSecret(ctx, root.ID, envSecret); err != nil {
		return err
	}
	fmt.Fprintf(out, "nfyio: root access key %s: secret updated from the environment\n", root.ID)
	return writeCredentials(credsPath, root.ID, envSecret)
}

// adoptRoot creates root key id with secret, or turns an existing key with
// that ID into the root key (also when a concurrent start created it).
func (s *Service) adoptRoot(ctx context.Context, id, secret string) error {
	_, _, err := s.Create(ctx, KeySpec{ID: id, Secret: secret, Name: "root", Root: true})
	if err == nil || !errors.Is(err, storage.ErrKeyExists) {
		if err != nil {
			return fmt.Errorf("iam: root key from environment: %w", err)
		}
		return nil
	}
	sealed, err := s.sealer.Seal([]byte(secret), id)
	if err != nil {
		return err
	}
	return s.update(ctx, id, nil, func(k *storage.AccessKey) error {
		k.SealedSecret = sealed
		k.Root = true
		k.Scopes = []string{ScopeAdmin}
		k.Buckets = nil
		k.Prefix = ""
		k.Disabled = false
		k.Expires = time.Time{}
		return nil
	})
}

// writeCredentials writes an AWS credentials file (mode 0600) atomically, so
// a crash leaves the old file or the new one.
func writeCredentials(path, id, secret string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("iam: credentials directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("iam: credentials file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	body := fmt.Sprintf("# nfyio root access key; keep this file private.\n"+
		"[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", id, secret)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("iam: credentials file mode: %w", err)
	}
	if _, err := tmp.WriteString(body); err != nil {
		tmp.Close()
		return fmt.Errorf("iam: write credentials file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("iam: sync credentials file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("iam: close credentials file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("iam: install credentials file: %w", err)
	}
	syncDir(dir)
	return nil
}
