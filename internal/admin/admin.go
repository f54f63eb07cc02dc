// Package admin serves the admin API under /_nfyio/admin/: JSON endpoints to
// create, list, inspect, disable, enable, rotate and delete access keys.
//
// The handler trusts its caller: the server's router must authenticate the
// request (SigV4) and check that the principal holds scope admin before
// handing it over, and must hand over a body that fails when read unless the
// signature covers it (a signed x-amz-content-sha256 the body matches). The
// handler reads every body to its end before acting, so such a failure
// refuses the request and changes nothing.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// Prefix is the path under which the admin API lives.
const Prefix = "/_nfyio/admin/"

// maxBody bounds a request body; a key spec is a few hundred bytes.
const maxBody = 64 << 10

// New returns the admin API handler. It expects full request paths
// (Prefix included).
func New(svc *iam.Service) http.Handler {
	return &handler{svc: svc, log: slog.Default()}
}

type handler struct {
	svc *iam.Service
	log *slog.Logger
}

// CreateRequest is the body of POST /_nfyio/admin/keys.
//
// expires is an RFC 3339 time or a lifetime from now ("720h", "30d");
// maxUrlTtl is a duration string ("15m") or a number of seconds;
// maxObjectSize is a number of bytes or a string with a unit ("10MiB", "5MB").
// accessKeyId and secretAccessKey are optional, to import an existing key.
type CreateRequest struct {
	AccessKeyID     string          `json:"accessKeyId,omitempty"`
	SecretAccessKey string          `json:"secretAccessKey,omitempty"`
	Name            string          `json:"name,omitempty"`
	Scopes          []string        `json:"scopes"`
	Buckets         []string        `json:"buckets,omitempty"`
	Prefix          string          `json:"prefix,omitempty"`
	Expires         string          `json:"expires,omitempty"`
	MaxURLTTL       json.RawMessage `json:"maxUrlTtl,omitempty"`
	MaxObjectSize   json.RawMessage `json:"maxObjectSize,omitempty"`
	ContentTypes    []string        `json:"contentTypes,omitempty"`
}

// Key is an access key as the admin API shows it. SecretAccessKey is set
// only in the answers to create and rotate.
type Key struct {
	AccessKeyID     string     `json:"accessKeyId"`
	SecretAccessKey string     `json:"secretAccessKey,omitempty"`
	Name            string     `json:"name,omitempty"`
	Status          string     `json:"status"` // active, disabled or expired
	Scopes          []string   `json:"scopes"`
	Buckets         []string   `json:"buckets,omitempty"`
	Prefix          string     `json:"prefix,omitempty"`
	Created         time.Time  `json:"created"`
	Expires         *time.Time `json:"expires,omitempty"`
	MaxURLTTL       string     `json:"maxUrlTtl,omitempty"`
	MaxObjectSize   int64      `json:"maxObjectSize,omitempty"`
	ContentTypes    []string   `json:"contentTypes,omitempty"`
	Root            bool       `json:"root,omitempty"`
}

// KeyList is the answer to GET /_nfyio/admin/keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// apiError is an error answer: status, code and message for the client.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, code, fmt.Sprintf(format, args...)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Answers may carry secrets; no cache anywhere may keep them.
	w.Header().Set("Cache-Control", "no-store")
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		h.fail(w, r, &apiError{http.StatusNotFound, "NotFound", "no admin endpoint at " + r.URL.Path})
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if parts[0] != "keys" || len(parts) > 3 || (len(parts) > 1 && parts[1] == "") {
		h.fail(w, r, &apiError{http.StatusNotFound, "NotFound", "no admin endpoint at " + r.URL.Path})
		return
	}
	if !(len(parts) == 1 && r.Method == http.MethodPost) {
		// Only create reads its body; every other endpoint still reads
		// whatever body came before acting, so that a body the caller's
		// reader refuses (not covered by the signature, not matching its
		// signed SHA-256) refuses the whole request, whatever it asks.
		if err := drainBody(w, r); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	switch len(parts) {
	case 1:
		switch r.Method {
		case http.MethodGet:
			h.list(w, r)
		case http.MethodPost:
			h.create(w, r)
		default:
			h.methodNotAllowed(w, r, "GET, POST")
		}
	case 2:
		switch r.Method {
		case http.MethodGet:
			h.get(w, r, parts[1])
		case http.MethodDelete:
			h.delete(w, r, parts[1])
		default:
			h.methodNotAllowed(w, r, "GET, DELETE")
		}
	case 3:
		switch parts[2] {
		case "disable", "enable", "rotate":
		default:
			h.fail(w, r, &apiError{http.StatusNotFound, "NotFound", "no admin endpoint at " + r.URL.Path})
			return
		}
		if r.Method != http.MethodPost {
			h.methodNotAllowed(w, r, "POST")
			return
		}
		h.action(w, r, parts[1], parts[2])
	}
}

