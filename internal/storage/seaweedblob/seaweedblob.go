// Package seaweedblob is the scale-out storage.Blobs: blobs live in a
// SeaweedFS cluster, reached through the master's and the volume servers'
// HTTP APIs with nothing but net/http.
//
// A blob is a list of chunks, each one SeaweedFS file (a "needle") of at most
// Options.ChunkSize bytes. A writer asks the master for a file id
// (/dir/assign) when a chunk starts and streams the chunk straight into a PUT
// to the volume server, so a write holds no chunk in memory (only a 64 KiB
// buffer that coalesces small writes). Every chunk upload is checked against
// the size and CRC-32C the volume server reports, and is fsynced by the
// volume server unless Options.NoSync is set. The reference Commit returns
// encodes the chunk list (file ids and sizes) compactly, so Open, Size and
// ReadAt need no other metadata; reads are ranged GETs on the chunks, with
// volume locations from /dir/lookup kept in a cache that any error clears.
//
// An empty blob is one empty SeaweedFS file, so every blob has an identity
// (the file id of its first chunk) and a deleted one is told from a live one.
//
// Orphans. SeaweedFS cannot list the files of a volume over HTTP, so the
// store keeps a journal (a bbolt file in Options.JournalDir; an entry per
// live blob, about 40 bytes plus 16 per chunk) of the blobs written through
// it: an entry is made before a chunk upload starts
// and removed once Delete, Abort or a failed write deleted every chunk. List
// reads that journal, so it sees the blobs written through this store only;
// a deployment with several nodes runs a sweeper on each node. Entries of
// blobs that another node deleted are stale but harmless: deleting missing
// chunks succeeds. Without a JournalDir, List fails with
// storage.ErrNotSupported.
package seaweedblob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"nfyio.dev/storage/internal/storage"
)

// DefaultChunkSize is the chunk size when Options.ChunkSize is 0: large
// enough that a GET streams a chunk in one request, small enough to stay far
// below the volume servers' default 256 MiB file size limit.
const DefaultChunkSize = 8 << 20

// deleteTimeout bounds the chunk deletions of an abort or a failed write,
// which run even when the writer's context is gone.
const deleteTimeout = time.Minute

// deleteParallelism is how many chunk deletions run at once.
const deleteParallelism = 8

// Options configure Open.
type Options struct {
	// ChunkSize is the largest chunk in bytes (0: DefaultChunkSize). It must
	// not exceed the volume servers' -fileSizeLimitMB.
	ChunkSize int64
	// Replication is SeaweedFS's placement code, "000" when empty.
	Replication string
	// Collection groups the blobs' volumes; empty is the default collection.
	Collection string
	// HTTPClient talks to the master and the volume servers. The default
	// keeps more idle connections per host than net/http's, never asks for
	// compressed answers and ignores proxy settings.
	HTTPClient *http.Client
	// JournalDir holds the journal of written blobs that List reads (see
	// the package comment). Empty: no journal, and List is not supported.
	JournalDir string
	// NoSync skips the volume servers' fsync of each chunk before they
	// answer: faster, but an acknowledged blob can be lost with a power cut.
	NoSync bool
}

// Store is a storage.Blobs in a SeaweedFS cluster.
type Store struct {
	master    string // base URL, no trailing slash
	scheme    string
	opts      Options
	chunkSize int64
	client    *http.Client
	ownClient bool
	journal   *journal

	locMu sync.Mutex
	locs  map[uint32]locEntry

	// active holds the journal ids of writers in progress in this process:
	// List leaves them out, they are no orphans.
	activeMu sync.Mutex
	active   map[string]struct{}

	closeOnce sync.Once
}

var _ storage.Blobs = (*Store)(nil)

var replicationRE = regexp.MustCompile(`^[0-9]{3}$`)

