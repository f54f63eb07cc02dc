// Package storagetest is the conformance suite for storage.Meta and
// storage.Blobs. Every backend's tests call RunMeta and RunBlobs so that the
// embedded and the scale-out backends behave the same way where the S3 layer
// can see it: error values, byte-order listing, delimiter roll-up, paging,
// multipart bookkeeping, one-time token redemption and concurrency.
//
// The suite only uses times with microsecond precision, so a backend that
// stores timestamps as microseconds (PostgreSQL) passes; backends must keep
// at least that.
package storagetest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
)

// baseTime is the origin of every timestamp the suite stores. It has
// microsecond precision on purpose (see the package comment).
var baseTime = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

func at(seconds int) time.Time { return baseTime.Add(time.Duration(seconds) * time.Second) }

func mustCreateBucket(t *testing.T, m storage.Meta, name string) {
	t.Helper()
	if err := m.CreateBucket(t.Context(), storage.Bucket{Name: name, Created: baseTime}); err != nil {
		t.Fatalf("CreateBucket(%q): %v", name, err)
	}
}

// simpleObject is a single-segment record whose fields are derived from key,
// so a listing result can be checked without keeping the records around.
func simpleObject(bucket, key string) storage.Object {
	return storage.Object{
		Bucket:       bucket,
		Key:          key,
		Size:         int64(len(key)),
		ETag:         fmt.Sprintf("%032x", len(key)),
		LastModified: baseTime,
		ContentType:  "text/plain",
		Segments:     []storage.Segment{{Blob: "blob-" + fmt.Sprint(len(key)), Size: int64(len(key))}},
	}
}

// fullObject has every field set, to check that a backend stores them all.
func fullObject(bucket, key string) storage.Object {
	return storage.Object{
		Bucket:             bucket,
		Key:                key,
		Size:               15 << 20,
		ETag:               "9b2cf535f27731c974343645a3985328-3",
		LastModified:       at(42),
		ContentType:        "image/jpeg",
		ContentEncoding:    "gzip",
		ContentDisposition: `attachment; filename="cat.jpg"`,
		ContentLanguage:    "de-CH",
		CacheControl:       "max-age=60",
		Expires:            "Thu, 01 Dec 1994 16:00:00 GMT",
		UserMeta:           map[string]string{"owner": "ünïcode ✓", "empty": "", "x-y": "a=b; c"},
		Checksum:           &storage.Checksum{Algorithm: "CRC32C", Value: "yZRlqg==-3", Type: "COMPOSITE"},
		Parts: []storage.PartInfo{
			{Number: 1, Size: 5 << 20, ETag: "0cc175b9c0f1b6a831c399e269772661", Checksum: "AAAAAA=="},
			{Number: 2, Size: 5 << 20, ETag: "92eb5ffee6ae2fec3ad71c777531578f"},
			{Number: 3, Size: 5 << 20, ETag: "4a8a08f09d37b73795649038408b5f33", Checksum: "/////w=="},
		},
		Segments: []storage.Segment{
			{Blob: "ref-part-1", Size: 5 << 20},
			{Blob: "ref-part-2", Size: 5 << 20},
			{Blob: "ref-part-3", Size: 5 << 20},
		},
	}
}

// normObject makes records comparable with reflect.DeepEqual: empty and nil
// collections mean the same thing, and the time is compared separately with
// time.Equal because its location is not part of the contract.
func normObject(o storage.Object) storage.Object {
	if len(o.UserMeta) == 0 {
		o.UserMeta = nil
	}
	if len(o.Parts) == 0 {
		o.Parts = nil
	}
	if len(o.Segments) == 0 {
		o.Segments = nil
	}
	if len(o.Inline) == 0 {
		o.Inline = nil
	}
	o.LastModified = time.Time{}
	return o
}

func checkObject(t *testing.T, what string, got, want storage.Object) {
	t.Helper()
	if !got.LastModified.Equal(want.LastModified) {
		t.Errorf("%s: LastModified = %v, want %v", what, got.LastModified, want.LastModified)
	}
	g, w := normObject(got), normObject(want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: record differs\n got: %+v\nwant: %+v", what, g, w)
	}
}

func checkPart(t *testing.T, what string, got, want storage.Part) {
	t.Helper()
	if !got.LastModified.Equal(want.LastModified) {
		t.Errorf("%s: LastModified = %v, want %v", what, got.LastModified, want.LastModified)
	}
	got.LastModified, want.LastModified = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: part differs\n got: %+v\nwant: %+v", what, got, want)
	}
}

