package s3api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"nfyio.dev/storage/internal/cors"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

func init() {
	extraHandlers["PutBucketCors"] = (*Server).putBucketCors
	extraHandlers["GetBucketCors"] = (*Server).getBucketCors
	extraHandlers["DeleteBucketCors"] = (*Server).deleteBucketCors
}

// Messages of S3's preflight refusals.
const (
	corsNotAllowed = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."
	corsDisabled   = "CORSResponse: CORS is not enabled for this bucket."
	corsNoBucket   = "CORSResponse: Bucket not found"
	corsNoOrigin   = "Insufficient information. Origin request header needed."
)

var (
	errMissingBody = &s3err.Error{Code: "MissingRequestBodyError", Status: http.StatusBadRequest, Message: "Request Body is empty"}
	errBadRequest  = &s3err.Error{Code: "BadRequest", Status: http.StatusBadRequest, Message: "Bad Request"}
	errCORSDenied  = &s3err.Error{Code: "AccessForbidden", Status: http.StatusForbidden, Message: corsNotAllowed}
)

// corsCache holds parsed bucket configurations keyed by their stored XML,
// so a request with an Origin costs a map lookup, not an XML parse. The
// key is the document itself: a changed configuration is a new key, and
// nothing needs invalidating. Entries are few (one per distinct
// configuration); the map is emptied if it ever grows past corsCacheMax.
var corsCache = struct {
	sync.RWMutex
	docs     map[string]*cors.Config
	defaults map[string]*cors.Config
}{docs: map[string]*cors.Config{}, defaults: map[string]*cors.Config{}}

const corsCacheMax = 1024

func parsedCORS(doc []byte) (*cors.Config, error) {
	corsCache.RLock()
	c, ok := corsCache.docs[string(doc)]
	corsCache.RUnlock()
	if ok {
		return c, nil
	}
	c, err := cors.Parse(doc)
	if err != nil {
		return nil, err
	}
	corsCache.Lock()
	if len(corsCache.docs) >= corsCacheMax {
		clear(corsCache.docs)
	}
	corsCache.docs[string(doc)] = c
	corsCache.Unlock()
	return c, nil
}

// defaultCORS is the operator's rule for buckets without their own.
func (s *Server) defaultCORS() *cors.Config {
	if len(s.cfg.CORSAllowOrigin) == 0 {
		return nil
	}
	key := strings.Join(s.cfg.CORSAllowOrigin, "\n")
	corsCache.RLock()
	c, ok := corsCache.defaults[key]
	corsCache.RUnlock()
	if ok {
		return c
	}
	c = cors.Default(s.cfg.CORSAllowOrigin)
	corsCache.Lock()
	if len(corsCache.defaults) >= corsCacheMax {
		clear(corsCache.defaults)
	}
	corsCache.defaults[key] = c
	corsCache.Unlock()
	return c
}

