package sigv4

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Presigned URL query parameters.
const (
	amzAlgorithm     = "X-Amz-Algorithm"
	amzCredential    = "X-Amz-Credential"
	amzDate          = "X-Amz-Date"
	amzExpires       = "X-Amz-Expires"
	amzSignedHeaders = "X-Amz-SignedHeaders"
	amzSignature     = "X-Amz-Signature"

	// maxPresignExpires is S3's limit on X-Amz-Expires: seven days.
	maxPresignExpires = 7 * 24 * 60 * 60
)

// Credential is a parsed credential "AKID/YYYYMMDD/region/service/aws4_request".
type Credential struct {
	AccessKeyID string
	Date        string // YYYYMMDD as given
	Region      string
	Service     string

	scope string // the credential after the access key, when parsed
}

// Scope is the credential scope "YYYYMMDD/region/service/aws4_request".
func (c Credential) Scope() string {
	if c.scope != "" {
		return c.scope
	}
	return c.Date + "/" + c.Region + "/" + c.Service + "/" + terminator
}

// parseCredential splits a credential. The access key is everything before
// the last four components, so a key containing '/' still parses. On failure
// it returns the detail S3 puts after its message prefix.
func parseCredential(s string) (Credential, string) {
	const malformed = "the Credential is mal-formed; expecting " + credentialShape + "."
	var parts [4]string
	rest := s
	for i := 3; i >= 0; i-- {
		j := strings.LastIndexByte(rest, '/')
		if j < 0 {
			return Credential{}, malformed
		}
		parts[i], rest = rest[j+1:], rest[:j]
	}
	c := Credential{
		AccessKeyID: rest,
		Date:        parts[0],
		Region:      parts[1],
		Service:     parts[2],
		scope:       s[len(rest)+1:],
	}
	if c.AccessKeyID == "" || c.Date == "" || c.Region == "" {
		return Credential{}, malformed
	}
	if c.Service != serviceS3 {
		return Credential{}, fmt.Sprintf("incorrect service %q. This endpoint belongs to %q.", c.Service, serviceS3)
	}
	if parts[3] != terminator {
		return Credential{}, fmt.Sprintf("incorrect terminal %q. This endpoint uses %q.", parts[3], terminator)
	}
	return c, ""
}

// credentialDateDetail checks that the credential is for the request's day.
func credentialDateDetail(c Credential, t time.Time) string {
	if isDay(c.Date, t) {
		return ""
	}
	return fmt.Sprintf("Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", c.Date, t.UTC().Format("20060102"))
}

// isDay reports whether s is t's UTC day as YYYYMMDD, without formatting t.
func isDay(s string, t time.Time) bool {
	if len(s) != 8 {
		return false
	}
	n := 0
	for i := 0; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	y, m, d := t.UTC().Date()
	return n == y*10000+int(m)*100+d
}

// Authorization is a parsed SigV4 Authorization header.
type Authorization struct {
	Credential    Credential
	SignedHeaders []string // lower-case, in the order given
	Signature     string
}

// ParseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AK/date/region/s3/aws4_request, SignedHeaders=a;b, Signature=hex",
// tolerating any spacing around the commas and equals signs. Errors are
// *s3err.Error with S3's messages.
func ParseAuthorization(value string) (Authorization, error) {
	rest, ok := strings.CutPrefix(value, algorithmV4)
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return Authorization{}, unsupportedAuthorization(value)
	}
	var a Authorization
	var haveCred, haveSigned, haveSig bool
	for comp := range strings.SplitSeq(rest, ",") {
		comp = strings.TrimSpace(comp)
		if comp == "" {
			continue
		}
		k, val, ok := strings.Cut(comp, "=")
		if !ok {
			return Authorization{}, headerMalformed(fmt.Sprintf("the authorization component %q is malformed.", comp))
		}
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		switch k {
		case "Credential":
			c, detail := parseCredential(val)
			if detail != "" {
				return Authorization{}, headerMalformed(detail)
			}
			a.Credential, haveCred = c, true
		case "SignedHeaders":
			names, ok := splitSignedHeaders(val)
			if !ok {
				return Authorization{}, headerMalformed(fmt.Sprintf("the authorization component %q is malformed.", comp))
			}
			a.SignedHeaders, haveSigned = names, true
		case "Signature":
			a.Signature, haveSig = val, true
		default:
			return Authorization{}, headerMalformed(fmt.Sprintf("the authorization component %q is malformed.", comp))
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return Authorization{}, headerMalformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	return a, nil
}

// splitSignedHeaders splits "a;b;c" into lower-case names; empty names are
// refused.
func splitSignedHeaders(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	names := strings.Split(strings.ToLower(s), ";")
	for _, n := range names {
		if n == "" {
			return nil, false
		}
	}
	return names, true
}

// PresignedQuery is the parsed authentication part of a SigV4 presigned URL.
type PresignedQuery struct {
	Credential    Credential
	SignedHeaders []string // lower-case, in the order given
	Signature     string
	Date          time.Time
	RawDate       string // X-Amz-Date as given: it is part of the string to sign
	Expires       time.Duration
	RawExpires    string
}

// authQuery holds the authentication parameters of a query string, read in
// one pass without building a url.Values: the presigned-URL path is the
// hot path of the store. First occurrence wins, as with url.Values.Get.
type authQuery struct {
	algorithm, credential, date, expires, signedHeaders, signature string
	contentSHA256                                                  string
	v2AccessKeyID, v2Signature, v2Expires                          string

	hasV4, hasV2 bool // a parameter that asks for V4 / V2 checking is present
}

// scanAuthQuery reads the authentication parameters of a raw query.
func scanAuthQuery(raw string) authQuery {
	var a authQuery
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if len(k) < 7 || !strings.ContainsRune("XxASE%", rune(k[0])) {
			// Cannot be one of ours, even encoded ("%58-Amz-...").
			continue
		}
		k = queryUnescape(k)
		var dst *string
		switch k {
		case amzAlgorithm:
			dst, a.hasV4 = &a.algorithm, true
		case amzCredential:
			dst, a.hasV4 = &a.credential, true
		case amzSignature:
			dst, a.hasV4 = &a.signature, true
		case amzDate:
			dst = &a.date
		case amzExpires:
			dst = &a.expires
		case amzSignedHeaders:
			dst = &a.signedHeaders
		case "AWSAccessKeyId":
			dst, a.hasV2 = &a.v2AccessKeyID, true
		case "Signature":
			dst, a.hasV2 = &a.v2Signature, true
		case "Expires":
			dst = &a.v2Expires
		default:
			// The JavaScript presigner hoists the payload hash into the
			// query, in lower case.
			if strings.EqualFold(k, headerContentSHA256) {
				dst = &a.contentSHA256
			}
		}
		if dst != nil && *dst == "" {
			*dst = queryUnescape(v)
		}
	}
	return a
}