func checkParts(t *testing.T, what string, got, want []storage.Part) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d parts %v, want %d %v", what, len(got), partNumbers(got), len(want), partNumbers(want))
		return
	}
	for i := range got {
		checkPart(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func partNumbers(ps []storage.Part) []int {
	var n []int
	for _, p := range ps {
		n = append(n, p.Number)
	}
	return n
}

// checkUpload compares uploads; Template.Bucket and Template.Key are not part
// of the contract (the upload's own Bucket and Key are).
func checkUpload(t *testing.T, what string, got, want storage.Upload) {
	t.Helper()
	if !got.Initiated.Equal(want.Initiated) {
		t.Errorf("%s: Initiated = %v, want %v", what, got.Initiated, want.Initiated)
	}
	if got.Bucket != want.Bucket || got.Key != want.Key || got.ID != want.ID {
		t.Errorf("%s: upload is %q/%q/%q, want %q/%q/%q", what, got.Bucket, got.Key, got.ID, want.Bucket, want.Key, want.ID)
	}
	gt, wt := got.Template, want.Template
	gt.Bucket, gt.Key, wt.Bucket, wt.Key = "", "", "", ""
	checkObject(t, what+" template", gt, wt)
}

func checkAccessKey(t *testing.T, what string, got, want storage.AccessKey) {
	t.Helper()
	if !got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) {
		t.Errorf("%s: times = %v/%v, want %v/%v", what, got.Created, got.Expires, want.Created, want.Expires)
	}
	norm := func(k storage.AccessKey) storage.AccessKey {
		k.Created, k.Expires = time.Time{}, time.Time{}
		if len(k.Scopes) == 0 {
			k.Scopes = nil
		}
		if len(k.Buckets) == 0 {
			k.Buckets = nil
		}
		if len(k.ContentTypes) == 0 {
			k.ContentTypes = nil
		}
		if len(k.SealedSecret) == 0 {
			k.SealedSecret = nil
		}
		return k
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: access key differs\n got: %+v\nwant: %+v", what, g, w)
	}
}

// item is one entry of a listing: an object key or a common prefix. Both
// kinds share one byte-ordered sequence, which is what MaxKeys counts.
type item struct {
	name   string
	prefix bool
}

func (i item) String() string {
	if i.prefix {
		return "P:" + i.name
	}
	return "K:" + i.name
}

// modelList is the reference semantics of ListObjects over a set of keys:
// keys strictly after After that start with Prefix, rolled up at the first
// Delimiter after the prefix; a common prefix is listed when it sorts after
// After (a smaller one was listed on an earlier page).
func modelList(keys []string, opts storage.ListOptions) []item {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	var out []item
	seen := map[string]bool{}
	for _, k := range sorted {
		if !strings.HasPrefix(k, opts.Prefix) {
			continue
		}
		if opts.Delimiter != "" {
			if i := strings.Index(k[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				cp := k[:len(opts.Prefix)+i+len(opts.Delimiter)]
				if cp > opts.After && !seen[cp] {
					seen[cp] = true
					out = append(out, item{cp, true})
				}
				continue
			}
		}
		if k > opts.After {
			out = append(out, item{k, false})
		}
	}
	return out
}

// pageItems merges a page's objects and common prefixes into key order after
// checking that each list is itself strictly increasing.
func pageItems(t *testing.T, what string, r storage.ListResult) []item {
	t.Helper()
	var items []item
	for i, o := range r.Objects {
		if i > 0 && r.Objects[i-1].Key >= o.Key {
			t.Errorf("%s: objects out of byte order: %q then %q", what, r.Objects[i-1].Key, o.Key)
		}
		items = append(items, item{o.Key, false})
	}
	for i, p := range r.CommonPrefixes {
		if i > 0 && r.CommonPrefixes[i-1] >= p {
			t.Errorf("%s: common prefixes out of byte order: %q then %q", what, r.CommonPrefixes[i-1], p)
		}
		items = append(items, item{p, true})
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
	return items
}

// listAll pages through a listing with pageSize and checks the paging
// contract on the way: every page but the last is truncated and full,
// NextAfter is the page's last entry, the last page is not truncated.
func listAll(t *testing.T, m storage.Meta, bucket string, opts storage.ListOptions, pageSize int) []item {
	t.Helper()
	var all []item
	opts.MaxKeys = pageSize
	for page := 0; ; page++ {
		what := fmt.Sprintf("list %+v page %d", opts, page)
		if page > 10000 {
			t.Fatalf("%s: listing does not end", what)
		}
		r, err := m.ListObjects(t.Context(), bucket, opts)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		items := pageItems(t, what, r)
		if len(items) > pageSize {
			t.Fatalf("%s: %d entries, MaxKeys %d", what, len(items), pageSize)
		}
		all = append(all, items...)
		if !r.IsTruncated {
			if len(items) > 0 && r.NextAfter != "" && r.NextAfter != items[len(items)-1].name {
				t.Errorf("%s: NextAfter = %q, last entry %q", what, r.NextAfter, items[len(items)-1].name)
			}
			return all
		}
		if len(items) != pageSize {
			t.Fatalf("%s: truncated page has %d entries, MaxKeys %d", what, len(items), pageSize)
		}
		if want := items[len(items)-1].name; r.NextAfter != want {
			t.Fatalf("%s: NextAfter = %q, want last entry %q", what, r.NextAfter, want)
		}
		opts.After = r.NextAfter
	}
}

func checkItems(t *testing.T, what string, got, want []item) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got: %v\nwant: %v", what, got, want)
	}
}

func putKeys(t *testing.T, m storage.Meta, bucket string, keys []string) {
	t.Helper()
	putKeysParallel(t, m, bucket, keys, 1)
}

// putKeysParallel stores simpleObject records from several goroutines, which
// both speeds up backends that group commits and exercises them.
func putKeysParallel(t *testing.T, m storage.Meta, bucket string, keys []string, workers int) {
	t.Helper()
	ctx := t.Context()
	errs := make(chan error, workers)
	next := make(chan string)
	for range workers {
		go func() {
			for k := range next {
				if _, err := m.PutObject(ctx, simpleObject(bucket, k), nil); err != nil {
					errs <- fmt.Errorf("PutObject(%q): %w", k, err)
					for range next {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
