package s3api

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// bucketMust loads the request's bucket or fails with NoSuchBucket.
func (s *Server) bucketMust(req *request) (storage.Bucket, error) {
	b, err := s.cfg.Meta.GetBucket(req.ctx, req.bucket)
	if errors.Is(err, storage.ErrBucketNotFound) {
		return b, s3err.NoSuchBucket
	}
	if err != nil {
		return b, storageError(err)
	}
	return b, nil
}

// checkVersionID accepts the version id "null" that cleaning tools send for
// objects of unversioned buckets.
func checkVersionID(q url.Values) error {
	if v, ok := q["versionId"]; ok && v[0] != "null" {
		return s3err.InvalidArgument.WithMessage("Invalid version id specified")
	}
	return nil
}

func (s *Server) putObject(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	if err := validKey(req.key); err != nil {
		return err
	}
	h := req.r.Header
	cs, err := parseChecksumRequest(h)
	if err != nil {
		return err
	}
	obj, err := objectFromRequest(h, req.bucket, req.key)
	if err != nil {
		return err
	}
	if obj.ContentType == "" {
		obj.ContentType = defaultType
	}
	payload, err := req.auth.Body(req.r)
	if err != nil {
		return err
	}
	size := payload.Length()
	if size < 0 {
		return s3err.MissingContentLength
	}
	if size > s.cfg.MaxObjectSize {
		return s3err.EntityTooLarge
	}
	st, err := s.storeBody(req.ctx, payload, size, cs, payload.Trailer, true)
	if err != nil {
		return err
	}
	if err := s.commitObject(req, &obj, st, cs.alg); err != nil {
		return err
	}
	wh := req.w.Header()
	wh.Set("ETag", quoteETag(obj.ETag))
	if obj.Checksum != nil {
		wh.Set(checksumHeader(obj.Checksum.Algorithm), obj.Checksum.Value)
		wh.Set("X-Amz-Checksum-Type", obj.Checksum.Type)
	}
	req.w.WriteHeader(http.StatusOK)
	return nil
}

// commitObject points obj at the stored body in one metadata transaction
// (with the request's If-Match / If-None-Match), then deletes the blobs the
// record replaced; if the commit fails, the new blobs are deleted instead.
func (s *Server) commitObject(req *request, obj *storage.Object, st *stored, alg string) error {
	obj.Size, obj.ETag, obj.Segments, obj.Inline = st.size, st.etag(), st.segments, st.inline
	obj.Checksum = nil
	if st.checksum != "" {
		obj.Checksum = &storage.Checksum{Algorithm: alg, Value: st.checksum, Type: "FULL_OBJECT"}
	}
	obj.LastModified = s.cfg.Now().UTC()
	replaced, err := s.cfg.Meta.PutObject(req.ctx, *obj, writeCheck(req.r.Header))
	if err != nil {
		s.deleteBlobs(st.blobs())
		return metaError(err)
	}
	if replaced != nil {
		s.deleteBlobs(replaced.Blobs())
	}
	return nil
}

// metaError maps storage errors of object operations to S3 errors.
func metaError(err error) error {
	switch {
	case errors.Is(err, storage.ErrBucketNotFound):
		return s3err.NoSuchBucket
	case errors.Is(err, storage.ErrObjectNotFound):
		return s3err.NoSuchKey
	case errors.Is(err, storage.ErrUploadNotFound):
		return s3err.NoSuchUpload
	}
	return storageError(err)
}

// getObject serves GET and HEAD.
func (s *Server) getObject(req *request, head bool) error {
	q := req.query
	if err := checkVersionID(q); err != nil {
		return err
	}
	obj, err := s.cfg.Meta.GetObject(req.ctx, req.bucket, req.key)
	if err != nil {
		if errors.Is(err, storage.ErrObjectNotFound) {
			if _, berr := s.bucketMust(req); berr != nil {
				return berr
			}
		}
		return metaError(err)
	}
	rh := req.r.Header
	if err := checkReadConditions(rh, &obj); err != nil {
		if e := s3err.As(err); e.Status == http.StatusNotModified {
			wh := req.w.Header()
			wh.Set("ETag", quoteETag(obj.ETag))
			wh.Set("Last-Modified", httpTime(obj.LastModified))
		}
		return err
	}
	start, length := int64(0), obj.Size
	partial, ranged := false, false
	part := 0
	wh := req.w.Header()
	if pn := q.Get("partNumber"); pn != "" {
		n, err := strconv.Atoi(pn)
		if err != nil || n < 1 || n > 10000 {
			return s3err.InvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive")
		}
		if rh.Get("Range") != "" {
			return s3err.InvalidRequest.WithMessage("Cannot specify both Range header and partNumber query parameter")
		}
		start, length, err = partRange(&obj, n)
		if err != nil {
			return err
		}
		partial, part = len(obj.Parts) > 0, n
	} else if v := rh.Get("Range"); v != "" {
		a, n, ok, err := parseRange(v, obj.Size)
		if err != nil {
			return err
		}
		if ok {
			start, length, partial, ranged = a, n, true, true
		}
	}
	setObjectHeaders(wh, &obj)
	for _, o := range responseOverrides {
		if v := q.Get(o.param); v != "" {
			wh.Set(o.header, v)
		}
	}
	if strings.EqualFold(rh.Get("X-Amz-Checksum-Mode"), "ENABLED") && !ranged {
		if c := readChecksum(&obj, part); c != nil {
			wh.Set(checksumHeader(c.Algorithm), c.Value)
			wh.Set("X-Amz-Checksum-Type", c.Type)
		}
	}
	wh.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		wh.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(obj.Size, 10))
	}
	req.w.WriteHeader(status)
	if head || length == 0 {
		return nil
	}
	if err := s.writeRange(req.ctx, req.w, &obj, start, length); err != nil {
		// Headers are gone; the client sees a short body. Log it.
		s.cfg.Logger.Warn("GET body interrupted", "request_id", req.info.RequestID, "err", err)
		return errResponseStarted
	}
	return nil
}

