package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"nfyio.dev/storage/internal/s3err"
)

const (
	algorithmV4     = "AWS4-HMAC-SHA256"
	serviceS3       = "s3"
	terminator      = "aws4_request"
	iso8601Basic    = "20060102T150405Z"
	credentialShape = `"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"`

	headerContentSHA256 = "X-Amz-Content-Sha256"

	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// unreserved reports the bytes SigV4 never percent-encodes (RFC 3986
// unreserved characters).
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// alreadyCanonical reports whether s is exactly what uriEncode would produce
// for its decoded form (slash tells whether '/' may appear literally). Most
// SDK-built paths and queries are, which saves decoding and re-encoding.
func alreadyCanonical(s string, slash bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c), slash && c == '/':
		case c == '%':
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
				return false
			}
			d := unhex(s[i+1])<<4 | unhex(s[i+2])
			if unreserved(d) || slash && d == '/' {
				return false // encoded where canonical form is literal
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// uriEncode percent-encodes every byte but the unreserved ones, with
// upper-case hex, as SigV4 requires.
func uriEncode(s string) string {
	const digits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', digits[c>>4], digits[c&0xf])
		}
	}
	return string(b)
}

// canonicalURI turns the path as received into the SigV4 canonical URI the
// way S3 does: no normalisation (".." and empty segments stay), no double
// encoding; each segment is decoded and re-encoded so that however a client
// chose to escape a byte, the canonical form is the same.
func canonicalURI(escapedPath string) string {
	if escapedPath == "" {
		return "/"
	}
	if alreadyCanonical(escapedPath, true) {
		return escapedPath
	}
	segs := strings.Split(escapedPath, "/")
	for i, seg := range segs {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			// Not valid escaping: sign what was sent, encoded once.
			dec = seg
		}
		segs[i] = uriEncode(dec)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery sorts the query by encoded name then value, each encoded
// canonically. dropSignature leaves X-Amz-Signature out (presigned URLs
// sign everything but the signature itself).
func canonicalQuery(rawQuery string, dropSignature bool) string {
	return string(appendCanonicalQuery(nil, rawQuery, dropSignature))
}

type queryPair struct{ k, v string }

func appendCanonicalQuery(dst []byte, rawQuery string, dropSignature bool) []byte {
	if rawQuery == "" {
		return dst
	}
	var stack [24]queryPair // most queries fit: no allocation
	pairs := stack[:0]
	for rawQuery != "" {
		var part string
		part, rawQuery, _ = strings.Cut(rawQuery, "&")
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		k = canonicalQueryComponent(k)
		if dropSignature && k == amzSignature {
			continue
		}
		pairs = append(pairs, queryPair{k, canonicalQueryComponent(val)})
	}
	sortPairs(pairs)
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.k...)
		dst = append(dst, '=')
		dst = append(dst, p.v...)
	}
	return dst
}

// sortPairs sorts by name then value. Short queries (the stack-sized ones)
// get an insertion sort, which unlike slices.SortFunc lets them stay on the
// stack; long ones, which a client could make huge, an O(n log n) sort.
func sortPairs(p []queryPair) {
	if len(p) > 24 {
		slices.SortFunc(p, func(a, b queryPair) int {
			if c := strings.Compare(a.k, b.k); c != 0 {
				return c
			}
			return strings.Compare(a.v, b.v)
		})
		return
	}
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && (p[j].k < p[j-1].k || p[j].k == p[j-1].k && p[j].v < p[j-1].v); j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

func canonicalQueryComponent(s string) string {
	if alreadyCanonical(s, false) {
		return s
	}
	dec, err := url.QueryUnescape(s)
	if err != nil {
		dec = s
	}
	return uriEncode(dec)
}

// headerValues returns the values of the named (lower-case) header as the
// canonical request needs them. Go moves some headers out of r.Header, so
// those come from where Go put them; host is the one the signature is
// checked for (see Options.Host and Options.AltHost).
func (v *Verifier) headerValues(r *http.Request, host, name string) []string {
	switch name {
	case "host":
		return []string{host}
	case "content-length":
		if vals := r.Header["Content-Length"]; len(vals) > 0 {
			return vals
		}
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		return nil
	case "transfer-encoding":
		if vals := r.Header["Transfer-Encoding"]; len(vals) > 0 {
			return vals
		}
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
		return nil
	}
	// Go's server stores every header under its canonical key (it refuses
	// names it could not canonicalise), so one lookup finds it. No scan
	// of all headers: that would make a long SignedHeaders list quadratic.
	return r.Header[textproto.CanonicalMIMEHeaderKey(name)]
}

// appendTrimmed appends a header value with leading and trailing blanks
// removed and inner runs of spaces collapsed to one.
func appendTrimmed(dst []byte, s string) []byte {
	s = strings.Trim(s, " \t")
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			space = true
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}

// appendURIEncode appends s percent-encoded as SigV4 requires, keeping '/'
// when slash is set.
func appendURIEncode(dst []byte, s string, slash bool) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || slash && c == '/' {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', digits[c>>4], digits[c&0xf])
		}
	}
	return dst
}

