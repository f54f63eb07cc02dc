package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

type listEntry struct {
	Key               string `xml:"Key"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
	Size              int64  `xml:"Size"`
	Owner             *owner `xml:"Owner,omitempty"`
	StorageClass      string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

type listBucketResult struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Marker                *string        `xml:"Marker,omitempty"`
	NextMarker            string         `xml:"NextMarker,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	KeyCount              *int           `xml:"KeyCount,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	IsTruncated           bool           `xml:"IsTruncated"`
	Contents              []listEntry    `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

// listParams are the parameters shared by the listing operations.
type listParams struct {
	prefix, delimiter string
	maxKeys           int
	encode            func(string) string
	encodingType      string
}

func parseListParams(q url.Values, maxName string) (listParams, error) {
	p := listParams{prefix: q.Get("prefix"), delimiter: q.Get("delimiter"), maxKeys: 1000, encode: func(s string) string { return s }}
	if v, ok := q[maxName]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			return p, s3err.InvalidArgument.WithMessage("Provided "+maxName+" not an integer or within integer range").
				With(s3err.Field{Name: "ArgumentName", Value: maxName}, s3err.Field{Name: "ArgumentValue", Value: v[0]})
		}
		p.maxKeys = min(n, 1000)
	}
	switch et := q.Get("encoding-type"); et {
	case "":
	case "url":
		p.encodingType = "url"
		p.encode = s3URLEncode
	default:
		return p, s3err.InvalidArgument.WithMessage("Invalid Encoding Method specified in Request").
			With(s3err.Field{Name: "ArgumentName", Value: "encoding-type"}, s3err.Field{Name: "ArgumentValue", Value: et})
	}
	return p, nil
}

// s3URLEncode encodes a key for encoding-type=url. Space becomes %20 and '+'
// becomes %2B, so that decoders using either percent-decoding or form
// decoding (botocore's unquote_plus) get the key back; '/' stays readable.
func s3URLEncode(s string) string {
	e := strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	return strings.ReplaceAll(e, "%2F", "/")
}

func toEntry(o *storage.Object, enc func(string) string, withOwner bool) listEntry {
	e := listEntry{Key: enc(o.Key), LastModified: isoTime(o.LastModified), ETag: quoteETag(o.ETag), Size: o.Size, StorageClass: "STANDARD"}
	if o.Checksum != nil {
		e.ChecksumAlgorithm, e.ChecksumType = o.Checksum.Algorithm, o.Checksum.Type
	}
	if withOwner {
		own := storeOwner
		e.Owner = &own
	}
	return e
}

func (s *Server) listObjects(req *request, v2 bool) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	q := req.query
	p, err := parseListParams(q, "max-keys")
	if err != nil {
		return err
	}
	out := listBucketResult{Name: req.bucket, Prefix: p.encode(p.prefix), MaxKeys: p.maxKeys, Delimiter: p.encode(p.delimiter), EncodingType: p.encodingType}
	after := ""
	if v2 {
		if tok, ok := q["continuation-token"]; ok {
			b, err := base64.RawURLEncoding.DecodeString(tok[0])
			if err != nil || tok[0] == "" {
				return s3err.InvalidArgument.WithMessage("The continuation token provided is incorrect").
					With(s3err.Field{Name: "ArgumentName", Value: "continuation-token"})
			}
			after = string(b)
			out.ContinuationToken = tok[0]
		} else {
			after = q.Get("start-after")
		}
		out.StartAfter = p.encode(q.Get("start-after"))
	} else {
		after = q.Get("marker")
		m := p.encode(after)
		out.Marker = &m
	}
	res, err := s.cfg.Meta.ListObjects(req.ctx, req.bucket, storage.ListOptions{Prefix: p.prefix, Delimiter: p.delimiter, After: after, MaxKeys: p.maxKeys})
	if err != nil {
		return metaError(err)
	}
	withOwner := !v2 || q.Get("fetch-owner") == "true"
	for i := range res.Objects {
		out.Contents = append(out.Contents, toEntry(&res.Objects[i], p.encode, withOwner))
	}
	for _, cp := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	out.IsTruncated = res.IsTruncated
	if v2 {
		n := len(res.Objects) + len(res.CommonPrefixes)
		out.KeyCount = &n
		if res.IsTruncated {
			out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.NextAfter))
		}
	} else if res.IsTruncated && p.delimiter != "" {
		out.NextMarker = p.encode(res.NextAfter)
	}
	return writeXML(req.w, http.StatusOK, out)
}

type versionEntry struct {
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
}

type listVersionsResult struct {
	XMLName             xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
	Name                string         `xml:"Name"`
	Prefix              string         `xml:"Prefix"`
	KeyMarker           string         `xml:"KeyMarker"`
	VersionIDMarker     string         `xml:"VersionIdMarker"`
	NextKeyMarker       string         `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string         `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int            `xml:"MaxKeys"`
	Delimiter           string         `xml:"Delimiter,omitempty"`
	EncodingType        string         `xml:"EncodingType,omitempty"`
	IsTruncated         bool           `xml:"IsTruncated"`
	Versions            []versionEntry `xml:"Version"`
	CommonPrefixes      []commonPrefix `xml:"CommonPrefixes"`
}

// listObjectVersions lists each object of an unversioned bucket as its one
// version, "null", so cleaning tools work.
func (s *Server) listObjectVersions(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	q := req.query
	p, err := parseListParams(q, "max-keys")
	if err != nil {
		return err
	}
	keyMarker := q.Get("key-marker")
	out := listVersionsResult{Name: req.bucket, Prefix: p.encode(p.prefix), KeyMarker: p.encode(keyMarker),
		VersionIDMarker: q.Get("version-id-marker"), MaxKeys: p.maxKeys, Delimiter: p.encode(p.delimiter), EncodingType: p.encodingType}
	res, err := s.cfg.Meta.ListObjects(req.ctx, req.bucket, storage.ListOptions{Prefix: p.prefix, Delimiter: p.delimiter, After: keyMarker, MaxKeys: p.maxKeys})
	if err != nil {
		return metaError(err)
	}
	for _, o := range res.Objects {
		out.Versions = append(out.Versions, versionEntry{Key: p.encode(o.Key), VersionID: "null", IsLatest: true,
			LastModified: isoTime(o.LastModified), ETag: quoteETag(o.ETag), Size: o.Size, Owner: storeOwner, StorageClass: "STANDARD"})
	}
	for _, cp := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	out.IsTruncated = res.IsTruncated
	if res.IsTruncated {
		out.NextKeyMarker = p.encode(res.NextAfter)
		out.NextVersionIDMarker = "null"
	}
	return writeXML(req.w, http.StatusOK, out)
}
