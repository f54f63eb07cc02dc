package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"strings"
	"sync"
	"time"
)

// signer signs requests with SigV4 in the Authorization header, payload
// UNSIGNED-PAYLOAD. It is deliberately small: the load generator shares the
// CPU with the server it measures, so the client must cost little. The
// signing key is derived once per day and the HMAC state is reused.
type signer struct {
	accessKey, secret, region string

	mu   sync.Mutex
	day  string
	key  []byte
	pool sync.Pool // *hmacState for the current key
}

type hmacState struct {
	day string
	mac hash.Hash
	sha hash.Hash
	buf []byte
}

const (
	unsignedPayload = "UNSIGNED-PAYLOAD"
	amzDateFormat   = "20060102T150405Z"
	signedHeaders   = "host;x-amz-content-sha256;x-amz-date"
)

func newSigner(accessKey, secret, region string) *signer {
	return &signer{accessKey: accessKey, secret: secret, region: region}
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// state returns HMAC state keyed for day's signing key.
func (s *signer) state(day string) *hmacState {
	if st, ok := s.pool.Get().(*hmacState); ok && st.day == day {
		return st
	}
	s.mu.Lock()
	if s.day != day {
		k := hmacSum([]byte("AWS4"+s.secret), day)
		k = hmacSum(k, s.region)
		k = hmacSum(k, "s3")
		s.key, s.day = hmacSum(k, "aws4_request"), day
	}
	key := s.key
	s.mu.Unlock()
	return &hmacState{day: day, mac: hmac.New(sha256.New, key), sha: sha256.New()}
}

// sign adds X-Amz-Date, X-Amz-Content-Sha256 and Authorization to r. The
// path and query must already be in canonical form (r.URL.RawPath or Path
// and RawQuery as sent): the load's keys and parameters are chosen so.
func (s *signer) sign(r *http.Request, now time.Time) {
	now = now.UTC()
	amzDate := now.Format(amzDateFormat)
	day := amzDate[:8]
	st := s.state(day)
	defer s.pool.Put(st)

	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b := st.buf[:0]
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = append(b, path...)
	b = append(b, '\n')
	b = append(b, r.URL.RawQuery...)
	b = append(b, "\nhost:"...)
	b = append(b, r.URL.Host...)
	b = append(b, "\nx-amz-content-sha256:"+unsignedPayload+"\nx-amz-date:"...)
	b = append(b, amzDate...)
	b = append(b, "\n\n"+signedHeaders+"\n"+unsignedPayload...)
	st.sha.Reset()
	st.sha.Write(b)
	var sum [sha256.Size]byte
	crHash := hex.EncodeToString(st.sha.Sum(sum[:0]))

	scope := day + "/" + s.region + "/s3/aws4_request"
	b = b[:0]
	b = append(b, "AWS4-HMAC-SHA256\n"...)
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = append(b, scope...)
	b = append(b, '\n')
	b = append(b, crHash...)
	st.mac.Reset()
	st.mac.Write(b)
	sig := hex.EncodeToString(st.mac.Sum(sum[:0]))
	st.buf = b

	h := r.Header
	h["X-Amz-Date"] = []string{amzDate}
	h["X-Amz-Content-Sha256"] = []string{unsignedPayload}
	h["Authorization"] = []string{"AWS4-HMAC-SHA256 Credential=" + s.accessKey + "/" + scope +
		", SignedHeaders=" + signedHeaders + ", Signature=" + sig}
}

// queryEscape encodes a query value the SigV4 way (RFC 3986 unreserved kept,
// everything else %XX upper-case), which is also a valid URL encoding.
func queryEscape(v string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