// queryUnescape decodes a query component, leaving it as is when it is not
// valid escaping (url.ParseQuery would drop such a pair; keeping it means
// the credential checks still see something and fail).
func queryUnescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	d, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return d
}

// ParsePresignedQuery reads the X-Amz-* authentication parameters of a
// presigned URL and checks their form (not the signature, not the clock).
// Errors are *s3err.Error with S3's messages.
func ParsePresignedQuery(q url.Values) (PresignedQuery, error) {
	return parsePresigned(authQuery{
		algorithm: q.Get(amzAlgorithm), credential: q.Get(amzCredential), date: q.Get(amzDate),
		expires: q.Get(amzExpires), signedHeaders: q.Get(amzSignedHeaders), signature: q.Get(amzSignature),
	})
}

func parsePresigned(a authQuery) (PresignedQuery, error) {
	alg, cred, date := a.algorithm, a.credential, a.date
	signed, sig, exp := a.signedHeaders, a.signature, a.expires
	if alg == "" || cred == "" || date == "" || signed == "" || sig == "" || exp == "" {
		return PresignedQuery{}, queryMalformed("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
	}
	if alg != algorithmV4 {
		return PresignedQuery{}, queryMalformed(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
	}
	c, detail := parseCredential(cred)
	if detail != "" {
		return PresignedQuery{}, queryMalformed("Error parsing the X-Amz-Credential parameter; " + detail)
	}
	t, ok := parseAmzDate(date)
	if !ok {
		return PresignedQuery{}, queryMalformed(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	switch {
	case err != nil && !isSignedDigits(exp):
		return PresignedQuery{}, queryMalformed("X-Amz-Expires should be a number")
	case strings.HasPrefix(exp, "-"):
		return PresignedQuery{}, queryMalformed("X-Amz-Expires must be non-negative")
	case err != nil || secs > maxPresignExpires:
		return PresignedQuery{}, queryMalformed("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	if detail := credentialDateDetail(c, t); detail != "" {
		return PresignedQuery{}, queryMalformed("Error parsing the X-Amz-Credential parameter; " + detail)
	}
	names, ok := splitSignedHeaders(signed)
	if !ok {
		return PresignedQuery{}, queryMalformed("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
	}
	return PresignedQuery{
		Credential:    c,
		SignedHeaders: names,
		Signature:     sig,
		Date:          t,
		RawDate:       date,
		Expires:       time.Duration(secs) * time.Second,
		RawExpires:    exp,
	}, nil
}

// parseAmzDate reads yyyyMMddTHHmmssZ exactly; hand-written because
// time.Parse is a visible share of verifying a presigned URL.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(4, 2)
	d, ok3 := num(6, 2)
	h, ok4 := num(9, 2)
	mi, ok5 := num(11, 2)
	se, ok6 := num(13, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d { // 31 April and the like
		return time.Time{}, false
	}
	return t, true
}

// isSignedDigits reports an optionally signed run of decimal digits (which
// ParseInt may still refuse for overflow).
func isSignedDigits(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
