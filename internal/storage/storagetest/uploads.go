package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
)

func uploadTemplate() storage.Object {
	return storage.Object{
		ContentType:  "video/mp4",
		CacheControl: "no-cache",
		UserMeta:     map[string]string{"camera": "front", "trip": "Zürich"},
		Checksum:     &storage.Checksum{Algorithm: "CRC32", Type: "COMPOSITE"},
	}
}

func part(n int, tag string) storage.Part {
	return storage.Part{
		Number:       n,
		Size:         int64(5<<20 + n),
		ETag:         fmt.Sprintf("etag-%d-%s", n, tag),
		LastModified: at(n),
		Checksum:     &storage.Checksum{Algorithm: "CRC32", Value: "AAAA" + tag, Type: "COMPOSITE"},
		Segment:      storage.Segment{Blob: fmt.Sprintf("part-%d-%s", n, tag), Size: int64(5<<20 + n)},
	}
}

func mustPutPart(t *testing.T, m storage.Meta, u storage.Upload, p storage.Part) *storage.Part {
	t.Helper()
	replaced, err := m.PutPart(t.Context(), u.Bucket, u.Key, u.ID, p)
	if err != nil {
		t.Fatalf("PutPart(%d): %v", p.Number, err)
	}
	return replaced
}

func mustCreateUpload(t *testing.T, m storage.Meta, u storage.Upload) {
	t.Helper()
	if err := m.CreateUpload(t.Context(), u); err != nil {
		t.Fatalf("CreateUpload(%q, %q): %v", u.Key, u.ID, err)
	}
}

