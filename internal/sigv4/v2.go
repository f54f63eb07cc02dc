package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

// v2SubResources are the query parameters that Signature Version 2 includes
// in the canonicalized resource, in sorted order.
var v2SubResources = []string{
	"acl", "cors", "delete", "encryption", "legal-hold", "lifecycle", "location", "logging",
	"notification", "partNumber", "policy", "replication", "requestPayment",
	"response-cache-control", "response-content-disposition", "response-content-encoding",
	"response-content-language", "response-content-type", "response-expires",
	"retention", "select", "select-type", "tagging", "torrent", "uploadId", "uploads",
	"versionId", "versioning", "versions", "website",
}

// verifyHeaderV2 checks "Authorization: AWS AKID:base64(HMAC-SHA1)".
func (v *Verifier) verifyHeaderV2(r *http.Request, value string) (*Auth, error) {
	rest := strings.TrimSpace(strings.TrimPrefix(value, "AWS "))
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return nil, s3err.InvalidArgument.WithMessage("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature").
			With(s3err.Field{Name: "ArgumentName", Value: "Authorization"},
				s3err.Field{Name: "ArgumentValue", Value: value})
	}
	accessKeyID, sig := rest[:i], rest[i+1:]

	// x-amz-date wins over Date; the Date line of the string to sign is
	// then empty (x-amz-date is signed among the x-amz-* headers).
	dateLine := ""
	raw := r.Header.Get("X-Amz-Date")
	if raw == "" {
		raw = r.Header.Get("Date")
		dateLine = raw
	}
	if raw == "" {
		return nil, missingDate()
	}
	t, ok := parseHTTPDate(raw)
	if !ok {
		return nil, missingDate()
	}
	now := v.now()
	if d := now.Sub(t); d > v.skew || d < -v.skew {
		return nil, tooSkewed(raw, now, v.skew)
	}

	secret, err := v.lookupSecret(r.Context(), accessKeyID)
	if err != nil {
		return nil, err
	}
	if err := v.checkV2(r, nil, secret, accessKeyID, dateLine, sig); err != nil {
		return nil, err
	}
	return &Auth{Kind: HeaderV2, AccessKeyID: accessKeyID, Date: t}, nil
}

// verifyPresignedV2 checks ?AWSAccessKeyId=&Expires=&Signature=.
func (v *Verifier) verifyPresignedV2(r *http.Request, aq authQuery) (*Auth, error) {
	accessKeyID, sig, exp := aq.v2AccessKeyID, aq.v2Signature, aq.v2Expires
	if accessKeyID == "" || sig == "" || exp == "" {
		return nil, s3err.AccessDenied.WithMessage("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return nil, s3err.AccessDenied.WithMessage("Invalid date (should be seconds since epoch): " + exp)
	}
	expires := time.Unix(secs, 0).UTC()
	now := v.now()
	if now.After(expires) {
		return nil, s3err.AccessDenied.WithMessage("Request has expired").With(
			s3err.Field{Name: "Expires", Value: formatServerTime(expires)},
			s3err.Field{Name: "ServerTime", Value: formatServerTime(now)},
		)
	}
	secret, err := v.lookupSecret(r.Context(), accessKeyID)
	if err != nil {
		return nil, err
	}
	if err := v.checkV2(r, r.URL.Query(), secret, accessKeyID, exp, sig); err != nil {
		return nil, err
	}
	return &Auth{
		Kind:        PresignedV2,
		AccessKeyID: accessKeyID,
		ExpiresIn:   expires.Sub(now),
		Expires:     expires,
	}, nil
}

// checkV2 compares the signature over the V2 string to sign. The resource
// path is tried as sent and, failing that, in canonical encoding: V2
// clients differ in which of the two they sign, and both describe the same
// resource.
func (v *Verifier) checkV2(r *http.Request, presignQuery url.Values, secret, accessKeyID, dateLine, provided string) error {
	want, err := base64.StdEncoding.DecodeString(provided)
	if err != nil {
		want = nil
	}
	raw := rawPath(r)
	paths := []string{raw}
	if c := canonicalURI(raw); c != raw {
		paths = append(paths, c)
	}
	var first string
	for i, p := range paths {
		sts := v.stringToSignV2(r, presignQuery, dateLine, p)
		if i == 0 {
			first = sts
		}
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(sts))
		if want != nil && hmac.Equal(m.Sum(nil), want) {
			return nil
		}
	}
	return signatureMismatchV2(accessKeyID, first, provided)
}

// rawPath is the request path exactly as the client sent it.
func rawPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		return p
	}
	return r.URL.EscapedPath()
}

// stringToSignV2 is
// METHOD\nContent-MD5\nContent-Type\nDate-or-Expires\nCanonicalizedAmzHeaders+CanonicalizedResource.
func (v *Verifier) stringToSignV2(r *http.Request, presignQuery url.Values, dateLine, path string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(r.Header.Get("Content-Md5"))
	b.WriteByte('\n')
	b.WriteString(r.Header.Get("Content-Type"))
	b.WriteByte('\n')
	b.WriteString(dateLine)
	b.WriteByte('\n')

	// x-amz-* headers, and for presigned URLs the x-amz-* parameters some
	// SDKs move from headers into the query, lower-cased and sorted, values
	// of one name joined by commas.
	amz := map[string][]string{}
	for k, vals := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			amz[lk] = append(amz[lk], vals...)
		}
	}
	for k, vals := range presignQuery {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			amz[lk] = append(amz[lk], vals...)
		}
	}
	names := make([]string, 0, len(amz))
	for k := range amz {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(':')
		for i, val := range amz[k] {
			if i > 0 {
				b.WriteByte(',')
			}
			// V2 trims around the value but, unlike V4, keeps inner
			// spaces as they are.
			b.WriteString(strings.TrimSpace(val))
		}
		b.WriteByte('\n')
	}

	if bucket := v.vhost(r); bucket != "" {
		b.WriteByte('/')
		b.WriteString(bucket)
	}
	b.WriteString(path)
	q := r.URL.Query()
	sep := byte('?')
	for _, name := range v2SubResources {
		vals, ok := q[name]
		if !ok {
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(name)
		if len(vals) > 0 && vals[0] != "" {
			b.WriteByte('=')
			b.WriteString(vals[0])
		}
	}
	return b.String()
}
