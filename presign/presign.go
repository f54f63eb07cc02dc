// Package presign mints presigned URLs (AWS Signature Version 4, query-string
// authentication) and browser POST policies for an S3-compatible store such
// as nfyio storage.
//
// An application server holding an access key uses a Signer to hand a
// browser, phone or partner a time-limited URL (or HTML form fields) that
// lets it GET, PUT, HEAD or DELETE one object directly against the store,
// without ever seeing the secret. The package uses only the standard library,
// so a server can mint URLs without linking an S3 SDK.
//
// The URLs are the same as those produced by the AWS SDKs for the same inputs
// (payload UNSIGNED-PAYLOAD, host always signed, S3 key path encoding), so
// any S3 implementation accepts them.
//
//	s := &presign.Signer{
//		Endpoint:    "https://storage.example.com",
//		Region:      "us-east-1",
//		Credentials: presign.Credentials{AccessKeyID: id, SecretAccessKey: secret},
//	}
//	u, err := s.Presign("photos", "2024/cat.jpg", presign.Options{
//		Method:      http.MethodPut,
//		Expires:     15 * time.Minute,
//		ContentType: "image/jpeg",
//	})
//	// hand u.URL and u.Headers to the uploader
//
// # Addressing
//
// URLs are path-style (https://host/bucket/key) unless Signer.VirtualHosted
// is set. Even then, as the AWS SDKs do, a bucket is put in the host name
// only when it is a DNS name (3-63 of a-z, 0-9, '-', '.'), the endpoint
// host is not an IP address, and, over https, the bucket has no dot (a
// wildcard certificate covers one label only); otherwise the URL is
// path-style.
//
// # Keys
//
// Keys are encoded byte by byte: everything except A-Z a-z 0-9 - _ . ~ and
// the '/' separators is percent-encoded, and nothing is normalised, so
// "a/../b", "dir/" and "x//y" name the objects they say. Note that
// browsers resolve "." and ".." path segments before sending a request, so a
// URL for such a key only works from non-browser clients.
package presign

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults and limits.
const (
	// DefaultRegion is used when Signer.Region is empty.
	DefaultRegion = "us-east-1"
	// DefaultExpires is used when Options.Expires or PostOptions.Expires is zero.
	DefaultExpires = time.Hour
	// MaxExpires is the longest validity SigV4 allows for a presigned URL.
	MaxExpires = 7 * 24 * time.Hour
	// OnceParam is the signed query parameter that makes a URL single-use:
	// the server records its token on first use and refuses it afterwards.
	OnceParam = "X-Nfyio-Once"
	// MaxKeyLength is S3's limit on the UTF-8 length of an object key.
	MaxKeyLength = 1024
	// MaxPartNumber is the highest part number of a multipart upload.
	MaxPartNumber = 10000
)

// Credentials are an access key pair. SessionToken is set only for
// temporary credentials; it is carried in the URL as X-Amz-Security-Token.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Signer mints presigned URLs and POST policies for one endpoint and key.
// Its methods do not modify it, so one Signer may be shared by goroutines.
type Signer struct {
	// Endpoint is the store's base URL as clients will reach it, e.g.
	// http://127.0.0.1:9000 or https://storage.example.com. A path suffix
	// (https://example.com/s3) is kept in front of the bucket.
	Endpoint string
	// Region is the signing region; DefaultRegion when empty.
	Region      string
	Credentials Credentials
	// VirtualHosted addresses the bucket as a host name (bucket.host/key)
	// instead of a path (host/bucket/key) when the bucket and endpoint allow
	// it; see the package documentation.
	VirtualHosted bool
	// Now returns the signing time; time.Now when nil. Tests fix it.
	Now func() time.Time

	// rand is the source of one-time tokens; crypto/rand when nil. Only the
	// package's tests replace it, so that outputs are reproducible.
	rand io.Reader
}

