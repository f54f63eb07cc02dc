package iam

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// Errors of key management. Not-found and exists are storage.ErrKeyNotFound
// and storage.ErrKeyExists (wrapped); test them with errors.Is.
var (
	// ErrInvalidSpec wraps every validation failure of a KeySpec; the
	// message after it says what is wrong and is safe to show the operator.
	ErrInvalidSpec = errors.New("invalid access key")
	// ErrLastAdmin refuses to disable or delete the last usable admin key,
	// which would lock the operator out of the admin API.
	ErrLastAdmin = errors.New("refusing to disable or delete the last enabled admin key")
)

// cacheTTL bounds how long a cached key may be served without re-reading
// it. Changes on this node invalidate at once, and other nodes are told
// through Invalidate; the TTL only limits the damage of a lost notification.
const cacheTTL = 5 * time.Minute

// KeySpec describes a key to create. Empty ID and Secret are generated.
type KeySpec struct {
	ID, Secret, Name string
	Scopes, Buckets  []string
	Prefix           string
	Expires          time.Time
	MaxURLTTL        time.Duration
	MaxObjectSize    int64
	ContentTypes     []string
	Root             bool
}

type cacheEntry struct {
	secret string
	p      *Principal
	loaded time.Time
}

// Service manages access keys in storage.Meta, sealing their secrets, and
// answers the per-request secret lookup from an in-memory cache.
type Service struct {
	meta   storage.Meta
	sealer *Sealer

	mu    sync.RWMutex
	cache map[string]cacheEntry
	// gen counts invalidations; a lookup that raced with one does not store
	// what it read, since that may predate the change.
	gen uint64

	onChange func(id string)
}

// NewService returns a Service over meta sealing secrets with sealer.
func NewService(meta storage.Meta, sealer *Sealer) *Service {
	return &Service{meta: meta, sealer: sealer, cache: make(map[string]cacheEntry)}
}

// SetOnChange registers fn to run after every change to key id made through
// this Service (scale-out: publish it so other nodes call Invalidate). Call
// it before the Service is used.
func (s *Service) SetOnChange(fn func(id string)) { s.onChange = fn }

// Invalidate drops one cached key; the next lookup reads it from Meta.
func (s *Service) Invalidate(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.gen++
	s.mu.Unlock()
}

// InvalidateAll drops every cached key (for example after the change
// notification channel reconnected and may have missed messages).
func (s *Service) InvalidateAll() {
	s.mu.Lock()
	clear(s.cache)
	s.gen++
	s.mu.Unlock()
}

func (s *Service) changed(id string) {
	s.Invalidate(id)
	if s.onChange != nil {
		s.onChange(id)
	}
}

// Secret returns the plain secret and the principal of access key id, for
// signature verification. Unknown, deleted and disabled keys give
// InvalidAccessKeyId (as S3 does for inactive keys); an expired key gives
// AccessDenied "key expired". Other failures give InternalError.
func (s *Service) Secret(ctx context.Context, id string) (string, *Principal, error) {
	now := time.Now()
	s.mu.RLock()
	e, ok := s.cache[id]
	gen := s.gen
	s.mu.RUnlock()
	if !ok || now.Sub(e.loaded) > cacheTTL {
		k, err := s.meta.GetAccessKey(ctx, id)
		if errors.Is(err, storage.ErrKeyNotFound) {
			return "", nil, invalidKeyID(id)
		}
		if err != nil {
			return "", nil, s3err.InternalError.Wrap(fmt.Errorf("iam: load access key %s: %w", id, err))
		}
		plain, err := s.sealer.Open(k.SealedSecret, k.ID)
		if err != nil {
			return "", nil, s3err.InternalError.Wrap(fmt.Errorf("iam: access key %s: %w", id, err))
		}
		e = cacheEntry{secret: string(plain), p: &Principal{Key: stripped(k)}, loaded: now}
		s.mu.Lock()
		if s.gen == gen {
			s.cache[id] = e
		}
		s.mu.Unlock()
	}
	if e.p.Key.Disabled {
		return "", nil, invalidKeyID(id)
	}
	if expired(&e.p.Key, now) {
		return "", nil, denied("key expired")
	}
	return e.secret, e.p, nil
}

func invalidKeyID(id string) error {
	return s3err.InvalidAccessKeyID.With(s3err.Field{Name: "AWSAccessKeyId", Value: id})
}

// stripped returns k without its sealed secret and with slices of its own,
// so callers cannot reach the secret or alter a cached principal by aliasing.
func stripped(k storage.AccessKey) storage.AccessKey {
	k.SealedSecret = nil
	k.Scopes = slices.Clone(k.Scopes)
	k.Buckets = slices.Clone(k.Buckets)
	k.ContentTypes = slices.Clone(k.ContentTypes)
	return k
}

