package presign

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxPostSize is the largest object a single POST upload may carry (5 GiB);
// it is the upper bound used when only PostOptions.MinSize is given.
const MaxPostSize int64 = 5 << 30

// filenameVar is replaced by the store with the uploaded file's name.
const filenameVar = "${filename}"

// PostOptions describe a browser-form (POST Object) upload policy.
type PostOptions struct {
	// Expires is how long the policy is valid: DefaultExpires when zero,
	// else between one second and MaxExpires.
	Expires time.Duration
	// Key is the object key the form submits. It may contain ${filename},
	// which the store replaces with the uploaded file's name; the policy
	// then allows any key starting with the part before ${filename}.
	Key string
	// KeyStartsWith allows any key with this prefix. When Key is empty the
	// form's key field defaults to KeyStartsWith + "${filename}". With both
	// empty, any key is allowed.
	KeyStartsWith string
	// ContentType is the form's Content-Type field. It must be sent
	// exactly, unless ContentTypeStartsWith is also set.
	ContentType string
	// ContentTypeStartsWith allows any Content-Type with this prefix
	// (e.g. "image/"). ContentType, if set, is then only the field's
	// default; otherwise the form adds its own Content-Type field.
	ContentTypeStartsWith string
	// MinSize and MaxSize bound the file size in bytes (content-length-range)
	// when either is set; MaxSize 0 then means MaxPostSize.
	MinSize, MaxSize int64
	// SuccessActionStatus (200, 201 or 204) is the status the store answers
	// with when no redirect is given.
	SuccessActionStatus int
	// SuccessActionRedirect is where the browser is sent after the upload.
	SuccessActionRedirect string
	// Metadata becomes x-amz-meta-<name> form fields (names lower-cased),
	// each with an exact-match condition.
	Metadata map[string]string
	// Conditions are extra raw policy conditions, each a JSON object such as
	// map[string]string{"acl": "private"} or an array such as
	// []any{"starts-with", "$Cache-Control", ""}. The caller adds the
	// matching form fields.
	Conditions []any
}

// Post is a signed browser upload: an HTML form posts Fields (in any order)
// followed by the file field (named "file", last) to URL as
// multipart/form-data.
type Post struct {
	URL     string
	Fields  map[string]string
	Expires time.Time
}

// policyDocument is the JSON signed for a POST upload. The field order is
// that of the S3 documentation; the store reads it in any order.
type policyDocument struct {
	Expiration string `json:"expiration"`
	Conditions []any  `json:"conditions"`
}

// PresignPost returns the URL and form fields for a browser upload into
// bucket, signed with a SigV4 POST policy.
func (s *Signer) PresignPost(bucket string, o PostOptions) (Post, error) {
	p, err := s.presignPost(bucket, o)
	if err != nil {
		return Post{}, fmt.Errorf("presign post to %s: %w", bucket, err)
	}
	return p, nil
}

