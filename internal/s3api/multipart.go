package s3api

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"nfyio.dev/storage/internal/checksum"
	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

const (
	maxPartSize    = 5 << 30
	minPartSize    = 5 << 20
	maxPartNumber  = 10000
	defaultMaxList = 1000
)

// maxMultipartSize is S3's largest object: 10,000 parts of 5 GiB would make
// 50 TiB, so completion checks the total.
const maxMultipartSize = 5 << 40

func init() {
	extraHandlers["CreateMultipartUpload"] = (*Server).createUpload
	extraHandlers["UploadPart"] = (*Server).uploadPart
	extraHandlers["UploadPartCopy"] = (*Server).uploadPartCopy
	extraHandlers["CompleteMultipartUpload"] = (*Server).completeUpload
	extraHandlers["AbortMultipartUpload"] = (*Server).abortUpload
	extraHandlers["ListParts"] = (*Server).listParts
	extraHandlers["ListMultipartUploads"] = (*Server).listUploads
}

func newUploadID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

type initiateResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

func (s *Server) createUpload(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	if err := validKey(req.key); err != nil {
		return err
	}
	h := req.r.Header
	tmpl, err := objectFromRequest(h, req.bucket, req.key)
	if err != nil {
		return err
	}
	if tmpl.ContentType == "" {
		tmpl.ContentType = defaultType
	}
	if alg := strings.ToUpper(h.Get("X-Amz-Checksum-Algorithm")); alg != "" {
		if checksum.New(alg) == nil {
			return s3err.InvalidRequest.WithMessage("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
		}
		typ := strings.ToUpper(h.Get("X-Amz-Checksum-Type"))
		switch {
		case typ == "" && alg == "CRC64NVME":
			typ = "FULL_OBJECT"
		case typ == "":
			typ = "COMPOSITE"
		case typ == "FULL_OBJECT" && (alg == "SHA1" || alg == "SHA256"):
			return s3err.InvalidRequest.WithMessage("The FULL_OBJECT checksum type cannot be used with the " + strings.ToLower(alg) + " checksum algorithm.")
		case typ == "COMPOSITE" && alg == "CRC64NVME":
			return s3err.InvalidRequest.WithMessage("The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.")
		case typ != "FULL_OBJECT" && typ != "COMPOSITE":
			return s3err.InvalidRequest.WithMessage("Value for x-amz-checksum-type header is invalid.")
		}
		tmpl.Checksum = &storage.Checksum{Algorithm: alg, Type: typ}
	}
	u := storage.Upload{Bucket: req.bucket, Key: req.key, ID: newUploadID(), Initiated: s.cfg.Now().UTC(), Template: tmpl}
	if err := s.cfg.Meta.CreateUpload(req.ctx, u); err != nil {
		return metaError(err)
	}
	if tmpl.Checksum != nil {
		req.w.Header().Set("X-Amz-Checksum-Algorithm", tmpl.Checksum.Algorithm)
		req.w.Header().Set("X-Amz-Checksum-Type", tmpl.Checksum.Type)
	}
	return writeXML(req.w, http.StatusOK, initiateResult{Bucket: req.bucket, Key: req.key, UploadID: u.ID})
}

// partTarget reads partNumber and uploadId and loads the upload.
func (s *Server) partTarget(req *request) (storage.Upload, int, error) {
	q := req.query
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > maxPartNumber {
		return storage.Upload{}, 0, s3err.InvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive").
			With(s3err.Field{Name: "ArgumentName", Value: "partNumber"}, s3err.Field{Name: "ArgumentValue", Value: q.Get("partNumber")})
	}
	u, err := s.getUpload(req)
	return u, n, err
}

func (s *Server) getUpload(req *request) (storage.Upload, error) {
	id := req.query.Get("uploadId")
	u, err := s.cfg.Meta.GetUpload(req.ctx, req.bucket, req.key, id)
	if errors.Is(err, storage.ErrUploadNotFound) || errors.Is(err, storage.ErrBucketNotFound) {
		if _, berr := s.bucketMust(req); berr != nil {
			return u, berr
		}
		return u, s3err.NoSuchUpload.With(s3err.Field{Name: "UploadId", Value: id})
	}
	if err != nil {
		return u, metaError(err)
	}
	return u, nil
}

// uploadLocks serialise, per upload, recording a part (with the deletion
// of the blob it replaced) against completing the upload. Without them a
// part re-uploaded after Complete read the parts but before it committed
// would have its old blob deleted while the new object points at it. The
// locks are striped by upload ID and shared by every Server in the process,
// which costs only contention. They cover one process: nodes of a
// scale-out deployment racing on one upload need the metadata store to
// refuse a completion whose parts changed.
var uploadLocks [256]sync.Mutex

// lockUpload takes the upload's lock; the returned function releases it
// and may be called more than once.
func lockUpload(id string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(id))
	mu := &uploadLocks[h.Sum32()%uint32(len(uploadLocks))]
	mu.Lock()
	locked := true
	return func() {
		if locked {
			locked = false
			mu.Unlock()
		}
	}
}