func testUploads(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	mustCreateBucket(t, m, "other")
	u := storage.Upload{Bucket: "b", Key: "movies/trip 1.mp4", ID: "VXBsb2FkIElE-1", Initiated: at(5), Template: uploadTemplate()}
	mustCreateUpload(t, m, u)
	u2 := storage.Upload{Bucket: "b", Key: u.Key, ID: "VXBsb2FkIElE-2", Initiated: at(6)}
	mustCreateUpload(t, m, u2)

	got, err := m.GetUpload(ctx, "b", u.Key, u.ID)
	if err != nil {
		t.Fatalf("GetUpload: %v", err)
	}
	checkUpload(t, "GetUpload", got, u)
	for _, c := range []struct{ bucket, key, id string }{
		{"b", "movies/trip 2.mp4", u.ID}, // right id, wrong key
		{"b", u.Key, "no-such-id"},
		{"other", u.Key, u.ID},
	} {
		if _, err := m.GetUpload(ctx, c.bucket, c.key, c.id); !errors.Is(err, storage.ErrUploadNotFound) {
			t.Errorf("GetUpload(%q, %q, %q): %v, want ErrUploadNotFound", c.bucket, c.key, c.id, err)
		}
		if _, err := m.PutPart(ctx, c.bucket, c.key, c.id, part(1, "x")); !errors.Is(err, storage.ErrUploadNotFound) {
			t.Errorf("PutPart(%q, %q, %q): %v, want ErrUploadNotFound", c.bucket, c.key, c.id, err)
		}
		if _, _, err := m.ListParts(ctx, c.bucket, c.key, c.id, 0, 100); !errors.Is(err, storage.ErrUploadNotFound) {
			t.Errorf("ListParts(%q, %q, %q): %v, want ErrUploadNotFound", c.bucket, c.key, c.id, err)
		}
	}

	p1 := part(1, "a")
	if r := mustPutPart(t, m, u, p1); r != nil {
		t.Errorf("first PutPart(1) replaced %+v", r)
	}
	p2 := part(2, "a")
	mustPutPart(t, m, u, p2)
	p1b := part(1, "b")
	p1b.Checksum = nil
	r := mustPutPart(t, m, u, p1b)
	if r == nil {
		t.Fatal("PutPart over an existing part number returned no replaced part")
	}
	checkPart(t, "replaced part", *r, p1)
	// The second upload of the same key has parts of its own.
	mustPutPart(t, m, u2, part(1, "other"))

	parts, more, err := m.ListParts(ctx, "b", u.Key, u.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkParts(t, "ListParts", parts, []storage.Part{p1b, p2})
	if more {
		t.Error("ListParts reports more parts")
	}
	parts, _, err = m.ListParts(ctx, "b", u2.Key, u2.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkParts(t, "other upload's parts", parts, []storage.Part{part(1, "other")})
}

func testListParts(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	u := storage.Upload{Bucket: "b", Key: "k", ID: "u1", Initiated: baseTime}
	mustCreateUpload(t, m, u)
	if ps, more, err := m.ListParts(ctx, "b", "k", "u1", 0, 10); err != nil || len(ps) != 0 || more {
		t.Fatalf("ListParts of an upload without parts = %v, %v, %v", ps, more, err)
	}
	numbers := []int{10000, 3, 1, 2, 5, 999} // stored out of order
	all := map[int]storage.Part{}
	for _, n := range numbers {
		all[n] = part(n, "p")
		mustPutPart(t, m, u, all[n])
	}
	sorted := slices.Sorted(slices.Values(numbers))
	cases := []struct {
		after, max int
		want       []int
		more       bool
	}{
		{0, 1000, sorted, false},
		{0, 6, sorted, false}, // exactly full, nothing left
		{0, 2, []int{1, 2}, true},
		{2, 2, []int{3, 5}, true},
		{5, 2, []int{999, 10000}, false},
		{3, 1, []int{5}, true},
		{4, 1000, []int{5, 999, 10000}, false},
		{10000, 10, nil, false},
		{0, 0, nil, true},
	}
	for _, c := range cases {
		ps, more, err := m.ListParts(ctx, "b", "k", "u1", c.after, c.max)
		if err != nil {
			t.Fatalf("ListParts(after %d, max %d): %v", c.after, c.max, err)
		}
		var want []storage.Part
		for _, n := range c.want {
			want = append(want, all[n])
		}
		checkParts(t, fmt.Sprintf("ListParts(after %d, max %d)", c.after, c.max), ps, want)
		if more != c.more {
			t.Errorf("ListParts(after %d, max %d) more = %v, want %v", c.after, c.max, more, c.more)
		}
	}
}

// uploadItem names an upload or a common prefix of a ListUploads page.
func uploadItems(r storage.ListUploadsResult) []item {
	var items []item
	for _, u := range r.Uploads {
		items = append(items, item{u.Key + "\x00" + u.ID, false})
	}
	for _, p := range r.CommonPrefixes {
		items = append(items, item{p, true})
	}
	// Keep uploads of one key in their returned order; place common prefixes
	// among them by key.
	slices.SortStableFunc(items, func(a, b item) int {
		ka, _, _ := strings.Cut(a.name, "\x00")
		kb, _, _ := strings.Cut(b.name, "\x00")
		return strings.Compare(ka, kb)
	})
	return items
}

// modelUploads is the reference ListUploads: uploads ordered by key, then
// initiation; after KeyMarker (and, for that key, after UploadIDMarker); the
// suite's upload IDs grow with initiation time so both readings of the
// upload-id marker (position or ID order) agree.
func modelUploads(ups []storage.Upload, opts storage.ListUploadsOptions) []item {
	sorted := slices.Clone(ups)
	slices.SortFunc(sorted, func(a, b storage.Upload) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if c := a.Initiated.Compare(b.Initiated); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var out []item
	seen := map[string]bool{}
	for _, u := range sorted {
		if !strings.HasPrefix(u.Key, opts.Prefix) {
			continue
		}
		if opts.Delimiter != "" {
			if i := strings.Index(u.Key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				cp := u.Key[:len(opts.Prefix)+i+len(opts.Delimiter)]
				if cp > opts.KeyMarker && !seen[cp] {
					seen[cp] = true
					out = append(out, item{cp, true})
				}
				continue
			}
		}
		if u.Key > opts.KeyMarker || (u.Key == opts.KeyMarker && opts.UploadIDMarker != "" && u.ID > opts.UploadIDMarker) {
			out = append(out, item{u.Key + "\x00" + u.ID, false})
		}
	}
	return out
}

func listAllUploads(t *testing.T, m storage.Meta, bucket string, opts storage.ListUploadsOptions, size int) []item {
	t.Helper()
	var all []item
	opts.MaxUploads = size
	for page := 0; page < 1000; page++ {
		what := fmt.Sprintf("ListUploads(%+v) page %d", opts, page)
		r, err := m.ListUploads(t.Context(), bucket, opts)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		items := uploadItems(r)
		if len(items) > size || (r.IsTruncated && len(items) != size) {
			t.Fatalf("%s: %d entries, truncated %v, MaxUploads %d", what, len(items), r.IsTruncated, size)
		}
		all = append(all, items...)
		if !r.IsTruncated {
			return all
		}
		// The S3 layer's NextKeyMarker / NextUploadIdMarker.
		last := items[len(items)-1]
		if last.prefix {
			opts.KeyMarker, opts.UploadIDMarker = last.name, ""
		} else {
			opts.KeyMarker, opts.UploadIDMarker, _ = strings.Cut(last.name, "\x00")
		}
	}
	t.Fatalf("ListUploads(%+v) does not end", opts)
	return nil
}

func testListUploads(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	if r, err := m.ListUploads(ctx, "b", storage.ListUploadsOptions{MaxUploads: 0}); err != nil || len(r.Uploads) != 0 || r.IsTruncated {
		t.Fatalf("ListUploads on an empty bucket = %+v, %v", r, err)
	}
	// Created in an order that is neither key nor ID order overall.
	keys := []string{"c", "a", "b/2", "a", "d/e/f", "b/1", "日本/x", "b/2", "a", "B", "a/"}
	var ups []storage.Upload
	for i, k := range keys {
		u := storage.Upload{Bucket: "b", Key: k, ID: fmt.Sprintf("id%02d", i), Initiated: at(i), Template: storage.Object{ContentType: "t/" + k}}
		mustCreateUpload(t, m, u)
		ups = append(ups, u)
	}

	r, err := m.ListUploads(ctx, "b", storage.ListUploadsOptions{MaxUploads: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, u := range r.Uploads {
		order = append(order, u.Key+"#"+u.ID)
		i := slices.IndexFunc(ups, func(x storage.Upload) bool { return x.ID == u.ID })
		if i < 0 {
			t.Fatalf("unknown upload %+v", u)
		}
		checkUpload(t, "listed upload", u, ups[i])
	}
	want := []string{"B#id09", "a#id01", "a#id03", "a#id08", "a/#id10", "b/1#id05", "b/2#id02", "b/2#id07", "c#id00", "d/e/f#id04", "日本/x#id06"}
	if !slices.Equal(order, want) || r.IsTruncated || len(r.CommonPrefixes) != 0 {
		t.Errorf("ListUploads = %q (truncated %v, prefixes %q), want %q", order, r.IsTruncated, r.CommonPrefixes, want)
	}

	r, err = m.ListUploads(ctx, "b", storage.ListUploadsOptions{MaxUploads: 0})
	if err != nil || len(r.Uploads)+len(r.CommonPrefixes) != 0 || !r.IsTruncated {
		t.Errorf("MaxUploads 0 = %+v, %v; want an empty truncated page", r, err)
	}

	for _, opts := range []storage.ListUploadsOptions{
		{},
		{Delimiter: "/"},
		{Prefix: "b/"},
		{Prefix: "b/", Delimiter: "/"},
		{Prefix: "d/", Delimiter: "/"},
		{KeyMarker: "a"},
		{KeyMarker: "a", UploadIDMarker: "id01"},
		{KeyMarker: "a", UploadIDMarker: "id03"},
		{KeyMarker: "b/", Delimiter: "/"},
		{KeyMarker: "b/1", Delimiter: "/"},
		{KeyMarker: "zzz"},
		{UploadIDMarker: "id05"}, // ignored without a key marker
	} {
		want := modelUploads(ups, opts)
		for _, size := range []int{1, 2, 3, 1000} {
			got := listAllUploads(t, m, "b", opts, size)
			checkItems(t, fmt.Sprintf("ListUploads(%+v) pages of %d", opts, size), got, want)
		}
	}
}

func testCompleteUpload(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	old := fullObject("b", "k")
	if _, err := m.PutObject(ctx, old, nil); err != nil {
		t.Fatal(err)
	}
	u := storage.Upload{Bucket: "b", Key: "k", ID: "up", Initiated: at(1), Template: uploadTemplate()}
	mustCreateUpload(t, m, u)
	other := storage.Upload{Bucket: "b", Key: "k", ID: "up-other", Initiated: at(2)}
	mustCreateUpload(t, m, other)
	mustPutPart(t, m, other, part(1, "o"))
	for _, p := range []storage.Part{part(1, "a"), part(2, "a"), part(3, "a"), part(2, "b")} {
		mustPutPart(t, m, u, p)
	}

	// The completed object uses parts 1 and 3; part 2 was left out.
	o := uploadTemplate()
	o.Bucket, o.Key = "b", "k"
	o.Size = part(1, "a").Size + part(3, "a").Size
	o.ETag = "0123456789abcdef0123456789abcdef-2"
	o.LastModified = at(10)
	o.Checksum = &storage.Checksum{Algorithm: "CRC32", Value: "AAAAAA==-2", Type: "COMPOSITE"}
	o.Parts = []storage.PartInfo{
		{Number: 1, Size: part(1, "a").Size, ETag: part(1, "a").ETag, Checksum: "AAAAa"},
		{Number: 3, Size: part(3, "a").Size, ETag: part(3, "a").ETag, Checksum: "AAAAa"},
	}
	o.Segments = []storage.Segment{part(1, "a").Segment, part(3, "a").Segment}

	refused := errors.New("If-None-Match failed")
	_, _, err := m.CompleteUpload(ctx, "b", "k", "up", o, func(prev *storage.Object) error {
		if prev == nil || prev.ETag != old.ETag {
			t.Errorf("complete check got %+v, want the existing record", prev)
		}
		return refused
	})
	if err != refused {
		t.Fatalf("CompleteUpload with a refusing check returned %v, want the check's error unchanged", err)
	}
	if _, err := m.GetUpload(ctx, "b", "k", "up"); err != nil {
		t.Fatalf("refused CompleteUpload removed the upload: %v", err)
	}
	if ps, _, err := m.ListParts(ctx, "b", "k", "up", 0, 100); err != nil || len(ps) != 3 {
		t.Fatalf("refused CompleteUpload changed the parts: %v, %v", partNumbers(ps), err)
	}
	if got, _ := m.GetObject(ctx, "b", "k"); got.ETag != old.ETag {
		t.Fatalf("refused CompleteUpload replaced the object: %+v", got)
	}

	if _, _, err := m.CompleteUpload(ctx, "b", "other-key", "up", o, nil); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("CompleteUpload with the wrong key: %v, want ErrUploadNotFound", err)
	}

	// A segment that is no longer a part's blob (part 2 was uploaded again
	// as "b") must refuse the completion and change nothing.
	stale := o
	stale.Segments = []storage.Segment{part(1, "a").Segment, part(2, "a").Segment}
	if _, _, err := m.CompleteUpload(ctx, "b", "k", "up", stale, nil); !errors.Is(err, storage.ErrPartChanged) {
		t.Fatalf("CompleteUpload naming a replaced part's blob: %v, want ErrPartChanged", err)
	}
	if ps, _, err := m.ListParts(ctx, "b", "k", "up", 0, 100); err != nil || len(ps) != 3 {
		t.Fatalf("CompleteUpload refused for a changed part changed the parts: %v, %v", partNumbers(ps), err)
	}
	if got, _ := m.GetObject(ctx, "b", "k"); got.ETag != old.ETag {
		t.Fatalf("CompleteUpload refused for a changed part replaced the object: %+v", got)
	}

	replaced, unused, err := m.CompleteUpload(ctx, "b", "k", "up", o, nil)
	if err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	if replaced == nil {
		t.Fatal("CompleteUpload over an existing object returned no replaced record")
	}
	checkObject(t, "replaced by completion", *replaced, old)
	slices.SortFunc(unused, func(a, b storage.Part) int { return a.Number - b.Number })
	checkParts(t, "unused parts", unused, []storage.Part{part(2, "b")})

	got, err := m.GetObject(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, "completed object", got, o)
	if _, err := m.GetUpload(ctx, "b", "k", "up"); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("GetUpload after completion: %v, want ErrUploadNotFound", err)
	}
	if _, _, err := m.ListParts(ctx, "b", "k", "up", 0, 100); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("ListParts after completion: %v, want ErrUploadNotFound", err)
	}
	if _, _, err := m.CompleteUpload(ctx, "b", "k", "up", o, nil); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("second CompleteUpload: %v, want ErrUploadNotFound", err)
	}
	r, err := m.ListUploads(ctx, "b", storage.ListUploadsOptions{MaxUploads: 100})
	if err != nil || len(r.Uploads) != 1 || r.Uploads[0].ID != "up-other" {
		t.Errorf("uploads after completion = %+v, %v; want only up-other", r, err)
	}
	if ps, _, err := m.ListParts(ctx, "b", "k", "up-other", 0, 100); err != nil || len(ps) != 1 {
		t.Errorf("completion touched another upload's parts: %v, %v", partNumbers(ps), err)
	}

	// Completing onto a new key replaces nothing.
	u3 := storage.Upload{Bucket: "b", Key: "fresh", ID: "up3", Initiated: at(3)}
	mustCreateUpload(t, m, u3)
	mustPutPart(t, m, u3, part(1, "c"))
	o3 := o
	o3.Key = "fresh"
	o3.Parts = o.Parts[:1]
	o3.Segments = []storage.Segment{part(1, "c").Segment}
	replaced, unused, err = m.CompleteUpload(ctx, "b", "fresh", "up3", o3, func(prev *storage.Object) error {
		if prev != nil {
			return fmt.Errorf("check saw %+v for a new key", prev)
		}
		return nil
	})
	if err != nil || replaced != nil || len(unused) != 0 {
		t.Errorf("CompleteUpload onto a new key = %+v, %v, %v", replaced, unused, err)
	}
}

func testAbortUpload(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	mustCreateBucket(t, m, "b")
	u := storage.Upload{Bucket: "b", Key: "k", ID: "a1", Initiated: baseTime}
	keep := storage.Upload{Bucket: "b", Key: "k2", ID: "a2", Initiated: baseTime}
	mustCreateUpload(t, m, u)
	mustCreateUpload(t, m, keep)
	want := []storage.Part{part(1, "x"), part(2, "x"), part(7, "x")}
	for _, p := range want {
		mustPutPart(t, m, u, p)
	}
	mustPutPart(t, m, keep, part(1, "keep"))

	if _, err := m.AbortUpload(ctx, "b", "k2", "a1"); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("AbortUpload with the wrong key: %v, want ErrUploadNotFound", err)
	}
	parts, err := m.AbortUpload(ctx, "b", "k", "a1")
	if err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	slices.SortFunc(parts, func(a, b storage.Part) int { return a.Number - b.Number })
	checkParts(t, "aborted parts", parts, want)
	if _, err := m.GetUpload(ctx, "b", "k", "a1"); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("GetUpload after abort: %v", err)
	}
	if _, err := m.PutPart(ctx, "b", "k", "a1", part(3, "late")); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("PutPart after abort: %v", err)
	}
	if _, err := m.AbortUpload(ctx, "b", "k", "a1"); !errors.Is(err, storage.ErrUploadNotFound) {
		t.Errorf("second AbortUpload: %v, want ErrUploadNotFound", err)
	}
	ps, _, err := m.ListParts(ctx, "b", "k2", "a2", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	checkParts(t, "other upload after abort", ps, []storage.Part{part(1, "keep")})
}