// Open connects to the SeaweedFS master at masterURL (for example
// "http://127.0.0.1:9333") and checks that it answers.
func Open(ctx context.Context, masterURL string, opts Options) (*Store, error) {
	u, err := url.Parse(masterURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("seaweedblob: master URL %q: want http://host:port", masterURL)
	}
	if opts.Replication == "" {
		opts.Replication = "000"
	}
	if !replicationRE.MatchString(opts.Replication) {
		return nil, fmt.Errorf("seaweedblob: replication %q: want three digits such as 000 or 001", opts.Replication)
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	// A needle's size is 32 bits.
	if opts.ChunkSize < 0 || opts.ChunkSize > 1<<32-1 {
		return nil, fmt.Errorf("seaweedblob: chunk size %d out of range", opts.ChunkSize)
	}
	s := &Store{
		master:    strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"),
		scheme:    u.Scheme,
		opts:      opts,
		chunkSize: opts.ChunkSize,
		client:    opts.HTTPClient,
		locs:      map[uint32]locEntry{},
		active:    map[string]struct{}{},
	}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// SeaweedFS is cluster-internal: an HTTP_PROXY meant for the
		// outside world must not carry every blob byte.
		tr.Proxy = nil
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		// Below the volume servers' 30 s idle timeout, so a request rarely
		// meets a connection the server is closing.
		tr.IdleConnTimeout = 20 * time.Second
		// A gzip answer could not be ranged; needles are stored raw anyway.
		tr.DisableCompression = true
		// A volume server answers a PUT after its fsync and a GET at once;
		// a silent one is dead, and this frees the writer or reader.
		tr.ResponseHeaderTimeout = 2 * time.Minute
		s.client = &http.Client{Transport: tr}
		s.ownClient = true
	}
	if opts.JournalDir != "" {
		if s.journal, err = openJournal(opts.JournalDir); err != nil {
			return nil, err
		}
	}
	if err := s.ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that the master answers and has a leader.
func (s *Store) Ping(ctx context.Context) error { return s.ping(ctx) }

// Close releases the journal and idle connections. Blobs already open keep
// working as long as the client does.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.journal != nil {
			err = s.journal.close()
		}
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
	})
	return err
}

// Create starts a new blob. Nothing reaches SeaweedFS before the first
// Write (or Commit, for an empty blob). sizeHint, when positive, tells the
// master how big the chunks will be.
func (s *Store) Create(ctx context.Context, sizeHint int64) (storage.BlobWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &writer{s: s, ctx: ctx, hint: sizeHint}, nil
}