func (s *Signer) presignPost(bucket string, o PostOptions) (Post, error) {
	expires, err := expirySeconds(o.Expires)
	if err != nil {
		return Post{}, err
	}
	if err := s.checkCredentials(); err != nil {
		return Post{}, err
	}
	ep, err := parseEndpoint(s.Endpoint)
	if err != nil {
		return Post{}, err
	}
	host, path, err := ep.locate(bucket, "", s.VirtualHosted)
	if err != nil {
		return Post{}, err
	}
	now := s.now()
	region := s.region()
	credential := s.Credentials.AccessKeyID + "/" + scope(now, region)
	amzDate := now.Format(amzDateFormat)
	expiresAt := now.Add(time.Duration(expires) * time.Second)

	fields := map[string]string{}
	conds := []any{map[string]string{"bucket": bucket}}
	eq := func(field, value string) {
		fields[field] = value
		conds = append(conds, map[string]string{field: value})
	}
	startsWith := func(field, prefix string) {
		conds = append(conds, []any{"starts-with", "$" + field, prefix})
	}

	// Key: an exact match unless ${filename} or a prefix makes it a range.
	if err := checkKey(o.Key); err != nil {
		return Post{}, err
	}
	if err := checkKey(o.KeyStartsWith); err != nil {
		return Post{}, err
	}
	switch {
	case o.Key != "" && o.KeyStartsWith != "":
		if !strings.HasPrefix(o.Key, o.KeyStartsWith) {
			return Post{}, fmt.Errorf("key %q does not start with %q", o.Key, o.KeyStartsWith)
		}
		fields["key"] = o.Key
		startsWith("key", o.KeyStartsWith)
	case o.Key != "":
		if i := strings.Index(o.Key, filenameVar); i >= 0 {
			fields["key"] = o.Key
			startsWith("key", o.Key[:i])
		} else {
			eq("key", o.Key)
		}
	default:
		fields["key"] = o.KeyStartsWith + filenameVar
		startsWith("key", o.KeyStartsWith)
	}

	if o.ContentType != "" && o.ContentTypeStartsWith != "" &&
		!strings.HasPrefix(o.ContentType, o.ContentTypeStartsWith) {
		return Post{}, fmt.Errorf("content type %q does not start with %q", o.ContentType, o.ContentTypeStartsWith)
	}
	switch {
	case o.ContentTypeStartsWith != "":
		if o.ContentType != "" {
			fields["Content-Type"] = o.ContentType
		}
		startsWith("Content-Type", o.ContentTypeStartsWith)
	case o.ContentType != "":
		eq("Content-Type", o.ContentType)
	}

	if o.MinSize < 0 || o.MaxSize < 0 {
		return Post{}, errors.New("sizes must not be negative")
	}
	if o.MinSize > 0 || o.MaxSize > 0 {
		maxSize := o.MaxSize
		if maxSize == 0 {
			maxSize = MaxPostSize
		}
		if o.MinSize > maxSize {
			return Post{}, fmt.Errorf("minimum size %d is above maximum size %d", o.MinSize, maxSize)
		}
		conds = append(conds, []any{"content-length-range", o.MinSize, maxSize})
	}

	switch o.SuccessActionStatus {
	case 0:
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		eq("success_action_status", strconv.Itoa(o.SuccessActionStatus))
	default:
		return Post{}, fmt.Errorf("success action status %d is not 200, 201 or 204", o.SuccessActionStatus)
	}
	if o.SuccessActionRedirect != "" {
		eq("success_action_redirect", o.SuccessActionRedirect)
	}

	// Sorted so that the same options always give the same policy.
	names := make([]string, 0, len(o.Metadata))
	for name := range o.Metadata {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	for _, name := range names {
		value := o.Metadata[name]
		field := "x-amz-meta-" + strings.ToLower(name)
		if name == "" || !validHeaderName(field) {
			return Post{}, fmt.Errorf("metadata name %q is not a valid HTTP token", name)
		}
		if !validHeaderValue(value) {
			return Post{}, fmt.Errorf("metadata %s: value contains a control character", name)
		}
		if _, dup := fields[field]; dup {
			return Post{}, fmt.Errorf("metadata %q is given twice", field)
		}
		eq(field, value)
	}

	for i, c := range o.Conditions {
		raw, err := json.Marshal(c)
		if err != nil {
			return Post{}, fmt.Errorf("condition %d: %w", i, err)
		}
		// S3 accepts only JSON objects and arrays as conditions; a string or
		// number would make the whole policy unusable at upload time.
		if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
			return Post{}, fmt.Errorf("condition %d is %s, want a JSON object or array", i, raw)
		}
		conds = append(conds, json.RawMessage(raw))
	}

	eq("x-amz-algorithm", algorithm)
	eq("x-amz-credential", credential)
	eq("x-amz-date", amzDate)
	if s.Credentials.SessionToken != "" {
		eq("x-amz-security-token", s.Credentials.SessionToken)
	}

	policy, err := marshalPolicy(policyDocument{
		Expiration: expiresAt.Format("2006-01-02T15:04:05.000Z"),
		Conditions: conds,
	})
	if err != nil {
		return Post{}, err
	}
	encoded := base64.StdEncoding.EncodeToString(policy)
	fields["policy"] = encoded
	fields["x-amz-signature"] = sign(s.Credentials.SecretAccessKey, now, region, encoded)

	return Post{
		URL:     ep.scheme + "://" + host + path,
		Fields:  fields,
		Expires: expiresAt,
	}, nil
}

// marshalPolicy encodes the policy without HTML escaping: the document is
// signed as bytes, and "<" staying "<" keeps it readable once decoded.
func marshalPolicy(p policyDocument) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
