// Package fsblob is the embedded storage.Blobs: each blob is one file under
// a root directory.
//
// A new blob is written to a temporary file in root/tmp (the same file
// system, so the final rename is atomic). Commit flushes it, fsyncs it,
// renames it to root/ab/cd/abcd… and fsyncs the directory, so a committed
// blob survives a crash and an uncommitted one is never visible under a
// reference. References are random (128 bits, hex): object keys are data,
// never paths, and nothing a client sends reaches the file system.
//
// Blobs are written through the page cache or, when Options.DirectIO is
// set and they are declared at DirectMinSize or more, with direct I/O
// (O_DIRECT); either way they are fsynced at commit. With
// Options.RecycleBytes, the files of deleted large blobs are reused for new
// blobs (recycle.go).
//
// A process that crashed leaves temporary files behind; New removes them,
// because the process that calls New owns root (it holds root/LOCK) and so
// nothing in tmp can still be in use.
package fsblob

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"nfyio.dev/storage/internal/storage"
)

// Options configure New.
type Options struct {
	// NoSync skips fsync of blob files and directories. UNSAFE: after a
	// power loss or OS crash, acknowledged objects can be empty, truncated
	// or missing while their metadata still points at them. For tests and
	// throwaway data only.
	NoSync bool
	// DirectIO writes blobs declared at DirectMinSize or more with direct
	// I/O. It saves CPU, but some devices (virtual disks among them) reach
	// a lower bandwidth with it than with the kernel's write-back, so it
	// is the operator's choice.
	DirectIO bool
	// RecycleBytes is how many bytes of deleted blobs' files are kept, for
	// up to 30 seconds, to be overwritten by new blobs of about their size
	// (see recycle.go); 0 turns recycling off. NoSync turns it off too:
	// without fsync, a crash can undo the commit that dropped a blob while
	// keeping the new bytes written over its file, and the old key would
	// then read another object's bytes instead of being lost.
	RecycleBytes int64
}

// Store is a storage.Blobs on a local file system.
type Store struct {
	root   string
	tmp    string
	noSync bool
	direct bool
	unlock func() error

	// shards remembers shard directories known to exist (and to be
	// durable), so a commit does not stat or create them again.
	shards sync.Map

	// Deleted blobs are renamed into tmp and unlinked by emptyTrash:
	// unlinking a large file (freeing its cached pages and blocks) took
	// ~7 ms for 16 MiB, on the path of every overwrite and DELETE.
	trashMu   sync.RWMutex
	trash     chan string // nil once closed
	trashDone chan struct{}

	recycle recycler
}

// trashQueue bounds the deleted files waiting to be unlinked; past it,
// Delete unlinks at once.
const trashQueue = 1024

var _ storage.Blobs = (*Store)(nil)

const refLen = 32 // hex digits of a 128-bit random id

// New opens (creating if needed) a blob store in root.
func New(root string, opts Options) (*Store, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("fsblob: create %s: %w", root, mapErr(err))
	}
	unlock, err := lockDir(filepath.Join(root, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("fsblob: %s: %w", root, err)
	}
	s := &Store{root: root, tmp: filepath.Join(root, "tmp"), noSync: opts.NoSync, direct: opts.DirectIO, unlock: unlock}
	s.recycle = recycler{ttl: spareTTL, open: map[string]int{}}
	if !opts.NoSync {
		s.recycle.maxBytes.Store(max(opts.RecycleBytes, 0))
	}
	// Leftovers of a crashed process: no one else can be writing them.
	if err := os.RemoveAll(s.tmp); err != nil {
		_ = unlock()
		return nil, fmt.Errorf("fsblob: clear %s: %w", s.tmp, err)
	}
	if err := os.Mkdir(s.tmp, 0o750); err != nil {
		_ = unlock()
		return nil, fmt.Errorf("fsblob: create %s: %w", s.tmp, mapErr(err))
	}
	s.trash = make(chan string, trashQueue)
	s.trashDone = make(chan struct{})
	go s.emptyTrash(s.trash)
	return s, nil
}