// savePart records a stored part, deleting whatever it replaced; if the
// upload went away meanwhile the new blob is deleted and NoSuchUpload returned.
func (s *Server) savePart(req *request, u storage.Upload, p storage.Part, st *stored) error {
	unlock := lockUpload(u.ID)
	defer unlock()
	replaced, err := s.cfg.Meta.PutPart(req.ctx, u.Bucket, u.Key, u.ID, p)
	if err != nil {
		s.deleteBlobs(st.blobs())
		if errors.Is(err, storage.ErrUploadNotFound) {
			return s3err.NoSuchUpload
		}
		return metaError(err)
	}
	if replaced != nil && replaced.Segment.Blob != p.Segment.Blob {
		s.deleteBlobs([]string{replaced.Segment.Blob})
	}
	return nil
}

func (s *Server) uploadPart(req *request) error {
	u, n, err := s.partTarget(req)
	if err != nil {
		return err
	}
	cs, err := parseChecksumRequest(req.r.Header)
	if err != nil {
		return err
	}
	if cs.alg == "" && u.Template.Checksum != nil {
		// The upload promised a checksum: compute it even when the part
		// request carries none, so completion can build the object's.
		cs.alg = u.Template.Checksum.Algorithm
	}
	if u.Template.Checksum != nil && cs.alg != u.Template.Checksum.Algorithm {
		return s3err.InvalidRequest.WithMessage("Checksum Type mismatch occurred, expected checksum Type: " + strings.ToLower(u.Template.Checksum.Algorithm) + ", actual checksum Type: " + strings.ToLower(cs.alg))
	}
	payload, err := req.auth.Body(req.r)
	if err != nil {
		return err
	}
	size := payload.Length()
	if size < 0 {
		return s3err.MissingContentLength
	}
	if size > maxPartSize {
		return s3err.EntityTooLarge
	}
	st, err := s.storePart(req, payload, size, cs, payload.Trailer)
	if err != nil {
		return err
	}
	p := storage.Part{Number: n, Size: st.size, ETag: st.etag(), LastModified: s.cfg.Now().UTC(), Segment: st.segments[0]}
	if st.checksum != "" {
		p.Checksum = &storage.Checksum{Algorithm: cs.alg, Value: st.checksum}
	}
	if err := s.savePart(req, u, p, st); err != nil {
		return err
	}
	wh := req.w.Header()
	wh.Set("ETag", quoteETag(p.ETag))
	if p.Checksum != nil {
		wh.Set(checksumHeader(p.Checksum.Algorithm), p.Checksum.Value)
	}
	req.w.WriteHeader(http.StatusOK)
	return nil
}

// storePart stores a part body as a blob: parts are never inlined, because
// the completed object references their blobs.
func (s *Server) storePart(req *request, body io.Reader, size int64, cs checksumRequest, trailer func() http.Header) (*stored, error) {
	return s.storeBody(req.ctx, body, size, cs, trailer, false)
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
	checksumElements
}

