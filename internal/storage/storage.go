// Package storage defines the two interfaces that keep the S3 layer apart from
// the backends: Meta (buckets, object records, multipart uploads, access keys,
// one-time URL redemptions) and Blobs (immutable byte streams addressed by a
// reference). The embedded backends (fsblob, boltmeta) and the scale-out ones
// (pgmeta, seaweedblob) implement them; storagetest holds the conformance
// suite that every backend's tests run.
//
// The crash-safety rule that holds for every backend: a write streams to a new
// blob, the blob is committed (durable), then one Meta transaction points the
// record at it; blobs the transaction replaced are deleted only after it
// commits. Metadata therefore never points at a missing blob, and a crash
// leaves at most an orphan blob, which Blobs.List lets a sweeper find.
package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Errors every backend returns (wrapped is fine; callers use errors.Is).
var (
	ErrBucketNotFound   = errors.New("bucket not found")
	ErrBucketExists     = errors.New("bucket already exists")
	ErrBucketNotEmpty   = errors.New("bucket not empty")
	ErrObjectNotFound   = errors.New("object not found")
	ErrUploadNotFound   = errors.New("multipart upload not found")
	ErrKeyNotFound      = errors.New("access key not found")
	ErrKeyExists        = errors.New("access key already exists")
	ErrBlobNotFound     = errors.New("blob not found")
	ErrAlreadyRedeemed  = errors.New("one-time token already redeemed")
	ErrStorageFull      = errors.New("storage full")
	ErrConditionAborted = errors.New("condition aborted the transaction")
	// ErrPartChanged: a completion named a part blob that is no longer the
	// upload's part (it was uploaded again meanwhile, maybe on another node).
	ErrPartChanged = errors.New("multipart part changed during completion")
	// ErrNotSupported: the backend, as configured, cannot do this (for
	// example Blobs.List on a store that keeps no record of its writes).
	ErrNotSupported = errors.New("not supported by this backend")
)

// Bucket is a bucket record with its configuration.
type Bucket struct {
	Name    string
	Created time.Time
	// CORS is the bucket's CORS configuration as an XML document (the
	// client's, validated and normalised before it is stored); empty when
	// none is set.
	CORS []byte
}

// Segment is one stored piece of an object's bytes. A plain PUT has one
// segment; a completed multipart upload has one per part, so completion
// never copies bytes. Small objects may have no segment and carry Inline data.
type Segment struct {
	Blob string // reference returned by Blobs.Commit
	Size int64
}

// Checksum is an S3 flexible checksum of an object or part.
type Checksum struct {
	Algorithm string // CRC32, CRC32C, CRC64NVME, SHA1, SHA256
	Value     string // base64, as on the wire; composite values end in "-N"
	Type      string // FULL_OBJECT or COMPOSITE
}

// Object is an object record.
type Object struct {
	Bucket       string
	Key          string
	Size         int64
	ETag         string // without quotes; multipart ETags end in "-N"
	LastModified time.Time

	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	Expires            string
	UserMeta           map[string]string // lower-case names without the x-amz-meta- prefix
	Checksum           *Checksum

	// Parts describes a multipart object's parts (for partNumber=N reads and
	// x-amz-mp-parts-count); empty for single-part objects.
	Parts []PartInfo

	Segments []Segment
	Inline   []byte // the whole content when small; Segments is then empty
}

// PartInfo is what a completed object remembers of each of its parts.
type PartInfo struct {
	Number   int
	Size     int64
	ETag     string
	Checksum string // base64, empty when the part had none
}

// Blobs returns the blob references the object holds.
func (o *Object) Blobs() []string {
	refs := make([]string, 0, len(o.Segments))
	for _, s := range o.Segments {
		refs = append(refs, s.Blob)
	}
	return refs
}