// bucketCORS returns the rules that apply to bucket: its own, else the
// operator default (nil when neither exists). found is false when the
// bucket does not exist.
func (s *Server) bucketCORS(ctx context.Context, bucket string) (cfg *cors.Config, found bool, err error) {
	if bucket == "" {
		return s.defaultCORS(), true, nil
	}
	b, err := s.cfg.Meta.GetBucket(ctx, bucket)
	if errors.Is(err, storage.ErrBucketNotFound) {
		return s.defaultCORS(), false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if len(b.CORS) == 0 {
		return s.defaultCORS(), true, nil
	}
	c, err := parsedCORS(b.CORS)
	if err != nil {
		// Only validated documents are stored; one that no longer parses
		// is logged and treated as absent rather than failing requests.
		s.cfg.Logger.Warn("stored CORS configuration does not parse", "bucket", bucket, "err", err)
		return s.defaultCORS(), true, nil
	}
	return c, true, nil
}

// handleCORS runs before authentication. It answers preflight (OPTIONS)
// requests, which carry no signature, and reports true when it did. For
// other requests with an Origin header it sets the CORS response headers
// of the matching rule before anything is written, so that every response,
// errors included, lets the page read it.
func (s *Server) handleCORS(req *request) bool {
	if req.r.Method == http.MethodOptions {
		req.info.Op = "PreflightRequest"
		s.preflight(req)
		return true
	}
	origin := req.r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	cfg, _, err := s.bucketCORS(req.ctx, req.bucket)
	if err != nil || cfg == nil {
		// The request itself will report a storage failure.
		return false
	}
	// As S3 does, a request that names Access-Control-Request-Method is
	// matched with that method.
	method := req.r.Header.Get("Access-Control-Request-Method")
	if method == "" {
		method = req.r.Method
	}
	if m, ok := cfg.Actual(origin, method); ok {
		m.SetHeaders(req.w.Header(), nil)
	}
	return false
}

// preflight answers an OPTIONS request from the rules of the bucket.
func (s *Server) preflight(req *request) {
	h := req.r.Header
	origin := h.Get("Origin")
	if origin == "" {
		s.corsFail(req, errBadRequest.WithMessage(corsNoOrigin))
		return
	}
	method := h.Get("Access-Control-Request-Method")
	if !validCORSMethod(method) {
		if method == "" {
			method = "null"
		}
		s.corsFail(req, errBadRequest.WithMessage("Invalid Access-Control-Request-Method: "+method))
		return
	}
	resource := "BUCKET"
	if req.key != "" {
		resource = "OBJECT"
	}
	denied := func(msg string) *s3err.Error {
		return errCORSDenied.WithMessage(msg).With(
			s3err.Field{Name: "Method", Value: method},
			s3err.Field{Name: "ResourceType", Value: resource})
	}
	cfg, found, err := s.bucketCORS(req.ctx, req.bucket)
	switch {
	case err != nil:
		s.corsFail(req, s3err.As(storageError(err)))
		return
	case cfg == nil && !found:
		s.corsFail(req, denied(corsNoBucket))
		return
	case cfg == nil:
		s.corsFail(req, denied(corsDisabled))
		return
	}
	requested := cors.RequestHeaders(strings.Join(h.Values("Access-Control-Request-Headers"), ","))
	m, ok := cfg.Preflight(origin, method, requested)
	if !ok {
		s.corsFail(req, denied(corsNotAllowed))
		return
	}
	m.SetHeaders(req.w.Header(), requested)
	req.w.Header().Set("Content-Length", "0")
	req.w.WriteHeader(http.StatusOK)
}

func validCORSMethod(m string) bool {
	for _, k := range cors.Methods {
		if m == k {
			return true
		}
	}
	return false
}

// corsFail writes a preflight refusal. S3's refusals name no Resource.
func (s *Server) corsFail(req *request, e *s3err.Error) {
	req.info.ErrCode = e.Code
	if e.Status >= 500 {
		s.cfg.Logger.Error("preflight failed", "request_id", req.info.RequestID, "err", e)
	}
	e.Write(req.w, req.r, req.info.RequestID, s.hostID)
}

func (s *Server) putBucketCors(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	cs, err := parseChecksumRequest(req.r.Header)
	if err != nil {
		return err
	}
	payload, err := req.auth.Body(req.r)
	if err != nil {
		return err
	}
	if payload.Length() == 0 {
		return errMissingBody
	}
	if payload.Length() > cors.MaxDocumentSize {
		return s3err.MaxMessageLengthExceeded
	}
	var buf bytes.Buffer
	h := newBodyHasher(cs.alg)
	n, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(payload, cors.MaxDocumentSize+1))
	if err != nil {
		return bodyError(err)
	}
	switch {
	case n > cors.MaxDocumentSize:
		return s3err.MaxMessageLengthExceeded
	case n == 0:
		return errMissingBody
	}
	if want := payload.Length(); want >= 0 {
		if err := checkBodyLength(n, want); err != nil {
			return err
		}
	}
	if _, _, err := cs.verify(h, payload.Trailer()); err != nil {
		return err
	}
	cfg, err := cors.Parse(buf.Bytes())
	if err != nil {
		return err
	}
	// The normalised document is stored: it is what GetBucketCors returns
	// and what the rule cache is keyed by.
	doc := cfg.Marshal()
	err = s.cfg.Meta.UpdateBucket(req.ctx, req.bucket, func(b *storage.Bucket) error {
		b.CORS = doc
		return nil
	})
	if err != nil {
		return metaError(err)
	}
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getBucketCors(req *request) error {
	b, err := s.bucketMust(req)
	if err != nil {
		return err
	}
	if len(b.CORS) == 0 {
		return s3err.NoSuchCORSConfiguration.With(s3err.Field{Name: "BucketName", Value: req.bucket})
	}
	cfg, err := parsedCORS(b.CORS)
	if err != nil {
		return s3err.InternalError.Wrap(err)
	}
	doc := cfg.Marshal()
	wh := req.w.Header()
	wh.Set("Content-Type", "application/xml")
	wh.Set("Content-Length", strconv.Itoa(len(doc)))
	req.w.WriteHeader(http.StatusOK)
	_, _ = req.w.Write(doc)
	return nil
}

func (s *Server) deleteBucketCors(req *request) error {
	err := s.cfg.Meta.UpdateBucket(req.ctx, req.bucket, func(b *storage.Bucket) error {
		b.CORS = nil
		return nil
	})
	if err != nil {
		return metaError(err)
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}
