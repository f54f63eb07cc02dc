package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
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
	cur  map[keyID][]byte
	prev map[keyID][]byte
}

// keyID includes the secret itself so that a rotated secret never finds the
// key derived from the old one.
type keyID struct {
	secret, date, region, service string
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, cur: make(map[keyID][]byte)}
}

func (c *keyCache) get(secret, date, region, service string) []byte {
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
	k := SigningKey(secret, date, region, service)
	c.mu.Lock()
	c.insertLocked(id, k)
	c.mu.Unlock()
	return k
}

func (c *keyCache) insertLocked(id keyID, k []byte) {
	if len(c.cur) >= c.max {
		c.prev = c.cur
		c.cur = make(map[keyID][]byte, c.max)
	}
	c.cur[id] = k
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
