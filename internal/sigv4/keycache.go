package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"sync"
)

// SigningKey derives the SigV4 signing key:
// HMAC chain "AWS4"+secret -> date (YYYYMMDD) -> region -> service -> "aws4_request".
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// derivedKey is a signing key with a pool of HMAC states keyed with it:
// signing with a cached key then allocates no HMAC and skips the two
// key-block compressions a fresh HMAC repeats (Reset restores the keyed
// state).
type derivedKey struct {
	key  []byte
	macs sync.Pool
}

func newDerivedKey(k []byte) *derivedKey {
	d := &derivedKey{key: k}
	d.macs.New = func() any { return hmac.New(sha256.New, k) }
	return d
}

// sum appends HMAC-SHA256(key, data) to dst.
func (d *derivedKey) sum(dst, data []byte) []byte {
	m := d.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(data)
	dst = m.Sum(dst)
	d.macs.Put(m)
	return dst
}

// matches reports whether provided is hex(HMAC-SHA256(key, data)). The
// comparison takes the same time wherever the first difference is, as
// hmac.Equal does, without copying provided into a byte slice first.
func (d *derivedKey) matches(data []byte, provided string) bool {
	var sum [sha256.Size]byte
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], d.sum(sum[:0], data))
	if len(provided) != len(hx) {
		return false
	}
	var diff byte
	for i := range hx {
		diff |= hx[i] ^ provided[i]
	}
	return subtle.ConstantTimeByteEq(diff, 0) == 1
}

// matchesString is matches for a string to sign built as a string.
func (d *derivedKey) matchesString(data, provided string) bool {
	return d.matches([]byte(data), provided)
}

// keyCache remembers derived signing keys so that a busy access key costs
// one four-step HMAC chain per day and region instead of one per request.
//
// It is bounded with two generations: lookups hit either map, inserts go to
// the current one, and when the current one is full it becomes the old one
// and the previous old one is dropped. Keys in use stay (a hit in the old
// generation is copied forward); keys unused for a generation go. Memory is
// at most twice the size given.
type keyCache struct {
	mu   sync.Mutex
	max  int
	cur  map[keyID]*derivedKey
	prev map[keyID]*derivedKey
}

// keyID includes the secret itself so that a rotated secret never finds the
// key derived from the old one.
type keyID struct {
	secret, date, region, service string
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, cur: make(map[keyID]*derivedKey)}
}

func (c *keyCache) get(secret, date, region, service string) *derivedKey {
	id := keyID{secret, date, region, service}
	c.mu.Lock()
	if k, ok := c.cur[id]; ok {
		c.mu.Unlock()
		return k
	}
	if k, ok := c.prev[id]; ok {
		c.insertLocked(id, k)
		c.mu.Unlock()
		return k
	}
	c.mu.Unlock()

	// Derive outside the lock; two goroutines racing on a new key both
	// derive it, which is harmless.
	k := newDerivedKey(SigningKey(secret, date, region, service))
	c.mu.Lock()
	c.insertLocked(id, k)
	c.mu.Unlock()
	return k
}

func (c *keyCache) insertLocked(id keyID, k *derivedKey) {
	if len(c.cur) >= c.max {
		c.prev = c.cur
		c.cur = make(map[keyID]*derivedKey, c.max)
	}
	c.cur[id] = k
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