// emptyTrash unlinks deleted blobs until Close, and the spares kept for
// recycling once they expire.
func (s *Store) emptyTrash(trash <-chan string) {
	defer close(s.trashDone)
	var tick <-chan time.Time
	if s.recycle.maxBytes.Load() > 0 {
		t := time.NewTicker(s.recycle.ttl / 3)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case name, ok := <-trash:
			if !ok {
				return
			}
			_ = os.Remove(name) // what is left is removed with tmp at the next start
		case now := <-tick:
			for _, name := range s.recycle.expire(now, false) {
				_ = os.Remove(name)
			}
		}
	}
}

// discard hands a file in tmp to the background unlinker, or unlinks it at
// once (returning that error) if its queue is full or the store is closed.
func (s *Store) discard(name string) error {
	s.trashMu.RLock()
	defer s.trashMu.RUnlock()
	select {
	case s.trash <- name: // a nil channel (closed store) never takes it
		return nil
	default:
		return os.Remove(name)
	}
}

// Close unlinks the deleted blobs still queued and releases the directory
// lock. Blobs already open stay readable.
func (s *Store) Close() error {
	s.trashMu.Lock()
	if s.trash != nil {
		close(s.trash)
		s.trash = nil
	}
	s.trashMu.Unlock()
	<-s.trashDone
	s.freeSpares()
	if err := s.unlock(); err != nil {
		return fmt.Errorf("fsblob: unlock %s: %w", s.root, err)
	}
	return nil
}

// Ping checks that the temporary directory is there: it is where every
// write starts.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(s.tmp)
	if err != nil {
		return fmt.Errorf("fsblob: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("fsblob: %s is not a directory", s.tmp)
	}
	return nil
}

// mapErr turns "disk full" and "quota exceeded" into storage.ErrStorageFull
// (keeping the cause), so the S3 layer can answer InsufficientStorage.
func mapErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", storage.ErrStorageFull, err)
	}
	return err
}

func validRef(ref string) bool {
	if len(ref) != refLen {
		return false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(ref string) string {
	return filepath.Join(s.root, ref[0:2], ref[2:4], ref)
}

func newRef() string {
	var b [refLen / 2]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// bufPool holds write buffers: they coalesce small writes (an upload
// streamed in small chunks) into few system calls, while large writes go
// straight to the file.
var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 128<<10) }}

// DirectMinSize is the declared size from which a blob is written with
// direct I/O: its bytes go from the caller's buffer to the device without
// a copy into the page cache, which for large uploads costs more CPU than
// reading them off the socket (page allocation, ext4's per-block
// bookkeeping, write-back, and freeing the pages when the blob is
// replaced). Smaller blobs stay cached: they are cheap to copy and likely
// read soon.
const DirectMinSize = 4 << 20

// directAlign is the alignment of memory, file offsets and lengths that
// direct I/O needs (the page size; at least any device's logical block).
const directAlign = 4096

// stageSize is the direct writer's staging buffer: bytes the caller hands
// over unaligned, or in small pieces, gather here into aligned writes.
const stageSize = 256 << 10

var stagePool = sync.Pool{New: func() any {
	b := make([]byte, stageSize+directAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); r != 0 {
		off = directAlign - r
	}
	b = b[off : off+stageSize : off+stageSize]
	return &b
}}

// Create starts a new blob. sizeHint is the size the caller expects (-1
// when unknown): large blobs get their blocks reserved up front and,
// with Options.DirectIO, direct writes. The blob may end up shorter.
func (s *Store) Create(ctx context.Context, sizeHint int64) (storage.BlobWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &writer{s: s}
	if sizeHint >= recycleMin {
		if sp, ok := s.recycle.take(sizeHint); ok {
			f, err := openSpare(sp)
			if err == nil {
				w.f, w.extent = f, sp.size
				s.recycle.reused.Add(1)
			} else {
				_ = os.Remove(sp.name)
			}
		}
	}
	if w.f == nil {
		f, err := os.CreateTemp(s.tmp, "w-*")
		if err != nil {
			return nil, fmt.Errorf("fsblob: create temporary file: %w", mapErr(err))
		}
		w.f = f
		if sizeHint >= preallocMin {
			preallocate(f, sizeHint)
			w.extent = sizeHint
		}
	}
	f := w.f
	if s.direct && sizeHint >= DirectMinSize && setDirect(f, true) == nil {
		w.stage = stagePool.Get().(*[]byte)
		return w, nil
	}
	w.bw = bufPool.Get().(*bufio.Writer)
	w.bw.Reset(f)
	return w, nil
}

