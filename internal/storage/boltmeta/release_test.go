package boltmeta

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"nfyio.dev/storage/internal/procmaps"
	"nfyio.dev/storage/internal/storage"
)

// mappedRSSKiB returns the resident size, in KiB, of this process's
// mappings of the file at path.
func mappedRSSKiB(t *testing.T, path string) int64 {
	t.Helper()
	kib, mapped, err := procmaps.ResidentKiB(path)
	if err != nil {
		t.Fatal(err)
	}
	if !mapped {
		t.Fatalf("no mapping of %s in /proc/self/smaps", path)
	}
	return kib
}

// value is record i's deterministic content.
func value(i, size int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%07d|", i)), size/8)
}

func putRecords(t *testing.T, d *DB, bucket string, from, to, size, writers int) {
	t.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	next.Store(int64(from) - 1)
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i >= to {
					return
				}
				o := storage.Object{Bucket: bucket, Key: fmt.Sprintf("k/%07d", i), Size: int64(size), Inline: value(i, size)}
				if _, err := d.PutObject(t.Context(), o, nil); err != nil {
					t.Errorf("put %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func checkRecord(d *DB, bucket string, i, size int) error {
	o, err := d.GetObject(context.Background(), bucket, fmt.Sprintf("k/%07d", i))
	if err != nil {
		return fmt.Errorf("get %d: %w", i, err)
	}
	if !bytes.Equal(o.Inline, value(i, size)) {
		return fmt.Errorf("record %d: content differs (%d bytes)", i, len(o.Inline))
	}
	return nil
}

func TestReleaseMemoryDropsMappedPages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ReleaseMemory drops pages on Linux only")
	}
	const n, size = 20000, 1024
	path := filepath.Join(t.TempDir(), "meta.db")
	d := open(t, path, Options{NoSync: true})
	if err := d.CreateBucket(t.Context(), storage.Bucket{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	putRecords(t, d, "b", 0, n, size, 4)
	readAll := func() {
		t.Helper()
		for i := range n {
			if err := checkRecord(d, "b", i, size); err != nil {
				t.Fatal(err)
			}
		}
	}
	readAll()
	before := mappedRSSKiB(t, path)
	// 20,000 records of 1 KiB: reading them all faults in about 20 MiB of
	// the mapping. Less would mean the test measures the wrong thing.
	if before < 16<<10 {
		t.Fatalf("after reading every record the mapping has %d KiB resident; want at least 16 MiB", before)
	}
	if err := d.ReleaseMemory(); err != nil {
		t.Fatal(err)
	}
	after := mappedRSSKiB(t, path)
	t.Logf("mapping resident: %d KiB after reads, %d KiB after ReleaseMemory", before, after)
	if after > before/20 {
		t.Fatalf("ReleaseMemory left %d of %d KiB resident; want under 5%%", after, before)
	}
	// Every record reads back from the page cache, the same bytes.
	readAll()
	if again := mappedRSSKiB(t, path); again < before/2 {
		t.Fatalf("reading everything again faulted in only %d KiB; smaps is not measuring this mapping", again)
	}
	// A second release after the refault works the same.
	if err := d.ReleaseMemory(); err != nil {
		t.Fatal(err)
	}
	if after := mappedRSSKiB(t, path); after > before/20 {
		t.Fatalf("second ReleaseMemory left %d KiB resident", after)
	}
}

// TestReleaseMemoryConcurrent runs ReleaseMemory in a loop while writers
// grow the file (forcing bbolt to remap it several times) and readers
// check records: the release must never touch a stale range, and no read
// may see wrong bytes. Run it under -race too.
func TestReleaseMemoryConcurrent(t *testing.T) {
	const seed, grown, size = 500, 3000, 4096
	path := filepath.Join(t.TempDir(), "meta.db")
	d := open(t, path, Options{NoSync: true})
	if err := d.CreateBucket(t.Context(), storage.Bucket{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	putRecords(t, d, "b", 0, seed, size, 2)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	startSize := st.Size()

	var writing atomic.Bool
	writing.Store(true)
	var wg sync.WaitGroup
	var releases, reads atomic.Int64
	wg.Go(func() {
		defer writing.Store(false)
		putRecords(t, d, "b", seed, seed+grown, size, 3)
	})
	wg.Go(func() {
		for writing.Load() {
			if err := d.ReleaseMemory(); err != nil {
				t.Errorf("ReleaseMemory: %v", err)
				return
			}
			releases.Add(1)
			runtime.Gosched()
		}
	})
	for r := range 3 {
		wg.Go(func() {
			for i := r; writing.Load(); i = (i + 7) % seed {
				if err := checkRecord(d, "b", i, size); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					res, err := d.ListObjects(context.Background(), "b", storage.ListOptions{Prefix: "k/", MaxKeys: 100})
					if err != nil || len(res.Objects) != 100 {
						t.Errorf("list: %d objects, %v", len(res.Objects), err)
						return
					}
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	st, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file %d -> %d bytes; %d releases, %d reads during the writes", startSize, st.Size(), releases.Load(), reads.Load())
	// A fourfold growth means bbolt remapped at least twice (its mapping
	// doubles up to 1 GiB).
	if st.Size() < 4*startSize {
		t.Fatalf("file grew from %d to only %d bytes; the test did not force remaps", startSize, st.Size())
	}
	if releases.Load() == 0 {
		t.Fatal("ReleaseMemory never ran during the writes")
	}
	for i := range seed + grown {
		if err := checkRecord(d, "b", i, size); err != nil {
			t.Fatal(err)
		}
	}
}
