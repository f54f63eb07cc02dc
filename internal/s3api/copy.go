package s3api

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"nfyio.dev/storage/internal/checksum"
	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// maxCopySize is S3's limit for a CopyObject source.
const maxCopySize = 5 << 30

// copySource parses x-amz-copy-source: "bucket/key" or "/bucket/key", URL
// encoded, with an optional "?versionId=".
func copySource(v string) (bucket, key string, err error) {
	v, version, _ := strings.Cut(v, "?")
	if version != "" {
		q, perr := url.ParseQuery(version)
		if perr != nil || (q.Has("versionId") && q.Get("versionId") != "null") {
			return "", "", s3err.NoSuchVersion
		}
	}
	dec, uerr := url.PathUnescape(v)
	if uerr != nil {
		return "", "", s3err.InvalidArgument.WithMessage("Invalid copy source encoding")
	}
	dec = strings.TrimPrefix(dec, "/")
	bucket, key, ok := strings.Cut(dec, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", s3err.InvalidArgument.WithMessage("Invalid copy source object key")
	}
	return bucket, key, nil
}

// loadCopySource authorizes and loads the source of a copy.
func (s *Server) loadCopySource(req *request) (storage.Object, error) {
	sb, sk, err := copySource(req.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return storage.Object{}, err
	}
	// A copy reads its source: the key needs read on it too.
	if err := iam.Allow(req.p, "GetObject", sb, sk); err != nil {
		return storage.Object{}, err
	}
	src, err := s.cfg.Meta.GetObject(req.ctx, sb, sk)
	if errors.Is(err, storage.ErrObjectNotFound) {
		if _, berr := s.cfg.Meta.GetBucket(req.ctx, sb); errors.Is(berr, storage.ErrBucketNotFound) {
			return src, s3err.NoSuchBucket
		}
		return src, s3err.NoSuchKey
	}
	if err != nil {
		return src, metaError(err)
	}
	if err := checkCopySourceConditions(req.r.Header, &src); err != nil {
		return src, err
	}
	return src, nil
}

// checkCopyPolicy holds a presigned copy to the signing key's presign
// policy, as a presigned PUT of the object it writes would be: a copy
// carries no body, so no signed Content-Length or Content-Type bounds what
// it creates, and the check is on size bytes of contentType (the source's
// type, or the request's with REPLACE). contentType "" skips the type: an
// UploadPartCopy writes a part, whose type the upload fixed when created.
// The errors are the PUT path's: AccessDenied naming the rule.
func checkCopyPolicy(req *request, size int64, contentType string) error {
	if !presigned(req) {
		return nil
	}
	err := iam.CheckObjectSize(req.p.Key, size)
	if err == nil && contentType != "" {
		err = iam.CheckContentType(req.p.Key, contentType)
	}
	if err != nil {
		req.info.AuthFailure = "policy"
	}
	return err
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
	checksumElements
}

func (s *Server) copyObject(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	if err := validKey(req.key); err != nil {
		return err
	}
	src, err := s.loadCopySource(req)
	if err != nil {
		return err
	}
	h := req.r.Header
	directive := h.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return s3err.InvalidArgument.WithMessage("Unknown metadata directive.")
	}
	if src.Bucket == req.bucket && src.Key == req.key && directive != "REPLACE" {
		return s3err.InvalidRequest.WithMessage("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	if src.Size > maxCopySize {
		return s3err.InvalidRequest.WithMessage("The specified copy source is larger than the maximum allowable size for a copy source: 5368709120")
	}
	obj := src
	if directive == "REPLACE" {
		if obj, err = objectFromRequest(h, req.bucket, req.key); err != nil {
			return err
		}
		if obj.ContentType == "" {
			obj.ContentType = defaultType
		}
	}
	contentType := obj.ContentType
	if contentType == "" {
		contentType = defaultType // what GET would serve
	}
	if err := checkCopyPolicy(req, src.Size, contentType); err != nil {
		return err
	}
	obj.Bucket, obj.Key, obj.Parts = req.bucket, req.key, nil
	alg := strings.ToUpper(h.Get("X-Amz-Checksum-Algorithm"))
	if alg == "" && src.Checksum != nil {
		alg = src.Checksum.Algorithm
	}
	if alg != "" && checksum.New(alg) == nil {
		return s3err.InvalidRequest.WithMessage("Invalid checksum algorithm")
	}
	body := s.rangeReader(req.ctx, &src, 0, src.Size)
	defer body.Close()
	st, err := s.storeBody(req.ctx, body, src.Size, checksumRequest{alg: alg}, nil, true)
	if err != nil {
		return err
	}
	if err := s.commitObject(req, &obj, st, alg); err != nil {
		return err
	}
	out := copyObjectResult{ETag: quoteETag(obj.ETag), LastModified: isoTime(obj.LastModified)}
	out.set(obj.Checksum)
	return writeXML(req.w, http.StatusOK, out)
}