// Create stores a new key and returns it (without sealed secret) and its
// plain secret, the only time the secret is returned. Errors: ErrInvalidSpec,
// storage.ErrKeyExists for a given ID already in use.
func (s *Service) Create(ctx context.Context, spec KeySpec) (storage.AccessKey, string, error) {
	// Microseconds are what every Meta backend keeps (PostgreSQL included).
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := normalize(&spec, now); err != nil {
		return storage.AccessKey{}, "", err
	}
	secret := spec.Secret
	if secret == "" {
		var err error
		if secret, err = newSecret(); err != nil {
			return storage.AccessKey{}, "", err
		}
	}
	k := storage.AccessKey{
		ID:            spec.ID,
		Name:          spec.Name,
		Scopes:        spec.Scopes,
		Buckets:       spec.Buckets,
		Prefix:        spec.Prefix,
		Created:       now,
		Expires:       spec.Expires,
		MaxURLTTL:     spec.MaxURLTTL,
		MaxObjectSize: spec.MaxObjectSize,
		ContentTypes:  spec.ContentTypes,
		Root:          spec.Root,
	}
	// A generated ID can collide with an existing one (rarely: 36^20); try
	// again with a new one rather than fail the request.
	for attempt := 0; ; attempt++ {
		if spec.ID == "" {
			id, err := newKeyID()
			if err != nil {
				return storage.AccessKey{}, "", err
			}
			k.ID = id
		}
		sealed, err := s.sealer.Seal([]byte(secret), k.ID)
		if err != nil {
			return storage.AccessKey{}, "", err
		}
		k.SealedSecret = sealed
		err = s.meta.PutAccessKey(ctx, k)
		if err == nil {
			break
		}
		if errors.Is(err, storage.ErrKeyExists) && spec.ID == "" && attempt < 3 {
			continue
		}
		return storage.AccessKey{}, "", fmt.Errorf("iam: create access key %s: %w", k.ID, err)
	}
	s.changed(k.ID)
	return stripped(k), secret, nil
}

// Get returns key id without its sealed secret.
func (s *Service) Get(ctx context.Context, id string) (storage.AccessKey, error) {
	k, err := s.meta.GetAccessKey(ctx, id)
	if err != nil {
		return storage.AccessKey{}, fmt.Errorf("iam: get access key %s: %w", id, err)
	}
	return stripped(k), nil
}

// List returns every key, without sealed secrets.
func (s *Service) List(ctx context.Context) ([]storage.AccessKey, error) {
	keys, err := s.meta.ListAccessKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("iam: list access keys: %w", err)
	}
	for i := range keys {
		keys[i] = stripped(keys[i])
	}
	return keys, nil
}

// Disable makes key id unusable until Enable. Disabling the last usable
// admin key fails with ErrLastAdmin.
func (s *Service) Disable(ctx context.Context, id string) error {
	return s.update(ctx, id, notLastAdmin(id), func(k *storage.AccessKey) error {
		k.Disabled = true
		return nil
	})
}

// Enable makes a disabled key usable again.
func (s *Service) Enable(ctx context.Context, id string) error {
	return s.update(ctx, id, nil, func(k *storage.AccessKey) error {
		k.Disabled = false
		return nil
	})
}

// Delete removes key id. Deleting the last usable admin key fails with
// ErrLastAdmin.
func (s *Service) Delete(ctx context.Context, id string) error {
	err := s.meta.DeleteAccessKey(ctx, id, notLastAdmin(id))
	if errors.Is(err, ErrLastAdmin) {
		return err
	}
	if err != nil {
		return fmt.Errorf("iam: delete access key %s: %w", id, err)
	}
	s.changed(id)
	return nil
}

// Rotate gives key id a new random secret and returns it; the old secret
// stops working at once on this node.
func (s *Service) Rotate(ctx context.Context, id string) (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	if err := s.setSecret(ctx, id, secret); err != nil {
		return "", err
	}
	return secret, nil
}

func (s *Service) setSecret(ctx context.Context, id, secret string) error {
	sealed, err := s.sealer.Seal([]byte(secret), id)
	if err != nil {
		return err
	}
	return s.update(ctx, id, nil, func(k *storage.AccessKey) error {
		k.SealedSecret = sealed
		return nil
	})
}

func (s *Service) update(ctx context.Context, id string, check storage.KeysCheck, change func(*storage.AccessKey) error) error {
	err := s.meta.UpdateAccessKey(ctx, id, check, change)
	if errors.Is(err, ErrLastAdmin) {
		return err
	}
	if err != nil {
		return fmt.Errorf("iam: update access key %s: %w", id, err)
	}
	s.changed(id)
	return nil
}

// usableAdmin reports whether k can call the admin API now.
func usableAdmin(k *storage.AccessKey, now time.Time) bool {
	return !k.Disabled && !expired(k, now) && slices.Contains(k.Scopes, ScopeAdmin)
}

