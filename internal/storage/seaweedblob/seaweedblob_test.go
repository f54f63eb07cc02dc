package seaweedblob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/storagetest"
	"nfyio.dev/storage/internal/testweed"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testweed.StopShared()
	os.Exit(code)
}

// newStore opens a store on master with a journal of its own, so that each
// test's List sees only its own blobs even on the shared cluster.
func newStore(t testing.TB, master string, opts Options) *Store {
	t.Helper()
	if opts.JournalDir == "" {
		opts.JournalDir = t.TempDir()
	}
	s, err := Open(t.Context(), master, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	master := testweed.Start(t)
	// Small chunks, so the suite's blobs (up to 10 MiB) span many chunks
	// and its reads cross chunk boundaries.
	t.Run("SmallChunks", func(t *testing.T) {
		storagetest.RunBlobs(t, func(t *testing.T) storage.Blobs {
			return newStore(t, master, Options{ChunkSize: 256 << 10})
		})
	})
	t.Run("DefaultChunks", func(t *testing.T) {
		storagetest.RunBlobs(t, func(t *testing.T) storage.Blobs {
			return newStore(t, master, Options{})
		})
	})
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(rand.NewChaCha8([32]byte{byte(seed), 7}), b)
	return b
}

func writeAll(t testing.TB, s *Store, data []byte, writeSize int) string {
	t.Helper()
	w, err := s.Create(t.Context(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		n := min(writeSize, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			_ = w.Abort()
			t.Fatalf("Write: %v", err)
		}
		p = p[n:]
	}
	ref, err := w.Commit(t.Context())
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return ref
}

// TestChunkBoundaries writes 5.5 chunks and reads ranges that start, end
// and span chunk boundaries, including one across three chunks.
func TestChunkBoundaries(t *testing.T) {
	const cs = 64 << 10
	s := newStore(t, testweed.Start(t), Options{ChunkSize: cs})
	data := randomBytes(1, 5*cs+cs/2)
	ref := writeAll(t, s, data, 10_000)

	chunks, err := decodeRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 6 {
		t.Fatalf("%d chunks, want 6", len(chunks))
	}
	for i, c := range chunks {
		want := int64(cs)
		if i == 5 {
			want = cs / 2
		}
		if c.size != want {
			t.Errorf("chunk %d: %d bytes, want %d", i, c.size, want)
		}
	}

	b, err := s.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", b.Size(), len(data))
	}
	for _, r := range []struct {
		name    string
		off, n  int
		wantEOF bool
	}{
		{"three chunks", cs - 100, cs + 200, false},
		{"chunk 1 to 3 whole", cs, 3 * cs, false},
		{"ends on a boundary", cs - 10, 10, false},
		{"starts on a boundary", 2 * cs, 10, false},
		{"one byte each side", 3*cs - 1, 2, false},
		{"everything", 0, len(data), false},
		{"last byte", len(data) - 1, 1, false},
		{"across the end", 5*cs - 5, cs, true},
	} {
		t.Run(r.name, func(t *testing.T) {
			buf := make([]byte, r.n)
			n, err := b.ReadAt(buf, int64(r.off))
			end := min(r.off+r.n, len(data))
			if r.wantEOF != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(%d, %d) error %v, want EOF %v", r.off, r.n, err, r.wantEOF)
			}
			if n != end-r.off || !bytes.Equal(buf[:n], data[r.off:end]) {
				t.Fatalf("ReadAt(%d, %d) = %d bytes or wrong content", r.off, r.n, n)
			}
		})
	}

	// Sequential reads in odd sizes (served from one open response per
	// chunk) and a backwards walk (a request per read) agree with the data.
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.NewSectionReader(b, 0, b.Size()), make([]byte, 10_007)); err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatal("sequential read differs from the data")
	}
	buf := make([]byte, 9_000)
	for off := len(data) - len(buf); off >= 0; off -= 30_000 {
		if _, err := b.ReadAt(buf, int64(off)); err != nil || !bytes.Equal(buf, data[off:off+len(buf)]) {
			t.Fatalf("backwards ReadAt at %d: %v", off, err)
		}
	}

	// A blob of exactly two chunks has two, not a third empty one.
	ref2 := writeAll(t, s, data[:2*cs], cs)
	if c, _ := decodeRef(ref2); len(c) != 2 {
		t.Errorf("a blob of exactly 2 chunks has %d", len(c))
	}
}