// Options describe one presigned request. The zero value presigns a GET valid
// for DefaultExpires.
type Options struct {
	// Method is GET (default), PUT, HEAD, DELETE or POST (the latter for
	// multipart create/complete).
	Method string
	// Expires is how long the URL is valid: DefaultExpires when zero, else
	// between one second and MaxExpires, counted in whole seconds.
	Expires time.Duration

	// ContentType, when set on a PUT or POST, is signed: the client must send
	// exactly this Content-Type.
	ContentType string
	// ContentLength, when > 0 on a PUT or POST, is signed: the client must
	// send exactly this many bytes.
	ContentLength int64
	// ContentMD5 (base64 of the 16-byte MD5), when set on a PUT or POST, is
	// signed; the store then also checks the body against it.
	ContentMD5 string
	// Metadata becomes signed x-amz-meta-<name> headers (names lower-cased)
	// that the client must send.
	Metadata map[string]string

	// Response* override the response headers of a GET or HEAD; they are
	// signed query parameters (response-content-type, ...).
	ResponseContentType        string
	ResponseContentDisposition string
	ResponseCacheControl       string
	ResponseContentLanguage    string
	ResponseContentEncoding    string
	ResponseExpires            string

	// Query holds extra signed query parameters, e.g. versionId, or
	// partNumber and uploadId (see PresignUploadPart). X-Amz-* names are
	// reserved.
	Query url.Values
	// Once makes the URL single-use: a random 128-bit token is added as the
	// signed OnceParam query parameter.
	Once bool
	// Headers are any other request headers to sign (x-amz-acl,
	// x-amz-checksum-sha256, If-Match, ...). The client must send them.
	Headers http.Header
}

// URL is a presigned request.
type URL struct {
	// URL is the full presigned URL.
	URL string
	// Method is the HTTP method the URL is signed for.
	Method string
	// Headers are the signed headers, other than Host, that the client must
	// send with exactly these values. Empty for a plain GET.
	Headers http.Header
	// Expires is when the URL stops being accepted.
	Expires time.Time
}

// responseOverrides maps the query parameter to the Options field it reads.
var responseOverrides = []struct {
	param string
	get   func(*Options) string
}{
	{"response-cache-control", func(o *Options) string { return o.ResponseCacheControl }},
	{"response-content-disposition", func(o *Options) string { return o.ResponseContentDisposition }},
	{"response-content-encoding", func(o *Options) string { return o.ResponseContentEncoding }},
	{"response-content-language", func(o *Options) string { return o.ResponseContentLanguage }},
	{"response-content-type", func(o *Options) string { return o.ResponseContentType }},
	{"response-expires", func(o *Options) string { return o.ResponseExpires }},
}

// reservedQuery are parameters the signer sets itself; accepting them from
// Options.Query would produce URLs with two conflicting values.
var reservedQuery = []string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", OnceParam,
}

// Presign returns a presigned URL for one object (or, with an empty key, for
// the bucket itself, e.g. a listing).
func (s *Signer) Presign(bucket, key string, o Options) (URL, error) {
	u, err := s.presign(bucket, key, o)
	if err != nil {
		return URL{}, fmt.Errorf("presign %s/%s: %w", bucket, key, err)
	}
	return u, nil
}

// PresignUploadPart returns a presigned PUT for part number part (1..10000)
// of the multipart upload uploadID. o.Method must be empty or PUT.
func (s *Signer) PresignUploadPart(bucket, key, uploadID string, part int, o Options) (URL, error) {
	wrap := func(err error) error {
		return fmt.Errorf("presign upload part %d of %s/%s: %w", part, bucket, key, err)
	}
	if uploadID == "" {
		return URL{}, wrap(errors.New("upload id is empty"))
	}
	if part < 1 || part > MaxPartNumber {
		return URL{}, wrap(fmt.Errorf("part number must be between 1 and %d", MaxPartNumber))
	}
	if o.Method != "" && !strings.EqualFold(o.Method, http.MethodPut) {
		return URL{}, wrap(fmt.Errorf("method %q: parts are uploaded with PUT", o.Method))
	}
	o.Method = http.MethodPut
	q := url.Values{}
	for k, v := range o.Query {
		if strings.EqualFold(k, "partNumber") || strings.EqualFold(k, "uploadId") {
			return URL{}, wrap(fmt.Errorf("query parameter %q is set by PresignUploadPart", k))
		}
		q[k] = v
	}
	q.Set("partNumber", strconv.Itoa(part))
	q.Set("uploadId", uploadID)
	o.Query = q
	u, err := s.presign(bucket, key, o)
	if err != nil {
		return URL{}, wrap(err)
	}
	return u, nil
}

