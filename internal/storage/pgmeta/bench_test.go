package pgmeta

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/testpg"
)

func benchDB(b *testing.B) *DB {
	b.Helper()
	db, err := Open(context.Background(), testpg.Start(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchObject(key string) storage.Object {
	return storage.Object{
		Bucket: "big", Key: key, Size: 1 << 20, ETag: "0123456789abcdef0123456789abcdef", LastModified: time.Now(),
		ContentType: "application/octet-stream", UserMeta: map[string]string{"owner": "bench"},
		Segments: []storage.Segment{{Blob: "blob-" + key, Size: 1 << 20}},
	}
}

// BenchmarkPutObject: one transaction per put (lock bucket, lock or create
// the row, write), run from parallel goroutines on distinct keys.
func BenchmarkPutObject(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	if err := db.CreateBucket(ctx, storage.Bucket{Name: "big", Created: time.Now()}); err != nil {
		b.Fatal(err)
	}
	var n atomicCounter
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.PutObject(ctx, benchObject(fmt.Sprintf("k/%09d", n.next())), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetObject(b *testing.B) {
	db := benchDB(b)
	bigBucket(b, db)
	ctx := context.Background()
	var n atomicCounter
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.next()
			key := fmt.Sprintf("dir%03d/f%05d", i%100, i%200)
			if _, err := db.GetObject(ctx, "big", key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkListObjects lists pages of 1000 from the 20,000-key bucket.
func BenchmarkListObjects(b *testing.B) {
	db := benchDB(b)
	bigBucket(b, db)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts storage.ListOptions
	}{
		{"flat", storage.ListOptions{MaxKeys: 1000}},
		{"delimiter-100-prefixes", storage.ListOptions{Delimiter: "/", MaxKeys: 1000}},
		{"prefix-delimiter-200-keys", storage.ListOptions{Prefix: "dir042/", Delimiter: "/", MaxKeys: 1000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := db.ListObjects(ctx, "big", c.opts)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Objects)+len(r.CommonPrefixes) == 0 {
					b.Fatal("empty page")
				}
			}
		})
	}
}

type atomicCounter struct{ v atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.v.Add(1) - 1 }
