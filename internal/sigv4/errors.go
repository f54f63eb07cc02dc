package sigv4

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

// ErrMalformedTrailer is S3's answer to trailing headers of an aws-chunked
// body that are missing, unparsable or not the ones x-amz-trailer declared.
var ErrMalformedTrailer = &s3err.Error{
	Code:    "MalformedTrailerError",
	Status:  400,
	Message: "The request contained trailing data that was not well-formed or did not conform to our published schema.",
}

// errInvalidContentSHA256Value: a value of x-amz-content-sha256 that is well
// formed but not usable for this request.
var errInvalidContentSHA256Value = s3err.InvalidRequest.WithMessage("The value of x-amz-content-sha256 header is invalid.")

// serverTimeFormat is how S3 writes times in error elements.
const serverTimeFormat = "2006-01-02T15:04:05Z"

func formatServerTime(t time.Time) string { return t.UTC().Format(serverTimeFormat) }

func unsupportedAuthorization(value string) *s3err.Error {
	return s3err.InvalidArgument.WithMessage("Unsupported Authorization Type").
		With(s3err.Field{Name: "ArgumentName", Value: "Authorization"},
			s3err.Field{Name: "ArgumentValue", Value: value})
}

func headerMalformed(detail string) *s3err.Error {
	return s3err.AuthorizationHeaderMalformed.WithMessage("The authorization header is malformed; " + detail)
}

func queryMalformed(msg string) *s3err.Error {
	return s3err.AuthorizationQueryParametersError.WithMessage(msg)
}

func missingDate() *s3err.Error {
	return s3err.AccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
}

func tooSkewed(requestTime string, now time.Time, skew time.Duration) *s3err.Error {
	return s3err.RequestTimeTooSkewed.With(
		s3err.Field{Name: "RequestTime", Value: requestTime},
		s3err.Field{Name: "ServerTime", Value: formatServerTime(now)},
		s3err.Field{Name: "MaxAllowedSkewMilliseconds", Value: strconv.FormatInt(skew.Milliseconds(), 10)},
	)
}

func headersNotSigned(names []string) *s3err.Error {
	return s3err.AccessDenied.WithMessage("There were headers present in the request which were not signed").
		With(s3err.Field{Name: "HeadersNotSigned", Value: strings.Join(names, ", ")})
}

// hexBytes writes s as S3 does in StringToSignBytes / CanonicalRequestBytes:
// two lower-case hex digits per byte, separated by spaces.
func hexBytes(s string) string {
	const digits = "0123456789abcdef"
	if s == "" {
		return ""
	}
	b := make([]byte, 0, len(s)*3-1)
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[s[i]>>4], digits[s[i]&0xf])
	}
	return string(b)
}

// signatureMismatchV4 carries what S3 returns so a client can diff its own
// canonical request against ours.
func signatureMismatchV4(accessKeyID, stringToSign, provided, canonicalRequest string) *s3err.Error {
	return s3err.SignatureDoesNotMatch.With(
		s3err.Field{Name: "AWSAccessKeyId", Value: accessKeyID},
		s3err.Field{Name: "StringToSign", Value: stringToSign},
		s3err.Field{Name: "SignatureProvided", Value: provided},
		s3err.Field{Name: "StringToSignBytes", Value: hexBytes(stringToSign)},
		s3err.Field{Name: "CanonicalRequest", Value: canonicalRequest},
		s3err.Field{Name: "CanonicalRequestBytes", Value: hexBytes(canonicalRequest)},
	)
}

func signatureMismatchV2(accessKeyID, stringToSign, provided string) *s3err.Error {
	return s3err.SignatureDoesNotMatch.With(
		s3err.Field{Name: "AWSAccessKeyId", Value: accessKeyID},
		s3err.Field{Name: "StringToSign", Value: stringToSign},
		s3err.Field{Name: "SignatureProvided", Value: provided},
		s3err.Field{Name: "StringToSignBytes", Value: hexBytes(stringToSign)},
	)
}

// parseHTTPDate reads a Date or V2 x-amz-date header: the HTTP formats,
// the numeric-zone RFC 1123 form older S3 clients send, or ISO 8601 basic.
func parseHTTPDate(s string) (time.Time, bool) {
	if t, err := http.ParseTime(s); err == nil {
		return t, true
	}
	for _, layout := range []string{time.RFC1123Z, iso8601Basic} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