// writer writes a blob either through the page cache (bw, with write-back
// started as it grows) or directly (stage).
type writer struct {
	s    *Store
	f    *os.File
	bw   *bufio.Writer // page-cache mode
	err  error         // first write error; later writes return it
	done bool

	written   int64 // bytes given to Write
	writeback int64 // bytes whose write-back to disk has been started

	stage  *[]byte // direct mode: aligned staging buffer
	staged int     // bytes waiting in stage

	// extent is how far the file may hold blocks (reserved at Create) or
	// bytes (of the recycled blob it overwrites) that Write has not put
	// there; Commit cuts the file to the bytes written.
	extent int64
}

// preallocMin is the size hint from which Create reserves the blob's
// blocks up front.
const preallocMin = 1 << 20

// writebackStep is how much a blob grows between requests to the kernel
// to start writing its new pages to disk. Without them the disk idles
// while a large body arrives and the whole body waits for the fsync at
// commit; with them the fsync finds most pages already written.
const writebackStep = 1 << 20

var errFinished = errors.New("fsblob: blob writer already committed or aborted")

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errFinished
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.stage != nil {
		if err := w.writeDirect(p); err != nil {
			w.fail(err)
			return 0, w.err
		}
		w.written += int64(len(p))
		return len(p), nil
	}
	n, err := w.bw.Write(p)
	if err != nil {
		w.fail(err)
	}
	w.written += int64(n)
	if inFile := w.written - int64(w.bw.Buffered()); !w.s.noSync && inFile-w.writeback >= writebackStep {
		startWriteback(w.f, w.writeback, inFile-w.writeback)
		w.writeback = inFile
	}
	return n, w.err
}

// fail records a write error. A full disk first gets back the space the
// spares hold, for the writes that follow.
func (w *writer) fail(err error) {
	w.err = fmt.Errorf("fsblob: write: %w", mapErr(err))
	if errors.Is(w.err, storage.ErrStorageFull) {
		w.s.freeSpares()
	}
}

// writeDirect writes aligned runs of p straight from p when nothing is
// staged, and stages the rest.
func (w *writer) writeDirect(p []byte) error {
	stage := *w.stage
	for len(p) > 0 {
		if w.staged == 0 && len(p) >= directAlign && uintptr(unsafe.Pointer(&p[0]))%directAlign == 0 {
			n := len(p) &^ (directAlign - 1)
			if err := w.writeFile(p[:n]); err != nil {
				return err
			}
			p = p[n:]
			continue
		}
		n := copy(stage[w.staged:], p)
		w.staged += n
		p = p[n:]
		if w.staged == len(stage) {
			if err := w.writeFile(stage); err != nil {
				return err
			}
			w.staged = 0
		}
	}
	return nil
}

// flushDirect writes what is staged: the aligned part directly, the tail
// (the end of the blob, shorter than directAlign) through the page cache.
func (w *writer) flushDirect() error {
	stage := *w.stage
	n := w.staged &^ (directAlign - 1)
	if err := w.writeFile(stage[:n]); err != nil {
		return err
	}
	if tail := stage[n:w.staged]; len(tail) > 0 {
		if err := setDirect(w.f, false); err != nil {
			return err
		}
		if _, err := w.f.Write(tail); err != nil {
			return err
		}
	}
	w.staged = 0
	return nil
}

