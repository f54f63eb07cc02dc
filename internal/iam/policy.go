package iam

import (
	"fmt"
	"mime"
	"strings"
	"time"

	"nfyio.dev/storage/internal/storage"
)

// HasPresignPolicy reports whether k carries any presign limit, so the server
// can skip CheckPresignPolicy for unrestricted keys.
func HasPresignPolicy(k storage.AccessKey) bool {
	return k.MaxURLTTL > 0 || k.MaxObjectSize > 0 || len(k.ContentTypes) > 0
}

// sizeLimitedOp reports whether op uploads bytes whose count the key's
// MaxObjectSize bounds in a single request.
func sizeLimitedOp(op string) bool {
	return op == "PutObject" || op == "UploadPart" || op == "PostObject"
}

// typeLimitedOp reports whether op fixes the content type of a new object.
func typeLimitedOp(op string) bool {
	return op == "PutObject" || op == "PostObject" || op == "CreateMultipartUpload"
}

// CheckPresignPolicy checks a presigned URL or POST policy made with key k
// against the key's limits, returning nil or AccessDenied naming the rule.
//
//   - expiresIn: the lifetime the signer gave the URL (X-Amz-Expires, or the
//     POST policy's expiration minus its signing time).
//   - signedContentLength: the upload size fixed by the signature, -1 when
//     the signature does not fix it. For POST pass the upper bound of the
//     policy's content-length-range.
//   - signedContentType: the Content-Type fixed by the signature, "" when
//     the signature does not fix it.
//
// With a size limit, uploads must sign their size so the URL cannot carry
// more; with a content-type list, new objects must sign their type. A
// multipart upload's parts are checked one by one; call CheckObjectSize with
// the total at completion. A copy carries no body: call CheckObjectSize and
// CheckContentType with what it would write.
func CheckPresignPolicy(k storage.AccessKey, expiresIn time.Duration, op string, signedContentLength int64, signedContentType string) error {
	if k.MaxURLTTL > 0 && expiresIn > k.MaxURLTTL {
		return denied(fmt.Sprintf("URL lifetime %s exceeds the key's limit of %s", expiresIn, k.MaxURLTTL))
	}
	if k.MaxObjectSize > 0 && sizeLimitedOp(op) {
		if signedContentLength < 0 {
			return denied(fmt.Sprintf("upload size must be signed, the key limits uploads to %d bytes", k.MaxObjectSize))
		}
		if err := CheckObjectSize(k, signedContentLength); err != nil {
			return err
		}
	}
	if len(k.ContentTypes) > 0 && typeLimitedOp(op) {
		if signedContentType == "" {
			return denied("content type must be signed, the key allows only " + strings.Join(k.ContentTypes, ", "))
		}
		if err := CheckContentType(k, signedContentType); err != nil {
			return err
		}
	}
	return nil
}

// CheckContentType returns AccessDenied when the key limits content types
// and contentType is not among them. A presigned copy (CopyObject) fixes no
// type by its signature: the server checks the type the new object would
// get, its source's or the one the request gives with REPLACE.
func CheckContentType(k storage.AccessKey, contentType string) error {
	if len(k.ContentTypes) > 0 && !ContentTypeAllowed(k.ContentTypes, contentType) {
		return denied("content type " + contentType + " is not allowed for this key")
	}
	return nil
}

// CheckObjectSize returns AccessDenied when size exceeds the key's
// MaxObjectSize: the total of a multipart upload at completion, or what a
// presigned copy (CopyObject, UploadPartCopy) would write, which no signed
// Content-Length bounds.
func CheckObjectSize(k storage.AccessKey, size int64) error {
	if k.MaxObjectSize > 0 && size > k.MaxObjectSize {
		return denied(fmt.Sprintf("upload size %d exceeds the key's limit of %d bytes", size, k.MaxObjectSize))
	}
	return nil
}

// ContentTypeAllowed reports whether contentType matches one of patterns:
// exact media types ("image/png"), type wildcards ("image/*") or "*/*".
// Parameters such as "; charset=utf-8" are ignored and case does not matter.
func ContentTypeAllowed(patterns []string, contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.Contains(mt, "/") {
		return false
	}
	typ, _, _ := strings.Cut(mt, "/")
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "*/*" || p == "*":
			return true
		case strings.HasSuffix(p, "/*"):
			if strings.TrimSuffix(p, "/*") == typ {
				return true
			}
		case p == mt:
			return true
		}
	}
	return false
}

// validContentTypePattern reports whether p is a pattern ContentTypeAllowed
// understands.
func validContentTypePattern(p string) bool {
	if p == "*/*" || p == "*" {
		return true
	}
	typ, sub, ok := strings.Cut(p, "/")
	if !ok || typ == "" || sub == "" || typ == "*" {
		return false
	}
	if sub == "*" {
		sub = "x"
	}
	mt, params, err := mime.ParseMediaType(typ + "/" + sub)
	return err == nil && len(params) == 0 && strings.Contains(mt, "/")
}
