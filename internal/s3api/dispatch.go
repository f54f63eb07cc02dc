package s3api

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/sigv4"
	"nfyio.dev/storage/internal/storage"
)

// OnceParam is the signed query parameter that makes a presigned URL
// single-use. Because it is part of the signed query, a URL holder cannot
// remove it.
const OnceParam = "X-Nfyio-Once"

// authzKey is the key an operation is authorized against: the object key,
// or for listings the prefix asked for.
func authzKey(req *request) string {
	switch req.op {
	case "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads":
		return req.query.Get("prefix")
	case "DeleteObjects":
		// The keys are in the body: the handler checks each one, so here
		// only scope and bucket count, and the key's own prefix passes.
		if req.p != nil {
			return req.p.Key.Prefix
		}
	}
	return req.key
}

// presigned reports whether the request was authenticated by a presigned URL,
// to which the key's presign policy applies.
func presigned(req *request) bool {
	return req.auth != nil && (req.auth.Kind == sigv4.PresignedV4 || req.auth.Kind == sigv4.PresignedV2)
}

func (s *Server) dispatch(req *request) {
	err := s.authorize(req)
	if err == nil {
		err = s.handle(req)
	}
	if err != nil && !errors.Is(err, errResponseStarted) {
		s.fail(req, err)
	}
}

// authorize applies the principal's scopes and restrictions, the key's
// presign policy and one-time redemption.
func (s *Server) authorize(req *request) error {
	if req.op == "" {
		return s3err.MethodNotAllowed
	}
	if req.op == "PostObject" {
		// Authenticated by the form's policy signature in the handler.
		return nil
	}
	if req.p == nil {
		return s3err.AccessDenied
	}
	if err := iam.Allow(req.p, req.op, req.bucket, authzKey(req)); err != nil {
		req.info.AuthFailure = "scope"
		return err
	}
	if !presigned(req) {
		return nil
	}
	signedLength, signedType := int64(-1), ""
	for _, h := range req.auth.SignedHeaders {
		switch h {
		case "content-length":
			signedLength = req.r.ContentLength
		case "content-type":
			signedType = req.r.Header.Get("Content-Type")
		}
	}
	if err := iam.CheckPresignPolicy(req.p.Key, req.auth.ExpiresIn, req.op, signedLength, signedType); err != nil {
		req.info.AuthFailure = "policy"
		return err
	}
	if token := req.query.Get(OnceParam); token != "" {
		if req.auth.Kind != sigv4.PresignedV4 {
			// A V2 signature does not cover the token: the same URL without
			// it would pass too, so honouring it would promise one use and
			// deliver many. Refused before anything is redeemed.
			req.info.AuthFailure = "policy"
			return s3err.InvalidRequest.WithMessage("One-time URLs (" + OnceParam + ") must be signed with Signature Version 4: a Version 2 signature does not cover the token.")
		}
		err := s.cfg.Meta.Redeem(req.ctx, req.auth.AccessKeyID+"/"+token, req.auth.Expires)
		if errors.Is(err, storage.ErrAlreadyRedeemed) {
			req.info.AuthFailure = "reuse"
			return s3err.AccessDenied.WithMessage("Request has already been used")
		}
		if err != nil {
			return storageError(err)
		}
	}
	return nil
}

func (s *Server) handle(req *request) error {
	switch req.op {
	case "ListBuckets":
		return s.listBuckets(req)
	case "CreateBucket":
		return s.createBucket(req)
	case "HeadBucket":
		return s.headBucket(req)
	case "DeleteBucket":
		return s.deleteBucket(req)
	case "GetBucketLocation":
		return s.getBucketLocation(req)
	case "GetBucketVersioning":
		return s.getBucketVersioning(req)
	case "PutBucketVersioning":
		return s3err.NotImplemented.WithMessage("Versioning is not supported; buckets stay unversioned.")
	case "ListObjects":
		return s.listObjects(req, false)
	case "ListObjectsV2":
		return s.listObjects(req, true)
	case "ListObjectVersions":
		return s.listObjectVersions(req)
	case "GetBucketAcl", "GetObjectAcl":
		return s.getACL(req)
	case "PutBucketAcl", "PutObjectAcl":
		return s.putACL(req)
	case "PutObject":
		return s.putObject(req)
	case "GetObject":
		return s.getObject(req, false)
	case "HeadObject":
		return s.getObject(req, true)
	case "DeleteObject":
		return s.deleteObject(req)
	case "DeleteObjects":
		return s.deleteObjects(req)
	case "CopyObject":
		return s.copyObject(req)
	case "UnsupportedBucketSubresource", "UnsupportedObjectSubresource":
		return s3err.NotImplemented
	}
	if h, ok := extraHandlers[req.op]; ok {
		return h(s, req)
	}
	return s3err.NotImplemented
}

// handlerFunc is an operation handler registered by a resource family
// (multipart, CORS, POST uploads) in its own file.
type handlerFunc func(s *Server, req *request) error

// extraHandlers is filled by init functions of the resource-family files.
var extraHandlers = map[string]handlerFunc{}

// Bounds on reading the unread body of a refused request: enough for the
// uploads browsers and apps send through presigned URLs, small enough that
// a refused client cannot hold a request slot for long.
const (
	drainLimit   = 64 << 20
	drainTimeout = 30 * time.Second
)

// drainRefused reads, within bounds, what is left of the body of a request
// about to be refused (an expired or mis-signed presigned PUT, typically).
// Closing a connection with unread data resets it, and the client, or a
// proxy in front that answers 502 instead, would lose the error that says
// why: the uploader must see "Request has expired". A client that asked
// for 100-continue has not sent its body and is not made to.
func drainRefused(req *request) {
	r := req.r
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return
	}
	if r.ContentLength > drainLimit {
		// Not worth reading: answer and close the connection.
		req.w.Header().Set("Connection", "close")
		return
	}
	rc := http.NewResponseController(req.w)
	_ = rc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = copyBuffered(io.Discard, io.LimitReader(r.Body, drainLimit))
	_ = rc.SetReadDeadline(time.Time{})
}
