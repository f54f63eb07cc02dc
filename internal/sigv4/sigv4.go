// Package sigv4 authenticates S3 requests: AWS Signature Version 4 in the
// Authorization header or in a presigned query string, Signature Version 2
// (presigned query and the "AWS AK:sig" header that s3cmd still sends), and
// the signed policy of browser form uploads (POST policy).
//
// Verify looks at the request line and headers only; Body then wraps the
// request body so that whatever the signature promised about the payload
// (a SHA-256, per-chunk signatures of an aws-chunked body, a signed trailer)
// is checked while the body streams, with any failure reported by Read before
// io.EOF. A caller that commits an upload only after a clean io.EOF therefore
// never commits a body the signature does not cover.
//
// Every error a client should see is an *s3err.Error carrying the code,
// message and extra elements S3 itself returns.
package sigv4

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

// SecretLookup returns the secret of an access key. For an unknown or
// unusable key it returns an error; if that error is an *s3err.Error it is
// returned to the client as is, otherwise Verify returns
// s3err.InvalidAccessKeyID.
type SecretLookup func(ctx context.Context, accessKeyID string) (secret string, err error)

// Options tune a Verifier. The zero value is usable.
type Options struct {
	Now     func() time.Time // default time.Now
	MaxSkew time.Duration    // default 15 * time.Minute
	// Host returns the host (host[:port]) to use as the canonical "host"
	// header value; default r.Host. The server uses it for --public-url /
	// trusted X-Forwarded-Host.
	Host func(r *http.Request) string
	// AltHost, when set, returns a second host a client may have signed
	// for: the public URL's host, when the store is also reached at
	// another address (an internal one, or through a proxy that rewrites
	// Host). A SigV4 signature that does not match Host is checked for it
	// before it is refused; both name this store. "" means none.
	AltHost func(r *http.Request) string
	// VirtualHostBucket returns the bucket named by the Host header when the
	// request uses virtual-hosted-style addressing, "" for path-style. Only
	// Signature Version 2 needs it: its string to sign names the bucket even
	// when the path does not. Default: always "".
	VirtualHostBucket func(r *http.Request) string
	// KeyCacheSize bounds the number of derived signing keys kept (the cache
	// holds up to twice this many); default 4096.
	KeyCacheSize int
}

// Kind says how a request was authenticated.
type Kind int

// The ways a request can be authenticated.
const (
	Anonymous Kind = iota
	HeaderV4
	PresignedV4
	PresignedV2
	HeaderV2
	PostPolicyV4
	PostPolicyV2
)

// String returns a short name for logs and metrics labels.
func (k Kind) String() string {
	switch k {
	case Anonymous:
		return "anonymous"
	case HeaderV4:
		return "header"
	case PresignedV4:
		return "presigned"
	case PresignedV2:
		return "presigned-v2"
	case HeaderV2:
		return "header-v2"
	case PostPolicyV4:
		return "post-policy"
	case PostPolicyV2:
		return "post-policy-v2"
	}
	return "unknown"
}

// PayloadMode says what the signature promises about the request body.
type PayloadMode int

// Payload modes, from the x-amz-content-sha256 value the request was signed
// with.
const (
	// PayloadNone: the signature says nothing about the body (anonymous
	// requests without x-amz-content-sha256, Signature Version 2, POST policy).
	PayloadNone PayloadMode = iota
	// PayloadSHA256: the hex SHA-256 of the body was signed; Body verifies it.
	PayloadSHA256
	// PayloadUnsigned: UNSIGNED-PAYLOAD, or a presigned URL that names no hash.
	PayloadUnsigned
	// PayloadStreamingSigned: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, an
	// aws-chunked body whose every chunk is signed.
	PayloadStreamingSigned
	// PayloadStreamingUnsignedTrailer: STREAMING-UNSIGNED-PAYLOAD-TRAILER, an
	// aws-chunked body without chunk signatures, followed by trailing headers
	// (usually a checksum).
	PayloadStreamingUnsignedTrailer
	// PayloadStreamingSignedTrailer: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER,
	// signed chunks followed by trailing headers with their own signature.
	PayloadStreamingSignedTrailer
)

// String returns the x-amz-content-sha256 spelling of the mode, or a short
// name for the modes that have none.
func (m PayloadMode) String() string {
	switch m {
	case PayloadNone:
		return "none"
	case PayloadSHA256:
		return "sha256"
	case PayloadUnsigned:
		return unsignedPayload
	case PayloadStreamingSigned:
		return streamingSigned
	case PayloadStreamingUnsignedTrailer:
		return streamingUnsignedTrailer
	case PayloadStreamingSignedTrailer:
		return streamingSignedTrailer
	}
	return "unknown"
}

// Chunked reports whether the body is aws-chunked encoded.
func (m PayloadMode) Chunked() bool {
	return m == PayloadStreamingSigned || m == PayloadStreamingUnsignedTrailer || m == PayloadStreamingSignedTrailer
}

