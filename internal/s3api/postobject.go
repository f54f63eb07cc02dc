package s3api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/sigv4"
	"nfyio.dev/storage/internal/storage"
)

// POST Object: a browser form upload authenticated by a signed policy
// document. The form is read as a stream: fields up to the file part, whose
// bytes go straight into storage; fields after the file are ignored, as S3
// ignores them.

func init() {
	extraHandlers["PostObject"] = (*Server).postObject
}

const (
	// maxPostPreData is S3's limit on the fields before the file.
	maxPostPreData = 20480
	// maxPostPreDataRaw bounds every byte read before the file part
	// (boundaries and part headers included), so the form costs bounded
	// memory whatever it holds.
	maxPostPreDataRaw = 64 << 10
	filenameVar       = "${filename}"
	// entityTooLargeDrain: after a file exceeds its limit, up to this many
	// more bytes are read to report the proposed size and leave the
	// connection readable for the answer.
	entityTooLargeDrain = 4 << 20
)

var (
	errPostPreData = (&s3err.Error{Code: "MaxPostPreDataLengthExceeded", Status: http.StatusBadRequest,
		Message: "Your POST request fields preceeding the upload file was too large."}).
		With(s3err.Field{Name: "MaxPostPreDataLengthBytes", Value: strconv.Itoa(maxPostPreData)})
	errInvalidPolicy = &s3err.Error{Code: "InvalidPolicyDocument", Status: http.StatusBadRequest, Message: "Invalid Policy: Invalid JSON."}
)

func policyInvalid(msg string) *s3err.Error {
	return errInvalidPolicy.WithMessage("Invalid Policy: " + msg)
}

func postArgument(msg, name, value string) *s3err.Error {
	return s3err.InvalidArgument.WithMessage(msg).With(
		s3err.Field{Name: "ArgumentName", Value: name},
		s3err.Field{Name: "ArgumentValue", Value: value})
}

func policyDenied(msg string) *s3err.Error {
	return s3err.AccessDenied.WithMessage("Invalid according to Policy: " + msg)
}

// postForm is a POST Object form read up to its file part.
type postForm struct {
	// fields maps lower-case field names to values; names keeps each name
	// as the client spelt it, for messages.
	fields map[string]string
	names  map[string]string
	// file is the file part, positioned at its first byte; nil if the form
	// has none.
	file *multipart.Part
	// filename is the file part's filename parameter; hasFilename is false
	// when the part has none (S3 then keeps ${filename} literally).
	filename    string
	hasFilename bool
}

// preDataLimit fails reads once the bytes before the file part exceed its
// budget; lift removes the limit when the file part starts.
type preDataLimit struct {
	r      io.Reader
	left   int64
	lifted bool
}

func (l *preDataLimit) Read(p []byte) (int, error) {
	if l.lifted {
		return l.r.Read(p)
	}
	if l.left <= 0 {
		return 0, errPostPreData
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// readPostForm reads the parts of a multipart/form-data body in order
// until the part named "file". Field values are bounded by S3's 20 KB
// pre-data limit; the file itself is not read.
func readPostForm(mr *multipart.Reader) (*postForm, error) {
	f := &postForm{fields: map[string]string{}, names: map[string]string{}}
	size := 0
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return nil, postReadError(err)
		}
		name := part.FormName()
		if strings.EqualFold(name, "file") {
			f.file = part
			if _, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition")); err == nil {
				f.filename, f.hasFilename = params["filename"]
			}
			return f, nil
		}
		size += len(name)
		if size > maxPostPreData {
			return nil, errPostPreData
		}
		var val bytes.Buffer
		n, err := io.Copy(&val, io.LimitReader(part, int64(maxPostPreData-size+1)))
		if err != nil {
			return nil, postReadError(err)
		}
		size += int(n)
		if size > maxPostPreData {
			return nil, errPostPreData
		}
		if name == "" {
			// A part that is not form-data, or has no name, is no field.
			continue
		}
		lname := strings.ToLower(name)
		if _, dup := f.fields[lname]; dup {
			return nil, postArgument("Bucket POST must contain at most one field named '"+name+"'.", name, val.String())
		}
		f.fields[lname] = val.String()
		f.names[lname] = name
	}
}

func postReadError(err error) error {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e
	}
	return s3err.MalformedPOSTRequest.Wrap(err)
}

// key returns the form's key with ${filename} replaced by the file's name.
// Without a filename parameter S3 keeps the key as sent.
func (f *postForm) key() string {
	k := f.fields["key"]
	if f.hasFilename {
		k = strings.ReplaceAll(k, filenameVar, f.filename)
	}
	return k
}