func (s *Server) uploadPartCopy(req *request) error {
	u, n, err := s.partTarget(req)
	if err != nil {
		return err
	}
	src, err := s.loadCopySource(req)
	if err != nil {
		return err
	}
	start, length := int64(0), src.Size
	if v := req.r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		a, b, ok := parseCopyRange(v)
		if !ok {
			return s3err.InvalidArgument.WithMessage("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy").
				With(s3err.Field{Name: "ArgumentName", Value: "x-amz-copy-source-range"}, s3err.Field{Name: "ArgumentValue", Value: v})
		}
		if b >= src.Size {
			// S3 answers a well-formed range past the source's end so.
			return s3err.InvalidArgument.WithMessage("Range specified is not valid for source object of size: " + strconv.FormatInt(src.Size, 10))
		}
		start, length = a, b-a+1
	}
	if length > maxPartSize {
		return s3err.InvalidRequest.WithMessage("The specified copy source is larger than the maximum allowable size for a copy source: 5368709120")
	}
	// As a presigned UploadPart's signed length is, before anything is stored.
	if err := checkCopyPolicy(req, length, ""); err != nil {
		return err
	}
	var cs checksumRequest
	if u.Template.Checksum != nil {
		cs.alg = u.Template.Checksum.Algorithm
	}
	body := s.rangeReader(req.ctx, &src, start, length)
	defer body.Close()
	st, err := s.storePart(req, body, length, cs, nil)
	if err != nil {
		return err
	}
	p := storage.Part{Number: n, Size: st.size, ETag: st.etag(), LastModified: s.cfg.Now().UTC(), Segment: st.segments[0]}
	if st.checksum != "" {
		p.Checksum = &storage.Checksum{Algorithm: cs.alg, Value: st.checksum}
	}
	if err := s.savePart(req, u, p, st); err != nil {
		return err
	}
	out := copyPartResult{ETag: quoteETag(p.ETag), LastModified: isoTime(p.LastModified)}
	if p.Checksum != nil {
		// A part's own checksum: its type belongs to the upload, not here.
		out.set(&storage.Checksum{Algorithm: p.Checksum.Algorithm, Value: p.Checksum.Value})
	}
	return writeXML(req.w, http.StatusOK, out)
}

func parseCopyRange(v string) (a, b int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found {
		return 0, 0, false
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseInt(first, 10, 64)
	b, err2 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return 0, 0, false
	}
	return a, b, true
}

type completePart struct {
	PartNumber        int    `xml:"PartNumber"`
	ETag              string `xml:"ETag"`
	ChecksumCRC32     string `xml:"ChecksumCRC32"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME"`
	ChecksumSHA1      string `xml:"ChecksumSHA1"`
	ChecksumSHA256    string `xml:"ChecksumSHA256"`
}

func (p *completePart) checksum(alg string) string {
	switch alg {
	case "CRC32":
		return p.ChecksumCRC32
	case "CRC32C":
		return p.ChecksumCRC32C
	case "CRC64NVME":
		return p.ChecksumCRC64NVME
	case "SHA1":
		return p.ChecksumSHA1
	case "SHA256":
		return p.ChecksumSHA256
	}
	return ""
}

