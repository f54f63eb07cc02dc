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
}

// Scope is the credential scope "YYYYMMDD/region/service/aws4_request".
func (c Credential) Scope() string {
	return c.Date + "/" + c.Region + "/" + c.Service + "/" + terminator
}

// parseCredential splits a credential. The access key is everything before
// the last four components, so a key containing '/' still parses. On failure
// it returns the detail S3 puts after its message prefix.
func parseCredential(s string) (Credential, string) {
	malformed := "the Credential is mal-formed; expecting " + credentialShape + "."
	parts := strings.Split(s, "/")
	n := len(parts)
	if n < 5 {
		return Credential{}, malformed
	}
	c := Credential{
		AccessKeyID: strings.Join(parts[:n-4], "/"),
		Date:        parts[n-4],
		Region:      parts[n-3],
		Service:     parts[n-2],
	}
	if c.AccessKeyID == "" || c.Date == "" || c.Region == "" {
		return Credential{}, malformed
	}
	if c.Service != serviceS3 {
		return Credential{}, fmt.Sprintf("incorrect service %q. This endpoint belongs to %q.", c.Service, serviceS3)
	}
	if parts[n-1] != terminator {
		return Credential{}, fmt.Sprintf("incorrect terminal %q. This endpoint uses %q.", parts[n-1], terminator)
	}
	return c, ""
}

// credentialDateDetail checks that the credential is for the request's day.
func credentialDateDetail(c Credential, t time.Time) string {
	day := t.UTC().Format("20060102")
	if c.Date == day {
		return ""
	}
	return fmt.Sprintf("Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", c.Date, day)
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

// ParsePresignedQuery reads the X-Amz-* authentication parameters of a
// presigned URL and checks their form (not the signature, not the clock).
// Errors are *s3err.Error with S3's messages.
func ParsePresignedQuery(q url.Values) (PresignedQuery, error) {
	alg, cred, date := q.Get(amzAlgorithm), q.Get(amzCredential), q.Get(amzDate)
	signed, sig, exp := q.Get(amzSignedHeaders), q.Get(amzSignature), q.Get(amzExpires)
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
	t, err := time.Parse(iso8601Basic, date)
	if err != nil {
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