// postPolicy is a decoded POST policy document.
type postPolicy struct {
	expiration time.Time
	conditions []postCondition
}

// postCondition is one condition of the policy.
type postCondition struct {
	op    string // "eq", "starts-with" or "content-length-range"
	field string // lower-case field name without '$'; "" when the policy named none
	value string
	// min and max bound the file size (content-length-range); valid is
	// false when the bounds are not numbers, and the condition then fails.
	min, max int64
	valid    bool
	// text is the condition as S3 prints it when it fails.
	text string
}

// parsePostPolicy decodes the base64 policy document and checks its shape.
// Errors are InvalidPolicyDocument with S3's messages.
func parsePostPolicy(b64 string) (*postPolicy, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, policyInvalid("Invalid 'Base64' encoding.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]json.RawMessage
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, errInvalidPolicy
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errInvalidPolicy
	}
	names := make([]string, 0, len(doc))
	for name := range doc {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name != "expiration" && name != "conditions" {
			return nil, policyInvalid("Unexpected: '" + strings.ToLower(name) + "'")
		}
	}
	p := &postPolicy{}
	rawExp, ok := doc["expiration"]
	if !ok {
		return nil, policyInvalid("Policy missing expiration.")
	}
	var exp string
	if err := json.Unmarshal(rawExp, &exp); err != nil {
		return nil, policyInvalid("Invalid 'expiration' value: '" + string(rawExp) + "'")
	}
	// ISO 8601 in UTC, with or without fractional seconds; S3 refuses
	// offsets and a space for the 'T'.
	if p.expiration, err = time.Parse("2006-01-02T15:04:05Z", exp); err != nil {
		return nil, policyInvalid("Invalid 'expiration' value: '" + exp + "'")
	}
	rawConds, ok := doc["conditions"]
	if !ok {
		return nil, policyInvalid("Policy missing conditions.")
	}
	var conds []json.RawMessage
	if err := unmarshalNumber(rawConds, &conds); err != nil || conds == nil {
		return nil, policyInvalid("Invalid 'conditions' value: must be a List.")
	}
	for _, c := range conds {
		pc, err := parseCondition(c)
		if err != nil {
			return nil, err
		}
		p.conditions = append(p.conditions, pc)
	}
	return p, nil
}

func unmarshalNumber(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// jsonText renders v as JSON without HTML escaping, for messages.
func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	return strings.TrimRight(buf.String(), "\n")
}

// conditionText prints a condition as S3 does: ["op", "$field", "value"].
func conditionText(items ...any) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = jsonText(it)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// fieldRef reads "$name": the lower-case name, or "" when the '$' is
// missing (such a condition can never hold, as in S3).
func fieldRef(s string) string {
	if !strings.HasPrefix(s, "$") {
		return ""
	}
	return strings.ToLower(s[1:])
}

func parseCondition(raw json.RawMessage) (postCondition, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return postCondition{}, errInvalidPolicy
	}
	switch trimmed[0] {
	case '{':
		var obj map[string]json.RawMessage
		if err := unmarshalNumber(raw, &obj); err != nil {
			return postCondition{}, errInvalidPolicy
		}
		if len(obj) != 1 {
			return postCondition{}, policyInvalid("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.")
		}
		for name, v := range obj {
			if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				return postCondition{}, errInvalidPolicy
			}
			var value string
			if err := json.Unmarshal(v, &value); err != nil {
				return postCondition{}, policyInvalid("Invalid Simple-Condition: value must be a string.")
			}
			return postCondition{op: "eq", field: strings.ToLower(name), value: value,
				text: conditionText("eq", "$"+name, value)}, nil
		}
	case '[':
		var items []any
		if err := unmarshalNumber(raw, &items); err != nil {
			return postCondition{}, errInvalidPolicy
		}
		if len(items) == 0 {
			return postCondition{}, policyInvalid("Invalid Condition: missing operation identifier.")
		}
		op, ok := items[0].(string)
		if !ok {
			return postCondition{}, policyInvalid("Invalid Condition: missing operation identifier.")
		}
		pc := postCondition{op: strings.ToLower(op), text: conditionText(items...)}
		switch pc.op {
		case "eq", "starts-with":
			if len(items) != 3 {
				return postCondition{}, policyInvalid("Invalid " + op + ": wrong number of arguments.")
			}
			field, ok1 := items[1].(string)
			value, ok2 := items[2].(string)
			if !ok1 || !ok2 {
				return postCondition{}, errInvalidPolicy
			}
			pc.field, pc.value = fieldRef(field), value
		case "content-length-range":
			if len(items) != 3 {
				return postCondition{}, policyInvalid("Invalid " + op + ": wrong number of arguments.")
			}
			lo, err1 := rangeBound(items[1])
			hi, err2 := rangeBound(items[2])
			if err1 != nil || err2 != nil {
				return postCondition{}, errInvalidPolicy
			}
			pc.min, pc.max = lo.n, hi.n
			pc.valid = lo.ok && hi.ok
		default:
			return postCondition{}, policyInvalid("Invalid Condition: unknown operation '" + op + "'.")
		}
		return pc, nil
	}
	return postCondition{}, policyInvalid("Invalid condition test: must be a List or Object.")
}

