package presign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"
)

// SigV4 constants for S3.
const (
	algorithm       = "AWS4-HMAC-SHA256"
	serviceName     = "s3"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
)

// uriEncode percent-encodes s the way SigV4 requires: every byte except the
// RFC 3986 unreserved characters becomes %XX with upper-case hex. With
// keepSlash the '/' is left alone, which is how S3 encodes object key paths
// (each segment encoded, separators kept, no dot-segment normalisation).
func uriEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// queryParam is one name/value pair before encoding. A slice rather than
// url.Values keeps repeated names and lets us sort on the encoded form, which
// is what the canonical query string is ordered by.
type queryParam struct{ name, value string }

// canonicalQuery encodes and sorts params (by encoded name, then encoded
// value). The result is also a valid query string for the final URL, so the
// URL carries byte-for-byte what was signed.
func canonicalQuery(params []queryParam) string {
	enc := make([]queryParam, len(params))
	for i, p := range params {
		enc[i] = queryParam{uriEncode(p.name, false), uriEncode(p.value, false)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].name != enc[j].name {
			return enc[i].name < enc[j].name
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// canonicalHeaderValue trims the value and folds runs of spaces into one, as
// the SigV4 "trimall" step does. Servers apply the same folding, so a client
// whose HTTP stack re-spaces a header still matches.
func canonicalHeaderValue(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	prevSpace := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// scope returns the credential scope date/region/s3/aws4_request.
func scope(t time.Time, region string) string {
	return t.Format(scopeDateFormat) + "/" + region + "/" + serviceName + "/aws4_request"
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// signingKey derives the per-day, per-region key from the secret.
func signingKey(secret string, t time.Time, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), t.Format(scopeDateFormat))
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, serviceName)
	return hmacSHA256(k, "aws4_request")
}

// stringToSign builds the SigV4 string to sign over a canonical request.
func stringToSign(t time.Time, region, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return algorithm + "\n" + t.Format(amzDateFormat) + "\n" + scope(t, region) + "\n" + hex.EncodeToString(sum[:])
}

// sign returns the hex signature of data under the derived key.
func sign(secret string, t time.Time, region, data string) string {
	return hex.EncodeToString(hmacSHA256(signingKey(secret, t, region), data))
}