// TestCompressibleDataStoredRaw: text-like data must be stored as sent (the
// volume server gzips some uploads); Commit verifies the CRC of what was
// stored, and ranged reads must return the original bytes.
func TestCompressibleDataStoredRaw(t *testing.T) {
	s := newStore(t, testweed.Start(t), Options{ChunkSize: 64 << 10})
	data := []byte(strings.Repeat("<html><body>hello, hello, hello</body></html>\n", 5000))
	ref := writeAll(t, s, data, 4096)
	b, err := s.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	buf := make([]byte, 1000)
	if _, err := b.ReadAt(buf, 100_000); err != nil || !bytes.Equal(buf, data[100_000:101_000]) {
		t.Fatalf("ReadAt: %v", err)
	}
}

// TestBadReferences: garbage never reaches SeaweedFS, and a reference that
// lies about a chunk's size is refused instead of serving other bytes.
func TestBadReferences(t *testing.T) {
	s := newStore(t, testweed.Start(t), Options{})
	ctx := t.Context()
	for _, ref := range []string{"", "sw1:", "sw1:!!!", "0123456789abcdef0123456789abcdef", "sw1:AQ", encodeRef(nil)} {
		if _, err := s.Open(ctx, ref); !errors.Is(err, storage.ErrBlobNotFound) {
			t.Errorf("Open(%q) = %v, want ErrBlobNotFound", ref, err)
		}
		if err := s.Delete(ctx, ref); err == nil {
			t.Errorf("Delete(%q) succeeded", ref)
		}
	}
	ref := writeAll(t, s, []byte("twelve bytes"), 100)
	chunks, _ := decodeRef(ref)
	chunks[0].size = 5
	if _, err := s.Open(ctx, encodeRef(chunks)); err == nil || errors.Is(err, storage.ErrBlobNotFound) {
		t.Errorf("Open of a reference with a wrong size = %v, want a size error", err)
	}
	chunks[0].size, chunks[0].cookie = 12, chunks[0].cookie+1
	if _, err := s.Open(ctx, encodeRef(chunks)); !errors.Is(err, storage.ErrBlobNotFound) {
		t.Errorf("Open of a reference with a wrong cookie = %v, want ErrBlobNotFound", err)
	}
}

