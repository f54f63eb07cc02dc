// Package s3api serves the S3 HTTP API: routing, authentication, scope
// checks and one handler per operation. It knows the storage interfaces, never
// which backend runs behind them.
package s3api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/sigv4"
	"nfyio.dev/storage/internal/storage"
)

// Config is what the S3 server needs.
type Config struct {
	Meta   storage.Meta
	Blobs  storage.Blobs
	Keys   *iam.Service
	Region string // reported by GetBucketLocation
	// Domain enables virtual-hosted addressing: BUCKET.Domain.
	Domain string
	// PublicHost, when set, is the public URL's host: signatures made for
	// it are accepted whatever Host the request arrives with (behind a proxy
	// that rewrites Host, or from clients using an internal address, whose
	// signatures for that address are accepted too).
	PublicHost string
	// TrustProxy accepts X-Forwarded-Host / X-Forwarded-Proto.
	TrustProxy bool
	Logger     *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// InlineThreshold: objects up to this size are kept inside the metadata
	// record instead of a blob. 0 disables inlining.
	InlineThreshold int64
	// MaxObjectSize caps a single PUT (S3: 5 GiB).
	MaxObjectSize int64
	// Internal serves the reserved /_nfyio/ prefix (health, metrics,
	// admin); it receives the authenticated principal, nil when anonymous.
	Internal func(w http.ResponseWriter, r *http.Request, p *iam.Principal)
	// CORSAllowOrigin is the operator's default CORS rule for buckets
	// without a configuration of their own: these origins (one '*' each
	// allowed) may use every method and header. Empty: no default.
	CORSAllowOrigin []string
}

// Server is the S3 API handler.
type Server struct {
	cfg      Config
	verifier *sigv4.Verifier
	hostID   string
	seq      atomic.Uint64
	idPrefix string
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxObjectSize == 0 {
		cfg.MaxObjectSize = 5 << 30
	}
	s := &Server{cfg: cfg}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.idPrefix = strings.ToUpper(hex.EncodeToString(b[:]))
	s.hostID = hex.EncodeToString(b[:])
	s.verifier = sigv4.NewVerifier(func(ctx context.Context, id string) (string, error) {
		secret, _, err := cfg.Keys.Secret(ctx, id)
		return secret, err
	}, sigv4.Options{Now: cfg.Now, Host: s.signedHost, AltHost: s.publicHost})
	return s
}

// signedHost is the host the client addressed: the Host header or, from a
// trusted proxy, the first X-Forwarded-Host.
func (s *Server) signedHost(r *http.Request) string {
	if s.cfg.TrustProxy {
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			h, _, _ = strings.Cut(h, ",")
			return strings.TrimSpace(h)
		}
	}
	return r.Host
}

// publicHost is the second host a signature may be for (sigv4.Options.AltHost).
func (s *Server) publicHost(*http.Request) string { return s.cfg.PublicHost }

// Info is the per-request record the access log and metrics read once the
// handler is done. The handler fills it as it learns.
type Info struct {
	RequestID string
	Op        string
	Bucket    string
	Key       string
	AccessKey string
	AuthKind  string
	ErrCode   string
	// AuthFailure classifies authentication/authorization failures for
	// metrics: expired, signature, scope, skew, reuse, key.
	AuthFailure string
}

type infoKey struct{}

// WithInfo attaches an Info to the request context so the outer middleware
// can read what the handler learnt.
func WithInfo(ctx context.Context, in *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, in)
}

func infoFrom(ctx context.Context) *Info {
	if in, ok := ctx.Value(infoKey{}).(*Info); ok {
		return in
	}
	return &Info{}
}

// request carries one request through the handlers.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	bucket string
	key    string
	op     string
	auth   *sigv4.Auth
	p      *iam.Principal
	info   *Info
	// query is the parsed query string, parsed once: the hot paths
	// (operation, presign checks, GET) all read it.
	query url.Values
}

