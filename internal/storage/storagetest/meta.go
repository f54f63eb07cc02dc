package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"nfyio.dev/storage/internal/storage"
)

// RunMeta runs the conformance suite against the Meta returned by newMeta.
// newMeta must return a new, empty store for each call and register its own
// cleanup (Close, removing files or schemas). Subtests run one after another.
func RunMeta(t *testing.T, newMeta func(t *testing.T) storage.Meta) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Meta)
	}{
		{"Buckets", testBuckets},
		{"BucketNotEmpty", testBucketNotEmpty},
		{"UpdateBucket", testUpdateBucket},
		{"ObjectRoundTrip", testObjectRoundTrip},
		{"PutReplaceDelete", testPutReplaceDelete},
		{"PutCheck", testPutCheck},
		{"MissingBucket", testMissingBucket},
		{"ListByteOrder", testListByteOrder},
		{"ListDelimiter", testListDelimiter},
		{"ListMaxKeys", testListMaxKeys},
		{"ListModel", testListModel},
		{"ListPaging2500", testListPaging2500},
		{"Uploads", testUploads},
		{"ListParts", testListParts},
		{"ListUploads", testListUploads},
		{"CompleteUpload", testCompleteUpload},
		{"AbortUpload", testAbortUpload},
		{"AccessKeys", testAccessKeys},
		{"KeysCheck", testKeysCheck},
		{"KeysCheckConcurrent", testKeysCheckConcurrent},
		{"Redeem", testRedeem},
		{"RedeemConcurrent", testRedeemConcurrent},
		{"SweepRedemptions", testSweepRedemptions},
		{"ConcurrentPut", testConcurrentPut},
		{"ConcurrentChecks", testConcurrentChecks},
		{"Ping", func(t *testing.T, m storage.Meta) {
			if err := m.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newMeta(t)) })
	}
}

func testBuckets(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	if bs, err := m.ListBuckets(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("ListBuckets on a new store = %v, %v; want none", bs, err)
	}
	// Created in an order that is not the listing order; "b1" is a prefix
	// of "b1x" so a backend that matches bucket names by prefix shows it.
	names := []string{"zeta", "b1x", "alpha", "b1", "a-b.c"}
	for i, n := range names {
		b := storage.Bucket{Name: n, Created: at(i)}
		if err := m.CreateBucket(ctx, b); err != nil {
			t.Fatalf("CreateBucket(%q): %v", n, err)
		}
	}
	err := m.CreateBucket(ctx, storage.Bucket{Name: "alpha", Created: at(99), CORS: []byte("<x/>")})
	if !errors.Is(err, storage.ErrBucketExists) {
		t.Fatalf("CreateBucket of an existing name: %v, want ErrBucketExists", err)
	}
	got, err := m.GetBucket(ctx, "alpha")
	if err != nil {
		t.Fatalf("GetBucket: %v", err)
	}
	if got.Name != "alpha" || !got.Created.Equal(at(2)) || len(got.CORS) != 0 {
		t.Errorf("GetBucket after a refused re-create = %+v; want the original", got)
	}
	bs, err := m.ListBuckets(ctx)
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	var listed []string
	for _, b := range bs {
		listed = append(listed, b.Name)
		if want := at(slices.Index(names, b.Name)); !b.Created.Equal(want) {
			t.Errorf("bucket %q Created = %v, want %v", b.Name, b.Created, want)
		}
	}
	if want := []string{"a-b.c", "alpha", "b1", "b1x", "zeta"}; !slices.Equal(listed, want) {
		t.Errorf("ListBuckets = %q, want %q", listed, want)
	}
	if _, err := m.GetBucket(ctx, "nope"); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("GetBucket(missing): %v, want ErrBucketNotFound", err)
	}
	if err := m.DeleteBucket(ctx, "nope"); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("DeleteBucket(missing): %v, want ErrBucketNotFound", err)
	}

	// Objects belong to one bucket only.
	if _, err := m.PutObject(ctx, simpleObject("b1", "k"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetObject(ctx, "b1x", "k"); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Errorf("object of b1 seen in b1x: %v", err)
	}
	r, err := m.ListObjects(ctx, "b1x", storage.ListOptions{MaxKeys: 1000})
	if err != nil || len(r.Objects) != 0 {
		t.Errorf("ListObjects(b1x) = %+v, %v; want empty", r, err)
	}
	if _, err := m.DeleteObject(ctx, "b1", "k", nil); err != nil {
		t.Fatal(err)
	}

	if err := m.DeleteBucket(ctx, "b1"); err != nil {
		t.Fatalf("DeleteBucket: %v", err)
	}
	if _, err := m.GetBucket(ctx, "b1"); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("GetBucket after delete: %v, want ErrBucketNotFound", err)
	}
	if err := m.DeleteBucket(ctx, "b1"); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("second DeleteBucket: %v, want ErrBucketNotFound", err)
	}
	if _, err := m.GetBucket(ctx, "b1x"); err != nil {
		t.Errorf("deleting b1 touched b1x: %v", err)
	}
	// A bucket created again under the same name starts empty.
	mustCreateBucket(t, m, "b1")
	r, err = m.ListObjects(ctx, "b1", storage.ListOptions{MaxKeys: 1000})
	if err != nil || len(r.Objects) != 0 || r.IsTruncated {
		t.Errorf("re-created bucket lists %+v, %v; want empty", r, err)
	}
}

