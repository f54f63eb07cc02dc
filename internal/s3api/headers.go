package s3api

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

const (
	maxKeyLength    = 1024
	maxUserMetaSize = 2 << 10 // S3: user metadata up to 2 KB
	defaultType     = "binary/octet-stream"
	metaPrefix      = "X-Amz-Meta-"
)

// validKey enforces S3's key rules: non-empty, at most 1024 bytes of UTF-8.
// Keys are data: '..', '//', trailing '/' are all kept as sent.
func validKey(key string) error {
	switch {
	case len(key) > maxKeyLength:
		return s3err.KeyTooLongError
	case !utf8.ValidString(key) || strings.ContainsRune(key, 0):
		return s3err.InvalidArgument.WithMessage("Object key is not valid UTF-8 or contains a NUL character.")
	}
	return nil
}

// validBucketName applies S3's general purpose bucket naming rules.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	first, last := name[0], name[len(name)-1]
	if first == '.' || first == '-' || last == '.' || last == '-' {
		return false
	}
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, sfx := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, sfx) {
			return false
		}
	}
	// Not formatted as an IP address.
	parts := strings.Split(name, ".")
	if len(parts) == 4 {
		ip := true
		for _, p := range parts {
			if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 255 {
				ip = false
			}
		}
		if ip {
			return false
		}
	}
	return true
}

// objectFromRequest fills the content headers and user metadata of a write.
func objectFromRequest(h http.Header, bucket, key string) (storage.Object, error) {
	o := storage.Object{
		Bucket:             bucket,
		Key:                key,
		ContentType:        h.Get("Content-Type"),
		ContentEncoding:    stripAWSChunked(h.Get("Content-Encoding")),
		ContentDisposition: h.Get("Content-Disposition"),
		ContentLanguage:    h.Get("Content-Language"),
		CacheControl:       h.Get("Cache-Control"),
		Expires:            h.Get("Expires"),
	}
	size := 0
	for name, vals := range h {
		if !strings.HasPrefix(name, metaPrefix) {
			continue
		}
		if o.UserMeta == nil {
			o.UserMeta = map[string]string{}
		}
		n := strings.ToLower(name[len(metaPrefix):])
		v := strings.Join(vals, ",")
		o.UserMeta[n] = v
		size += len(n) + len(v)
	}
	if size > maxUserMetaSize {
		return o, s3err.MetadataTooLarge
	}
	if sc := h.Get("X-Amz-Storage-Class"); sc != "" && sc != "STANDARD" {
		switch sc {
		case "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE":
			// Accepted and served as STANDARD: there is one class here.
		default:
			return o, s3err.InvalidStorageClass
		}
	}
	return o, nil
}

// stripAWSChunked removes the aws-chunked transfer coding, which describes
// the request framing and is never stored or replayed.
func stripAWSChunked(ce string) string {
	if ce == "" || !strings.Contains(ce, "aws-chunked") {
		return ce
	}
	var keep []string
	for _, p := range strings.Split(ce, ",") {
		p = strings.TrimSpace(p)
		if p != "" && p != "aws-chunked" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ",")
}

func quoteETag(etag string) string { return `"` + etag + `"` }

// httpTime formats t as an HTTP date (Last-Modified).
func httpTime(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// isoTime formats t as S3's XML timestamps do.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// setObjectHeaders writes an object's metadata headers for GET and HEAD.
func setObjectHeaders(h http.Header, o *storage.Object) {
	ct := o.ContentType
	if ct == "" {
		ct = defaultType
	}
	h.Set("Content-Type", ct)
	h.Set("ETag", quoteETag(o.ETag))
	h.Set("Last-Modified", httpTime(o.LastModified))
	h.Set("Accept-Ranges", "bytes")
	for k, v := range map[string]string{
		"Content-Encoding":    o.ContentEncoding,
		"Content-Disposition": o.ContentDisposition,
		"Content-Language":    o.ContentLanguage,
		"Cache-Control":       o.CacheControl,
		"Expires":             o.Expires,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	for k, v := range o.UserMeta {
		// Set the map directly: canonicalising would change the case the
		// client chose, and S3 returns metadata names in lower case.
		h["x-amz-meta-"+k] = []string{v}
	}
	if len(o.Parts) > 0 {
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(o.Parts)))
	}
}

// responseOverrides are the query parameters of a signed GET/HEAD that
// replace response headers.
var responseOverrides = []struct{ param, header string }{
	{"response-content-type", "Content-Type"},
	{"response-content-language", "Content-Language"},
	{"response-expires", "Expires"},
	{"response-cache-control", "Cache-Control"},
	{"response-content-disposition", "Content-Disposition"},
	{"response-content-encoding", "Content-Encoding"},
}