// errResponseStarted tells dispatch that the response is already on its way.
var errResponseStarted = errors.New("response already started")

// readChecksum is the checksum a GET or HEAD of o (of its part number
// part, when part > 0) returns with checksum mode on, nil for none. A part
// of a COMPOSITE multipart object gets its own checksum, which a client can
// check the part's bytes against; a part of a FULL_OBJECT one gets the
// object's checksum only when it is the whole object.
func readChecksum(o *storage.Object, part int) *storage.Checksum {
	c := o.Checksum
	switch {
	case c == nil || part == 0 || len(o.Parts) == 0:
		return c
	case c.Type == "COMPOSITE" && o.Parts[part-1].Checksum != "":
		return &storage.Checksum{Algorithm: c.Algorithm, Value: o.Parts[part-1].Checksum, Type: c.Type}
	case c.Type == "FULL_OBJECT" && len(o.Parts) == 1:
		return c
	}
	return nil
}

// partRange is the byte range of part n of a multipart object; a single-part
// object has one part, the whole object.
func partRange(o *storage.Object, n int) (start, length int64, err error) {
	if len(o.Parts) == 0 {
		if n != 1 {
			return 0, 0, s3err.InvalidPartNumber
		}
		return 0, o.Size, nil
	}
	if n > len(o.Parts) {
		return 0, 0, s3err.InvalidPartNumber
	}
	for _, p := range o.Parts[:n-1] {
		start += p.Size
	}
	return start, o.Parts[n-1].Size, nil
}

func (s *Server) deleteObject(req *request) error {
	if err := checkVersionID(req.query); err != nil {
		return err
	}
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	var check storage.PutCheck
	if im := req.r.Header.Get("If-Match"); im != "" {
		check = func(old *storage.Object) error {
			if old == nil {
				return s3err.NoSuchKey
			}
			if !matchETag(im, old.ETag) {
				return s3err.PreconditionFailed
			}
			return nil
		}
	}
	old, err := s.cfg.Meta.DeleteObject(req.ctx, req.bucket, req.key, check)
	if err != nil && !errors.Is(err, storage.ErrObjectNotFound) {
		return metaError(err)
	}
	if old != nil {
		s.deleteBlobs(old.Blobs())
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool     `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deletedEntry struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
}

type deleteErrorEntry struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
}

type deleteResult struct {
	XMLName xml.Name           `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedEntry     `xml:"Deleted"`
	Errors  []deleteErrorEntry `xml:"Error"`
}

func (s *Server) deleteObjects(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	h := req.r.Header
	cs, err := parseChecksumRequest(h)
	if err != nil {
		return err
	}
	if cs.contentMD5 == nil && cs.alg == "" {
		return s3err.InvalidRequest.WithMessage("Missing required header for this request: Content-Md5.")
	}
	var in deleteRequest
	if err := s.readXML(req, cs, &in); err != nil {
		return err
	}
	if len(in.Objects) == 0 || len(in.Objects) > 1000 {
		return s3err.MalformedXML
	}
	var out deleteResult
	for _, o := range in.Objects {
		fail := func(e *s3err.Error) {
			out.Errors = append(out.Errors, deleteErrorEntry{Key: o.Key, VersionID: o.VersionID, Code: e.Code, Message: e.Message})
		}
		if o.VersionID != "" && o.VersionID != "null" {
			fail(s3err.NoSuchVersion)
			continue
		}
		if err := iam.Allow(req.p, "DeleteObject", req.bucket, o.Key); err != nil {
			fail(s3err.As(err))
			continue
		}
		if err := validKey(o.Key); err != nil || o.Key == "" {
			fail(s3err.InvalidArgument.WithMessage("Invalid key"))
			continue
		}
		old, err := s.cfg.Meta.DeleteObject(req.ctx, req.bucket, o.Key, nil)
		if err != nil && !errors.Is(err, storage.ErrObjectNotFound) {
			fail(s3err.As(metaError(err)))
			continue
		}
		if old != nil {
			s.deleteBlobs(old.Blobs())
		}
		if !in.Quiet {
			out.Deleted = append(out.Deleted, deletedEntry{Key: o.Key, VersionID: o.VersionID})
		}
	}
	return writeXML(req.w, http.StatusOK, out)
}
