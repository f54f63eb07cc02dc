package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// diskReport is the raw disk under the benchmarks: what the store could do
// at best with durable writes.
type diskReport struct {
	Dir string `json:"dir"`
	// SeqWriteMiBps: 256 MiB written in 1 MiB writes, then fsync, over the
	// whole time; the best of SeqWriteRuns. The disk of a shared machine
	// varies by a factor of three from minute to minute, and the best run
	// is the strictest limit to hold the store to.
	SeqWriteMiBps float64   `json:"seq_write_fsync_mib_per_sec"`
	SeqWriteRuns  []float64 `json:"seq_write_fsync_runs"`
	// AppendSyncOps: 4 KiB appended then fdatasync, in a loop (each sync
	// also commits the file's new size).
	AppendSyncOps float64 `json:"append_4k_fdatasync_ops_per_sec"`
	// OverwriteSyncOps: 4 KiB written in place in a preallocated file then
	// fdatasync (data only, no metadata to commit).
	OverwriteSyncOps float64 `json:"overwrite_4k_fdatasync_ops_per_sec"`
	// NewFilesMiBps: 8 writers each writing 16 MiB files in 1 MiB writes,
	// fdatasync, next file (each file deleted once written), as durable
	// uploads of new keys do. RewriteMiBps: the same, but each writer
	// rewrites 4 files of its own in place, as the store does when it
	// writes new blobs over the files of replaced ones.
	NewFilesMiBps float64 `json:"new_files_16m_8_writers_mib_per_sec,omitempty"`
	RewriteMiBps  float64 `json:"rewrite_files_16m_8_writers_mib_per_sec,omitempty"`
}

func runDisk(args []string) error {
	fs := flag.NewFlagSet("load disk", flag.ContinueOnError)
	dir := fs.String("dir", os.TempDir(), "directory on the disk to measure")
	out := fs.String("out", "disk.json", "JSON results file")
	loop := fs.Duration("loop", 3*time.Second, "duration of each 4 KiB sync loop (0: skip them)")
	seqRuns := fs.Int("seq-runs", 3, "sequential write runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := os.MkdirTemp(*dir, "nfyio-disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	rep := diskReport{Dir: *dir}
	for range *seqRuns {
		v, err := seqWrite(filepath.Join(d, "seq"), 256<<20)
		if err != nil {
			return err
		}
		rep.SeqWriteRuns = append(rep.SeqWriteRuns, v)
		rep.SeqWriteMiBps = max(rep.SeqWriteMiBps, v)
	}
	if *loop > 0 {
		if rep.AppendSyncOps, err = syncLoop(filepath.Join(d, "append"), false, *loop); err != nil {
			return err
		}
		if rep.OverwriteSyncOps, err = syncLoop(filepath.Join(d, "overwrite"), true, *loop); err != nil {
			return err
		}
		if rep.NewFilesMiBps, err = fileWrites(d, false, *loop); err != nil {
			return err
		}
		if rep.RewriteMiBps, err = fileWrites(d, true, *loop); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "disk: sequential write+fsync %.0f MiB/s; 4 KiB append+fdatasync %.0f ops/s; 4 KiB overwrite+fdatasync %.0f ops/s; 16 MiB files x8: new %.0f MiB/s, rewritten %.0f MiB/s\n",
		rep.SeqWriteMiBps, rep.AppendSyncOps, rep.OverwriteSyncOps, rep.NewFilesMiBps, rep.RewriteMiBps)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

func seqWrite(path string, size int) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	chunk := payload[:1<<20]
	t0 := time.Now()
	for off := 0; off < size; off += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			return 0, fmt.Errorf("sequential write: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sequential write fsync: %w", err)
	}
	return float64(size) / (1 << 20) / time.Since(t0).Seconds(), nil
}

func syncLoop(path string, inPlace bool, d time.Duration) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	const block = 4 << 10
	const span = 64 << 20
	if inPlace {
		// Allocate and sync the whole span first, so the loop's syncs
		// carry data only.
		for off := 0; off < span; off += 1 << 20 {
			if _, err := f.Write(payload[:1<<20]); err != nil {
				return 0, err
			}
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	fd := int(f.Fd())
	n := 0
	t0 := time.Now()
	for time.Since(t0) < d {
		off := int64(n * block)
		if inPlace {
			off %= span
		}
		if _, err := f.WriteAt(payload[:block], off); err != nil {
			return 0, err
		}
		if err := syscall.Fdatasync(fd); err != nil {
			return 0, fmt.Errorf("fdatasync: %w", err)
		}
		n++
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// fileWrites runs 8 writers of 16 MiB files, each file written in 1 MiB
// writes and fdatasynced, for d; rewrite reuses 4 files per writer (made
// and synced first), else each file is new and deleted once written.
func fileWrites(dir string, rewrite bool, d time.Duration) (float64, error) {
	const writers, fileSize, perWriter = 8, 16 << 20, 4
	chunk := payload[:1<<20]
	writeFile := func(name string, flags int) error {
		f, err := os.OpenFile(name, flags, 0o600)
		if err != nil {
			return err
		}
		for off := 0; off < fileSize; off += len(chunk) {
			if _, err := f.Write(chunk); err != nil {
				f.Close()
				return err
			}
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			f.Close()
			return fmt.Errorf("fdatasync: %w", err)
		}
		return f.Close()
	}
	name := func(w, i int) string { return filepath.Join(dir, fmt.Sprintf("files-%d-%d", w, i)) }
	if rewrite {
		for w := range writers {
			for i := range perWriter {
				if err := writeFile(name(w, i), os.O_CREATE|os.O_WRONLY|os.O_TRUNC); err != nil {
					return 0, err
				}
			}
		}
	}
	var total atomic.Int64
	errs := make(chan error, writers)
	t0 := time.Now()
	for w := range writers {
		go func() {
			var err error
			for i := 0; err == nil && time.Since(t0) < d; i++ {
				if rewrite {
					err = writeFile(name(w, i%perWriter), os.O_WRONLY)
				} else {
					n := name(w, i)
					if err = writeFile(n, os.O_CREATE|os.O_WRONLY|os.O_EXCL); err == nil {
						err = os.Remove(n)
					}
				}
				if err == nil {
					total.Add(fileSize)
				}
			}
			errs <- err
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			return 0, fmt.Errorf("16 MiB file writes: %w", err)
		}
	}
	elapsed := time.Since(t0).Seconds()
	if rewrite {
		for w := range writers {
			for i := range perWriter {
				_ = os.Remove(name(w, i))
			}
		}
	}
	return float64(total.Load()) / (1 << 20) / elapsed, nil
}