// Auth is the outcome of a successful verification.
type Auth struct {
	Kind          Kind
	AccessKeyID   string        // empty for Anonymous
	Region        string        // region from the credential scope (any region accepted)
	Date          time.Time     // X-Amz-Date / Date
	SignedHeaders []string      // lower-case, as signed
	ExpiresIn     time.Duration // presigned only: X-Amz-Expires (v4), or Expires-now (v2)
	Expires       time.Time     // presigned only: when the URL stops working
	Payload       PayloadMode

	// What Body needs to check the payload.
	contentSHA256 string      // lower-case hex, PayloadSHA256 only
	signingKey    *derivedKey // streaming signed modes
	seedSignature string      // the request signature: first "previous signature" of the chunk chain
	amzDate       string      // yyyyMMddTHHmmssZ as in the string to sign
	scope         string      // date/region/s3/aws4_request
}

// Verifier checks request signatures. It is safe for concurrent use.
type Verifier struct {
	lookup SecretLookup
	now    func() time.Time
	skew   time.Duration
	host   func(r *http.Request) string
	alt    func(r *http.Request) string
	vhost  func(r *http.Request) string
	keys   *keyCache
}

// NewVerifier returns a Verifier that finds secrets with lookup.
func NewVerifier(lookup SecretLookup, opts Options) *Verifier {
	v := &Verifier{
		lookup: lookup,
		now:    opts.Now,
		skew:   opts.MaxSkew,
		host:   opts.Host,
		alt:    opts.AltHost,
		vhost:  opts.VirtualHostBucket,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew <= 0 {
		v.skew = 15 * time.Minute
	}
	if v.host == nil {
		v.host = func(r *http.Request) string { return r.Host }
	}
	if v.vhost == nil {
		v.vhost = func(*http.Request) string { return "" }
	}
	size := opts.KeyCacheSize
	if size <= 0 {
		size = 4096
	}
	v.keys = newKeyCache(size)
	return v
}

// Verify authenticates r without reading its body. Anonymous requests (no
// Authorization header, no X-Amz-Credential / X-Amz-Signature /
// X-Amz-Algorithm / AWSAccessKeyId / Signature query parameter) return Kind
// Anonymous and a nil error; the caller decides whether anonymous is allowed.
// Any credential present anywhere means it is checked.
//
// r must be the request as received: the path, query and headers are part of
// what was signed.
func (v *Verifier) Verify(r *http.Request) (*Auth, error) {
	authz, hasAuthz := r.Header["Authorization"]
	q := scanAuthQuery(r.URL.RawQuery)
	presignV4, presignV2 := q.hasV4, q.hasV2

	if hasAuthz && (presignV4 || presignV2) {
		return nil, s3err.InvalidArgument.WithMessage(
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified").
			With(s3err.Field{Name: "ArgumentName", Value: "Authorization"},
				s3err.Field{Name: "ArgumentValue", Value: strings.Join(authz, ",")})
	}
	switch {
	case hasAuthz:
		value := strings.Join(authz, ",")
		switch {
		case strings.HasPrefix(value, algorithmV4):
			return v.verifyHeaderV4(r, value)
		case strings.HasPrefix(value, "AWS "):
			return v.verifyHeaderV2(r, value)
		}
		return nil, unsupportedAuthorization(value)
	case presignV4:
		return v.verifyPresignedV4(r, q)
	case presignV2:
		return v.verifyPresignedV2(r, q)
	}
	return anonymous(r)
}

// anonymous honours an x-amz-content-sha256 header on an unauthenticated
// request: a hash given is still checked, and an unsigned aws-chunked body is
// still decoded.
func anonymous(r *http.Request) (*Auth, error) {
	a := &Auth{Kind: Anonymous}
	declared := r.Header.Get(headerContentSHA256)
	if declared == "" {
		return a, nil
	}
	mode, err := parsePayloadMode(declared)
	if err != nil {
		return nil, err
	}
	if mode == PayloadStreamingSigned || mode == PayloadStreamingSignedTrailer {
		// Chunk signatures chain from a request signature that an anonymous
		// request does not have.
		return nil, errInvalidContentSHA256Value
	}
	a.Payload = mode
	if mode == PayloadSHA256 {
		a.contentSHA256 = strings.ToLower(declared)
	}
	return a, nil
}

// lookupSecret maps lookup failures to what the client sees.
func (v *Verifier) lookupSecret(ctx context.Context, accessKeyID string) (string, error) {
	if v.lookup == nil {
		return "", s3err.InvalidAccessKeyID
	}
	secret, err := v.lookup(ctx, accessKeyID)
	if err != nil {
		var se *s3err.Error
		if errors.As(err, &se) {
			return "", err
		}
		return "", s3err.InvalidAccessKeyID.With(s3err.Field{Name: "AWSAccessKeyId", Value: accessKeyID}).Wrap(err)
	}
	return secret, nil
}

// Payload is a request body as the signature describes it.
type Payload interface {
	io.Reader
	// Length is the decoded content length: Content-Length, or
	// x-amz-decoded-content-length for aws-chunked bodies; -1 when unknown.
	Length() int64
	// Trailer returns the trailing headers (e.g. x-amz-checksum-crc32) once
	// Read returned io.EOF; nil otherwise.
	Trailer() http.Header
}
