package boltmeta

import "fmt"

// ReleaseMemory drops the pages of the database's memory map from this
// process's page tables, so an idle server's resident size stops counting
// the parts of the file that listings and inline GETs read. Nothing is
// lost: bbolt maps the file read-only and shared and writes with pwrite, so
// every mapped page is a clean page of the file. The pages stay in the
// kernel's page cache and the next read of one is a minor fault, not I/O.
// Safe to call at any time, concurrently with reads and writes; a no-op
// outside Linux.
func (d *DB) ReleaseMemory() error {
	// A read transaction holds bbolt's mmap read lock: no remap (which
	// unmaps the old range) can happen until Rollback, so the address
	// range below stays the live mapping while madvise runs on it.
	tx, err := d.db.Begin(false)
	if err != nil {
		return fmt.Errorf("boltmeta: release memory: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// The length is the transaction's high-water mark (page count × page
	// size), not the file size: bbolt grows the file past the mapping
	// (growSize adds AllocSize beyond the mapped size), so the file size
	// can reach into whatever is mapped after this range. The mapping is
	// always larger than the high-water mark (allocate remaps when a page
	// at or beyond the mapped size is needed), and no reader reaches a
	// page at or past the mark of the newest commit.
	if err := dropPages(d.db.Info().Data, tx.Size()); err != nil {
		return fmt.Errorf("boltmeta: release memory: %w", err)
	}
	return nil
}