// writeFile writes b at the file's offset. A file system that refuses a
// direct write (EINVAL comes before any byte is written) gets this one,
// and every later one, through the page cache.
func (w *writer) writeFile(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.Write(b)
	if err != nil && isDirectRefusal(err) && setDirect(w.f, false) == nil {
		_, err = w.f.Write(b[n:])
	}
	return err
}

// release closes and removes the temporary file (after a failure or an
// abort) and returns the buffer to the pool.
func (w *writer) release() error {
	w.putBuffers()
	cerr := w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: remove temporary file: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		return fmt.Errorf("fsblob: close temporary file: %w", cerr)
	}
	return nil
}

// flush writes out whatever is still buffered.
func (w *writer) flush() error {
	if w.stage != nil {
		return w.flushDirect()
	}
	return w.bw.Flush()
}

// putBuffers marks the writer done and returns its buffer to its pool.
func (w *writer) putBuffers() {
	w.done = true
	if w.stage != nil {
		stagePool.Put(w.stage)
		w.stage = nil
		return
	}
	w.bw.Reset(nil)
	bufPool.Put(w.bw)
	w.bw = nil
}

// Abort discards the blob.
func (w *writer) Abort() error {
	if w.done {
		return errFinished
	}
	return w.release()
}

// Commit makes the blob durable and visible under a new reference. On any
// error the blob is discarded.
func (w *writer) Commit(ctx context.Context) (string, error) {
	if w.done {
		return "", errFinished
	}
	ref, err := w.commit(ctx)
	if err != nil {
		_ = w.release()
		return "", err
	}
	return ref, nil
}

func (w *writer) commit(ctx context.Context) (string, error) {
	if w.err != nil {
		return "", w.err
	}
	// A cancelled request (client gone) must not leave a blob behind.
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := w.flush(); err != nil {
		w.fail(err)
		return "", w.err
	}
	if w.extent > w.written {
		// Shorter than announced, or than the recycled file: give back
		// the blocks past the end and drop the old blob's bytes there.
		if err := w.f.Truncate(w.written); err != nil {
			return "", fmt.Errorf("fsblob: truncate: %w", mapErr(err))
		}
	}
	if !w.s.noSync {
		if err := w.f.Sync(); err != nil {
			return "", fmt.Errorf("fsblob: fsync: %w", mapErr(err))
		}
	}
	if err := w.f.Close(); err != nil {
		return "", fmt.Errorf("fsblob: close: %w", mapErr(err))
	}
	ref := newRef()
	dir, err := w.s.shardDir(ref)
	if err != nil {
		return "", err
	}
	if err := os.Rename(w.f.Name(), filepath.Join(dir, ref)); err != nil {
		return "", fmt.Errorf("fsblob: commit: %w", mapErr(err))
	}
	// From here the file is the blob: a failure below must not remove it
	// (a reference is returned only once it is durable, but the file is
	// then an orphan that a sweeper finds with List).
	if err := w.s.syncDir(dir); err != nil {
		return "", err
	}
	w.putBuffers()
	return ref, nil
}

// shardDir returns root/ab/cd for ref abcd…, creating the directories and
// making their entries durable the first time.
func (s *Store) shardDir(ref string) (string, error) {
	dir := filepath.Join(s.root, ref[0:2], ref[2:4])
	if _, ok := s.shards.Load(dir); ok {
		return dir, nil
	}
	parent := filepath.Dir(dir)
	for _, d := range []string{parent, dir} {
		err := os.Mkdir(d, 0o750)
		if err == nil {
			// The new directory's entry lives in its parent.
			if err := s.syncDir(filepath.Dir(d)); err != nil {
				return "", err
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("fsblob: create %s: %w", d, mapErr(err))
		}
	}
	s.shards.Store(dir, true)
	return dir, nil
}

func (s *Store) syncDir(dir string) error {
	if s.noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsblob: open directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsblob: fsync %s: %w", dir, mapErr(err))
	}
	return nil
}