// appendCanonicalURI appends the canonical URI of u (see canonicalURI).
func appendCanonicalURI(dst []byte, u *url.URL) []byte {
	if u.RawPath == "" && u.Opaque == "" {
		// Go kept no raw form: the path was sent in Go's own escaping,
		// so no segment held an escaped '/' and encoding the decoded
		// path whole is the same as decoding and re-encoding each segment.
		if u.Path == "" {
			return append(dst, '/')
		}
		return appendURIEncode(dst, u.Path, true)
	}
	return append(dst, canonicalURI(u.EscapedPath())...)
}

// appendCanonicalRequest appends the SigV4 canonical request of r, as
// signed for host, to dst. dropSignature leaves X-Amz-Signature out of the
// query (presigned URLs).
func (v *Verifier) appendCanonicalRequest(dst []byte, r *http.Request, host string, dropSignature bool, signed []string, payloadHash string) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	dst = appendCanonicalURI(dst, r.URL)
	dst = append(dst, '\n')
	dst = appendCanonicalQuery(dst, r.URL.RawQuery, dropSignature)
	dst = append(dst, '\n')
	for _, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		if name == "host" {
			// The common case, written without building a slice.
			dst = appendTrimmed(dst, host)
			dst = append(dst, '\n')
			continue
		}
		for i, val := range v.headerValues(r, host, name) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTrimmed(dst, val)
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	for i, name := range signed {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, name...)
	}
	dst = append(dst, '\n')
	return append(dst, payloadHash...)
}

func appendStringToSign(dst []byte, amzDate, scope string, canonicalRequest []byte) []byte {
	sum := sha256.Sum256(canonicalRequest)
	dst = append(dst, algorithmV4...)
	dst = append(dst, '\n')
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, scope...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, sum[:])
}

// unsignedAmzHeaders lists, sorted, the x-amz-* headers of r that are not
// in signed. S3 refuses those: an unsigned x-amz-* header could change what
// a signed request does. x-amz-content-sha256 is exempt, as in S3: it only
// describes the payload, which the signature covers by other means.
func unsignedAmzHeaders(r *http.Request, signed []string) []string {
	var out []string
	for k := range r.Header {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") {
			continue
		}
		lk := strings.ToLower(k)
		if lk == "x-amz-content-sha256" || slices.Contains(signed, lk) {
			continue
		}
		out = append(out, lk)
	}
	slices.Sort(out)
	return out
}

// parsePayloadMode reads an x-amz-content-sha256 value.
func parsePayloadMode(v string) (PayloadMode, error) {
	switch v {
	case unsignedPayload:
		return PayloadUnsigned, nil
	case streamingSigned:
		return PayloadStreamingSigned, nil
	case streamingSignedTrailer:
		return PayloadStreamingSignedTrailer, nil
	case streamingUnsignedTrailer:
		return PayloadStreamingUnsignedTrailer, nil
	}
	if len(v) == 64 {
		if _, err := hex.DecodeString(v); err == nil {
			return PayloadSHA256, nil
		}
	}
	return PayloadNone, s3err.InvalidArgument.WithMessage(
		"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.").
		With(s3err.Field{Name: "ArgumentName", Value: "x-amz-content-sha256"},
			s3err.Field{Name: "ArgumentValue", Value: v})
}