// Open returns a handle on the blob ref. It checks that the first chunk
// exists (one HEAD), so a deleted blob gives storage.ErrBlobNotFound here;
// reads use ctx.
func (s *Store) Open(ctx context.Context, ref string) (storage.Blob, error) {
	chunks, err := decodeRef(ref)
	if err != nil {
		return nil, fmt.Errorf("seaweedblob: open: %w: %w", storage.ErrBlobNotFound, err)
	}
	first := chunks[0]
	err = s.onVolume(ctx, first.volume, func(base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+"/"+first.fid(), nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return fmt.Errorf("seaweedblob: chunk %s: %w", first.fid(), storage.ErrBlobNotFound)
		case resp.StatusCode != http.StatusOK:
			return &statusError{op: "HEAD", url: base + "/" + first.fid(), status: resp.StatusCode}
		case resp.ContentLength != first.size:
			// Not this blob's file: never serve other bytes.
			return fmt.Errorf("seaweedblob: chunk %s is %d bytes, the reference says %d",
				first.fid(), resp.ContentLength, first.size)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seaweedblob: open %s: %w", abbrev(ref), err)
	}
	return newBlob(ctx, s, chunks), nil
}

// Delete deletes every chunk of ref; chunks already gone are fine. The
// journal entry goes last, so an interrupted Delete is listed again.
func (s *Store) Delete(ctx context.Context, ref string) error {
	chunks, err := decodeRef(ref)
	if err != nil {
		return fmt.Errorf("seaweedblob: delete: %w", err)
	}
	if err := s.deleteChunks(ctx, chunks); err != nil {
		return fmt.Errorf("seaweedblob: delete %s: %w", abbrev(ref), err)
	}
	if s.journal != nil {
		return s.journal.remove(chunks[0].fid())
	}
	return nil
}

// List reports the journal's blobs (see the package comment) with the time
// their entry was last written, leaving out writes in progress here.
func (s *Store) List(ctx context.Context, fn func(ref string, modified time.Time) error) error {
	if s.journal == nil {
		return fmt.Errorf("seaweedblob: List needs Options.JournalDir: %w", storage.ErrNotSupported)
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := s.journal.page(after, 1000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, e := range page {
			if s.isActive(e.id) {
				continue
			}
			if err := fn(e.ref, e.mod); err != nil {
				return err
			}
		}
		after = page[len(page)-1].id
	}
}

func (s *Store) setActive(id string, on bool) {
	if id == "" {
		return
	}
	s.activeMu.Lock()
	if on {
		s.active[id] = struct{}{}
	} else {
		delete(s.active, id)
	}
	s.activeMu.Unlock()
}

func (s *Store) isActive(id string) bool {
	s.activeMu.Lock()
	defer s.activeMu.Unlock()
	_, ok := s.active[id]
	return ok
}

// onVolume runs fn against each server of volume vid until one succeeds. If
// every server answered "not found", that is the answer; if some failed
// otherwise, the cached locations are dropped and the round repeats once
// with fresh ones.
func (s *Store) onVolume(ctx context.Context, vid uint32, fn func(base string) error) error {
	var lastErr error
	for round := 0; round < 2; round++ {
		urls, err := s.locate(ctx, vid)
		if err != nil {
			return err
		}
		notFound := 0
		for _, base := range urls {
			err := fn(base)
			if err == nil {
				return nil
			}
			lastErr = err
			if ctx.Err() != nil {
				return err
			}
			if errors.Is(err, storage.ErrBlobNotFound) {
				notFound++
			}
		}
		if notFound == len(urls) {
			return lastErr
		}
		s.forget(vid)
	}
	return lastErr
}

// put uploads one chunk's body to its assigned volume server and returns
// the size and CRC-32C (hex) the server stored. A plain PUT with an
// octet-stream type makes the server store the bytes as they are: with a
// multipart form or a text type it may gzip them, and ranged reads of a
// compressed needle would cost a decompression each.
func (s *Store) put(ctx context.Context, a assignment, body io.Reader) (int64, string, error) {
	u := a.url + "/" + a.fid
	if !s.opts.NoSync {
		u += "?fsync=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, body)
	if err != nil {
		return 0, "", err
	}
	req.ContentLength = -1 // streamed: chunked transfer encoding
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("seaweedblob: upload chunk %s to %s: %w", a.fid, a.url, err)
	}
	defer resp.Body.Close()
	var ans struct {
		Size  int64  `json:"size"`
		ETag  string `json:"eTag"`
		Error string `json:"error"`
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, "", fmt.Errorf("seaweedblob: upload chunk %s to %s: reading answer: %w", a.fid, a.url, err)
	}
	jerr := json.Unmarshal(raw, &ans)
	if resp.StatusCode != http.StatusCreated {
		msg := ans.Error
		if msg == "" {
			msg = abbrev(strings.TrimSpace(string(raw)))
		}
		return 0, "", &statusError{op: "upload chunk to", url: u, status: resp.StatusCode, msg: msg}
	}
	if jerr != nil {
		return 0, "", fmt.Errorf("seaweedblob: upload chunk %s to %s: unreadable answer %q: %w", a.fid, a.url, abbrev(string(raw)), jerr)
	}
	return ans.Size, ans.ETag, nil
}

// deleteChunks deletes chunks, a few at a time. A chunk that is not there
// (404) counts as deleted.
func (s *Store) deleteChunks(ctx context.Context, chunks []chunk) error {
	sem := make(chan struct{}, deleteParallelism)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		failed int
	)
	for _, c := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.deleteChunk(ctx, c); err != nil {
				mu.Lock()
				failed++
				if len(errs) < 3 { // enough to say why, not a wall of text
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		return fmt.Errorf("%d of %d chunks not deleted: %w", failed, len(chunks), errors.Join(errs...))
	}
	return nil
}

func (s *Store) deleteChunk(ctx context.Context, c chunk) error {
	fid := c.fid()
	return s.onVolume(ctx, c.volume, func(base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/"+fid, nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return fmt.Errorf("delete chunk %s: %w", fid, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		switch resp.StatusCode {
		case http.StatusAccepted, http.StatusOK, http.StatusNoContent, http.StatusNotFound:
			return nil
		}
		return &statusError{op: "delete chunk", url: base + "/" + fid, status: resp.StatusCode}
	})
}