func (s *Signer) presign(bucket, key string, o Options) (URL, error) {
	method := strings.ToUpper(o.Method)
	switch method {
	case "":
		method = http.MethodGet
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPost:
	default:
		return URL{}, fmt.Errorf("method %q is not one of GET, HEAD, PUT, DELETE, POST", o.Method)
	}
	expires, err := expirySeconds(o.Expires)
	if err != nil {
		return URL{}, err
	}
	if err := s.checkCredentials(); err != nil {
		return URL{}, err
	}
	if err := checkKey(key); err != nil {
		return URL{}, err
	}
	ep, err := parseEndpoint(s.Endpoint)
	if err != nil {
		return URL{}, err
	}
	host, path, err := ep.locate(bucket, key, s.VirtualHosted)
	if err != nil {
		return URL{}, err
	}
	headers, err := o.signedHeaders(method)
	if err != nil {
		return URL{}, err
	}
	params, err := o.queryParams(method)
	if err != nil {
		return URL{}, err
	}
	if o.Once {
		token, err := s.onceToken()
		if err != nil {
			return URL{}, err
		}
		params = append(params, queryParam{OnceParam, token})
	}

	now := s.now()
	region := s.region()
	names := make([]string, 0, len(headers)+1)
	names = append(names, "host")
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	signedHeaders := strings.Join(names, ";")

	params = append(params,
		queryParam{"X-Amz-Algorithm", algorithm},
		queryParam{"X-Amz-Credential", s.Credentials.AccessKeyID + "/" + scope(now, region)},
		queryParam{"X-Amz-Date", now.Format(amzDateFormat)},
		queryParam{"X-Amz-Expires", strconv.FormatInt(expires, 10)},
		queryParam{"X-Amz-SignedHeaders", signedHeaders},
	)
	if s.Credentials.SessionToken != "" {
		params = append(params, queryParam{"X-Amz-Security-Token", s.Credentials.SessionToken})
	}
	query := canonicalQuery(params)

	var canon strings.Builder
	canon.WriteString(method)
	canon.WriteByte('\n')
	canon.WriteString(path)
	canon.WriteByte('\n')
	canon.WriteString(query)
	canon.WriteByte('\n')
	for _, name := range names {
		canon.WriteString(name)
		canon.WriteByte(':')
		if name == "host" {
			canon.WriteString(host)
		} else {
			vals := headers[name]
			for i, v := range vals {
				if i > 0 {
					canon.WriteByte(',')
				}
				canon.WriteString(canonicalHeaderValue(v))
			}
		}
		canon.WriteByte('\n')
	}
	canon.WriteByte('\n')
	canon.WriteString(signedHeaders)
	canon.WriteByte('\n')
	// A signed x-amz-content-sha256 header names the payload hash the
	// request is signed over, as S3 reads it; otherwise the body is unsigned.
	payload := unsignedPayload
	if v := headers["x-amz-content-sha256"]; len(v) == 1 {
		payload = v[0]
	}
	canon.WriteString(payload)

	sig := sign(s.Credentials.SecretAccessKey, now, region, stringToSign(now, region, canon.String()))

	out := URL{
		URL:     ep.scheme + "://" + host + path + "?" + query + "&X-Amz-Signature=" + sig,
		Method:  method,
		Headers: make(http.Header, len(headers)),
		Expires: now.Add(time.Duration(expires) * time.Second),
	}
	for name, vals := range headers {
		out.Headers[http.CanonicalHeaderKey(name)] = append([]string(nil), vals...)
	}
	return out, nil
}

