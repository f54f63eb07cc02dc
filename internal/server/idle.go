package server

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"nfyio.dev/storage/internal/storage"
)

// Idle trimming: a store that has just served a burst keeps the heap the
// burst grew (the Go runtime returns free memory to the OS only slowly) and
// the pages of the metadata file's memory map that the burst read. Once
// requests stop, the trimmer hands both back, so an idle server's resident
// size is what it needs rather than what it last used.
const (
	idleCheckEvery = 500 * time.Millisecond
	// idleAfter is how long no request may have run before trimming: long
	// enough that a client pausing between requests does not pay a full
	// GC and refaulted metadata pages each time.
	idleAfter = time.Second
)

// memoryReleaser is a metadata store that can drop memory it holds but
// does not need (boltmeta: the mapped pages of its file).
type memoryReleaser interface {
	ReleaseMemory() error
}

// idleTrimmer counts requests and trims memory when they stop.
type idleTrimmer struct {
	inflight atomic.Int64
	started  atomic.Uint64 // requests begun since start
	lastEnd  atomic.Int64  // when the latest request ended, Unix ns

	trimmedAt uint64 // started at the last trim; owned by the loop
	meta      storage.Meta
	releases  prometheus.Counter
	warn      func(msg string, args ...any)
}

func newIdleTrimmer(meta storage.Meta, m *metrics, warn func(string, ...any)) *idleTrimmer {
	t := &idleTrimmer{
		meta: meta,
		releases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nfyio_idle_releases_total",
			Help: "Times the server returned memory to the OS after requests stopped.",
		}),
		warn: warn,
	}
	m.reg.MustRegister(t.releases)
	return t
}

// startIdleTrimmer wraps the server's handler to count requests and runs
// the trimmer until ctx ends (Close waits for it through s.wg, so it never
// touches a closed store).
func (s *Server) startIdleTrimmer(ctx context.Context) {
	t := newIdleTrimmer(s.meta, s.metrics, s.cfg.Logger.Warn)
	s.handler = t.wrap(s.handler)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t.run(ctx, idleCheckEvery)
	}()
}

// wrap counts h's requests: two atomic adds and a clock read each. Health
// checks and metrics scrapes are not counted: they come every few seconds
// from monitoring, and would otherwise cost a trim (a forced GC) each.
func (t *idleTrimmer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isProbe(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		// In flight before started, and lastEnd before leaving: a tick
		// that sees this request in started and nothing in flight then
		// knows it has ended and when (see tick).
		t.inflight.Add(1)
		t.started.Add(1)
		defer func() {
			t.lastEnd.Store(time.Now().UnixNano())
			t.inflight.Add(-1)
		}()
		h.ServeHTTP(w, r)
	})
}

func (t *idleTrimmer) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.tick(now)
		}
	}
}

// tick trims when no request is in flight, none ended within idleAfter of
// now, and at least one ran since the last trim (an idle server trims once,
// not every tick). It reports whether it trimmed. A request that starts
// while the trim runs is served normally; it only finds less memory warm.
func (t *idleTrimmer) tick(now time.Time) bool {
	n := t.started.Load()
	if n == t.trimmedAt || t.inflight.Load() != 0 {
		return false
	}
	if now.Sub(time.Unix(0, t.lastEnd.Load())) < idleAfter {
		return false
	}
	t.trimmedAt = n
	// Buffers in sync.Pools (the upload rings: 1 MiB each) outlive one
	// collection as the pools' victims; the first collection makes them
	// victims, FreeOSMemory's frees them and returns their pages. With only
	// FreeOSMemory, a server idle after 32 concurrent 16 MiB PUTs kept
	// 54 MiB resident instead of 20.
	runtime.GC()
	debug.FreeOSMemory()
	if r, ok := t.meta.(memoryReleaser); ok {
		if err := r.ReleaseMemory(); err != nil {
			t.warn("releasing metadata memory failed", "err", err)
		}
	}
	t.releases.Inc()
	return true
}

// isProbe reports whether path is a health check or the metrics.
func isProbe(path string) bool {
	return path == "/_nfyio/metrics" || strings.HasPrefix(path, "/_nfyio/health/")
}
