package boltmeta

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"

	"nfyio.dev/storage/internal/storage"
)

func benchDB(b *testing.B, opts Options) *DB {
	b.Helper()
	db := open(b, filepath.Join(b.TempDir(), "meta.db"), opts)
	if err := db.CreateBucket(b.Context(), storage.Bucket{Name: "b"}); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkPutObject measures durable puts from one writer and from many;
// commits/op shows how many writers share one commit (and its fsyncs).
func BenchmarkPutObject(b *testing.B) {
	for _, c := range []struct {
		name     string
		opts     Options
		parallel int
	}{
		{"sync/serial", Options{}, 0},
		{"sync/parallel64", Options{}, 64},
		{"nosync/serial", Options{NoSync: true}, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := benchDB(b, c.opts)
			o := sampleObject()
			o.Bucket = "b"
			before := db.c.commits.Load()
			var n atomic.Int64
			put := func() {
				o := o
				o.Key = fmt.Sprintf("key-%09d", n.Add(1))
				if _, err := db.PutObject(b.Context(), o, nil); err != nil {
					b.Error(err)
				}
			}
			if c.parallel > 0 {
				b.SetParallelism(c.parallel)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						put()
					}
				})
			} else {
				for b.Loop() {
					put()
				}
			}
			commits := db.c.commits.Load() - before
			b.ReportMetric(float64(commits)/float64(n.Load()), "commits/op")
		})
	}
}

func BenchmarkGetObject(b *testing.B) {
	db := benchDB(b, Options{NoSync: true})
	fill(b, db, 100_000, func(i int) string { return fmt.Sprintf("key-%09d", i) })
	i := 0
	for b.Loop() {
		i = (i + 7919) % 100_000
		if _, err := db.GetObject(b.Context(), "b", fmt.Sprintf("key-%09d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// fill writes n records in one transaction: setting up 100,000 keys through
// PutObject would take longer than the benchmark itself.
func fill(b *testing.B, db *DB, n int, key func(int) string) {
	b.Helper()
	o := sampleObject()
	rec := appendObject(nil, &o)
	err := db.db.Update(func(tx *bolt.Tx) error {
		data, err := dataOf(tx, "b")
		if err != nil {
			return err
		}
		for i := range n {
			if err := data.objects.Put([]byte(key(i)), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkList lists one page of 1,000 in a 100,000-key bucket: plain
// keys from the middle, and common prefixes that each hide 100 keys (the
// cursor seeks past them instead of reading them).
func BenchmarkList(b *testing.B) {
	db := benchDB(b, Options{NoSync: true})
	fill(b, db, 100_000, func(i int) string { return fmt.Sprintf("dir%04d/file%03d", i/100, i%100) })
	for _, c := range []struct {
		name string
		opts storage.ListOptions
	}{
		{"keys", storage.ListOptions{After: "dir0500/", MaxKeys: 1000}},
		{"prefixes", storage.ListOptions{Delimiter: "/", MaxKeys: 1000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				r, err := db.ListObjects(b.Context(), "b", c.opts)
				if err != nil || len(r.Objects)+len(r.CommonPrefixes) != 1000 {
					b.Fatalf("%d entries, %v", len(r.Objects)+len(r.CommonPrefixes), err)
				}
			}
		})
	}
}