// ListOptions selects a page of object records in byte order of their keys.
type ListOptions struct {
	Prefix    string
	Delimiter string
	// After: only keys strictly greater than After (marker, start-after or a
	// continuation token decoded by the caller).
	After   string
	MaxKeys int // 0 means an empty page that still reports IsTruncated
}

// ListResult is one page. Objects and CommonPrefixes are each in byte order.
// NextAfter is the last key or common prefix returned, for the next page.
type ListResult struct {
	Objects        []Object
	CommonPrefixes []string
	IsTruncated    bool
	NextAfter      string
}

// Upload is a multipart upload in progress.
type Upload struct {
	Bucket    string
	Key       string
	ID        string
	Initiated time.Time
	// Template holds the content headers, user metadata and checksum
	// algorithm (Checksum.Algorithm, Checksum.Type) given at creation; the
	// completed object starts from it.
	Template Object
}

// Part is an uploaded part of a multipart upload.
type Part struct {
	Number       int
	Size         int64
	ETag         string // without quotes
	LastModified time.Time
	Checksum     *Checksum
	Segment      Segment
}

// ListUploadsOptions selects a page of uploads, ordered by key then by
// initiation time and ID.
type ListUploadsOptions struct {
	Prefix         string
	Delimiter      string
	KeyMarker      string
	UploadIDMarker string
	MaxUploads     int
}

// ListUploadsResult is one page of uploads.
type ListUploadsResult struct {
	Uploads        []Upload
	CommonPrefixes []string
	IsTruncated    bool
}

// AccessKey is a stored access key. The secret is sealed by the iam package
// before it reaches Meta; no backend ever sees it in plain text.
type AccessKey struct {
	ID           string
	Name         string
	SealedSecret []byte
	Scopes       []string
	Buckets      []string // empty: every bucket
	Prefix       string
	Disabled     bool
	Created      time.Time
	Expires      time.Time // zero: never
	// Presign policy, zero values mean no limit.
	MaxURLTTL     time.Duration
	MaxObjectSize int64
	ContentTypes  []string
	Root          bool
}

// PutCheck runs inside the mutation's transaction with the record it replaces
// (nil when there is none); a non-nil error aborts the transaction and is
// returned unchanged. It implements If-Match / If-None-Match on writes.
type PutCheck func(old *Object) error

// KeysCheck runs inside the transaction of an access key change with every
// stored key (in ID order) as it is before the change. No other guarded
// change (one given a non-nil KeysCheck) runs between the check and the
// change, on one node or on many sharing the store, so a check can enforce an
// invariant over the whole set of keys, such as "some usable admin key
// remains". A non-nil error aborts the change and is returned unchanged. The
// check may run more than once (a backend may retry its transaction), so it
// must have no side effects, and it must not modify the keys it is given.
// A key created concurrently may be missing from what it sees: creations are
// not guarded.
type KeysCheck func(keys []AccessKey) error