func testBucketNotEmpty(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")

	if _, err := m.PutObject(ctx, simpleObject("b", "dir/obj"), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteBucket(ctx, "b"); !errors.Is(err, storage.ErrBucketNotEmpty) {
		t.Fatalf("DeleteBucket with an object: %v, want ErrBucketNotEmpty", err)
	}
	if _, err := m.GetObject(ctx, "b", "dir/obj"); err != nil {
		t.Fatalf("refused DeleteBucket lost the object: %v", err)
	}
	if _, err := m.DeleteObject(ctx, "b", "dir/obj", nil); err != nil {
		t.Fatal(err)
	}

	u := storage.Upload{Bucket: "b", Key: "big", ID: "upload-1", Initiated: baseTime}
	if err := m.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteBucket(ctx, "b"); !errors.Is(err, storage.ErrBucketNotEmpty) {
		t.Fatalf("DeleteBucket with an unfinished upload: %v, want ErrBucketNotEmpty", err)
	}
	if _, err := m.GetUpload(ctx, "b", "big", "upload-1"); err != nil {
		t.Fatalf("refused DeleteBucket lost the upload: %v", err)
	}
	if _, err := m.AbortUpload(ctx, "b", "big", "upload-1"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteBucket(ctx, "b"); err != nil {
		t.Fatalf("DeleteBucket once empty: %v", err)
	}
}

func testUpdateBucket(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	cors := []byte(`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>`)
	err := m.UpdateBucket(ctx, "b", func(b *storage.Bucket) error {
		if b.Name != "b" || !b.Created.Equal(baseTime) {
			return fmt.Errorf("change got %+v", b)
		}
		b.CORS = cors
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateBucket: %v", err)
	}
	got, err := m.GetBucket(ctx, "b")
	if err != nil || string(got.CORS) != string(cors) || !got.Created.Equal(baseTime) {
		t.Fatalf("after UpdateBucket: %+v, %v", got, err)
	}

	refused := errors.New("refused by change")
	err = m.UpdateBucket(ctx, "b", func(b *storage.Bucket) error {
		b.CORS = nil
		return refused
	})
	if err != refused {
		t.Fatalf("UpdateBucket with a failing change returned %v, want the change's error unchanged", err)
	}
	if got, _ := m.GetBucket(ctx, "b"); string(got.CORS) != string(cors) {
		t.Errorf("failed UpdateBucket changed the bucket: CORS = %q", got.CORS)
	}

	if err := m.UpdateBucket(ctx, "b", func(b *storage.Bucket) error { b.CORS = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.GetBucket(ctx, "b"); len(got.CORS) != 0 {
		t.Errorf("CORS not removed: %q", got.CORS)
	}

	err = m.UpdateBucket(ctx, "missing", func(*storage.Bucket) error { return nil })
	if !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("UpdateBucket(missing): %v, want ErrBucketNotFound", err)
	}
}

func testObjectRoundTrip(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	objs := []storage.Object{
		fullObject("b", "multipart/with everything"),
		{
			Bucket: "b", Key: "inline", Size: 11, ETag: "5eb63bbbe01eeed093cb22bb8f5acdc3",
			LastModified: at(1), ContentType: "text/plain; charset=utf-8",
			Inline:   []byte("hello world"),
			Checksum: &storage.Checksum{Algorithm: "SHA256", Value: "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", Type: "FULL_OBJECT"},
		},
		// Inline bytes that are not text survive too.
		{Bucket: "b", Key: "binary-inline", Size: 4, ETag: "x", LastModified: at(2), Inline: []byte{0, 0xff, '\n', 0}},
		{Bucket: "b", Key: "empty", Size: 0, ETag: "d41d8cd98f00b204e9800998ecf8427e", LastModified: at(3)},
		{
			Bucket: "b", Key: "plain", Size: 1 << 40, ETag: "abc", LastModified: at(4),
			UserMeta: map[string]string{"a": "1"},
			Segments: []storage.Segment{{Blob: "r/with/slashes and spaces", Size: 1 << 40}},
		},
	}
	for _, o := range objs {
		replaced, err := m.PutObject(ctx, o, nil)
		if err != nil {
			t.Fatalf("PutObject(%q): %v", o.Key, err)
		}
		if replaced != nil {
			t.Errorf("PutObject(%q) of a new key replaced %+v", o.Key, replaced)
		}
	}
	for _, o := range objs {
		got, err := m.GetObject(ctx, "b", o.Key)
		if err != nil {
			t.Fatalf("GetObject(%q): %v", o.Key, err)
		}
		checkObject(t, "GetObject "+o.Key, got, o)
		if !slices.Equal(got.Blobs(), o.Blobs()) {
			t.Errorf("Blobs() = %q, want %q", got.Blobs(), o.Blobs())
		}
	}
	// Listing returns the same full records.
	r, err := m.ListObjects(ctx, "b", storage.ListOptions{MaxKeys: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != len(objs) {
		t.Fatalf("listed %d objects, want %d", len(r.Objects), len(objs))
	}
	for _, got := range r.Objects {
		i := slices.IndexFunc(objs, func(o storage.Object) bool { return o.Key == got.Key })
		if i < 0 {
			t.Fatalf("listed unknown key %q", got.Key)
		}
		checkObject(t, "listed "+got.Key, got, objs[i])
	}
}

func testPutReplaceDelete(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	first := fullObject("b", "k")
	if _, err := m.PutObject(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	second := simpleObject("b", "k")
	second.LastModified = at(100)
	second.UserMeta = map[string]string{"v": "2"}
	replaced, err := m.PutObject(ctx, second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if replaced == nil {
		t.Fatal("PutObject over an existing key returned no replaced record")
	}
	checkObject(t, "replaced", *replaced, first)
	got, err := m.GetObject(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, "after replace", got, second)

	deleted, err := m.DeleteObject(ctx, "b", "k", nil)
	if err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	if deleted == nil {
		t.Fatal("DeleteObject returned no record")
	}
	checkObject(t, "deleted", *deleted, second)
	if _, err := m.GetObject(ctx, "b", "k"); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Errorf("GetObject after delete: %v, want ErrObjectNotFound", err)
	}
	if _, err := m.DeleteObject(ctx, "b", "k", nil); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Errorf("second DeleteObject: %v, want ErrObjectNotFound", err)
	}
	if r, err := m.ListObjects(ctx, "b", storage.ListOptions{MaxKeys: 10}); err != nil || len(r.Objects) != 0 {
		t.Errorf("ListObjects after delete = %+v, %v", r, err)
	}
}

func testPutCheck(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	refused := errors.New("precondition failed")

	// A check on a new key sees nil and can refuse the write.
	var sawNil bool
	_, err := m.PutObject(ctx, simpleObject("b", "k"), func(old *storage.Object) error {
		sawNil = old == nil
		return refused
	})
	if err != refused {
		t.Fatalf("PutObject with a refusing check returned %v, want the check's error unchanged", err)
	}
	if !sawNil {
		t.Error("check on a new key did not get nil")
	}
	if _, err := m.GetObject(ctx, "b", "k"); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Fatalf("refused PutObject stored the object: %v", err)
	}

	first := fullObject("b", "k")
	if _, err := m.PutObject(ctx, first, func(old *storage.Object) error {
		if old != nil {
			return fmt.Errorf("check saw %+v on a new key", old)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A check on an existing key sees the stored record.
	second := simpleObject("b", "k")
	_, err = m.PutObject(ctx, second, func(old *storage.Object) error {
		if old == nil {
			t.Error("check on an existing key got nil")
		} else {
			checkObject(t, "check's old record", *old, first)
		}
		return refused
	})
	if err != refused {
		t.Fatalf("refused overwrite returned %v", err)
	}
	got, err := m.GetObject(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, "after refused overwrite", got, first)

	// DeleteObject's check works the same way.
	_, err = m.DeleteObject(ctx, "b", "k", func(old *storage.Object) error {
		if old == nil || old.ETag != first.ETag {
			t.Errorf("delete check got %+v", old)
		}
		return refused
	})
	if err != refused {
		t.Fatalf("refused delete returned %v", err)
	}
	if _, err := m.GetObject(ctx, "b", "k"); err != nil {
		t.Fatalf("refused delete removed the object: %v", err)
	}
	if _, err := m.DeleteObject(ctx, "b", "k", func(*storage.Object) error { return nil }); err != nil {
		t.Fatalf("accepted delete: %v", err)
	}
	if _, err := m.GetObject(ctx, "b", "k"); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Fatalf("accepted delete left the object: %v", err)
	}
}

func testMissingBucket(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	if _, err := m.PutObject(ctx, simpleObject("nope", "k"), nil); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("PutObject: %v, want ErrBucketNotFound", err)
	}
	if _, err := m.GetObject(ctx, "nope", "k"); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("GetObject: %v, want ErrBucketNotFound", err)
	}
	if _, err := m.DeleteObject(ctx, "nope", "k", nil); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("DeleteObject: %v, want ErrBucketNotFound", err)
	}
	if _, err := m.ListObjects(ctx, "nope", storage.ListOptions{MaxKeys: 10}); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("ListObjects: %v, want ErrBucketNotFound", err)
	}
	if err := m.CreateUpload(ctx, storage.Upload{Bucket: "nope", Key: "k", ID: "u", Initiated: baseTime}); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("CreateUpload: %v, want ErrBucketNotFound", err)
	}
	if _, err := m.ListUploads(ctx, "nope", storage.ListUploadsOptions{MaxUploads: 10}); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Errorf("ListUploads: %v, want ErrBucketNotFound", err)
	}
}

// orderKeys sort differently in byte order than under any locale collation
// (case folding, accents, ignored punctuation, numeric order), and include
// characters that break naive escaping or path handling.
func orderKeys() []string {
	long := strings.Repeat("x", 1023)
	return []string{
		"a", "A", "b", "B", "Z", "z", "_under", "-dash", "~tilde", "+plus", "a+b", "a b", "a-b", "a.b", "a_b",
		"%", "%25", "%2F", "a%2Fb", "with space", "with  two spaces", " leading", "trailing ",
		"trailing/", "trailing/child", "dots/../up", "../escape", "./here", "a/./b", "a//b",
		"é", "e\u0301", "f", "ü", "u", "ß", "ss", "ǅ", "日本語/キー", "日本", "😀", "\u00a0nbsp", "\uffff",
		"0", "1", "10", "2", "9", "tab\there", "del\x7f",
		// 1024-byte keys (S3's limit) differing only in their last bytes.
		long + "a", long + "b", long[1:] + "é",
	}
}

func testListByteOrder(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	keys := orderKeys()
	putKeys(t, m, "b", keys)
	for _, k := range keys {
		got, err := m.GetObject(ctx, "b", k)
		if err != nil {
			t.Fatalf("GetObject(%q): %v", k, err)
		}
		if got.Key != k || got.Bucket != "b" {
			t.Errorf("GetObject(%q) returned %q/%q", k, got.Bucket, got.Key)
		}
	}
	want := modelList(keys, storage.ListOptions{})
	for i := 1; i < len(want); i++ {
		// The model sorts with Go's string order, which is byte order.
		if want[i-1].name >= want[i].name {
			t.Fatalf("model not in byte order at %q", want[i].name)
		}
	}
	for _, size := range []int{1000, 7, 1} {
		checkItems(t, fmt.Sprintf("full listing, pages of %d", size), listAll(t, m, "b", storage.ListOptions{}, size), want)
	}
	for _, prefix := range []string{"a", "%", "日本", "trailing/", "e", strings.Repeat("x", 1023)} {
		opts := storage.ListOptions{Prefix: prefix}
		checkItems(t, "prefix "+prefix, listAll(t, m, "b", opts, 1000), modelList(keys, opts))
	}
	for _, after := range []string{"a", "A", "e", "é", "trailing/", "%", "~"} {
		opts := storage.ListOptions{After: after}
		checkItems(t, "after "+after, listAll(t, m, "b", opts, 5), modelList(keys, opts))
	}
}

// delimKeys is a small tree used to check delimiter roll-up by hand.
var delimKeys = []string{
	"a/1", "a/2", "a/b/3", "b", "c/", "c/d", "d", "e//f",
	"photos/2024/jan/1.jpg", "photos/2024/feb/2.jpg", "photos/2025/x.jpg", "photos/index.html",
}

func testListDelimiter(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	putKeys(t, m, "b", delimKeys)
	cases := []struct {
		opts     storage.ListOptions
		objects  []string
		prefixes []string
	}{
		{storage.ListOptions{Delimiter: "/"}, []string{"b", "d"}, []string{"a/", "c/", "e/", "photos/"}},
		{storage.ListOptions{Prefix: "photos/", Delimiter: "/"}, []string{"photos/index.html"}, []string{"photos/2024/", "photos/2025/"}},
		{storage.ListOptions{Prefix: "photos/2024/", Delimiter: "/"}, nil, []string{"photos/2024/feb/", "photos/2024/jan/"}},
		// The key equal to the prefix is an object, not a common prefix.
		{storage.ListOptions{Prefix: "c/", Delimiter: "/"}, []string{"c/", "c/d"}, nil},
		{storage.ListOptions{Prefix: "e/", Delimiter: "/"}, nil, []string{"e//"}},
		{storage.ListOptions{Prefix: "a", Delimiter: "/"}, nil, []string{"a/"}},
		{storage.ListOptions{Prefix: "ph"}, []string{"photos/2024/feb/2.jpg", "photos/2024/jan/1.jpg", "photos/2025/x.jpg", "photos/index.html"}, nil},
		{storage.ListOptions{Prefix: "nomatch", Delimiter: "/"}, nil, nil},
		// Multi-character delimiter.
		{storage.ListOptions{Delimiter: "/20"}, []string{"a/1", "a/2", "a/b/3", "b", "c/", "c/d", "d", "e//f", "photos/index.html"}, []string{"photos/20"}},
		// After a common prefix: its keys are not rolled up again.
		{storage.ListOptions{Delimiter: "/", After: "a/"}, []string{"b", "d"}, []string{"c/", "e/", "photos/"}},
		// After a key inside a common prefix: the prefix sorts before After, so it was listed already.
		{storage.ListOptions{Delimiter: "/", After: "a/1"}, []string{"b", "d"}, []string{"c/", "e/", "photos/"}},
		{storage.ListOptions{Delimiter: "/", After: "b"}, []string{"d"}, []string{"c/", "e/", "photos/"}},
		{storage.ListOptions{Prefix: "photos/", Delimiter: "/", After: "photos/2024/"}, []string{"photos/index.html"}, []string{"photos/2025/"}},
		{storage.ListOptions{Prefix: "photos/", Delimiter: "/", After: "a"}, []string{"photos/index.html"}, []string{"photos/2024/", "photos/2025/"}},
		{storage.ListOptions{Prefix: "photos/", Delimiter: "/", After: "q"}, nil, nil},
	}
	for _, c := range cases {
		c.opts.MaxKeys = 1000
		r, err := m.ListObjects(ctx, "b", c.opts)
		if err != nil {
			t.Fatalf("ListObjects(%+v): %v", c.opts, err)
		}
		var objects []string
		for _, o := range r.Objects {
			objects = append(objects, o.Key)
		}
		if !slices.Equal(objects, c.objects) || !slices.Equal(r.CommonPrefixes, c.prefixes) || r.IsTruncated {
			t.Errorf("ListObjects(%+v) = objects %q prefixes %q truncated %v; want %q %q false",
				c.opts, objects, r.CommonPrefixes, r.IsTruncated, c.objects, c.prefixes)
		}
		// The model agrees with the hand-written expectations.
		var want []item
		for _, o := range c.objects {
			want = append(want, item{o, false})
		}
		for _, p := range c.prefixes {
			want = append(want, item{p, true})
		}
		slices.SortFunc(want, func(a, b item) int { return strings.Compare(a.name, b.name) })
		checkItems(t, fmt.Sprintf("model for %+v", c.opts), modelList(delimKeys, c.opts), want)
	}
}

func testListMaxKeys(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")

	r, err := m.ListObjects(ctx, "b", storage.ListOptions{MaxKeys: 0})
	if err != nil || len(r.Objects)+len(r.CommonPrefixes) != 0 || r.IsTruncated {
		t.Errorf("MaxKeys 0 on an empty bucket = %+v, %v; want empty, not truncated", r, err)
	}
	putKeys(t, m, "b", delimKeys)
	r, err = m.ListObjects(ctx, "b", storage.ListOptions{MaxKeys: 0})
	if err != nil || len(r.Objects)+len(r.CommonPrefixes) != 0 || !r.IsTruncated {
		t.Errorf("MaxKeys 0 = %+v, %v; want an empty page that is truncated", r, err)
	}
	r, err = m.ListObjects(ctx, "b", storage.ListOptions{MaxKeys: 0, After: "zzz"})
	if err != nil || len(r.Objects)+len(r.CommonPrefixes) != 0 || r.IsTruncated {
		t.Errorf("MaxKeys 0 after the last key = %+v, %v; want not truncated", r, err)
	}

	// With "/": a/ b c/ d e/ photos/. A page of 3 ends exactly on the
	// common prefix c/, whose keys must not reappear on the next page.
	r, err = m.ListObjects(ctx, "b", storage.ListOptions{Delimiter: "/", MaxKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 1 || r.Objects[0].Key != "b" || !slices.Equal(r.CommonPrefixes, []string{"a/", "c/"}) ||
		!r.IsTruncated || r.NextAfter != "c/" {
		t.Fatalf("page ending on a common prefix = %+v", r)
	}
	r, err = m.ListObjects(ctx, "b", storage.ListOptions{Delimiter: "/", MaxKeys: 3, After: r.NextAfter})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 1 || r.Objects[0].Key != "d" || !slices.Equal(r.CommonPrefixes, []string{"e/", "photos/"}) ||
		r.IsTruncated {
		t.Fatalf("page after a common prefix = %+v; want d, e/, photos/ and not truncated", r)
	}
	// A page that is exactly full and ends the listing is not truncated.
	r, err = m.ListObjects(ctx, "b", storage.ListOptions{Delimiter: "/", MaxKeys: 6})
	if err != nil || r.IsTruncated || len(r.Objects)+len(r.CommonPrefixes) != 6 {
		t.Fatalf("exactly full last page = %+v, %v", r, err)
	}
	// Every page size gives the same sequence, with or without delimiter.
	for _, opts := range []storage.ListOptions{{Delimiter: "/"}, {}, {Prefix: "photos/", Delimiter: "/"}} {
		want := modelList(delimKeys, opts)
		for size := 1; size <= len(want)+1; size++ {
			checkItems(t, fmt.Sprintf("%+v pages of %d", opts, size), listAll(t, m, "b", opts, size), want)
		}
	}
}

// testListModel compares many combinations of prefix, delimiter and After
// against the reference model.
func testListModel(t *testing.T, m storage.Meta) {
	mustCreateBucket(t, m, "b")
	keys := append(slices.Clone(delimKeys), "a", "a0", "a/", "a//", "photos/", "日本語/キー", "日本語/x/y", "x/20/y")
	putKeys(t, m, "b", keys)
	for _, prefix := range []string{"", "a", "a/", "photos/", "photos/2024/", "c/", "e/", "nomatch", "日本語/"} {
		for _, delim := range []string{"", "/", "20", "//"} {
			for _, after := range []string{"", "a/", "a/1", "b", "photos/2024/", "zzz"} {
				opts := storage.ListOptions{Prefix: prefix, Delimiter: delim, After: after}
				want := modelList(keys, opts)
				for _, size := range []int{1, 2, 1000} {
					checkItems(t, fmt.Sprintf("%+v pages of %d", opts, size), listAll(t, m, "b", opts, size), want)
				}
			}
		}
	}
}

func testListPaging2500(t *testing.T, m storage.Meta) {
	mustCreateBucket(t, m, "b")
	var keys []string
	for d := range 50 {
		for f := range 40 {
			keys = append(keys, fmt.Sprintf("dir%02d/file%03d", d, f))
		}
	}
	for f := range 500 {
		keys = append(keys, fmt.Sprintf("top%04d", f))
	}
	putKeysParallel(t, m, "b", keys, 8)

	for _, c := range []struct {
		opts  storage.ListOptions
		size  int
		count int
	}{
		{storage.ListOptions{}, 1000, 2500},
		{storage.ListOptions{}, 333, 2500},
		{storage.ListOptions{Delimiter: "/"}, 1000, 550},
		{storage.ListOptions{Delimiter: "/"}, 7, 550},
		{storage.ListOptions{Delimiter: "/"}, 50, 550},
		{storage.ListOptions{Prefix: "dir07/", Delimiter: "/"}, 9, 40},
	} {
		got := listAll(t, m, "b", c.opts, c.size)
		seen := map[item]bool{}
		for _, it := range got {
			if seen[it] {
				t.Fatalf("%+v pages of %d: %v listed twice", c.opts, c.size, it)
			}
			seen[it] = true
		}
		if len(got) != c.count {
			t.Errorf("%+v pages of %d: %d entries, want %d", c.opts, c.size, len(got), c.count)
		}
		checkItems(t, fmt.Sprintf("%+v pages of %d", c.opts, c.size), got, modelList(keys, c.opts))
	}
}

func testConcurrentPut(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	const writers, each = 12, 20
	record := func(w, i int) storage.Object {
		tag := fmt.Sprintf("w%02d-%03d", w, i)
		return storage.Object{
			Bucket: "b", Key: "same/key", Size: int64(w*1000 + i), ETag: tag, LastModified: at(w*1000 + i),
			UserMeta: map[string]string{"writer": tag},
			Segments: []storage.Segment{{Blob: "blob-" + tag, Size: int64(w*1000 + i)}},
		}
	}
	var (
		mu       sync.Mutex
		replaced []storage.Object
		nils     int
		wg       sync.WaitGroup
		errs     = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				old, err := m.PutObject(ctx, record(w, i), nil)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if old == nil {
					nils++
				} else {
					replaced = append(replaced, *old)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent PutObject: %v", err)
	}
	final, err := m.GetObject(ctx, "b", "same/key")
	if err != nil {
		t.Fatal(err)
	}
	// Every write but one was replaced exactly once, and the one left is the
	// stored record: no write was lost or applied twice.
	if nils != 1 {
		t.Errorf("%d writes saw no previous record, want exactly 1", nils)
	}
	seen := map[string]int{final.ETag: 1}
	for _, o := range append(replaced, final) {
		var w, i int
		if _, err := fmt.Sscanf(o.ETag, "w%02d-%03d", &w, &i); err != nil {
			t.Fatalf("unexpected record %+v", o)
		}
		checkObject(t, "record "+o.ETag, o, record(w, i))
	}
	for _, o := range replaced {
		seen[o.ETag]++
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct records seen, want %d", len(seen), writers*each)
	}
	for tag, n := range seen {
		if n != 1 {
			t.Errorf("record %s seen %d times (replaced or final), want once", tag, n)
		}
	}
	r, err := m.ListObjects(ctx, "b", storage.ListOptions{MaxKeys: 10})
	if err != nil || len(r.Objects) != 1 || r.Objects[0].ETag != final.ETag {
		t.Errorf("listing after concurrent puts = %+v, %v", r, err)
	}
}

// testConcurrentChecks mixes writes whose checks refuse with writes that
// succeed, as conditional PUTs from many clients do. Backends that commit
// writers in groups must roll back only the refused ones.
func testConcurrentChecks(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	const n = 60
	refusals := make([]error, n)
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		refusals[i] = fmt.Errorf("refusal %d", i)
		wg.Go(func() {
			key := fmt.Sprintf("k%02d", i)
			_, results[i] = m.PutObject(ctx, simpleObject("b", key), func(old *storage.Object) error {
				if old != nil {
					return fmt.Errorf("check of %s saw %+v", key, old)
				}
				if i%3 == 0 {
					return refusals[i]
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range results {
		_, getErr := m.GetObject(ctx, "b", fmt.Sprintf("k%02d", i))
		if i%3 == 0 {
			if err != refusals[i] {
				t.Errorf("refused write %d returned %v, want its own refusal unchanged", i, err)
			}
			if !errors.Is(getErr, storage.ErrObjectNotFound) {
				t.Errorf("refused write %d was stored: %v", i, getErr)
			}
		} else if err != nil || getErr != nil {
			t.Errorf("write %d: %v; read back: %v", i, err, getErr)
		}
	}
}