// notLastAdmin returns the check, run by Meta in the transaction of a change
// that can remove key id, that fails with ErrLastAdmin when id is a usable
// admin key and no other usable admin key exists. Meta runs no other guarded
// change between the check and the change, on any node, so two concurrent
// requests cannot each disable "the other" of the last two admin keys.
func notLastAdmin(id string) storage.KeysCheck {
	return func(keys []storage.AccessKey) error {
		now := time.Now()
		var target *storage.AccessKey
		others := 0
		for i := range keys {
			if keys[i].ID == id {
				target = &keys[i]
			} else if usableAdmin(&keys[i], now) {
				others++
			}
		}
		// Meta reports a missing id before it runs the check; this only
		// keeps the check correct on its own.
		if target == nil {
			return fmt.Errorf("iam: access key %s: %w", id, storage.ErrKeyNotFound)
		}
		if usableAdmin(target, now) && others == 0 {
			return ErrLastAdmin
		}
		return nil
	}
}

// Key ID and secret alphabets: IDs look like AWS ones (upper-case letters
// and digits, 20 long); secrets are 40 characters of base64 (30 random bytes).
const (
	keyIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	keyIDLength   = 20
	secretBytes   = 30
)

func newKeyID() (string, error) {
	// Rejection sampling keeps every character equally likely.
	const limit = 256 - 256%len(keyIDAlphabet)
	out := make([]byte, 0, keyIDLength)
	buf := make([]byte, 2*keyIDLength)
	for len(out) < keyIDLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("iam: generate key id: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < keyIDLength {
				out = append(out, keyIDAlphabet[int(b)%len(keyIDAlphabet)])
			}
		}
	}
	return string(out), nil
}

func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("iam: generate secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, args...)...)
}

// normalize validates spec and puts it in canonical form (deduplicated
// scopes, lower-case content types).
func normalize(spec *KeySpec, now time.Time) error {
	if spec.ID != "" {
		if n := len(spec.ID); n < 3 || n > 128 {
			return invalid("access key id must be 3 to 128 characters")
		}
		for _, c := range spec.ID {
			// '/' would break the SigV4 credential scope; keep IDs plain.
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return invalid("access key id may hold only letters, digits, '.', '_' and '-'")
			}
		}
	}
	if spec.Secret != "" {
		if n := len(spec.Secret); n < 8 || n > 128 {
			return invalid("secret must be 8 to 128 characters")
		}
		for i := 0; i < len(spec.Secret); i++ {
			if c := spec.Secret[i]; c <= ' ' || c > '~' {
				return invalid("secret may hold only printable ASCII without spaces")
			}
		}
	}
	if len(spec.Name) > 256 || !utf8.ValidString(spec.Name) || strings.IndexFunc(spec.Name, unicode.IsControl) >= 0 {
		return invalid("name must be at most 256 characters of printable UTF-8")
	}
	if spec.Root {
		spec.Scopes = []string{ScopeAdmin}
	}
	if len(spec.Scopes) == 0 {
		return invalid("at least one scope is needed (one of %s)", strings.Join(AllScopes, ", "))
	}
	var scopes []string
	for _, sc := range spec.Scopes {
		if !ValidScope(sc) {
			return invalid("unknown scope %q (known: %s)", sc, strings.Join(AllScopes, ", "))
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	spec.Scopes = scopes
	for _, b := range spec.Buckets {
		if b == "" || len(b) > 255 || strings.ContainsAny(b, "/\x00") {
			return invalid("bucket %q is not a bucket name or pattern", b)
		}
		if _, err := path.Match(b, ""); err != nil {
			return invalid("bucket pattern %q is malformed", b)
		}
	}
	if len(spec.Prefix) > 1024 || !utf8.ValidString(spec.Prefix) || strings.ContainsRune(spec.Prefix, 0) {
		return invalid("prefix must be at most 1024 bytes of UTF-8 without NUL")
	}
	// An admin key can mint unrestricted keys, so restricting it would be a
	// false promise.
	if slices.Contains(spec.Scopes, ScopeAdmin) && (len(spec.Buckets) > 0 || spec.Prefix != "") {
		return invalid("scope admin cannot be combined with bucket or prefix restrictions")
	}
	if !spec.Expires.IsZero() {
		if !spec.Expires.After(now) {
			return invalid("expiry %s is not in the future", spec.Expires.Format(time.RFC3339))
		}
		spec.Expires = spec.Expires.UTC().Truncate(time.Microsecond)
	}
	if spec.MaxURLTTL < 0 {
		return invalid("maximum URL lifetime must not be negative")
	}
	if spec.MaxObjectSize < 0 {
		return invalid("maximum object size must not be negative")
	}
	var types []string
	for _, ct := range spec.ContentTypes {
		ct = strings.ToLower(strings.TrimSpace(ct))
		if !validContentTypePattern(ct) {
			return invalid("content type %q is not a media type or type/* pattern", ct)
		}
		if !slices.Contains(types, ct) {
			types = append(types, ct)
		}
	}
	spec.ContentTypes = types
	return nil
}