// Meta is the metadata store. Each mutation is one transaction.
type Meta interface {
	CreateBucket(ctx context.Context, b Bucket) error // ErrBucketExists
	GetBucket(ctx context.Context, name string) (Bucket, error)
	ListBuckets(ctx context.Context) ([]Bucket, error) // sorted by name
	// DeleteBucket fails with ErrBucketNotEmpty while objects or unfinished
	// uploads remain.
	DeleteBucket(ctx context.Context, name string) error
	// UpdateBucket changes a bucket's configuration in one transaction.
	UpdateBucket(ctx context.Context, name string, change func(*Bucket) error) error

	// PutObject stores o (replacing any record at its key) and returns the
	// replaced record so the caller can delete its blobs after the commit.
	PutObject(ctx context.Context, o Object, check PutCheck) (replaced *Object, err error)
	GetObject(ctx context.Context, bucket, key string) (Object, error)
	// DeleteObject removes the record and returns it; ErrObjectNotFound when
	// there was none. check (may be nil) runs inside the transaction.
	DeleteObject(ctx context.Context, bucket, key string, check PutCheck) (*Object, error)
	ListObjects(ctx context.Context, bucket string, opts ListOptions) (ListResult, error)

	CreateUpload(ctx context.Context, u Upload) error
	GetUpload(ctx context.Context, bucket, key, uploadID string) (Upload, error)
	// PutPart records a part, returning the one it replaced (same number).
	PutPart(ctx context.Context, bucket, key, uploadID string, p Part) (replaced *Part, err error)
	// ListParts returns parts with numbers above afterPart, at most max, in
	// number order, and whether more remain.
	ListParts(ctx context.Context, bucket, key, uploadID string, afterPart, max int) ([]Part, bool, error)
	ListUploads(ctx context.Context, bucket string, opts ListUploadsOptions) (ListUploadsResult, error)
	// CompleteUpload atomically removes the upload and stores o. It returns
	// the object record it replaced and the parts that o does not use, whose
	// blobs the caller deletes after the commit. Every segment of o must be
	// the blob of a current part of the upload, else ErrPartChanged and
	// nothing changes: a part re-uploaded during completion must never leave
	// the record pointing at a deleted blob.
	CompleteUpload(ctx context.Context, bucket, key, uploadID string, o Object, check PutCheck) (replaced *Object, unused []Part, err error)
	// AbortUpload removes the upload and returns its parts.
	AbortUpload(ctx context.Context, bucket, key, uploadID string) ([]Part, error)

	PutAccessKey(ctx context.Context, k AccessKey) error // create only: ErrKeyExists
	// UpdateAccessKey applies change to key id in one transaction; the ID
	// cannot change. A missing id gives ErrKeyNotFound before check runs;
	// then check (may be nil) runs, then change. An error of either aborts
	// the update and is returned unchanged.
	UpdateAccessKey(ctx context.Context, id string, check KeysCheck, change func(*AccessKey) error) error
	GetAccessKey(ctx context.Context, id string) (AccessKey, error)
	ListAccessKeys(ctx context.Context) ([]AccessKey, error)
	// DeleteAccessKey removes key id. A missing id gives ErrKeyNotFound
	// before check runs; then check (may be nil) runs, and its error aborts
	// the delete and is returned unchanged.
	DeleteAccessKey(ctx context.Context, id string, check KeysCheck) error

	// Redeem records a one-time token; ErrAlreadyRedeemed if it was already.
	// The record may be removed by SweepRedemptions once expires has passed.
	Redeem(ctx context.Context, token string, expires time.Time) error
	SweepRedemptions(ctx context.Context, now time.Time) (int, error)

	// Ping checks that the store answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// BlobWriter receives a new blob's bytes. Commit makes them durable and
// returns the reference; Abort discards them. Exactly one of the two is called.
type BlobWriter interface {
	io.Writer
	Commit(ctx context.Context) (ref string, err error)
	Abort() error
}

// Blob is an open blob. ReadAt never holds the whole blob in memory.
type Blob interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// FileBlob is implemented by blobs that are plain files, so GET can use
// sendfile. The kernel then sends the file's cached pages by reference,
// possibly after the blob is closed: a store must never write into the
// pages of a file it handed out (fsblob marks such files and does not
// recycle them).
type FileBlob interface {
	Blob
	// File returns the open file; the caller seeks it and copies a limited
	// reader of it to the connection (the kernel then uses sendfile).
	File() *os.File
}

// Blobs stores immutable blobs.
type Blobs interface {
	Create(ctx context.Context, sizeHint int64) (BlobWriter, error)
	Open(ctx context.Context, ref string) (Blob, error) // ErrBlobNotFound
	Delete(ctx context.Context, ref string) error       // missing blob is not an error
	// List calls fn for each stored blob with its modification time, so a
	// sweeper can remove blobs no record points at (orphans of crashes).
	List(ctx context.Context, fn func(ref string, modified time.Time) error) error
	Ping(ctx context.Context) error
	Close() error
}