type completeRequest struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Parts   []completePart `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
	checksumElements
}

// checksumElements are the checksum elements of a result document.
type checksumElements struct {
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
}

func (c *checksumElements) set(ck *storage.Checksum) {
	if ck == nil {
		return
	}
	switch ck.Algorithm {
	case "CRC32":
		c.ChecksumCRC32 = ck.Value
	case "CRC32C":
		c.ChecksumCRC32C = ck.Value
	case "CRC64NVME":
		c.ChecksumCRC64NVME = ck.Value
	case "SHA1":
		c.ChecksumSHA1 = ck.Value
	case "SHA256":
		c.ChecksumSHA256 = ck.Value
	}
	c.ChecksumType = ck.Type
}

// allParts loads every recorded part of an upload, by number.
func (s *Server) allParts(req *request, u storage.Upload) (map[int]storage.Part, error) {
	parts := map[int]storage.Part{}
	after := 0
	for {
		page, more, err := s.cfg.Meta.ListParts(req.ctx, u.Bucket, u.Key, u.ID, after, defaultMaxList)
		if err != nil {
			return nil, metaError(err)
		}
		for _, p := range page {
			parts[p.Number] = p
			after = p.Number
		}
		if !more || len(page) == 0 {
			return parts, nil
		}
	}
}

func (s *Server) completeUpload(req *request) error {
	u, err := s.getUpload(req)
	if err != nil {
		return err
	}
	// The checksum headers of Complete describe the whole object, not this
	// XML body; only Content-MD5 covers the body.
	var bodyCS checksumRequest
	if v := req.r.Header.Values("Content-Md5"); len(v) > 0 {
		if bodyCS, err = parseChecksumRequest(http.Header{"Content-Md5": v}); err != nil {
			return err
		}
	}
	want, err := objectChecksumHeaders(req.r.Header)
	if err != nil {
		return err
	}
	var in completeRequest
	if err := s.readXML(req, bodyCS, &in); err != nil {
		return err
	}
	if len(in.Parts) == 0 {
		return s3err.MalformedXML.WithMessage("The XML you provided was not well-formed or did not validate against our published schema")
	}
	// From reading the parts to committing the object, no part of this
	// upload may be replaced (see uploadLocks).
	unlock := lockUpload(u.ID)
	defer unlock()
	recorded, err := s.allParts(req, u)
	if err != nil {
		return err
	}
	obj := u.Template
	obj.Bucket, obj.Key = u.Bucket, u.Key
	obj.Segments, obj.Parts, obj.Inline = nil, nil, nil
	md5s := md5.New()
	var sums []string
	var sizes []int64
	// S3 judges the list as a whole first: its order, then whether every
	// part exists, and only then the sizes, so a list that is both out of
	// order and holds a small part is InvalidPartOrder.
	prev := 0
	for _, cp := range in.Parts {
		if cp.PartNumber <= prev {
			return s3err.InvalidPartOrder
		}
		prev = cp.PartNumber
	}
	for _, cp := range in.Parts {
		p, ok := recorded[cp.PartNumber]
		if !ok || strings.Trim(cp.ETag, `" `) != p.ETag {
			return s3err.InvalidPart.With(s3err.Field{Name: "UploadId", Value: u.ID}, s3err.Field{Name: "PartNumber", Value: strconv.Itoa(cp.PartNumber)}, s3err.Field{Name: "ETag", Value: cp.ETag})
		}
	}
	for i, cp := range in.Parts {
		p := recorded[cp.PartNumber]
		if i < len(in.Parts)-1 && p.Size < minPartSize {
			return s3err.EntityTooSmall.With(
				s3err.Field{Name: "ProposedSize", Value: strconv.FormatInt(p.Size, 10)},
				s3err.Field{Name: "MinSizeAllowed", Value: strconv.Itoa(minPartSize)},
				s3err.Field{Name: "PartNumber", Value: strconv.Itoa(p.Number)},
				s3err.Field{Name: "ETag", Value: p.ETag})
		}
		if obj.Checksum != nil {
			got := ""
			if p.Checksum != nil {
				got = p.Checksum.Value
			}
			if sent := cp.checksum(obj.Checksum.Algorithm); sent != "" && sent != got {
				return s3err.InvalidPart.WithMessage("The checksum of part " + strconv.Itoa(p.Number) + " does not match the checksum given in the request.")
			}
			sums = append(sums, got)
		}
		b, _ := hex.DecodeString(p.ETag)
		md5s.Write(b)
		sizes = append(sizes, p.Size)
		obj.Size += p.Size
		obj.Segments = append(obj.Segments, p.Segment)
		info := storage.PartInfo{Number: p.Number, Size: p.Size, ETag: p.ETag}
		if p.Checksum != nil {
			info.Checksum = p.Checksum.Value
		}
		obj.Parts = append(obj.Parts, info)
	}
	// Each presigned part was checked against the key's size limit on its
	// own; the object the parts make must be within it too.
	if presigned(req) {
		if err := iam.CheckObjectSize(req.p.Key, obj.Size); err != nil {
			req.info.AuthFailure = "policy"
			return err
		}
	}
	if obj.Size > maxMultipartSize {
		return s3err.EntityTooLarge.With(s3err.Field{Name: "ProposedSize", Value: strconv.FormatInt(obj.Size, 10)},
			s3err.Field{Name: "MaxSizeAllowed", Value: strconv.FormatInt(maxMultipartSize, 10)})
	}
	obj.ETag = hex.EncodeToString(md5s.Sum(nil)) + "-" + strconv.Itoa(len(in.Parts))
	if obj.Checksum != nil {
		ck := *obj.Checksum
		if ck.Type == "FULL_OBJECT" {
			ck.Value, err = checksum.CombineCRC(ck.Algorithm, sums, sizes)
		} else {
			ck.Value, err = checksum.Composite(ck.Algorithm, sums)
		}
		if err != nil {
			return s3err.InvalidPart.Wrap(err)
		}
		if err := want.verify(ck, len(in.Parts)); err != nil {
			return err
		}
		obj.Checksum = &ck
	}
	obj.LastModified = s.cfg.Now().UTC()
	replaced, unused, err := s.cfg.Meta.CompleteUpload(req.ctx, u.Bucket, u.Key, u.ID, obj, writeCheck(req.r.Header))
	unlock()
	if err != nil {
		switch {
		case errors.Is(err, storage.ErrUploadNotFound):
			return s3err.NoSuchUpload
		case errors.Is(err, storage.ErrPartChanged):
			// A part was uploaded again meanwhile (on another node): the
			// ETags the client listed no longer name the stored parts.
			return s3err.InvalidPart.With(s3err.Field{Name: "UploadId", Value: u.ID})
		}
		return metaError(err)
	}
	var drop []string
	if replaced != nil {
		drop = replaced.Blobs()
	}
	for _, p := range unused {
		drop = append(drop, p.Segment.Blob)
	}
	s.deleteBlobs(drop)
	out := completeResult{Location: s.objectURL(req, u.Key), Bucket: u.Bucket, Key: u.Key, ETag: quoteETag(obj.ETag)}
	out.set(obj.Checksum)
	return writeXML(req.w, http.StatusOK, out)
}