// Open opens a committed blob; ErrBlobNotFound if there is none.
func (s *Store) Open(ctx context.Context, ref string) (storage.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validRef(ref) {
		return nil, fmt.Errorf("fsblob: malformed reference %q: %w", ref, storage.ErrBlobNotFound)
	}
	// Counted before the open, so that Delete does not recycle the file
	// under this reader (see keep).
	s.recycle.opened(ref)
	f, err := os.Open(s.path(ref))
	if err != nil {
		s.recycle.closed(ref)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fsblob: blob %s: %w", ref, storage.ErrBlobNotFound)
		}
		return nil, fmt.Errorf("fsblob: open blob %s: %w", ref, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		s.recycle.closed(ref)
		return nil, fmt.Errorf("fsblob: stat blob %s: %w", ref, err)
	}
	return &blob{f: f, size: fi.Size(), mode: fi.Mode(), ref: ref, r: &s.recycle}, nil
}

// blob is an open blob file. It implements storage.FileBlob so that GET
// can hand the file to the kernel (sendfile).
type blob struct {
	f      *os.File
	size   int64
	mode   fs.FileMode
	ref    string
	r      *recycler
	closed bool
}

var _ storage.FileBlob = (*blob)(nil)

func (b *blob) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }
func (b *blob) Size() int64                             { return b.size }

// File returns the open file, for sendfile. The kernel then sends the
// file's cached pages by reference: they can sit in a socket queue, read
// at any time later, after the blob is closed. A write into the same
// pages would change what that reader gets, so the file is marked as sent
// first and Delete never recycles a marked file (see recycle.go).
func (b *blob) File() *os.File {
	b.r.markSent(b.f, b.mode)
	return b.f
}

func (b *blob) Close() error {
	if !b.closed {
		b.closed = true
		b.r.closed(b.ref)
	}
	return b.f.Close()
}

// Delete removes a blob; a missing one is not an error. Readers that have
// it open keep reading it (the file lives until they close it). The blob
// is gone from its place when Delete returns; its file is moved to tmp and
// unlinked in the background. After a crash the move may be undone (the
// blob is then an orphan the sweeper finds), and tmp is cleared at start.
func (s *Store) Delete(ctx context.Context, ref string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validRef(ref) {
		return fmt.Errorf("fsblob: malformed reference %q", ref)
	}
	path := s.path(ref)
	if s.recycle.maxBytes.Load() > 0 {
		if fi, err := os.Stat(path); err == nil {
			kept, err := s.keep(ref, path, fi)
			if kept || err != nil {
				return err
			}
		}
	}
	trashed := filepath.Join(s.tmp, "d-"+ref)
	if err := os.Rename(path, trashed); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("fsblob: delete blob %s: %w", ref, err)
	}
	if err := s.discard(trashed); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: delete blob %s: %w", ref, err)
	}
	return nil
}

// List calls fn for every committed blob. Temporary files are not blobs and
// are never listed.
func (s *Store) List(ctx context.Context, fn func(ref string, modified time.Time) error) error {
	top, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("fsblob: list %s: %w", s.root, err)
	}
	for _, d1 := range top {
		if !d1.IsDir() || !validShard(d1.Name()) {
			continue // tmp, LOCK
		}
		mid, err := os.ReadDir(filepath.Join(s.root, d1.Name()))
		if err != nil {
			return fmt.Errorf("fsblob: list: %w", err)
		}
		for _, d2 := range mid {
			if !d2.IsDir() || !validShard(d2.Name()) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			dir := filepath.Join(s.root, d1.Name(), d2.Name())
			files, err := os.ReadDir(dir)
			if err != nil {
				return fmt.Errorf("fsblob: list: %w", err)
			}
			for _, f := range files {
				ref := f.Name()
				if !f.Type().IsRegular() || !validRef(ref) || ref[0:2] != d1.Name() || ref[2:4] != d2.Name() {
					continue
				}
				fi, err := f.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted while we walked
				}
				if err != nil {
					return fmt.Errorf("fsblob: list: %w", err)
				}
				if err := fn(ref, fi.ModTime()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func validShard(name string) bool {
	return len(name) == 2 && validRef(name+"000000000000000000000000000000")
}
