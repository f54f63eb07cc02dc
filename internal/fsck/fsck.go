// Package fsck checks that a store's metadata and blobs agree: every object
// record and every uploaded part points at a blob that exists with the
// recorded size (and, on request, the recorded content), and every stored
// blob is referenced by something. Blobs nobody references are the orphans
// a crash between a blob's commit and its metadata transaction leaves
// behind; Repair deletes the ones older than a grace period.
//
// The checks run over storage.Meta and storage.Blobs only, so they work for
// every backend. Records whose blobs are missing are reported, never
// "repaired": deleting the record would turn a visible error into silent
// data loss, and the blob may still be recoverable from a backup.
package fsck

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"

	"nfyio.dev/storage/internal/checksum"
	"nfyio.dev/storage/internal/storage"
)

// DefaultGrace is how old an orphan must be before Repair deletes it. A
// server of a shared backend may have committed a blob whose metadata
// transaction is still on its way; an hour is far longer than any request.
const DefaultGrace = time.Hour

// Options configure Check.
type Options struct {
	// Repair deletes orphan blobs older than Grace.
	Repair bool
	// Grace protects young orphans from Repair (they may belong to a write
	// in flight on another node). Zero deletes every orphan, which is right
	// only when no server can be writing (the embedded store, locked).
	Grace time.Duration
	// VerifyContent reads every blob and compares it with the record's
	// ETag (MD5 of each part) and flexible checksum.
	VerifyContent bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Problem kinds.
const (
	MissingBlob     = "missing-blob"     // a record points at a blob that does not exist
	SizeMismatch    = "size-mismatch"    // the blob's size differs from the record's
	ContentMismatch = "content-mismatch" // the bytes do not match the ETag or checksum
	BadRecord       = "bad-record"       // the record contradicts itself (sizes, parts)
	ReadError       = "read-error"       // a blob could not be opened or read
)

// Problem is an inconsistency that Repair does not fix.
type Problem struct {
	Kind     string
	Bucket   string
	Key      string
	UploadID string // set for problems of an unfinished upload's part
	Part     int    // part number, 0 for a single-part object
	Blob     string
	Detail   string
}

func (p Problem) String() string {
	where := p.Bucket + "/" + p.Key
	if p.UploadID != "" {
		where += " upload " + p.UploadID
	}
	if p.Part != 0 {
		where += " part " + strconv.Itoa(p.Part)
	}
	s := p.Kind + ": " + where
	if p.Blob != "" {
		s += " blob " + p.Blob
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Orphan is a stored blob that no record references.
type Orphan struct {
	Blob     string
	Modified time.Time
	// Deleted is set when Repair removed it.
	Deleted bool
	// Err is why Repair could not delete it.
	Err error
}

// Report is what Check found.
type Report struct {
	Buckets, Objects, Uploads, Parts int
	// Blobs is the number of blobs the store listed; -1 when the backend
	// cannot list its blobs (orphans are then not searched for).
	Blobs int
	// BytesVerified counts the bytes read by VerifyContent.
	BytesVerified int64

	Problems []Problem
	Orphans  []Orphan
}

// Clean reports whether nothing is wrong: no problem, and no orphan left
// in place (deleted ones do not count).
func (r *Report) Clean() bool {
	if len(r.Problems) > 0 {
		return false
	}
	for _, o := range r.Orphans {
		if !o.Deleted {
			return false
		}
	}
	return true
}

// Summary is a one-line account of the report.
func (r *Report) Summary() string {
	deleted, kept := 0, 0
	for _, o := range r.Orphans {
		if o.Deleted {
			deleted++
		} else {
			kept++
		}
	}
	blobs := strconv.Itoa(r.Blobs)
	if r.Blobs < 0 {
		blobs = "unlisted"
	}
	return fmt.Sprintf("%d buckets, %d objects, %d unfinished uploads with %d parts, %s blobs: %d problems, %d orphan blobs (%d deleted, %d left)",
		r.Buckets, r.Objects, r.Uploads, r.Parts, blobs, len(r.Problems), len(r.Orphans), deleted, kept)
}

// checker carries one run.
type checker struct {
	meta  storage.Meta
	blobs storage.Blobs
	opts  Options
	rep   *Report
	// refs holds every blob a record or part references. Memory grows
	// with the number of blobs (about 100 bytes each), which is the price
	// of finding orphans without a second index.
	refs map[string]struct{}
}

// Check walks every bucket's objects and unfinished uploads, then the
// blobs. Metadata is read before the blob list so that a blob written by a
// concurrent request is either referenced already or younger than the
// grace period, never mistaken for an old orphan.
func Check(ctx context.Context, meta storage.Meta, blobs storage.Blobs, opts Options) (*Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &checker{meta: meta, blobs: blobs, opts: opts, rep: &Report{}, refs: map[string]struct{}{}}
	buckets, err := meta.ListBuckets(ctx)
	if err != nil {
		return nil, fmt.Errorf("fsck: list buckets: %w", err)
	}
	c.rep.Buckets = len(buckets)
	for _, b := range buckets {
		if err := c.objects(ctx, b.Name); err != nil {
			return nil, err
		}
		if err := c.uploads(ctx, b.Name); err != nil {
			return nil, err
		}
	}
	if err := c.orphans(ctx); err != nil {
		return nil, err
	}
	return c.rep, nil
}

func (c *checker) problem(p Problem) { c.rep.Problems = append(c.rep.Problems, p) }

func (c *checker) objects(ctx context.Context, bucket string) error {
	opts := storage.ListOptions{MaxKeys: 1000}
	for {
		page, err := c.meta.ListObjects(ctx, bucket, opts)
		if err != nil {
			return fmt.Errorf("fsck: list objects of %s after %q: %w", bucket, opts.After, err)
		}
		for i := range page.Objects {
			// Listings may leave out what GET needs (parts, inline
			// data); the record itself is the authority.
			o, err := c.meta.GetObject(ctx, bucket, page.Objects[i].Key)
			if errors.Is(err, storage.ErrObjectNotFound) {
				continue // deleted while we walked
			}
			if err != nil {
				return fmt.Errorf("fsck: read %s/%s: %w", bucket, page.Objects[i].Key, err)
			}
			c.rep.Objects++
			if err := c.object(ctx, &o); err != nil {
				return err
			}
		}
		if !page.IsTruncated || page.NextAfter == "" {
			return nil
		}
		opts.After = page.NextAfter
	}
}

// object checks one record: its segments exist with their sizes and add up
// to the object's size, and with VerifyContent, the bytes match.
func (c *checker) object(ctx context.Context, o *storage.Object) error {
	base := Problem{Bucket: o.Bucket, Key: o.Key}
	var total int64
	for _, sg := range o.Segments {
		c.refs[sg.Blob] = struct{}{}
		total += sg.Size
	}
	if len(o.Segments) == 0 {
		total = int64(len(o.Inline))
	}
	if total != o.Size {
		p := base
		p.Kind, p.Detail = BadRecord, fmt.Sprintf("segments hold %d bytes, the record says %d", total, o.Size)
		c.problem(p)
	}
	if len(o.Parts) > 0 && len(o.Parts) != len(o.Segments) {
		p := base
		p.Kind, p.Detail = BadRecord, fmt.Sprintf("%d parts but %d segments", len(o.Parts), len(o.Segments))
		c.problem(p)
	}
	usable := true
	for i, sg := range o.Segments {
		p := base
		if len(o.Parts) == len(o.Segments) {
			p.Part = o.Parts[i].Number
		}
		recheck := func() bool { return c.stillReferenced(ctx, o.Bucket, o.Key, sg.Blob) }
		ok, err := c.blobExists(ctx, sg, p, recheck)
		if err != nil {
			return err
		}
		usable = usable && ok
	}
	// A missing or short blob is reported once; reading it would only add
	// digest mismatches that say the same thing.
	if c.opts.VerifyContent && usable {
		return c.verifyObject(ctx, o)
	}
	return nil
}

// stillReferenced re-reads a record whose blob looked missing: a request
// that replaced or deleted the object meanwhile deletes the old blob after
// its commit, which is not a problem.
func (c *checker) stillReferenced(ctx context.Context, bucket, key, ref string) bool {
	o, err := c.meta.GetObject(ctx, bucket, key)
	if err != nil {
		return !errors.Is(err, storage.ErrObjectNotFound)
	}
	for _, sg := range o.Segments {
		if sg.Blob == ref {
			return true
		}
	}
	return false
}

// blobExists opens a segment's blob and compares its size, recording a
// problem (unless recheck says the reference went away meanwhile). It
// returns whether the blob is usable.
func (c *checker) blobExists(ctx context.Context, sg storage.Segment, base Problem, recheck func() bool) (bool, error) {
	b, err := c.blobs.Open(ctx, sg.Blob)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if !recheck() {
			return false, nil
		}
		p := base
		p.Blob = sg.Blob
		if errors.Is(err, storage.ErrBlobNotFound) {
			p.Kind = MissingBlob
		} else {
			p.Kind, p.Detail = ReadError, err.Error()
		}
		c.problem(p)
		return false, nil
	}
	size := b.Size()
	_ = b.Close()
	if size != sg.Size {
		p := base
		p.Kind, p.Blob, p.Detail = SizeMismatch, sg.Blob, fmt.Sprintf("blob has %d bytes, the record says %d", size, sg.Size)
		c.problem(p)
		return false, nil
	}
	return true, nil
}

func (c *checker) uploads(ctx context.Context, bucket string) error {
	opts := storage.ListUploadsOptions{MaxUploads: 1000}
	for {
		page, err := c.meta.ListUploads(ctx, bucket, opts)
		if err != nil {
			return fmt.Errorf("fsck: list uploads of %s: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			c.rep.Uploads++
			if err := c.parts(ctx, u); err != nil {
				return err
			}
		}
		if !page.IsTruncated || len(page.Uploads) == 0 {
			return nil
		}
		last := page.Uploads[len(page.Uploads)-1]
		opts.KeyMarker, opts.UploadIDMarker = last.Key, last.ID
	}
}

func (c *checker) parts(ctx context.Context, u storage.Upload) error {
	after := 0
	for {
		parts, more, err := c.meta.ListParts(ctx, u.Bucket, u.Key, u.ID, after, 1000)
		if errors.Is(err, storage.ErrUploadNotFound) {
			return nil // completed or aborted while we walked
		}
		if err != nil {
			return fmt.Errorf("fsck: list parts of %s/%s upload %s: %w", u.Bucket, u.Key, u.ID, err)
		}
		for _, p := range parts {
			c.rep.Parts++
			c.refs[p.Segment.Blob] = struct{}{}
			base := Problem{Bucket: u.Bucket, Key: u.Key, UploadID: u.ID, Part: p.Number}
			if p.Segment.Size != p.Size {
				bp := base
				bp.Kind, bp.Detail = BadRecord, fmt.Sprintf("segment holds %d bytes, the part says %d", p.Segment.Size, p.Size)
				c.problem(bp)
			}
			recheck := func() bool { return c.partStillReferenced(ctx, u, p.Number, p.Segment.Blob) }
			ok, err := c.blobExists(ctx, p.Segment, base, recheck)
			if err != nil {
				return err
			}
			if ok && c.opts.VerifyContent {
				if err := c.verifyPart(ctx, u, p, base); err != nil {
					return err
				}
			}
			after = p.Number
		}
		if !more || len(parts) == 0 {
			return nil
		}
	}
}

func (c *checker) partStillReferenced(ctx context.Context, u storage.Upload, number int, ref string) bool {
	parts, _, err := c.meta.ListParts(ctx, u.Bucket, u.Key, u.ID, number-1, 1)
	if err != nil {
		return !errors.Is(err, storage.ErrUploadNotFound)
	}
	return len(parts) == 1 && parts[0].Number == number && parts[0].Segment.Blob == ref
}

// orphans lists the blobs and deals with those no record references.
func (c *checker) orphans(ctx context.Context) error {
	var found []Orphan
	err := c.blobs.List(ctx, func(ref string, modified time.Time) error {
		c.rep.Blobs++
		if _, ok := c.refs[ref]; !ok {
			found = append(found, Orphan{Blob: ref, Modified: modified})
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotSupported) {
		c.rep.Blobs = -1
		return nil
	}
	if err != nil {
		return fmt.Errorf("fsck: list blobs: %w", err)
	}
	cutoff := c.opts.Now().Add(-c.opts.Grace)
	for i := range found {
		o := &found[i]
		if c.opts.Repair && !o.Modified.After(cutoff) {
			if err := c.blobs.Delete(ctx, o.Blob); err != nil {
				o.Err = err
			} else {
				o.Deleted = true
			}
		}
	}
	c.rep.Orphans = found
	return nil
}

// verifyObject reads an object's bytes and compares them with its record:
// each part's MD5 with the part's ETag (the whole object's for a
// single-part object), the multipart ETag with the MD5 of the part MD5s,
// per-part checksums, and a FULL_OBJECT checksum over all the bytes.
func (c *checker) verifyObject(ctx context.Context, o *storage.Object) error {
	var full hash.Hash
	if o.Checksum != nil && o.Checksum.Type != "COMPOSITE" {
		full = checksum.New(o.Checksum.Algorithm)
	}
	var partAlg string
	if o.Checksum != nil {
		partAlg = o.Checksum.Algorithm
	}
	base := Problem{Bucket: o.Bucket, Key: o.Key}
	if len(o.Segments) == 0 {
		sum := md5.Sum(o.Inline)
		if full != nil {
			full.Write(o.Inline)
		}
		c.rep.BytesVerified += int64(len(o.Inline))
		if hex.EncodeToString(sum[:]) != o.ETag {
			p := base
			p.Kind, p.Detail = ContentMismatch, "inline data does not match the ETag"
			c.problem(p)
		}
		c.checkFull(o, full, base)
		return nil
	}
	multipart := len(o.Parts) > 0 && len(o.Parts) == len(o.Segments)
	etags := md5.New()
	for i, sg := range o.Segments {
		p := base
		p.Blob = sg.Blob
		var alg string
		if multipart {
			p.Part = o.Parts[i].Number
			if o.Parts[i].Checksum != "" {
				alg = partAlg
			}
		}
		sums, err := c.readBlob(ctx, sg, alg, full, p)
		if err != nil {
			return err
		}
		if sums == nil {
			return nil // problem recorded; later sums would be meaningless
		}
		want := o.ETag
		if multipart {
			want = o.Parts[i].ETag
		}
		if got := hex.EncodeToString(sums.md5); got != want {
			p.Kind, p.Detail = ContentMismatch, "MD5 "+got+" does not match the ETag "+want
			c.problem(p)
		}
		if multipart && alg != "" && sums.checksum != o.Parts[i].Checksum {
			p.Kind, p.Detail = ContentMismatch, "part "+alg+" checksum "+sums.checksum+" does not match "+o.Parts[i].Checksum
			c.problem(p)
		}
		etags.Write(sums.md5)
	}
	// Several segments without parts would carry no per-segment digests;
	// only the multipart shape has something more to compare.
	if multipart {
		want := hex.EncodeToString(etags.Sum(nil)) + "-" + strconv.Itoa(len(o.Parts))
		if want != o.ETag {
			p := base
			p.Kind, p.Detail = ContentMismatch, "multipart ETag "+o.ETag+" does not match its parts' "+want
			c.problem(p)
		}
		c.checkComposite(o, base)
	}
	c.checkFull(o, full, base)
	return nil
}

// checkComposite compares a COMPOSITE checksum with the one its parts'
// checksums (verified against the bytes above) make: the checksum of the
// concatenated part checksums, suffixed with the part count.
func (c *checker) checkComposite(o *storage.Object, base Problem) {
	if o.Checksum == nil || o.Checksum.Type != "COMPOSITE" {
		return
	}
	if checksum.New(o.Checksum.Algorithm) == nil {
		return
	}
	sums := make([]string, len(o.Parts))
	for i, part := range o.Parts {
		sums[i] = part.Checksum
	}
	want, err := checksum.Composite(o.Checksum.Algorithm, sums)
	if err != nil {
		p := base
		p.Kind, p.Detail = BadRecord, "a COMPOSITE checksum needs every part's checksum: "+err.Error()
		c.problem(p)
		return
	}
	if want != o.Checksum.Value {
		p := base
		p.Kind, p.Detail = ContentMismatch, "composite "+o.Checksum.Algorithm+" checksum "+o.Checksum.Value+" does not match its parts' "+want
		c.problem(p)
	}
}

func (c *checker) checkFull(o *storage.Object, full hash.Hash, base Problem) {
	if full == nil {
		return
	}
	got := base64.StdEncoding.EncodeToString(full.Sum(nil))
	if got != o.Checksum.Value {
		p := base
		p.Kind, p.Detail = ContentMismatch, o.Checksum.Algorithm+" checksum "+got+" does not match "+o.Checksum.Value
		c.problem(p)
	}
}

func (c *checker) verifyPart(ctx context.Context, u storage.Upload, p storage.Part, base Problem) error {
	alg := ""
	if p.Checksum != nil {
		alg = p.Checksum.Algorithm
	}
	base.Blob = p.Segment.Blob
	sums, err := c.readBlob(ctx, p.Segment, alg, nil, base)
	if err != nil || sums == nil {
		return err
	}
	if got := hex.EncodeToString(sums.md5); got != p.ETag {
		pr := base
		pr.Kind, pr.Detail = ContentMismatch, "MD5 "+got+" does not match the ETag "+p.ETag
		c.problem(pr)
	}
	if alg != "" && sums.checksum != p.Checksum.Value {
		pr := base
		pr.Kind, pr.Detail = ContentMismatch, alg+" checksum "+sums.checksum+" does not match "+p.Checksum.Value
		c.problem(pr)
	}
	return nil
}

type blobSums struct {
	md5      []byte
	checksum string
}

// readBlob streams one blob through MD5, the part checksum alg (if any)
// and the object's running full checksum (if any). A blob that cannot be
// read is recorded as a problem and nil sums returned.
func (c *checker) readBlob(ctx context.Context, sg storage.Segment, alg string, full hash.Hash, base Problem) (*blobSums, error) {
	b, err := c.blobs.Open(ctx, sg.Blob)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Missing blobs were reported by the existence check already.
		return nil, nil
	}
	defer b.Close()
	m := md5.New()
	ws := []io.Writer{m}
	var ck hash.Hash
	if alg != "" {
		if ck = checksum.New(alg); ck != nil {
			ws = append(ws, ck)
		}
	}
	if full != nil {
		ws = append(ws, full)
	}
	n, err := io.Copy(io.MultiWriter(ws...), io.NewSectionReader(b, 0, sg.Size))
	c.rep.BytesVerified += n
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p := base
		p.Kind, p.Detail = ReadError, err.Error()
		c.problem(p)
		return nil, nil
	}
	s := &blobSums{md5: m.Sum(nil)}
	if ck != nil {
		s.checksum = base64.StdEncoding.EncodeToString(ck.Sum(nil))
	}
	return s, nil
}