// signedHeaders collects the headers to sign, keyed by lower-case name.
func (o *Options) signedHeaders(method string) (map[string][]string, error) {
	h := map[string][]string{}
	add := func(name, value string) error {
		lname := strings.ToLower(name)
		if !validHeaderName(lname) {
			return fmt.Errorf("header name %q is not a valid HTTP token", name)
		}
		switch lname {
		case "host", "authorization":
			return fmt.Errorf("header %q cannot be presigned", name)
		}
		if !validHeaderValue(value) {
			return fmt.Errorf("header %s: value contains a control character", name)
		}
		if _, dup := h[lname]; dup {
			return fmt.Errorf("header %q is given twice", lname)
		}
		h[lname] = []string{value}
		return nil
	}
	withBody := method == http.MethodPut || method == http.MethodPost
	if o.ContentType != "" || o.ContentLength != 0 || o.ContentMD5 != "" {
		if !withBody {
			return nil, fmt.Errorf("content type, length and MD5 apply to PUT and POST, not %s", method)
		}
	}
	if o.ContentType != "" {
		if err := add("content-type", o.ContentType); err != nil {
			return nil, err
		}
	}
	if o.ContentLength < 0 {
		return nil, fmt.Errorf("content length %d is negative", o.ContentLength)
	}
	if o.ContentLength > 0 {
		if err := add("content-length", strconv.FormatInt(o.ContentLength, 10)); err != nil {
			return nil, err
		}
	}
	if o.ContentMD5 != "" {
		if sum, err := base64.StdEncoding.DecodeString(o.ContentMD5); err != nil || len(sum) != 16 {
			return nil, fmt.Errorf("content MD5 %q is not the base64 of 16 bytes", o.ContentMD5)
		}
		if err := add("content-md5", o.ContentMD5); err != nil {
			return nil, err
		}
	}
	for name, value := range o.Metadata {
		if name == "" {
			return nil, errors.New("metadata name is empty")
		}
		if err := add("x-amz-meta-"+name, value); err != nil {
			return nil, err
		}
	}
	for name, values := range o.Headers {
		if len(values) == 0 {
			continue
		}
		if err := add(name, values[0]); err != nil {
			return nil, err
		}
		for _, v := range values[1:] {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("header %s: value contains a control character", name)
			}
		}
		h[strings.ToLower(name)] = append([]string(nil), values...)
	}
	return h, nil
}

// queryParams collects the caller's signed query parameters.
func (o *Options) queryParams(method string) ([]queryParam, error) {
	var params []queryParam
	seen := map[string]bool{}
	for name, values := range o.Query {
		for _, r := range reservedQuery {
			if strings.EqualFold(name, r) {
				return nil, fmt.Errorf("query parameter %q is set by the signer", name)
			}
		}
		seen[strings.ToLower(name)] = true
		for _, v := range values {
			params = append(params, queryParam{name, v})
		}
	}
	for _, ro := range responseOverrides {
		v := ro.get(o)
		if v == "" {
			continue
		}
		if method != http.MethodGet && method != http.MethodHead {
			return nil, fmt.Errorf("%s applies to GET and HEAD, not %s", ro.param, method)
		}
		if seen[ro.param] {
			return nil, fmt.Errorf("%s is given both as an option and in Query", ro.param)
		}
		params = append(params, queryParam{ro.param, v})
	}
	return params, nil
}

func (s *Signer) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	// X-Amz-Date has whole seconds; the expiry is computed from the same
	// truncated instant so that URL.Expires matches what the server computes.
	return now().UTC().Truncate(time.Second)
}

func (s *Signer) region() string {
	if s.Region == "" {
		return DefaultRegion
	}
	return s.Region
}

func (s *Signer) checkCredentials() error {
	c := s.Credentials
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return errors.New("credentials: access key id and secret access key are required")
	}
	// The access key id is the first field of the slash-separated credential
	// scope; a slash or space in it would make the scope unparseable.
	if strings.ContainsAny(c.AccessKeyID, "/ \t\r\n") {
		return errors.New("credentials: access key id contains '/' or white space")
	}
	if strings.ContainsAny(s.region(), "/ \t\r\n") {
		return fmt.Errorf("region %q contains '/' or white space", s.region())
	}
	return nil
}