func (s *Server) newRequestID() string {
	n := s.seq.Add(1)
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = "0123456789ABCDEF"[n&0xF]
		n >>= 4
	}
	return s.idPrefix + string(b[:])
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(r.Context())
	if info.RequestID == "" {
		info.RequestID = s.newRequestID()
	}
	h := w.Header()
	h.Set("X-Amz-Request-Id", info.RequestID)
	h.Set("X-Amz-Id-2", s.hostID)
	h.Set("Server", "nfyio")

	req := &request{w: w, r: r, ctx: r.Context(), info: info}
	bucket, key, ok := parsePath(r, s.signedHost(r), s.cfg.Domain)
	if !ok {
		s.fail(req, s3err.InvalidURI)
		return
	}
	req.bucket, req.key = bucket, key
	info.Bucket, info.Key = bucket, key

	internal := bucket == "_nfyio" && s.cfg.Internal != nil && r.Host != "" && !s.isVirtualHost(r)
	if !internal {
		req.query = r.URL.Query()
		req.op = operation(r, req.query, bucket, key)
		info.Op = req.op
	} else {
		info.Op = "Internal"
	}
	// CORS comes before authentication: preflights carry no signature, and
	// the headers must be on every response, errors included.
	if !internal && s.handleCORS(req) {
		return
	}

	auth, err := s.verifier.Verify(r)
	if err != nil {
		s.classifyAuthFailure(info, err)
		s.fail(req, err)
		return
	}
	req.auth = auth
	info.AuthKind = auth.Kind.String()
	if auth.Kind != sigv4.Anonymous {
		info.AccessKey = auth.AccessKeyID
		_, p, err := s.cfg.Keys.Secret(req.ctx, auth.AccessKeyID)
		if err != nil {
			s.fail(req, err)
			return
		}
		req.p = p
	}
	if internal {
		if auth.Kind != sigv4.Anonymous && internalBody(r) {
			// The admin API reads the body itself: hand it the verified
			// payload so a signed body hash is enforced there too. A body
			// the signature does not cover by its SHA-256 fails when read:
			// the admin API grants keys and must not act on bytes anyone
			// holding the URL or on the way could have chosen.
			if auth.Payload != sigv4.PayloadSHA256 {
				r.Body = io.NopCloser(failingReader{errUnsignedInternalBody})
			} else {
				payload, err := auth.Body(r)
				if err != nil {
					s.fail(req, err)
					return
				}
				r.Body = io.NopCloser(payload)
			}
		}
		s.cfg.Internal(w, r, req.p)
		return
	}
	s.dispatch(req)
}

// errUnsignedInternalBody is what reading the body of an internal (admin)
// request gives when its signature does not cover the body's SHA-256.
var errUnsignedInternalBody = s3err.InvalidRequest.WithMessage("The admin API needs a signed payload hash: " +
	"sign x-amz-content-sha256 with the hex SHA-256 of the body (UNSIGNED-PAYLOAD, streaming payloads " +
	"and Signature Version 2 are not accepted for admin requests that carry a body).")

// internalBody reports whether an internal request carries a body whose
// integrity must be proven: any POST, PUT or PATCH, and any request with a
// body (a Content-Length other than 0, or chunked).
func internalBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return r.ContentLength != 0
}

// failingReader fails every Read with err.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func (s *Server) isVirtualHost(r *http.Request) bool {
	_, ok := virtualBucket(s.signedHost(r), s.cfg.Domain)
	return ok
}

func (s *Server) classifyAuthFailure(info *Info, err error) {
	e := s3err.As(err)
	switch {
	case e.Code == "RequestTimeTooSkewed":
		info.AuthFailure = "skew"
	case e.Code == "SignatureDoesNotMatch":
		info.AuthFailure = "signature"
	case e.Code == "InvalidAccessKeyId":
		info.AuthFailure = "key"
	case e.Code == "AccessDenied" && strings.Contains(e.Message, "expired"):
		info.AuthFailure = "expired"
	case e.Code == "AccessDenied" && strings.Contains(e.Message, "already been used"):
		info.AuthFailure = "reuse"
	case e.Code == "AccessDenied":
		info.AuthFailure = "denied"
	default:
		info.AuthFailure = "malformed"
	}
}

// fail writes err as an S3 error response.
func (s *Server) fail(req *request, err error) {
	e := s3err.As(err)
	if e.Code == "InternalError" || e.Status >= 500 {
		s.cfg.Logger.Error("request failed", "request_id", req.info.RequestID, "op", req.op, "err", err)
	}
	if errors.Is(err, context.Canceled) {
		e = s3err.As(err)
	}
	req.info.ErrCode = e.Code
	if e.Resource == "" {
		res := "/" + req.bucket
		if req.key != "" {
			res += "/" + req.key
		}
		e = &s3err.Error{Code: e.Code, Message: e.Message, Status: e.Status, Fields: e.Fields, Resource: res, Cause: e.Cause}
	}
	if e.Status == http.StatusNotModified {
		req.w.WriteHeader(http.StatusNotModified)
		return
	}
	drainRefused(req)
	e.Write(req.w, req.r, req.info.RequestID, s.hostID)
}