func (h *handler) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	h.fail(w, r, &apiError{http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method + " is not allowed here; use " + allow})
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	keys, err := h.svc.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := KeyList{Keys: make([]Key, 0, len(keys))}
	now := time.Now()
	for _, k := range keys {
		out.Keys = append(out.Keys, toJSON(k, now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, id string) {
	k, err := h.svc.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, keyErr(err, id))
		return
	}
	writeJSON(w, http.StatusOK, toJSON(k, time.Now()))
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	spec, err := req.spec(time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	k, secret, err := h.svc.Create(r.Context(), spec)
	if err != nil {
		h.fail(w, r, keyErr(err, spec.ID))
		return
	}
	out := toJSON(k, time.Now())
	out.SecretAccessKey = secret
	w.Header().Set("Location", Prefix+"keys/"+k.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, id string) {
	if err := h.svc.Delete(r.Context(), id); err != nil {
		h.fail(w, r, keyErr(err, id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) action(w http.ResponseWriter, r *http.Request, id, action string) {
	ctx := r.Context()
	var secret string
	var err error
	switch action {
	case "disable":
		err = h.svc.Disable(ctx, id)
	case "enable":
		err = h.svc.Enable(ctx, id)
	case "rotate":
		secret, err = h.svc.Rotate(ctx, id)
	}
	if err != nil {
		h.fail(w, r, keyErr(err, id))
		return
	}
	k, err := h.svc.Get(ctx, id)
	if err != nil {
		h.fail(w, r, keyErr(err, id))
		return
	}
	out := toJSON(k, time.Now())
	out.SecretAccessKey = secret
	writeJSON(w, http.StatusOK, out)
}

// keyErr turns a Service error into the admin API's error answer.
func keyErr(err error, id string) error {
	switch {
	case errors.Is(err, storage.ErrKeyNotFound):
		return &apiError{http.StatusNotFound, "NoSuchAccessKey", "access key " + id + " does not exist"}
	case errors.Is(err, storage.ErrKeyExists):
		return &apiError{http.StatusConflict, "AccessKeyExists", "access key " + id + " already exists"}
	case errors.Is(err, iam.ErrLastAdmin):
		return &apiError{http.StatusConflict, "LastAdminKey", "access key " + id + " is the last enabled admin key; create or enable another admin key first"}
	case errors.Is(err, iam.ErrInvalidSpec):
		return badRequest("InvalidArgument", "%s", err.Error())
	}
	return err
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		// Internal details stay in the log; the client gets a generic answer.
		h.log.ErrorContext(r.Context(), "admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = &apiError{http.StatusInternalServerError, "InternalError", "internal error; see the server log"}
	}
	writeJSON(w, ae.status, ErrorBody{Error: ae.code, Message: ae.message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only plain structs of strings, numbers and times are written.
		panic(fmt.Sprintf("admin: encode answer: %v", err))
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeJSON reads exactly one JSON object with no unknown fields, so a typo
// such as "scope" for "scopes" is an error rather than a silently broader key.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if e := bodyError(err); e != nil {
			return e
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{http.StatusRequestEntityTooLarge, "RequestTooLarge", fmt.Sprintf("request body exceeds %d bytes", maxBody)}
		}
		if errors.Is(err, io.EOF) {
			return badRequest("MalformedJSON", "request body is empty; send a JSON object")
		}
		return badRequest("MalformedJSON", "request body is not a valid key object: %v", err)
	}
	// Reading to the end also lets the server's body reader check the
	// signed payload hash, which it can only do at EOF.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if e := bodyError(err); e != nil {
			return e
		}
		return badRequest("MalformedJSON", "request body holds more than one JSON value")
	}
	return nil
}

// drainBody reads the request body to its end, within maxBody, and returns
// the admin API's error for a body the server's reader refused.
func drainBody(w http.ResponseWriter, r *http.Request) error {
	if r.Body == nil {
		return nil
	}
	_, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		return nil
	}
	if e := bodyError(err); e != nil {
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, "RequestTooLarge", fmt.Sprintf("request body exceeds %d bytes", maxBody)}
	}
	return badRequest("IncompleteBody", "reading the request body: %v", err)
}

// bodyError passes on a failure of the verified body reader the server
// hands over (a body that does not match its signed SHA-256, a body cut
// short) as the S3 error it is, rather than as malformed JSON.
func bodyError(err error) *apiError {
	var se *s3err.Error
	if errors.As(err, &se) {
		return &apiError{se.Status, se.Code, se.Message}
	}
	return nil
}

func toJSON(k storage.AccessKey, now time.Time) Key {
	out := Key{
		AccessKeyID:   k.ID,
		Name:          k.Name,
		Status:        "active",
		Scopes:        k.Scopes,
		Buckets:       k.Buckets,
		Prefix:        k.Prefix,
		Created:       k.Created.UTC(),
		MaxObjectSize: k.MaxObjectSize,
		ContentTypes:  k.ContentTypes,
		Root:          k.Root,
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if !k.Expires.IsZero() {
		e := k.Expires.UTC()
		out.Expires = &e
		if !now.Before(e) {
			out.Status = "expired"
		}
	}
	if k.Disabled {
		out.Status = "disabled"
	}
	if k.MaxURLTTL > 0 {
		out.MaxURLTTL = k.MaxURLTTL.String()
	}
	return out
}

// spec converts the request into an iam.KeySpec; iam.Service validates the
// rest (scopes, names, patterns).
func (req *CreateRequest) spec(now time.Time) (iam.KeySpec, error) {
	spec := iam.KeySpec{
		ID:           req.AccessKeyID,
		Secret:       req.SecretAccessKey,
		Name:         req.Name,
		Scopes:       req.Scopes,
		Buckets:      req.Buckets,
		Prefix:       req.Prefix,
		ContentTypes: req.ContentTypes,
	}
	if req.Expires != "" {
		if t, err := time.Parse(time.RFC3339, req.Expires); err == nil {
			spec.Expires = t
		} else if d, err := ParseDuration(req.Expires); err == nil && d > 0 {
			spec.Expires = now.Add(d)
		} else {
			return spec, badRequest("InvalidArgument", "expires %q is neither an RFC 3339 time nor a positive duration such as 720h or 30d", req.Expires)
		}
	}
	if len(req.MaxURLTTL) > 0 && string(req.MaxURLTTL) != "null" {
		d, err := parseTTL(req.MaxURLTTL)
		if err != nil {
			return spec, err
		}
		spec.MaxURLTTL = d
	}
	if len(req.MaxObjectSize) > 0 && string(req.MaxObjectSize) != "null" {
		n, err := parseSizeJSON(req.MaxObjectSize)
		if err != nil {
			return spec, err
		}
		spec.MaxObjectSize = n
	}
	return spec, nil
}

func parseTTL(raw json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := ParseDuration(s)
		if err != nil || d < 0 {
			return 0, badRequest("InvalidArgument", "maxUrlTtl %q is not a duration such as 15m or 12h", s)
		}
		return d, nil
	}
	var secs int64
	if err := json.Unmarshal(raw, &secs); err != nil || secs < 0 || secs > int64(1<<62)/int64(time.Second) {
		return 0, badRequest("InvalidArgument", "maxUrlTtl must be a duration string or a whole number of seconds")
	}
	return time.Duration(secs) * time.Second, nil
}

func parseSizeJSON(raw json.RawMessage) (int64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		n, err := ParseSize(s)
		if err != nil {
			return 0, badRequest("InvalidArgument", "maxObjectSize: %v", err)
		}
		return n, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil || n < 0 {
		return 0, badRequest("InvalidArgument", "maxObjectSize must be a whole number of bytes or a size such as 10MiB")
	}
	return n, nil
}

// ParseDuration accepts Go durations ("90m", "720h") and whole days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// sizeUnits are the units ParseSize knows, longest first so "MiB" is tried
// before "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize parses a byte count with an optional unit: KB/MB/GB/TB are
// decimal, KiB/MiB/GiB/TiB and the bare K/M/G/T are binary.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 10MiB or 5MB", s)
	}
	return n * mult, nil
}
