package cors

import (
	"net/http"
	"strconv"
	"strings"
)

// Vary is the Vary value of every CORS response: the answer depends on
// these request headers, so a shared cache must key on them.
const Vary = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

// Match is the rule that allows a request and what to answer with.
type Match struct {
	Rule *Rule
	// AllowOrigin is the Access-Control-Allow-Origin value: "*" when the
	// rule's matching origin is "*" (no credentials then, as in S3), else
	// the request's origin.
	AllowOrigin string
}

// Preflight finds the first rule that allows a preflight from origin for
// method with the requested headers (lower-case names).
func (c *Config) Preflight(origin, method string, headers []string) (Match, bool) {
	if c == nil {
		return Match{}, false
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		allow, ok := r.matchOrigin(origin)
		if !ok || !r.allowsMethod(method) {
			continue
		}
		if !r.allowsHeaders(headers) {
			continue
		}
		return Match{Rule: r, AllowOrigin: allow}, true
	}
	return Match{}, false
}

// Actual finds the first rule that allows an actual (non-preflight)
// request from origin with method. S3 does not check request headers here:
// the preflight did.
func (c *Config) Actual(origin, method string) (Match, bool) {
	return c.Preflight(origin, method, nil)
}

func (r *Rule) matchOrigin(origin string) (allow string, ok bool) {
	for _, pat := range r.AllowedOrigins {
		if wildcardMatch(pat, origin) {
			if pat == "*" {
				return "*", true
			}
			return origin, true
		}
	}
	return "", false
}

func (r *Rule) allowsMethod(m string) bool {
	for _, k := range r.AllowedMethods {
		if k == m {
			return true
		}
	}
	return false
}

func (r *Rule) allowsHeaders(headers []string) bool {
	for _, h := range headers {
		ok := false
		for _, pat := range r.AllowedHeaders {
			if wildcardMatch(pat, h) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// wildcardMatch matches s against pat, whose one optional '*' stands for
// any run of characters. Case is ignored: origins' scheme and host and
// header names are case-insensitive.
func wildcardMatch(pat, s string) bool {
	star := strings.IndexByte(pat, '*')
	if star < 0 {
		return strings.EqualFold(pat, s)
	}
	prefix, suffix := pat[:star], pat[star+1:]
	return len(s) >= len(prefix)+len(suffix) &&
		strings.EqualFold(s[:len(prefix)], prefix) &&
		strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// RequestHeaders splits an Access-Control-Request-Headers value into
// lower-case names.
func RequestHeaders(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SetHeaders writes the CORS response headers of m to h. requested are the
// preflight's requested headers (nil for actual requests). ETag is always
// exposed: without it a page cannot complete a multipart upload, and no
// configuration has a reason to hide it.
func (m Match) SetHeaders(h http.Header, requested []string) {
	r := m.Rule
	h.Set("Access-Control-Allow-Origin", m.AllowOrigin)
	if m.AllowOrigin != "*" {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(r.AllowedMethods, ", "))
	if len(requested) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
	}
	expose := r.ExposeHeaders
	hasETag := false
	for _, e := range expose {
		if strings.EqualFold(e, "ETag") {
			hasETag = true
			break
		}
	}
	if !hasETag {
		expose = append([]string{"ETag"}, expose...)
	}
	h.Set("Access-Control-Expose-Headers", strings.Join(expose, ", "))
	if r.MaxAgeSeconds >= 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(r.MaxAgeSeconds))
	}
	h.Set("Vary", Vary)
}

// DefaultExposeHeaders are the response headers the operator default rule
// lets pages read: the ones S3 clients in browsers look at.
var DefaultExposeHeaders = []string{
	"ETag", "Content-Range", "Accept-Ranges", "Content-Disposition", "Content-Encoding", "Location",
	"x-amz-request-id", "x-amz-id-2", "x-amz-version-id", "x-amz-mp-parts-count",
	"x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
	"x-amz-checksum-sha1", "x-amz-checksum-sha256", "x-amz-checksum-type",
}

// DefaultMaxAge is the preflight cache time of the operator default rule.
const DefaultMaxAge = 3600

// Default returns the configuration the operator gives buckets that have
// none of their own: every S3 method and header from origins, nil when
// origins is empty. Each origin must pass ValidateOrigin.
func Default(origins []string) *Config {
	if len(origins) == 0 {
		return nil
	}
	return &Config{Rules: []Rule{{
		ID:             "operator-default",
		AllowedOrigins: append([]string(nil), origins...),
		AllowedMethods: append([]string(nil), Methods...),
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  append([]string(nil), DefaultExposeHeaders...),
		MaxAgeSeconds:  DefaultMaxAge,
	}}}
}

// ValidateOrigin checks an origin pattern as PutBucketCors would.
func ValidateOrigin(o string) error {
	r := Rule{AllowedOrigins: []string{o}, AllowedMethods: []string{"GET"}, MaxAgeSeconds: -1}
	return r.validate()
}