// objectChecksum is what a Complete request declares about the object's
// checksum in x-amz-checksum-<alg> and x-amz-checksum-type.
type objectChecksum struct {
	alg   string
	value string // base64, without a "-N" suffix
	parts int    // N of a "-N" suffix, 0 when there was none
	typ   string
}

// objectChecksumHeaders reads the object checksum of a Complete request. A
// COMPOSITE value may come with or without its "-N" suffix: the SDKs send
// it without one.
func objectChecksumHeaders(h http.Header) (objectChecksum, error) {
	var c objectChecksum
	for _, alg := range checksum.Algorithms {
		v := h.Get(checksumHeader(alg))
		if v == "" {
			continue
		}
		if c.alg != "" {
			return c, s3err.InvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		invalid := s3err.InvalidRequest.WithMessage("Value for x-amz-checksum-" + strings.ToLower(alg) + " header is invalid.")
		val, n := v, 0
		// '-' is not in the base64 alphabet, so it can only start a suffix.
		if i := strings.LastIndexByte(v, '-'); i >= 0 {
			k, err := strconv.Atoi(v[i+1:])
			if err != nil || k < 1 || k > maxPartNumber {
				return c, invalid
			}
			val, n = v[:i], k
		}
		if b, err := base64.StdEncoding.DecodeString(val); err != nil || len(b) != checksum.Size(alg) {
			return c, invalid
		}
		c.alg, c.value, c.parts = alg, val, n
	}
	c.typ = strings.ToUpper(h.Get("X-Amz-Checksum-Type"))
	if c.typ != "" && c.typ != "COMPOSITE" && c.typ != "FULL_OBJECT" {
		return c, s3err.InvalidRequest.WithMessage("Value for x-amz-checksum-type header is invalid.")
	}
	return c, nil
}

// verify compares the declared checksum with the one computed from the parts.
func (c objectChecksum) verify(ck storage.Checksum, parts int) error {
	if c.typ != "" && c.typ != ck.Type {
		return s3err.BadDigest.WithMessage("The upload was created using the " + ck.Type + " checksum mode. The complete request must use the same checksum mode.")
	}
	if c.alg == "" {
		return nil
	}
	if c.alg != ck.Algorithm {
		return s3err.InvalidRequest.WithMessage("Checksum Type mismatch occurred, expected checksum Type: " + strings.ToLower(ck.Algorithm) + ", actual checksum Type: " + strings.ToLower(c.alg))
	}
	value, _, _ := strings.Cut(ck.Value, "-")
	if c.value != value || (c.parts != 0 && (ck.Type != "COMPOSITE" || c.parts != parts)) {
		return s3err.BadDigest.WithMessage("The " + strings.ToLower(checksumHeader(ck.Algorithm)) + " you specified did not match the calculated checksum.")
	}
	return nil
}

func (s *Server) abortUpload(req *request) error {
	u, err := s.getUpload(req)
	if err != nil {
		return err
	}
	parts, err := s.cfg.Meta.AbortUpload(req.ctx, u.Bucket, u.Key, u.ID)
	if errors.Is(err, storage.ErrUploadNotFound) {
		return s3err.NoSuchUpload
	}
	if err != nil {
		return metaError(err)
	}
	refs := make([]string, 0, len(parts))
	for _, p := range parts {
		refs = append(refs, p.Segment.Blob)
	}
	s.deleteBlobs(refs)
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

type partEntry struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	checksumElements
}

type listPartsResult struct {
	XMLName              xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
	Bucket               string      `xml:"Bucket"`
	Key                  string      `xml:"Key"`
	UploadID             string      `xml:"UploadId"`
	Initiator            owner       `xml:"Initiator"`
	Owner                owner       `xml:"Owner"`
	StorageClass         string      `xml:"StorageClass"`
	PartNumberMarker     int         `xml:"PartNumberMarker"`
	NextPartNumberMarker int         `xml:"NextPartNumberMarker"`
	MaxParts             int         `xml:"MaxParts"`
	IsTruncated          bool        `xml:"IsTruncated"`
	ChecksumAlgorithm    string      `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType         string      `xml:"ChecksumType,omitempty"`
	Parts                []partEntry `xml:"Part"`
}

func intParam(v string, def, max int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, s3err.InvalidArgument.WithMessage("Provided "+name+" not an integer or within integer range").
			With(s3err.Field{Name: "ArgumentName", Value: name}, s3err.Field{Name: "ArgumentValue", Value: v})
	}
	return min(n, max), nil
}

func (s *Server) listParts(req *request) error {
	u, err := s.getUpload(req)
	if err != nil {
		return err
	}
	q := req.query
	maxParts, err := intParam(q.Get("max-parts"), defaultMaxList, defaultMaxList, "max-parts")
	if err != nil {
		return err
	}
	marker, err := intParam(q.Get("part-number-marker"), 0, maxPartNumber, "part-number-marker")
	if err != nil {
		return err
	}
	parts, more, err := s.cfg.Meta.ListParts(req.ctx, u.Bucket, u.Key, u.ID, marker, maxParts)
	if err != nil {
		return metaError(err)
	}
	out := listPartsResult{Bucket: u.Bucket, Key: u.Key, UploadID: u.ID, Initiator: storeOwner, Owner: storeOwner,
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxParts, IsTruncated: more}
	if u.Template.Checksum != nil {
		out.ChecksumAlgorithm, out.ChecksumType = u.Template.Checksum.Algorithm, u.Template.Checksum.Type
	}
	for _, p := range parts {
		e := partEntry{PartNumber: p.Number, LastModified: isoTime(p.LastModified), ETag: quoteETag(p.ETag), Size: p.Size}
		if p.Checksum != nil {
			e.set(&storage.Checksum{Algorithm: p.Checksum.Algorithm, Value: p.Checksum.Value})
		}
		out.Parts = append(out.Parts, e)
		out.NextPartNumberMarker = p.Number
	}
	return writeXML(req.w, http.StatusOK, out)
}

type uploadEntry struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
	ChecksumAlg  string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType string `xml:"ChecksumType,omitempty"`
}

type listUploadsResult struct {
	XMLName            xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
	Bucket             string         `xml:"Bucket"`
	KeyMarker          string         `xml:"KeyMarker"`
	UploadIDMarker     string         `xml:"UploadIdMarker"`
	NextKeyMarker      string         `xml:"NextKeyMarker,omitempty"`
	NextUploadIDMarker string         `xml:"NextUploadIdMarker,omitempty"`
	Delimiter          string         `xml:"Delimiter,omitempty"`
	Prefix             string         `xml:"Prefix"`
	MaxUploads         int            `xml:"MaxUploads"`
	EncodingType       string         `xml:"EncodingType,omitempty"`
	IsTruncated        bool           `xml:"IsTruncated"`
	Uploads            []uploadEntry  `xml:"Upload"`
	CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
}

func (s *Server) listUploads(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	q := req.query
	p, err := parseListParams(q, "max-uploads")
	if err != nil {
		return err
	}
	opts := storage.ListUploadsOptions{Prefix: p.prefix, Delimiter: p.delimiter, KeyMarker: q.Get("key-marker"),
		UploadIDMarker: q.Get("upload-id-marker"), MaxUploads: p.maxKeys}
	res, err := s.cfg.Meta.ListUploads(req.ctx, req.bucket, opts)
	if err != nil {
		return metaError(err)
	}
	out := listUploadsResult{Bucket: req.bucket, KeyMarker: p.encode(opts.KeyMarker), UploadIDMarker: opts.UploadIDMarker,
		Delimiter: p.encode(p.delimiter), Prefix: p.encode(p.prefix), MaxUploads: p.maxKeys, EncodingType: p.encodingType, IsTruncated: res.IsTruncated}
	for _, u := range res.Uploads {
		e := uploadEntry{Key: p.encode(u.Key), UploadID: u.ID, Initiator: storeOwner, Owner: storeOwner, StorageClass: "STANDARD", Initiated: isoTime(u.Initiated)}
		if u.Template.Checksum != nil {
			e.ChecksumAlg, e.ChecksumType = u.Template.Checksum.Algorithm, u.Template.Checksum.Type
		}
		out.Uploads = append(out.Uploads, e)
	}
	for _, cp := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	if res.IsTruncated {
		// The next page starts after the last entry of this one, which is
		// an upload or a common prefix, whichever sorts later; a prefix as
		// key marker skips every upload under it.
		var lastKey, lastID string
		if n := len(res.Uploads); n > 0 {
			lastKey, lastID = res.Uploads[n-1].Key, res.Uploads[n-1].ID
		}
		if n := len(res.CommonPrefixes); n > 0 && res.CommonPrefixes[n-1] > lastKey {
			lastKey, lastID = res.CommonPrefixes[n-1], ""
		}
		if lastKey != "" {
			out.NextKeyMarker, out.NextUploadIDMarker = p.encode(lastKey), lastID
		}
	}
	return writeXML(req.w, http.StatusOK, out)
}
