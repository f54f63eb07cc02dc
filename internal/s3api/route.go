package s3api

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// parsePath splits a request into bucket and key, from the path (path-style)
// or from host when it is a subdomain of domain (virtual-hosted style).
// host is the host the client addressed (Server.signedHost), the one its
// signature covers. The key is the decoded path: keys are data, so nothing
// is cleaned.
func parsePath(r *http.Request, host, domain string) (bucket, key string, ok bool) {
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		return "", "", false
	}
	path = strings.TrimPrefix(path, "/")
	if b, virtual := virtualBucket(host, domain); virtual {
		return b, path, true
	}
	bucket, key, _ = strings.Cut(path, "/")
	return bucket, key, true
}

// virtualBucket returns the bucket a virtual-hosted host names: host, less
// any port, is a subdomain of domain ("" disables virtual hosting).
func virtualBucket(host, domain string) (string, bool) {
	if domain == "" {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if !strings.HasSuffix(host, "."+domain) {
		return "", false
	}
	return strings.TrimSuffix(host, "."+domain), true
}

// subresources counts the query parameters that are not authentication: a
// presigned CreateBucket or DeleteBucket carries X-Amz-* (or SigV2) query
// parameters yet names no subresource.
func subresources(q url.Values) int {
	n := 0
	for name := range q {
		switch {
		case len(name) > 6 && strings.EqualFold(name[:6], "x-amz-"):
		case name == "X-Nfyio-Once", name == "AWSAccessKeyId", name == "Signature", name == "Expires":
		default:
			n++
		}
	}
	return n
}

// operation maps method, query and addressing to the S3 action.
func operation(r *http.Request, q url.Values, bucket, key string) string {
	has := func(name string) bool { _, ok := q[name]; return ok }
	m := r.Method
	if bucket == "" {
		if m == http.MethodGet {
			return "ListBuckets"
		}
		return ""
	}
	if key == "" {
		switch m {
		case http.MethodGet:
			switch {
			case has("location"):
				return "GetBucketLocation"
			case has("versioning"):
				return "GetBucketVersioning"
			case has("versions"):
				return "ListObjectVersions"
			case has("uploads"):
				return "ListMultipartUploads"
			case has("cors"):
				return "GetBucketCors"
			case has("acl"):
				return "GetBucketAcl"
			case has("policy"), has("lifecycle"), has("tagging"), has("encryption"), has("website"),
				has("replication"), has("logging"), has("notification"), has("object-lock"),
				has("ownershipControls"), has("publicAccessBlock"), has("accelerate"), has("requestPayment"),
				has("analytics"), has("metrics"), has("inventory"), has("intelligent-tiering"):
				return "UnsupportedBucketSubresource"
			case q.Get("list-type") == "2":
				return "ListObjectsV2"
			default:
				return "ListObjects"
			}
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodPut:
			switch {
			case has("versioning"):
				return "PutBucketVersioning"
			case has("cors"):
				return "PutBucketCors"
			case has("acl"):
				return "PutBucketAcl"
			case subresources(q) == 0:
				return "CreateBucket"
			default:
				return "UnsupportedBucketSubresource"
			}
		case http.MethodDelete:
			switch {
			case has("cors"):
				return "DeleteBucketCors"
			case subresources(q) == 0:
				return "DeleteBucket"
			default:
				return "UnsupportedBucketSubresource"
			}
		case http.MethodPost:
			switch {
			case has("delete"):
				return "DeleteObjects"
			case strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data"):
				return "PostObject"
			}
		}
		return ""
	}
	switch m {
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return "ListParts"
		case has("acl"):
			return "GetObjectAcl"
		case has("tagging"), has("retention"), has("legal-hold"), has("torrent"), has("attributes"):
			return "UnsupportedObjectSubresource"
		}
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	case http.MethodPut:
		switch {
		case has("uploadId") && r.Header.Get("X-Amz-Copy-Source") != "":
			return "UploadPartCopy"
		case has("uploadId"):
			return "UploadPart"
		case has("acl"):
			return "PutObjectAcl"
		case has("tagging"), has("retention"), has("legal-hold"):
			return "UnsupportedObjectSubresource"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodDelete:
		if has("uploadId") {
			return "AbortMultipartUpload"
		}
		if has("tagging") {
			return "UnsupportedObjectSubresource"
		}
		return "DeleteObject"
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload"
		case has("uploadId"):
			return "CompleteMultipartUpload"
		}
	}
	return ""
}
