package iam

import "strings"

// Scopes an access key can hold. ScopeAdmin implies every other scope.
const (
	ScopeReadObjects   = "read:objects"
	ScopeWriteObjects  = "write:objects"
	ScopeDeleteObjects = "delete:objects"
	ScopeReadBuckets   = "read:buckets"
	ScopeWriteBuckets  = "write:buckets"
	ScopeAdmin         = "admin"
)

// OpAdmin is the operation name of every admin API request.
const OpAdmin = "Admin"

// AllScopes lists the known scopes in a stable order.
var AllScopes = []string{ScopeReadObjects, ScopeWriteObjects, ScopeDeleteObjects, ScopeReadBuckets, ScopeWriteBuckets, ScopeAdmin}

// ValidScope reports whether s is a known scope.
func ValidScope(s string) bool {
	for _, k := range AllScopes {
		if s == k {
			return true
		}
	}
	return false
}

// opScopes maps S3 action names to the scope they need.
var opScopes = map[string]string{
	"ListBuckets":       ScopeReadBuckets,
	"HeadBucket":        ScopeReadBuckets,
	"GetBucketLocation": ScopeReadBuckets,
	"CreateBucket":      ScopeWriteBuckets,
	"DeleteBucket":      ScopeWriteBuckets,

	"ListObjects":          ScopeReadObjects,
	"ListObjectsV2":        ScopeReadObjects,
	"ListObjectVersions":   ScopeReadObjects,
	"ListMultipartUploads": ScopeReadObjects,
	"ListParts":            ScopeReadObjects,
	"GetObject":            ScopeReadObjects,
	"HeadObject":           ScopeReadObjects,
	"GetObjectAttributes":  ScopeReadObjects,
	"GetObjectTagging":     ScopeReadObjects,
	"GetObjectAcl":         ScopeReadObjects,

	"PutObject":               ScopeWriteObjects,
	"CopyObject":              ScopeWriteObjects,
	"PostObject":              ScopeWriteObjects,
	"CreateMultipartUpload":   ScopeWriteObjects,
	"UploadPart":              ScopeWriteObjects,
	"UploadPartCopy":          ScopeWriteObjects,
	"CompleteMultipartUpload": ScopeWriteObjects,
	"PutObjectTagging":        ScopeWriteObjects,
	"PutObjectAcl":            ScopeWriteObjects,
	// Removing tags changes an object that stays; it is a write, not a delete.
	"DeleteObjectTagging": ScopeWriteObjects,

	"DeleteObject":         ScopeDeleteObjects,
	"DeleteObjects":        ScopeDeleteObjects,
	"AbortMultipartUpload": ScopeDeleteObjects,

	OpAdmin: ScopeAdmin,
}

// ScopeFor returns the scope operation op needs. Besides the listed S3
// actions, every GetBucket* action (bucket configuration reads) needs
// read:buckets and every PutBucket*/DeleteBucket* action needs write:buckets,
// so configuration families added later are covered without a table change.
// Unknown operations return ok == false.
func ScopeFor(op string) (scope string, ok bool) {
	if s, ok := opScopes[op]; ok {
		return s, true
	}
	switch {
	case strings.HasPrefix(op, "GetBucket"):
		return ScopeReadBuckets, true
	case strings.HasPrefix(op, "PutBucket"), strings.HasPrefix(op, "DeleteBucket"):
		return ScopeWriteBuckets, true
	}
	return "", false
}

// isListOp reports whether op lists keys, in which case Allow receives the
// listing prefix in place of a key.
func isListOp(op string) bool {
	switch op {
	case "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads":
		return true
	}
	return false
}

// isObjectOp reports whether op acts on objects (or keys being listed), i.e.
// whether a key-prefix restriction applies to its key argument.
func isObjectOp(op string) bool {
	if isListOp(op) {
		return true
	}
	switch opScopes[op] {
	case ScopeReadObjects, ScopeWriteObjects, ScopeDeleteObjects:
		return true
	}
	return false
}