type bound struct {
	n  int64
	ok bool
}

// rangeBound reads a content-length-range bound: an integer, or a string
// holding one (S3 accepts both). A fraction is invalid JSON to S3; any
// other string makes the condition fail when evaluated.
func rangeBound(v any) (bound, error) {
	switch t := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(t.String(), 10, 64)
		if err != nil {
			return bound{}, errInvalidPolicy
		}
		return bound{n: n, ok: true}, nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		return bound{n: n, ok: err == nil}, nil
	}
	return bound{}, errInvalidPolicy
}

// postLimits is what a satisfied policy says about the upload.
type postLimits struct {
	hasRange bool
	min, max int64
	// contentType is the Content-Type an eq condition fixes, "" if none.
	contentType string
}

// exemptFields need no condition (S3: the signature, the policy, the file
// and x-ignore-* fields).
func exemptField(name string) bool {
	switch name {
	case "policy", "x-amz-signature", "signature", "awsaccesskeyid", "file":
		return true
	}
	return strings.HasPrefix(name, "x-ignore-")
}

// check enforces the policy's expiration and conditions against the form.
// bucket is the bucket the form was posted to and key the key after
// ${filename} substitution: conditions on them apply to those values.
func (p *postPolicy) check(now time.Time, f *postForm, bucket, key string) (postLimits, error) {
	lim := postLimits{min: 0, max: math.MaxInt64}
	if !now.Before(p.expiration) {
		return lim, policyDenied("Policy expired.")
	}
	covered := map[string]bool{}
	for _, c := range p.conditions {
		if c.op == "content-length-range" {
			if !c.valid {
				return lim, policyDenied("Policy Condition failed: " + c.text)
			}
			lim.hasRange = true
			lim.min, lim.max = max(lim.min, c.min), min(lim.max, c.max)
			continue
		}
		if c.field != "" {
			covered[c.field] = true
		}
		value, present := f.fields[c.field]
		switch c.field {
		case "":
			present = false
		case "bucket":
			value, present = bucket, true
		case "key":
			value = key
		}
		if !present || !c.holds(value) {
			return lim, policyDenied("Policy Condition failed: " + c.text)
		}
		if c.op == "eq" && c.field == "content-type" {
			lim.contentType = value
		}
	}
	var extra []string
	for name := range f.fields {
		if !exemptField(name) && !covered[name] {
			extra = append(extra, f.names[name])
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return lim, policyDenied("Extra input fields: " + strings.Join(extra, ", "))
	}
	return lim, nil
}

func (c *postCondition) holds(value string) bool {
	if c.op == "eq" {
		return value == c.value
	}
	if c.field == "content-type" {
		// S3: each type of a comma-separated Content-Type must match.
		for _, v := range strings.Split(value, ",") {
			if !strings.HasPrefix(strings.TrimSpace(v), c.value) {
				return false
			}
		}
		return true
	}
	return strings.HasPrefix(value, c.value)
}

// postHeaders turns the form fields that describe the object into the
// request headers PutObject would carry, so one code path reads them.
func postHeaders(fields map[string]string) (http.Header, error) {
	h := http.Header{}
	for name, v := range fields {
		var hn string
		switch {
		case name == "content-type", name == "cache-control", name == "content-disposition",
			name == "content-encoding", name == "content-language", name == "expires",
			name == "content-md5", name == "x-amz-storage-class",
			strings.HasPrefix(name, "x-amz-meta-"), strings.HasPrefix(name, "x-amz-checksum-"):
			hn = textproto.CanonicalMIMEHeaderKey(name)
		default:
			continue
		}
		if name == "x-amz-checksum-algorithm" {
			hn = "X-Amz-Sdk-Checksum-Algorithm"
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 && v[i] != '\t' || v[i] == 0x7f {
				return nil, postArgument("The value of form field "+name+" contains a control character.", name, v)
			}
		}
		h.Set(hn, v)
	}
	return h, nil
}

type postResponse struct {
	XMLName  xml.Name `xml:"PostResponse"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

func (s *Server) postObject(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(req.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return s3err.MalformedPOSTRequest
	}
	// The policy signature covers the fields, not the body: there is no
	// payload hash to verify, so the body is read as it comes.
	limit := &preDataLimit{r: req.r.Body, left: maxPostPreDataRaw}
	form, err := readPostForm(multipart.NewReader(limit, params["boundary"]))
	if err != nil {
		return err
	}
	if form.file == nil {
		return postArgument("POST requires exactly one file upload per request.", "file", "0")
	}
	limit.lifted = true
	if _, ok := form.fields["key"]; !ok {
		return postArgument("Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.", "key", "")
	}

	auth, err := s.verifier.VerifyPostPolicy(req.ctx, form.fields)
	if err != nil {
		s.classifyAuthFailure(req.info, err)
		return err
	}
	if auth.Kind == sigv4.Anonymous {
		// No bucket here is writable by anyone.
		return s3err.AccessDenied
	}
	req.auth = auth
	req.info.AuthKind = auth.Kind.String()
	req.info.AccessKey = auth.AccessKeyID
	_, p, err := s.cfg.Keys.Secret(req.ctx, auth.AccessKeyID)
	if err != nil {
		s.classifyAuthFailure(req.info, err)
		return err
	}
	req.p = p

	key := form.key()
	req.key, req.info.Key = key, key
	if key == "" {
		return postArgument("User key must have a length greater than 0.", "key", "")
	}
	if err := validKey(key); err != nil {
		return err
	}
	policy, err := parsePostPolicy(form.fields["policy"])
	if err != nil {
		return err
	}
	lim, err := policy.check(s.cfg.Now(), form, req.bucket, key)
	if err != nil {
		if strings.Contains(s3err.As(err).Message, "expired") {
			req.info.AuthFailure = "expired"
		} else {
			req.info.AuthFailure = "policy"
		}
		return err
	}
	if err := iam.Allow(p, "PostObject", req.bucket, key); err != nil {
		req.info.AuthFailure = "scope"
		return err
	}
	if iam.HasPresignPolicy(p.Key) {
		signed := auth.Date
		if auth.Kind == sigv4.PostPolicyV2 {
			signed = s.cfg.Now()
		}
		maxLen := int64(-1)
		if lim.hasRange {
			maxLen = lim.max
		}
		if err := iam.CheckPresignPolicy(p.Key, policy.expiration.Sub(signed), "PostObject", maxLen, lim.contentType); err != nil {
			req.info.AuthFailure = "policy"
			return err
		}
	}
	if acl := form.fields["acl"]; acl != "" && acl != "private" && acl != "bucket-owner-full-control" {
		return s3err.NotImplemented.WithMessage("Only the private ACL is supported.")
	}

	hdr, err := postHeaders(form.fields)
	if err != nil {
		return err
	}
	obj, err := objectFromRequest(hdr, req.bucket, key)
	if err != nil {
		return err
	}
	if obj.ContentType == "" {
		obj.ContentType = defaultType
	}
	cs, err := parseChecksumRequest(hdr)
	if err != nil {
		return err
	}
	maxSize := s.cfg.MaxObjectSize
	if lim.hasRange && lim.max < maxSize {
		maxSize = lim.max
	}
	st, err := s.storeStream(req.ctx, form.file, maxSize, cs)
	if err != nil {
		return err
	}
	if lim.hasRange && st.size < lim.min {
		s.deleteBlobs(st.blobs())
		return s3err.EntityTooSmall.WithMessage("Your proposed upload is smaller than the minimum allowed size").With(
			s3err.Field{Name: "ProposedSize", Value: strconv.FormatInt(st.size, 10)},
			s3err.Field{Name: "MinSizeAllowed", Value: strconv.FormatInt(lim.min, 10)})
	}
	obj.Size, obj.ETag, obj.Segments, obj.Inline = st.size, st.etag(), st.segments, st.inline
	obj.LastModified = s.cfg.Now().UTC()
	if st.checksum != "" {
		obj.Checksum = &storage.Checksum{Algorithm: cs.alg, Value: st.checksum, Type: "FULL_OBJECT"}
	}
	replaced, err := s.cfg.Meta.PutObject(req.ctx, obj, nil)
	if err != nil {
		s.deleteBlobs(st.blobs())
		return metaError(err)
	}
	if replaced != nil {
		s.deleteBlobs(replaced.Blobs())
	}
	return s.postAnswer(req, form, &obj)
}

// storeStream streams a body of unknown length into storage through the
// same hashing as PutObject, failing with EntityTooLarge past maxSize.
// Bodies up to the inline threshold are kept in the record; only that much
// is ever buffered.
func (s *Server) storeStream(ctx context.Context, body io.Reader, maxSize int64, cs checksumRequest) (*stored, error) {
	h := newBodyHasher(cs.alg)
	lr := &io.LimitedReader{R: body, N: maxSize + 1}
	var head bytes.Buffer
	if s.cfg.InlineThreshold > 0 {
		n, err := io.CopyN(&head, lr, s.cfg.InlineThreshold+1)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, bodyError(err)
		}
		if n <= s.cfg.InlineThreshold {
			_, _ = h.Write(head.Bytes())
			if h.n > maxSize {
				return nil, tooLarge(body, h.n, maxSize)
			}
			md5sum, checksum, err := cs.verify(h, nil)
			if err != nil {
				return nil, err
			}
			return &stored{size: h.n, md5: md5sum, checksum: checksum, inline: head.Bytes()}, nil
		}
	}
	bw, err := s.cfg.Blobs.Create(ctx, -1)
	if err != nil {
		return nil, storageError(err)
	}
	_, err = bw.Write(head.Bytes())
	if err == nil {
		_, _ = h.Write(head.Bytes())
		_, err = copyHashed(bw, lr, h)
	}
	if err != nil {
		_ = bw.Abort()
		return nil, bodyError(err)
	}
	if h.n > maxSize {
		_ = bw.Abort()
		return nil, tooLarge(body, h.n, maxSize)
	}
	md5sum, checksum, err := cs.verify(h, nil)
	if err != nil {
		_ = bw.Abort()
		return nil, err
	}
	ref, err := bw.Commit(ctx)
	if err != nil {
		return nil, storageError(err)
	}
	return &stored{size: h.n, md5: md5sum, checksum: checksum, segments: []storage.Segment{{Blob: ref, Size: h.n}}}, nil
}

// tooLarge reads on (within entityTooLargeDrain) to learn the proposed
// size, then returns EntityTooLarge.
func tooLarge(body io.Reader, read, maxSize int64) error {
	e := s3err.EntityTooLarge.With()
	n, err := io.Copy(io.Discard, io.LimitReader(body, entityTooLargeDrain))
	if err == nil && n < entityTooLargeDrain {
		e = e.With(s3err.Field{Name: "ProposedSize", Value: strconv.FormatInt(read+n, 10)})
	}
	return e.With(s3err.Field{Name: "MaxSizeAllowed", Value: strconv.FormatInt(maxSize, 10)})
}

// postAnswer sends the response the form asked for: a 303 to
// success_action_redirect, else success_action_status (200, 201 with a
// PostResponse document, or 204, the default).
func (s *Server) postAnswer(req *request, form *postForm, obj *storage.Object) error {
	etag := quoteETag(obj.ETag)
	loc := s.objectURL(req, obj.Key)
	wh := req.w.Header()
	wh.Set("ETag", etag)
	wh.Set("Location", loc)
	if obj.Checksum != nil {
		wh.Set(checksumHeader(obj.Checksum.Algorithm), obj.Checksum.Value)
		wh.Set("X-Amz-Checksum-Type", obj.Checksum.Type)
	}
	redirect, ok := form.fields["success_action_redirect"]
	if !ok {
		redirect = form.fields["redirect"]
	}
	if u, err := url.Parse(redirect); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		wh.Set("Location", redirect+sep+"bucket="+url.QueryEscape(obj.Bucket)+"&key="+url.QueryEscape(obj.Key)+"&etag="+url.QueryEscape(etag))
		req.w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	switch form.fields["success_action_status"] {
	case "200":
		req.w.WriteHeader(http.StatusOK)
		return nil
	case "201":
		return writeXML(req.w, http.StatusCreated, postResponse{Location: loc, Bucket: obj.Bucket, Key: obj.Key, ETag: etag})
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// objectURL is the URL of key in the request's bucket as the client
// addressed the store; the key is escaped whole, '/' included, as S3 does.
func (s *Server) objectURL(req *request, key string) string {
	scheme := "http"
	if req.r.TLS != nil {
		scheme = "https"
	}
	if s.cfg.TrustProxy {
		if p := req.r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
	}
	host := s.signedHost(req.r)
	if s.isVirtualHost(req.r) {
		return scheme + "://" + host + "/" + url.PathEscape(key)
	}
	if s.cfg.PublicHost != "" {
		host = s.cfg.PublicHost
	}
	return scheme + "://" + host + "/" + req.bucket + "/" + url.PathEscape(key)
}
