package sigv4

import (
	"net/http"
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
		var ok bool
		if t, ok = parseAmzDate(rawDate); !ok {
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
	if canonical, sts, ok := v.matchV4(r, key, amzDateStr, scope, false, az.SignedHeaders, declared, az.Signature); !ok {
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
func (a *Auth) setPayload(mode PayloadMode, declared string, key *derivedKey, seed, amzDate, scope string) {
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
func (v *Verifier) verifyPresignedV4(r *http.Request, q authQuery) (*Auth, error) {
	pq, err := parsePresigned(q)
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
	// query (signed with the rest of the query; the JavaScript presigner
	// hoists it there) or as a header.
	declared := q.contentSHA256
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
	if canonical, sts, ok := v.matchV4(r, key, pq.RawDate, scope, true, pq.SignedHeaders, declared, pq.Signature); !ok {
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

// matchV4 checks a SigV4 signature over r's canonical request for the host
// the request names and, failing that, for the alternative host when there
// is one. On failure it returns the canonical request and string to sign
// for the request's own host: what an error should show the client.
//
// The canonical request and string to sign are built in stack buffers and
// become strings only for that error: verifying a presigned URL then costs
// a handful of small allocations.
func (v *Verifier) matchV4(r *http.Request, key *derivedKey, amzDate, scope string, dropSignature bool, signed []string, payloadHash, provided string) (canonical, sts string, ok bool) {
	var crBuf [1024]byte
	var stsBuf [256]byte
	host := v.host(r)
	cr := v.appendCanonicalRequest(crBuf[:0], r, host, dropSignature, signed, payloadHash)
	st := appendStringToSign(stsBuf[:0], amzDate, scope, cr)
	if key.matches(st, provided) {
		return "", "", true
	}
	if v.alt != nil && slices.Contains(signed, "host") {
		if alt := v.alt(r); alt != "" && alt != host {
			var altBuf [1024]byte
			var altSts [256]byte
			c := v.appendCanonicalRequest(altBuf[:0], r, alt, dropSignature, signed, payloadHash)
			if key.matches(appendStringToSign(altSts[:0], amzDate, scope, c), provided) {
				return "", "", true
			}
		}
	}
	return string(cr), string(st), false
}