func testAccessKeys(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	if ks, err := m.ListAccessKeys(ctx); err != nil || len(ks) != 0 {
		t.Fatalf("ListAccessKeys on a new store = %v, %v", ks, err)
	}
	k1 := storage.AccessKey{
		ID: "AKIAEXAMPLE1", Name: "uploader app", SealedSecret: []byte{1, 2, 3, 0, 255},
		Scopes: []string{"object:put", "object:get"}, Buckets: []string{"media", "avatars"}, Prefix: "users/",
		Created: at(1), Expires: at(86400), MaxURLTTL: 15 * time.Minute, MaxObjectSize: 5 << 30,
		ContentTypes: []string{"image/*", "video/mp4"},
	}
	k2 := storage.AccessKey{ID: "AKIAROOT", Name: "root", SealedSecret: []byte("sealed"), Root: true, Created: at(2)}
	for _, k := range []storage.AccessKey{k1, k2} {
		if err := m.PutAccessKey(ctx, k); err != nil {
			t.Fatalf("PutAccessKey(%s): %v", k.ID, err)
		}
	}
	if err := m.PutAccessKey(ctx, storage.AccessKey{ID: k1.ID, Name: "dup"}); !errors.Is(err, storage.ErrKeyExists) {
		t.Errorf("PutAccessKey of an existing id: %v, want ErrKeyExists", err)
	}
	got, err := m.GetAccessKey(ctx, k1.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkAccessKey(t, "GetAccessKey", got, k1)
	if _, err := m.GetAccessKey(ctx, "AKIANOPE"); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Errorf("GetAccessKey(missing): %v, want ErrKeyNotFound", err)
	}

	err = m.UpdateAccessKey(ctx, k1.ID, nil, func(k *storage.AccessKey) error {
		k.Disabled = true
		k.Scopes = append(k.Scopes, "object:delete")
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateAccessKey: %v", err)
	}
	k1.Disabled = true
	k1.Scopes = append(slices.Clone(k1.Scopes), "object:delete")
	got, _ = m.GetAccessKey(ctx, k1.ID)
	checkAccessKey(t, "after UpdateAccessKey", got, k1)

	refused := errors.New("nope")
	if err := m.UpdateAccessKey(ctx, k1.ID, nil, func(k *storage.AccessKey) error { k.Name = "changed"; return refused }); err != refused {
		t.Errorf("UpdateAccessKey with a failing change returned %v, want it unchanged", err)
	}
	got, _ = m.GetAccessKey(ctx, k1.ID)
	checkAccessKey(t, "after failed update", got, k1)
	if err := m.UpdateAccessKey(ctx, "AKIANOPE", nil, func(*storage.AccessKey) error { return nil }); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Errorf("UpdateAccessKey(missing): %v, want ErrKeyNotFound", err)
	}

	ks, err := m.ListAccessKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ks, func(a, b storage.AccessKey) int { return strings.Compare(a.ID, b.ID) })
	if len(ks) != 2 {
		t.Fatalf("ListAccessKeys = %d keys, want 2", len(ks))
	}
	checkAccessKey(t, "listed k1", ks[0], k1)
	checkAccessKey(t, "listed k2", ks[1], k2)

	if err := m.DeleteAccessKey(ctx, k1.ID, nil); err != nil {
		t.Fatalf("DeleteAccessKey: %v", err)
	}
	if _, err := m.GetAccessKey(ctx, k1.ID); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Errorf("GetAccessKey after delete: %v", err)
	}
	if err := m.DeleteAccessKey(ctx, k1.ID, nil); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Errorf("second DeleteAccessKey: %v, want ErrKeyNotFound", err)
	}
	if ks, _ := m.ListAccessKeys(ctx); len(ks) != 1 || ks[0].ID != k2.ID {
		t.Errorf("keys after delete = %+v", ks)
	}
	// A deleted id can be created again.
	if err := m.PutAccessKey(ctx, k1); err != nil {
		t.Errorf("PutAccessKey after delete: %v", err)
	}
}

