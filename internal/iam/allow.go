package iam

import (
	"path"
	"slices"
	"strings"
	"time"

	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
)

// Principal is the authenticated caller: the access key without its secret.
// A nil *Principal is an anonymous caller. Principals handed out by Service
// are shared between requests and must be treated as read-only.
type Principal struct {
	Key storage.AccessKey // SealedSecret is always nil
}

// HasScope reports whether the key holds scope, counting admin as every scope.
func (p *Principal) HasScope(scope string) bool {
	if p == nil {
		return false
	}
	return slices.Contains(p.Key.Scopes, scope) || slices.Contains(p.Key.Scopes, ScopeAdmin)
}

// Expired reports whether the key's expiry has passed at now.
func expired(k *storage.AccessKey, now time.Time) bool {
	return !k.Expires.IsZero() && !now.Before(k.Expires)
}

func denied(reason string) error {
	return s3err.AccessDenied.WithMessage("Access Denied: " + reason)
}

// Allow decides whether p may run op on bucket/key, returning nil or an
// *s3err.Error AccessDenied whose message names the reason (missing scope,
// bucket or prefix restriction, expired or disabled key).
//
// Arguments by operation:
//   - ListBuckets: bucket == ""; filter the result with CanSeeBucket.
//   - List operations (ListObjects, ListObjectsV2, ListObjectVersions,
//     ListMultipartUploads): key is the request's listing prefix, which must
//     lie inside the key's prefix restriction.
//   - DeleteObjects: call once per key in the batch.
//   - CopyObject / UploadPartCopy: this checks the destination; check the
//     source separately with op "GetObject".
//   - PostObject: key is the form's key after ${filename} substitution.
//   - Admin: bucket and key are ignored.
//
// Bucket configuration writes (write:buckets) are refused to keys restricted
// to a prefix, since they affect keys outside that prefix.
func Allow(p *Principal, op, bucket, key string) error {
	if p == nil {
		return s3err.AccessDenied
	}
	k := &p.Key
	if k.Disabled {
		return denied("key disabled")
	}
	if expired(k, time.Now()) {
		return denied("key expired")
	}
	scope, ok := ScopeFor(op)
	if !ok {
		// An operation without a table entry is allowed only to keys that
		// may do anything, so a new handler never opens a hole by default.
		if p.HasScope(ScopeAdmin) {
			return nil
		}
		return denied("operation " + op + " is not permitted to scoped keys")
	}
	if !p.HasScope(scope) {
		return denied("key lacks scope " + scope)
	}
	if op == OpAdmin || (op == "ListBuckets" && bucket == "") {
		return nil
	}
	if !p.CanSeeBucket(bucket) {
		return denied("bucket not allowed")
	}
	if k.Prefix == "" {
		return nil
	}
	if isObjectOp(op) {
		if !strings.HasPrefix(key, k.Prefix) {
			return denied("key outside prefix " + k.Prefix)
		}
		return nil
	}
	if scope == ScopeWriteBuckets {
		return denied("key restricted to prefix " + k.Prefix + " cannot change buckets")
	}
	return nil
}

// CanSeeBucket reports whether the key may see bucket name (ListBuckets
// filtering). An empty bucket list means every bucket; entries may be glob
// patterns such as "photos-*" (bucket names cannot contain glob characters).
func (p *Principal) CanSeeBucket(name string) bool {
	if p == nil || p.Key.Disabled || expired(&p.Key, time.Now()) {
		return false
	}
	return bucketAllowed(p.Key.Buckets, name)
}

func bucketAllowed(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	if name == "" {
		return false
	}
	for _, pat := range patterns {
		if pat == name {
			return true
		}
		if ok, err := path.Match(pat, name); err == nil && ok {
			return true
		}
	}
	return false
}
