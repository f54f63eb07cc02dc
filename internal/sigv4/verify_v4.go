package sigv4

import (
	"crypto/hmac"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

// verifyHeaderV4 checks "Authorization: AWS4-HMAC-SHA256 ...". The order of
// checks follows S3: form of the header, payload declaration, clock, key,
// signature, then headers left unsigned.
func (v *Verifier) verifyHeaderV4(r *http.Request, value string) (*Auth, error) {
	az, err := ParseAuthorization(value)
	if err != nil {
		return nil, err
	}
	declared := r.Header.Get(headerContentSHA256)
	if declared == "" {
		return nil, s3err.InvalidRequest.WithMessage("Missing required header for this request: x-amz-content-sha256")
	}
	mode, err := parsePayloadMode(declared)
	if err != nil {
		return nil, err
	}

	// The string to sign carries X-Amz-Date exactly as sent; with only a Date
	// header it carries that time in ISO 8601 basic format.
	var t time.Time
	rawDate := r.Header.Get("X-Amz-Date")
	fromDateHeader := false
	if rawDate != "" {
		if t, err = time.Parse(iso8601Basic, rawDate); err != nil {
			return nil, missingDate()
		}
	} else if d := r.Header.Get("Date"); d != "" {
		var ok bool
		if t, ok = parseHTTPDate(d); !ok {
			return nil, missingDate()
		}
		fromDateHeader = true
	} else {
		return nil, missingDate()
	}
	amzDateStr := rawDate
	if fromDateHeader {
		amzDateStr = t.UTC().Format(iso8601Basic)
	}
	if detail := credentialDateDetail(az.Credential, t); detail != "" {
		return nil, headerMalformed(detail)
	}
	now := v.now()
	if d := now.Sub(t); d > v.skew || d < -v.skew {
		reqTime := rawDate
		if fromDateHeader {
			reqTime = r.Header.Get("Date")
		}
		return nil, tooSkewed(reqTime, now, v.skew)
	}

	cred := az.Credential
	secret, err := v.lookupSecret(r.Context(), cred.AccessKeyID)
	if err != nil {
		return nil, err
	}
	key := v.keys.get(secret, cred.Date, cred.Region, cred.Service)
	scope := cred.Scope()
	canonical := v.canonicalRequest(r, canonicalQuery(r.URL.RawQuery, false), az.SignedHeaders, declared)
	sts := stringToSign(amzDateStr, scope, canonical)
	if !hmac.Equal([]byte(signHex(key, sts)), []byte(az.Signature)) {
		return nil, signatureMismatchV4(cred.AccessKeyID, sts, az.Signature, canonical)
	}

	unsigned := unsignedAmzHeaders(r, az.SignedHeaders)
	if !slices.Contains(az.SignedHeaders, "host") {
		unsigned = append(unsigned, "host")
	}
	if fromDateHeader && !slices.Contains(az.SignedHeaders, "date") {
		// The Date header is what dates this request; unsigned, it could
		// be replaced at will.
		unsigned = append(unsigned, "date")
	}
	if len(unsigned) > 0 {
		return nil, headersNotSigned(unsigned)
	}

	a := &Auth{
		Kind:          HeaderV4,
		AccessKeyID:   cred.AccessKeyID,
		Region:        cred.Region,
		Date:          t,
		SignedHeaders: az.SignedHeaders,
		Payload:       mode,
	}
	a.setPayload(mode, declared, key, az.Signature, amzDateStr, scope)
	return a, nil
}

// setPayload records what Body needs for the payload mode.
func (a *Auth) setPayload(mode PayloadMode, declared string, key []byte, seed, amzDate, scope string) {
	a.Payload = mode
	switch mode {
	case PayloadSHA256:
		a.contentSHA256 = strings.ToLower(declared)
	case PayloadStreamingSigned, PayloadStreamingSignedTrailer:
		a.signingKey = key
		a.seedSignature = seed
		a.amzDate = amzDate
		a.scope = scope
	}
}

// verifyPresignedV4 checks a URL carrying X-Amz-Signature. As S3 does, the
// validity window is checked before the key and the signature: an expired
// URL says so whatever else is wrong with it.
func (v *Verifier) verifyPresignedV4(r *http.Request, q url.Values) (*Auth, error) {
	pq, err := ParsePresignedQuery(q)
	if err != nil {
		return nil, err
	}
	now := v.now()
	expires := pq.Date.Add(pq.Expires)
	if pq.Date.Sub(now) > v.skew {
		// S3 reports X-Amz-Date here in Unix milliseconds.
		return nil, s3err.AccessDenied.WithMessage("Request is not yet valid").With(
			s3err.Field{Name: "X-Amz-Date", Value: strconv.FormatInt(pq.Date.UnixMilli(), 10)},
			s3err.Field{Name: "Expires", Value: formatServerTime(expires)},
			s3err.Field{Name: "ServerTime", Value: formatServerTime(now)},
		)
	}
	if now.After(expires) {
		return nil, s3err.AccessDenied.WithMessage("Request has expired").With(
			s3err.Field{Name: "X-Amz-Expires", Value: pq.RawExpires},
			s3err.Field{Name: "Expires", Value: formatServerTime(expires)},
			s3err.Field{Name: "ServerTime", Value: formatServerTime(now)},
		)
	}

	// A presigned URL usually names no payload hash; it may carry one in the
	// query (signed with the rest of the query) or as a header.
	declared := q.Get(headerContentSHA256)
	if declared == "" {
		declared = r.Header.Get(headerContentSHA256)
	}
	if declared == "" {
		declared = unsignedPayload
	}
	mode, err := parsePayloadMode(declared)
	if err != nil {
		return nil, err
	}

	cred := pq.Credential
	secret, err := v.lookupSecret(r.Context(), cred.AccessKeyID)
	if err != nil {
		return nil, err
	}
	key := v.keys.get(secret, cred.Date, cred.Region, cred.Service)
	scope := cred.Scope()
	canonical := v.canonicalRequest(r, canonicalQuery(r.URL.RawQuery, true), pq.SignedHeaders, declared)
	sts := stringToSign(pq.RawDate, scope, canonical)
	if !hmac.Equal([]byte(signHex(key, sts)), []byte(pq.Signature)) {
		return nil, signatureMismatchV4(cred.AccessKeyID, sts, pq.Signature, canonical)
	}

	unsigned := unsignedAmzHeaders(r, pq.SignedHeaders)
	if !slices.Contains(pq.SignedHeaders, "host") {
		unsigned = append(unsigned, "host")
	}
	if len(unsigned) > 0 {
		return nil, headersNotSigned(unsigned)
	}

	a := &Auth{
		Kind:          PresignedV4,
		AccessKeyID:   cred.AccessKeyID,
		Region:        cred.Region,
		Date:          pq.Date,
		SignedHeaders: pq.SignedHeaders,
		ExpiresIn:     pq.Expires,
		Expires:       expires,
	}
	a.setPayload(mode, declared, key, pq.Signature, pq.RawDate, scope)
	return a, nil
}