func testRedeem(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	if err := m.Redeem(ctx, "tok-1", at(3600)); err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if err := m.Redeem(ctx, "tok-1", at(3600)); !errors.Is(err, storage.ErrAlreadyRedeemed) {
		t.Fatalf("second Redeem: %v, want ErrAlreadyRedeemed", err)
	}
	if err := m.Redeem(ctx, "tok-2", at(3600)); err != nil {
		t.Fatalf("Redeem of another token: %v", err)
	}
}

func testRedeemConcurrent(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	const n = 20
	results := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			results <- m.Redeem(ctx, "one-time", at(60))
		}()
	}
	close(start)
	var ok, already int
	for range n {
		switch err := <-results; {
		case err == nil:
			ok++
		case errors.Is(err, storage.ErrAlreadyRedeemed):
			already++
		default:
			t.Errorf("Redeem: %v", err)
		}
	}
	if ok != 1 || already != n-1 {
		t.Errorf("%d redemptions succeeded and %d were refused; want 1 and %d", ok, already, n-1)
	}
}

func testSweepRedemptions(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	now := at(1000)
	expired := []string{"e1", "e2", "e3"}
	live := []string{"l1", "l2"}
	for i, tok := range expired {
		if err := m.Redeem(ctx, tok, now.Add(-time.Duration(i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for i, tok := range live {
		if err := m.Redeem(ctx, tok, now.Add(time.Duration(i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := m.SweepRedemptions(ctx, now)
	if err != nil {
		t.Fatalf("SweepRedemptions: %v", err)
	}
	if n != len(expired) {
		t.Errorf("SweepRedemptions removed %d, want %d", n, len(expired))
	}
	// Live tokens are still redeemed; swept ones are forgotten.
	for _, tok := range live {
		if err := m.Redeem(ctx, tok, now.Add(time.Second)); !errors.Is(err, storage.ErrAlreadyRedeemed) {
			t.Errorf("live token %s after sweep: %v, want ErrAlreadyRedeemed", tok, err)
		}
	}
	for _, tok := range expired {
		if err := m.Redeem(ctx, tok, now.Add(time.Second)); err != nil {
			t.Errorf("swept token %s could not be recorded again: %v", tok, err)
		}
	}
	if n, err := m.SweepRedemptions(ctx, now); err != nil || n != 0 {
		t.Errorf("second sweep removed %d, %v; want 0", n, err)
	}
}