// matchETag reports whether the If-Match / If-None-Match list matches etag.
func matchETag(list, etag string) bool {
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		v = strings.TrimPrefix(v, "W/")
		if v == "*" || strings.Trim(v, `"`) == etag {
			return true
		}
	}
	return false
}

// checkReadConditions evaluates If-Match, If-Unmodified-Since, If-None-Match
// and If-Modified-Since for GET and HEAD, in RFC 7232's order, which S3 follows.
func checkReadConditions(h http.Header, o *storage.Object) error {
	mod := o.LastModified.Truncate(time.Second)
	if im := h.Get("If-Match"); im != "" {
		if !matchETag(im, o.ETag) {
			return s3err.PreconditionFailed.With(s3err.Field{Name: "Condition", Value: "If-Match"})
		}
	} else if ius := h.Get("If-Unmodified-Since"); ius != "" {
		if t, err := http.ParseTime(ius); err == nil && mod.After(t) {
			return s3err.PreconditionFailed.With(s3err.Field{Name: "Condition", Value: "If-Unmodified-Since"})
		}
	}
	if inm := h.Get("If-None-Match"); inm != "" {
		if matchETag(inm, o.ETag) {
			return s3err.NotModified
		}
	} else if ims := h.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !mod.After(t) {
			return s3err.NotModified
		}
	}
	return nil
}

// checkCopySourceConditions evaluates x-amz-copy-source-if-*; any failure is 412.
func checkCopySourceConditions(h http.Header, o *storage.Object) error {
	mod := o.LastModified.Truncate(time.Second)
	fail := s3err.PreconditionFailed
	im, inm := h.Get("X-Amz-Copy-Source-If-Match"), h.Get("X-Amz-Copy-Source-If-None-Match")
	if im != "" && !matchETag(im, o.ETag) {
		return fail.With(s3err.Field{Name: "Condition", Value: "x-amz-copy-source-If-Match"})
	}
	if inm != "" && matchETag(inm, o.ETag) {
		return fail.With(s3err.Field{Name: "Condition", Value: "x-amz-copy-source-If-None-Match"})
	}
	if v := h.Get("X-Amz-Copy-Source-If-Unmodified-Since"); v != "" && im == "" {
		if t, err := http.ParseTime(v); err == nil && mod.After(t) {
			return fail.With(s3err.Field{Name: "Condition", Value: "x-amz-copy-source-If-Unmodified-Since"})
		}
	}
	if v := h.Get("X-Amz-Copy-Source-If-Modified-Since"); v != "" && inm == "" {
		if t, err := http.ParseTime(v); err == nil && !mod.After(t) {
			return fail.With(s3err.Field{Name: "Condition", Value: "x-amz-copy-source-If-Modified-Since"})
		}
	}
	return nil
}

// writeCheck turns If-Match / If-None-Match on a write into a PutCheck that
// runs inside the metadata transaction, so two racing create-only writes
// cannot both win.
func writeCheck(h http.Header) storage.PutCheck {
	im, inm := h.Get("If-Match"), h.Get("If-None-Match")
	if im == "" && inm == "" {
		return nil
	}
	return func(old *storage.Object) error {
		if inm != "" && old != nil && matchETag(inm, old.ETag) {
			return s3err.PreconditionFailed.With(s3err.Field{Name: "Condition", Value: "If-None-Match"})
		}
		if im != "" {
			if old == nil {
				return s3err.NoSuchKey
			}
			if !matchETag(im, old.ETag) {
				return s3err.PreconditionFailed.With(s3err.Field{Name: "Condition", Value: "If-Match"})
			}
		}
		return nil
	}
}

// parseRange parses a single-range Range header against size. ok is false
// when the header is absent or not a single byte range, which S3 answers
// with the whole object.
func parseRange(v string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, false, nil
		}
		// A suffix of nothing, or of an empty object, selects no byte.
		if n == 0 || size == 0 {
			return 0, 0, false, invalidRange(v, size)
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || a < 0 {
		return 0, 0, false, nil
	}
	b := size - 1
	if last != "" {
		if b, perr = strconv.ParseInt(last, 10, 64); perr != nil || b < a {
			return 0, 0, false, nil
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, invalidRange(v, size)
	}
	return a, b - a + 1, true, nil
}

func invalidRange(v string, size int64) error {
	return s3err.InvalidRange.With(
		s3err.Field{Name: "RangeRequested", Value: v},
		s3err.Field{Name: "ActualObjectSize", Value: strconv.FormatInt(size, 10)},
	)
}
