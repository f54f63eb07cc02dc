package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"nfyio.dev/storage/internal/procmaps"
	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/boltmeta"
)

// scrape returns the value of the unlabelled series name from the
// exposition h serves.
func scrape(t *testing.T, h http.Handler, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in the metrics", name)
	return 0
}

// mappedRSSKiB is the resident size of this process's mappings of path;
// 0 outside Linux.
func mappedRSSKiB(t *testing.T, path string) int64 {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0
	}
	kib, _, err := procmaps.ResidentKiB(path)
	if err != nil {
		t.Fatal(err)
	}
	return kib
}

// TestIdleTrimmerPolicy drives the trimmer's decision with explicit clock
// readings over a real bbolt store: trim only with nothing in flight, a
// second after the last request, once per burst; and the trim releases the
// store's mapped pages.
func TestIdleTrimmerPolicy(t *testing.T) {
	const records, size = 3000, 4096
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := boltmeta.Open(path, boltmeta.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.CreateBucket(t.Context(), storage.Bucket{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	body := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, size) }
	for i := range records {
		o := storage.Object{Bucket: "b", Key: fmt.Sprintf("k%05d", i), Size: size, Inline: body(i)}
		if _, err := db.PutObject(t.Context(), o, nil); err != nil {
			t.Fatal(err)
		}
	}

	m := newMetrics()
	tr := newIdleTrimmer(db, m, func(msg string, args ...any) { t.Errorf("%s %v", msg, args) })
	releases := func() float64 { return scrape(t, m.handler(), "nfyio_idle_releases_total") }
	entered, block := make(chan struct{}), make(chan struct{})
	// The handler reads every record, as a listing or a burst of inline
	// GETs would, then (for /slow) waits to be let go.
	h := tr.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range records {
			o, err := db.GetObject(r.Context(), "b", fmt.Sprintf("k%05d", i))
			if err != nil || !bytes.Equal(o.Inline, body(i)) {
				t.Errorf("record %d: %v", i, err)
				return
			}
		}
		if r.URL.Path == "/slow" {
			close(entered)
			<-block
		}
	}))
	serve := func(path string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	later := func(d time.Duration) time.Time { return time.Now().Add(d) }

	if tr.tick(later(time.Hour)) {
		t.Fatal("trimmed before any request")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve("/slow")
	}()
	<-entered
	if tr.tick(later(time.Hour)) {
		t.Fatal("trimmed with a request in flight")
	}
	close(block)
	<-done
	if tr.tick(time.Now()) {
		t.Fatal("trimmed right after a request ended")
	}
	before := mappedRSSKiB(t, path)
	if runtime.GOOS == "linux" && before < 8<<10 {
		t.Fatalf("after reading 12 MiB of records the mapping has %d KiB resident", before)
	}
	if !tr.tick(later(2 * idleAfter)) {
		t.Fatal("did not trim when idle after a request")
	}
	if got := releases(); got != 1 {
		t.Fatalf("nfyio_idle_releases_total = %v after one trim", got)
	}
	if after := mappedRSSKiB(t, path); runtime.GOOS == "linux" && after > before/20 {
		t.Fatalf("the trim left %d of %d KiB of the database mapped", after, before)
	}
	if tr.tick(later(3 * idleAfter)) {
		t.Fatal("trimmed again with no request since the last trim")
	}
	// Monitoring is not activity.
	serve("/_nfyio/health/ready")
	serve("/_nfyio/metrics")
	if tr.tick(later(3 * idleAfter)) {
		t.Fatal("trimmed again after health checks and a metrics scrape")
	}
	serve("/fast")
	if !tr.tick(later(2 * idleAfter)) {
		t.Fatal("did not trim after the next request")
	}
	if got := releases(); got != 2 {
		t.Fatalf("nfyio_idle_releases_total = %v after two trims", got)
	}
}

// TestIdleTrimFreesPools: memory that only a sync.Pool holds (the upload
// rings after a burst of large PUTs) is given back by a single trim, not
// kept for another collection as the pool's victim.
func TestIdleTrimFreesPools(t *testing.T) {
	const bufs, size = 32, 1 << 20
	// No collection but the trim's: one run while filling the pool would
	// make the buffers victims already, and a single collection then frees
	// them.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	pool := sync.Pool{}
	for range bufs {
		b := make([]byte, size)
		pool.Put(&b)
	}
	tr := newIdleTrimmer(nil, newMetrics(), func(msg string, args ...any) { t.Errorf("%s %v", msg, args) })
	tr.started.Add(1)
	tr.lastEnd.Store(time.Now().Add(-time.Minute).UnixNano())
	if !tr.tick(time.Now()) {
		t.Fatal("no trim with the server idle for a minute")
	}
	if live := liveHeap(); live >= bufs*size {
		t.Fatalf("live heap after the trim %d bytes: the pool's %d MiB survived it", live, bufs*size>>20)
	}
	runtime.KeepAlive(&pool)
}