func TestListWithoutJournal(t *testing.T) {
	s, err := Open(t.Context(), testweed.Start(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.List(t.Context(), func(string, time.Time) error { return nil })
	if !errors.Is(err, storage.ErrNotSupported) {
		t.Fatalf("List without a journal = %v, want ErrNotSupported", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	if _, err := Open(ctx, "127.0.0.1:9333", Options{}); err == nil {
		t.Error("Open accepted a master URL without a scheme")
	}
	master := testweed.Start(t)
	if _, err := Open(ctx, master, Options{Replication: "1"}); err == nil {
		t.Error("Open accepted replication \"1\"")
	}
	// A master that is not there: a closed port.
	l := closedPort(t)
	if _, err := Open(ctx, "http://"+l, Options{}); err == nil || !strings.Contains(err.Error(), l) {
		t.Errorf("Open of a dead master = %v, want an error naming it", err)
	}
	// One journal per directory at a time.
	dir := t.TempDir()
	newStore(t, master, Options{JournalDir: dir})
	if _, err := Open(ctx, master, Options{JournalDir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second store on one journal = %v, want an in-use error", err)
	}
}

// closedPort returns a 127.0.0.1 address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestStorageFull: a master with no volume slot left for the collection
// makes writes fail with storage.ErrStorageFull, and leaves nothing.
func TestStorageFull(t *testing.T) {
	// The one volume slot goes to the default collection at start-up.
	c := testweed.StartCluster(t, testweed.Options{MaxVolumes: 1})
	s := newStore(t, c.MasterURL, Options{Collection: "nospace"})
	ctx := t.Context()

	w, err := s.Create(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write([]byte("some bytes"))
	if !errors.Is(err, storage.ErrStorageFull) {
		t.Fatalf("Write = %v, want ErrStorageFull", err)
	}
	t.Logf("error: %v", err)
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after the failure: %v", err)
	}
	w, _ = s.Create(ctx, 0)
	if _, err := w.Commit(ctx); !errors.Is(err, storage.ErrStorageFull) {
		t.Fatalf("Commit of an empty blob = %v, want ErrStorageFull", err)
	}
	assertListed(t, s, 0)
}

func assertListed(t *testing.T, s *Store, want int) []string {
	t.Helper()
	var refs []string
	if err := s.List(t.Context(), func(ref string, _ time.Time) error {
		refs = append(refs, ref)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(refs) != want {
		t.Fatalf("List has %d blobs, want %d", len(refs), want)
	}
	return refs
}

// TestVolumeServerKilledMidWrite kills the only volume server while a blob
// is being written. The write fails with an error naming the server; the
// chunks already stored cannot be deleted while it is down, so they stay in
// the journal, List reports them, and once the server is back Delete of the
// listed reference removes every one of them.
func TestVolumeServerKilledMidWrite(t *testing.T) {
	const cs = 64 << 10
	c := testweed.StartCluster(t, testweed.Options{})
	s := newStore(t, c.MasterURL, Options{ChunkSize: cs})
	ctx := t.Context()

	w, err := s.Create(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(2, 64<<20)
	// Three chunks stored and the fourth under way.
	if _, err := w.Write(data[:3*cs+cs/2]); err != nil {
		t.Fatal(err)
	}
	c.KillVolume(t, 0)
	var werr error
	for off := 3*cs + cs/2; off < len(data) && werr == nil; off += 16 << 10 {
		_, werr = w.Write(data[off : off+16<<10])
	}
	if werr == nil {
		_, werr = w.Commit(ctx)
	}
	if werr == nil {
		t.Fatal("writing on with the volume server dead never failed")
	}
	volHost := strings.TrimPrefix(c.VolumeURL(0), "http://")
	if !strings.Contains(werr.Error(), volHost) {
		t.Errorf("error does not name the volume server %s: %v", volHost, werr)
	}
	t.Logf("write error: %v", werr)
	if _, err := w.Commit(ctx); err == nil {
		t.Error("Commit after a failed Write succeeded")
	}
	_ = w.Abort() // deleting still fails: the server is down

	// A new blob cannot be written either while no volume server is up.
	w2, _ := s.Create(ctx, 0)
	_, err = w2.Write([]byte("x"))
	if err == nil {
		_, err = w2.Commit(ctx)
	}
	if err == nil {
		t.Fatal("a write with the only volume server dead succeeded")
	}
	t.Logf("second write error: %v", err)
	_ = w2.Abort()

	orphans := assertListedAtLeast(t, s, 1)
	first, err := decodeRef(orphans[0])
	if err != nil {
		t.Fatal(err)
	}

	c.RestartVolume(t, 0)
	// The chunks written before the kill were fsynced: they are there.
	var stored []chunk
	for _, ref := range orphans {
		cs, err := decodeRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, cs...)
	}
	if len(first) < 3 {
		t.Fatalf("the orphan lists %d chunks, want at least the 3 stored", len(first))
	}
	for _, ch := range first[:3] {
		if code := getStatus(t, c.VolumeURL(0)+"/"+ch.fid()); code != http.StatusOK {
			t.Fatalf("stored chunk %s: HTTP %d after restart", ch.fid(), code)
		}
	}
	for _, ref := range orphans {
		if err := s.Delete(ctx, ref); err != nil {
			t.Fatalf("Delete of a listed orphan: %v", err)
		}
	}
	for _, ch := range stored {
		if code := getStatus(t, c.VolumeURL(0)+"/"+ch.fid()); code != http.StatusNotFound {
			t.Errorf("chunk %s: HTTP %d after Delete, want 404", ch.fid(), code)
		}
	}
	assertListed(t, s, 0)

	// And the store works again.
	ref := writeAll(t, s, data[:cs+1], 1000)
	b, err := s.Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	buf := make([]byte, cs+1)
	if _, err := b.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, data[:cs+1]) {
		t.Fatalf("read after recovery: %v", err)
	}
}

func assertListedAtLeast(t *testing.T, s *Store, least int) []string {
	t.Helper()
	var refs []string
	if err := s.List(t.Context(), func(ref string, _ time.Time) error {
		refs = append(refs, ref)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(refs) < least {
		t.Fatalf("List has %d blobs, want at least %d", len(refs), least)
	}
	return refs
}

func getStatus(t *testing.T, u string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// BenchmarkWrite measures streaming 16 MiB blobs in 256 KiB writes (the S3
// layer's copy buffer) with the default chunk size, with and without the
// volume servers' fsync.
func BenchmarkWrite(b *testing.B) {
	master := testweed.Start(b)
	for _, bc := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nosync", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStore(b, master, Options{NoSync: bc.noSync})
			const size = 16 << 20
			buf := randomBytes(3, 256<<10)
			b.SetBytes(size)
			var refs []string
			for b.Loop() {
				w, err := s.Create(b.Context(), size)
				if err != nil {
					b.Fatal(err)
				}
				for range size / len(buf) {
					if _, err := w.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				ref, err := w.Commit(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				refs = append(refs, ref)
			}
			b.StopTimer()
			for _, ref := range refs {
				_ = s.Delete(context.Background(), ref)
			}
		})
	}
}

// BenchmarkRead measures reading a 16 MiB blob as the S3 layer does: an
// io.SectionReader copied with a 256 KiB buffer.
func BenchmarkRead(b *testing.B) {
	s := newStore(b, testweed.Start(b), Options{})
	data := randomBytes(4, 16<<20)
	ref := writeAll(b, s, data, 1<<20)
	b.Cleanup(func() { _ = s.Delete(context.Background(), ref) })
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		blob, err := s.Open(b.Context(), ref)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, io.NewSectionReader(blob, 0, blob.Size()), buf); err != nil {
			b.Fatal(err)
		}
		blob.Close()
	}
}

// refusingDialer makes the first refuse dials to volume servers (any
// address but the master's) fail as a dead server's would, then dials for
// real. It reproduces what a writer meets when the master still hands out
// volumes of a server that just went away.
type refusingDialer struct {
	master string // host:port
	mu     sync.Mutex
	refuse int
}

func (d *refusingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	refuse := addr != d.master && d.refuse > 0
	if refuse {
		d.refuse--
	}
	d.mu.Unlock()
	if refuse {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func (d *refusingDialer) set(n int) {
	d.mu.Lock()
	d.refuse = n
	d.mu.Unlock()
}

// TestUnreachableVolumeServer: a chunk whose server refuses the connection
// before it got a byte is re-assigned (twice at most); when every attempt
// fails the error says so, and the chunk ids stay in the journal until a
// Delete reaches the server.
func TestUnreachableVolumeServer(t *testing.T) {
	master := testweed.Start(t)
	d := &refusingDialer{master: strings.TrimPrefix(master, "http://")}
	tr := &http.Transport{DialContext: d.DialContext, DisableCompression: true}
	const cs = 64 << 10
	s := newStore(t, master, Options{ChunkSize: cs, HTTPClient: &http.Client{Transport: tr}})
	ctx := t.Context()
	data := randomBytes(5, 3*cs+17)

	d.set(uploadAttempts - 1)
	ref := writeAll(t, s, data, 5000)
	if d.refuse != 0 {
		t.Fatalf("%d refusals left: the write never met them", d.refuse)
	}
	b, err := s.Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := b.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob written after refused connections reads back wrong: %v", err)
	}
	b.Close()
	// The abandoned first file ids left no journal entry behind.
	if refs := assertListed(t, s, 1); refs[0] != ref {
		t.Fatalf("List = %q, want only %q", refs, ref)
	}
	if err := s.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}

	// Fresh connections only from here: idle ones would bypass the dialer.
	tr.CloseIdleConnections()
	d.set(1 << 30)
	w, _ := s.Create(ctx, 0)
	_, err = w.Write(data[:1000])
	if err == nil {
		_, err = w.Commit(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "left for the sweeper") {
		t.Fatalf("write with every volume dial refused = %v; want connection refused and chunks left for the sweeper", err)
	}
	_ = w.Abort()
	orphans := assertListed(t, s, 1)
	d.set(0)
	if err := s.Delete(ctx, orphans[0]); err != nil {
		t.Fatalf("Delete of the orphan once the server is reachable: %v", err)
	}
	assertListed(t, s, 0)
}

// countingTransport counts the GETs a real transport carries.
type countingTransport struct {
	http.RoundTripper
	mu   sync.Mutex
	gets int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
		c.mu.Lock()
		c.gets++
		c.mu.Unlock()
	}
	return c.RoundTripper.RoundTrip(r)
}

// TestSequentialReadsShareARequest: reading a blob front to back in small
// pieces costs about one ranged GET per chunk, not one per piece, and
// scattered small reads still return the right bytes.
func TestSequentialReadsShareARequest(t *testing.T) {
	const cs = 64 << 10
	ct := &countingTransport{RoundTripper: &http.Transport{DisableCompression: true}}
	s := newStore(t, testweed.Start(t), Options{ChunkSize: cs, HTTPClient: &http.Client{Transport: ct}})
	data := randomBytes(6, 4*cs)
	ref := writeAll(t, s, data, cs)
	b, err := s.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ct.gets = 0
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("sequential read: %v", err)
	}
	// io.ReadAll reads 512 bytes first: an exact request, then one
	// response per chunk.
	if ct.gets > 5 {
		t.Errorf("sequential read of 4 chunks made %d ranged GETs, want at most 5", ct.gets)
	}
	ct.gets = 0
	buf := make([]byte, 100)
	for _, off := range []int{3 * cs, 10, 2*cs + 7, cs - 50} {
		if _, err := b.ReadAt(buf, int64(off)); err != nil || !bytes.Equal(buf, data[off:off+100]) {
			t.Fatalf("ReadAt(100 at %d): %v", off, err)
		}
	}
	if ct.gets != 5 { // the last read spans two chunks
		t.Errorf("4 scattered reads made %d ranged GETs, want 5", ct.gets)
	}
}
