package s3api

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// owner is the single owner of every bucket: the store is one account.
type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

var storeOwner = owner{ID: "6e66796f00000000000000000000000000000000000000000000000000000001", DisplayName: "nfyio"}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

type listBucketsResult struct {
	XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   owner         `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
	Prefix  string        `xml:"Prefix,omitempty"`
}

func (s *Server) listBuckets(req *request) error {
	all, err := s.cfg.Meta.ListBuckets(req.ctx)
	if err != nil {
		return storageError(err)
	}
	prefix := req.query.Get("prefix")
	out := listBucketsResult{Owner: storeOwner, Prefix: prefix, Buckets: []bucketEntry{}}
	for _, b := range all {
		if req.p != nil && !req.p.CanSeeBucket(b.Name) {
			continue
		}
		if prefix != "" && (len(b.Name) < len(prefix) || b.Name[:len(prefix)] != prefix) {
			continue
		}
		out.Buckets = append(out.Buckets, bucketEntry{Name: b.Name, CreationDate: isoTime(b.Created), BucketRegion: s.cfg.Region})
	}
	return writeXML(req.w, http.StatusOK, out)
}

type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string   `xml:"LocationConstraint"`
}

func (s *Server) createBucket(req *request) error {
	if !validBucketName(req.bucket) {
		return s3err.InvalidBucketName.With(s3err.Field{Name: "BucketName", Value: req.bucket})
	}
	// The body, when present, names a location; any region is accepted,
	// but the document must be well formed.
	body, err := io.ReadAll(io.LimitReader(req.r.Body, maxXMLBody))
	if err != nil {
		return bodyError(err)
	}
	if len(body) > 0 {
		var cfg createBucketConfiguration
		if err := decodeXML(body, &cfg); err != nil {
			return err
		}
	}
	err = s.cfg.Meta.CreateBucket(req.ctx, storage.Bucket{Name: req.bucket, Created: s.cfg.Now().UTC()})
	if errors.Is(err, storage.ErrBucketExists) {
		return s3err.BucketAlreadyOwnedByYou.With(s3err.Field{Name: "BucketName", Value: req.bucket})
	}
	if err != nil {
		return storageError(err)
	}
	req.w.Header().Set("Location", "/"+req.bucket)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) headBucket(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	req.w.Header().Set("X-Amz-Bucket-Region", s.cfg.Region)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucket(req *request) error {
	err := s.cfg.Meta.DeleteBucket(req.ctx, req.bucket)
	switch {
	case errors.Is(err, storage.ErrBucketNotFound):
		return s3err.NoSuchBucket
	case errors.Is(err, storage.ErrBucketNotEmpty):
		return s3err.BucketNotEmpty.With(s3err.Field{Name: "BucketName", Value: req.bucket})
	case err != nil:
		return storageError(err)
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

type locationConstraint struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
	Region  string   `xml:",chardata"`
}

func (s *Server) getBucketLocation(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	region := s.cfg.Region
	if region == "us-east-1" {
		// S3 reports the original region as an empty constraint.
		region = ""
	}
	return writeXML(req.w, http.StatusOK, locationConstraint{Region: region})
}

type versioningConfiguration struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
	Status  string   `xml:"Status,omitempty"`
}

// getBucketVersioning answers "never enabled": an empty configuration.
func (s *Server) getBucketVersioning(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	return writeXML(req.w, http.StatusOK, versioningConfiguration{})
}

type grant struct {
	Grantee struct {
		XMLNS       string `xml:"xmlns:xsi,attr"`
		Type        string `xml:"xsi:type,attr"`
		ID          string `xml:"ID"`
		DisplayName string `xml:"DisplayName"`
	} `xml:"Grantee"`
	Permission string `xml:"Permission"`
}

type accessControlPolicy struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
	Owner   owner    `xml:"Owner"`
	Grants  []grant  `xml:"AccessControlList>Grant"`
}

// getACL reports the one ACL every bucket and object has here: the owner
// with FULL_CONTROL. Tools such as s3cmd read it.
func (s *Server) getACL(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	if req.key != "" {
		if _, err := s.cfg.Meta.GetObject(req.ctx, req.bucket, req.key); err != nil {
			return metaError(err)
		}
	}
	var g grant
	g.Grantee.XMLNS = "http://www.w3.org/2001/XMLSchema-instance"
	g.Grantee.Type = "CanonicalUser"
	g.Grantee.ID = storeOwner.ID
	g.Grantee.DisplayName = storeOwner.DisplayName
	g.Permission = "FULL_CONTROL"
	return writeXML(req.w, http.StatusOK, accessControlPolicy{Owner: storeOwner, Grants: []grant{g}})
}

// putACL accepts the private canned ACL, the only one this store has.
func (s *Server) putACL(req *request) error {
	if _, err := s.bucketMust(req); err != nil {
		return err
	}
	if acl := req.r.Header.Get("X-Amz-Acl"); acl != "" && acl != "private" && acl != "bucket-owner-full-control" {
		return s3err.NotImplemented.WithMessage("Only the private ACL is supported.")
	}
	req.w.WriteHeader(http.StatusOK)
	return nil
}