func (s *Signer) onceToken() (string, error) {
	r := s.rand
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("one-time token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// expirySeconds validates a validity period and returns it in whole seconds.
func expirySeconds(d time.Duration) (int64, error) {
	if d == 0 {
		d = DefaultExpires
	}
	if d < time.Second || d > MaxExpires {
		return 0, fmt.Errorf("expiry %v is outside 1s..%v", d, MaxExpires)
	}
	return int64(d / time.Second), nil
}

func checkKey(key string) error {
	if len(key) > MaxKeyLength {
		return fmt.Errorf("key is %d bytes long, the limit is %d", len(key), MaxKeyLength)
	}
	if !utf8.ValidString(key) {
		return errors.New("key is not valid UTF-8")
	}
	return nil
}

// endpoint is a parsed Signer.Endpoint.
type endpoint struct {
	scheme   string
	host     string // as signed and sent: default port dropped
	hostname string // without port
	port     string // "" for the scheme's default
	basePath string // escaped, no trailing '/'
}

func parseEndpoint(raw string) (endpoint, error) {
	if raw == "" {
		return endpoint{}, errors.New("endpoint is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("endpoint: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return endpoint{}, fmt.Errorf("endpoint %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("endpoint %q: want scheme://host[:port][/path] only", raw)
	}
	ep := endpoint{scheme: scheme, hostname: strings.ToLower(u.Hostname()), port: u.Port()}
	// Browsers and HTTP clients leave the default port out of the Host
	// header, so it must be left out of the signed host too.
	if (scheme == "http" && ep.port == "80") || (scheme == "https" && ep.port == "443") {
		ep.port = ""
	}
	ep.host = joinHostPort(ep.hostname, ep.port)
	ep.basePath = strings.TrimRight(u.EscapedPath(), "/")
	return ep, nil
}

func joinHostPort(hostname, port string) string {
	if port == "" {
		if strings.Contains(hostname, ":") {
			return "[" + hostname + "]"
		}
		return hostname
	}
	return net.JoinHostPort(hostname, port)
}

// locate returns the host and the escaped request path of an object.
func (ep endpoint) locate(bucket, key string, virtualHosted bool) (host, path string, err error) {
	if bucket == "" {
		return "", "", errors.New("bucket name is empty")
	}
	if strings.ContainsAny(bucket, "/?#") || !utf8.ValidString(bucket) {
		return "", "", fmt.Errorf("bucket name %q is not valid", bucket)
	}
	if virtualHosted && ep.virtualHostable(bucket) {
		return joinHostPort(bucket+"."+ep.hostname, ep.port), ep.basePath + "/" + uriEncode(key, true), nil
	}
	path = ep.basePath + "/" + uriEncode(bucket, false)
	if key != "" {
		path += "/" + uriEncode(key, true)
	}
	return ep.host, path, nil
}

// virtualHostable reports whether bucket can be addressed as a host name on
// this endpoint. Like the AWS SDKs, the signer falls back to path-style
// otherwise: for a bucket that is not a DNS name, for an IP-address
// endpoint, and for a dotted bucket over https, whose host name a wildcard
// certificate cannot cover.
func (ep endpoint) virtualHostable(bucket string) bool {
	if !dnsCompatible(bucket) || net.ParseIP(ep.hostname) != nil {
		return false
	}
	return ep.scheme == "http" || !strings.Contains(bucket, ".")
}

// dnsCompatible reports whether bucket can be the first label(s) of a host:
// 3..63 of lower-case letters, digits, '-' and '.', starting and ending with
// a letter or digit, no empty label.
func dnsCompatible(bucket string) bool {
	if len(bucket) < 3 || len(bucket) > 63 {
		return false
	}
	for _, label := range strings.Split(bucket, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters (other than tab), which would
// split or corrupt the header on the wire.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
