// Package server assembles a running store from its configuration: storage
// backends, keys, the S3 handler, the reserved /_nfyio/ endpoints, the
// access log and metrics, and the HTTP listener with its limits.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"nfyio.dev/storage/internal/admin"
	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3api"
	"nfyio.dev/storage/internal/s3err"
	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/boltmeta"
	"nfyio.dev/storage/internal/storage/fsblob"
	"nfyio.dev/storage/internal/storage/pgmeta"
)

// Config is the server's configuration; cmd/nfyio fills it from flags and
// NFYIO_* variables.
type Config struct {
	Address string // default 127.0.0.1:9000
	DataDir string // default ./data
	Region  string // default us-east-1
	Domain  string // virtual-hosted addressing
	// PublicURL is the URL clients reach the store at behind a proxy; its
	// host is the one presigned URLs are signed for.
	PublicURL  string
	TrustProxy bool

	// Meta selects the metadata store: "" for the embedded bbolt file in
	// DataDir, or a postgres:// URL.
	Meta string
	// Blobs selects the blob store: "" for files under DataDir, or
	// seaweedfs://MASTER:PORT.
	Blobs string

	MasterKey     string // NFYIO_MASTER_KEY; else a key file in DataDir
	RootAccessKey string
	RootSecretKey string

	// NoSync turns off fsync of blobs and metadata: unsafe, for benchmarks.
	NoSync bool
	// DirectIO writes large blob files with direct I/O (fsblob).
	DirectIO bool
	// RecycleBytes is how much space deleted blob files may keep to be
	// overwritten by new blobs (fsblob); 0 turns recycling off.
	RecycleBytes int64
	// LocalSendBuffer is the send buffer (bytes) of connections from
	// clients on the same host: 0 means DefaultLocalSendBuffer, a negative
	// value leaves them to the kernel's autotuning like the others.
	LocalSendBuffer int
	// InlineThreshold: objects up to this size live in the metadata record.
	InlineThreshold int64
	// MaxConcurrent caps requests served at once; past it, 503 SlowDown.
	MaxConcurrent int
	// ShutdownTimeout bounds how long in-flight requests may finish.
	ShutdownTimeout time.Duration
	// UploadMaxAge: unfinished multipart uploads older than this are
	// aborted by the sweeper (default 7 days).
	UploadMaxAge time.Duration
	// SweepInterval is how often the sweepers run (default 1 minute).
	SweepInterval time.Duration

	// TLSCert and TLSKey are PEM files: when set, the listener speaks
	// HTTPS (and HTTP/2) and reloads them when they change on disk.
	TLSCert, TLSKey string
	// TLSSelfSigned serves a self-signed certificate for localhost, made
	// once and kept in DataDir (local development).
	TLSSelfSigned bool
	// AdminAddress, when set, is a second listener for /metrics,
	// /health/live and /health/ready (see ListenAdmin).
	AdminAddress string
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers (slow-loris defence; default 10s). IdleTimeout
	// closes keep-alive connections left idle (default 2m).
	// MaxHeaderBytes caps a request's header block (default 64 KiB).
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// WrapBlobs, when set, wraps the blob store (tests inject faults).
	WrapBlobs func(storage.Blobs) storage.Blobs
	// CORSAllowOrigin: origins allowed by default (every method and
	// header) on buckets without a CORS configuration of their own.
	CORSAllowOrigin []string

	// Pprof serves net/http/pprof under /_nfyio/debug/pprof/ (to loopback
	// clients and admin keys) for profiling; off unless set.
	Pprof bool

	// Out receives the one-time root key announcement (default stdout).
	Out io.Writer
	// Logger receives the access log and errors (default stderr, JSON).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Address == "" {
		c.Address = "127.0.0.1:9000"
	}
	if c.LocalSendBuffer == 0 {
		c.LocalSendBuffer = DefaultLocalSendBuffer
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.InlineThreshold == 0 {
		c.InlineThreshold = 64 << 10
	}
	if c.InlineThreshold < 0 {
		c.InlineThreshold = 0
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 1024
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.UploadMaxAge == 0 {
		c.UploadMaxAge = 7 * 24 * time.Hour
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Minute
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
}

// Server is a running store.
type Server struct {
	cfg     Config
	meta    storage.Meta
	blobs   storage.Blobs
	keys    *iam.Service
	handler http.Handler
	http    *http.Server
	metrics *metrics
	stop    context.CancelFunc
	wg      sync.WaitGroup
	tls     *tls.Config // nil: plain HTTP

	// mu guards the HTTP servers, which Serve, ServeAdmin and Shutdown
	// reach from different goroutines.
	mu      sync.Mutex
	admin   *http.Server
	closing bool
}

// New opens storage and builds the handler. It does not listen yet.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s := &Server{cfg: cfg, metrics: newMetrics()}
	var err error
	if s.meta, err = openMeta(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open metadata: %w", err)
	}
	if s.blobs, err = openBlobs(ctx, cfg); err != nil {
		s.meta.Close()
		return nil, fmt.Errorf("open blobs: %w", err)
	}
	if cfg.WrapBlobs != nil {
		s.blobs = cfg.WrapBlobs(s.blobs)
	}
	if s.tls, err = tlsConfig(&cfg); err != nil {
		s.Close()
		return nil, err
	}
	master, err := iam.LoadOrCreateMasterKey(cfg.MasterKey, filepath.Join(cfg.DataDir, "master.key"))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("master key: %w", err)
	}
	sealer, err := iam.NewSealer(master)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.keys = iam.NewService(s.meta, sealer)
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	if l, ok := s.meta.(changeListener); ok {
		// Other nodes change keys too: drop cached keys when the shared
		// store says so, and everything when the feed (re)connects.
		if err := s.listenForChanges(bg, l); err != nil {
			s.Close()
			return nil, fmt.Errorf("listen for changes: %w", err)
		}
	}
	if err := s.keys.EnsureRoot(ctx, cfg.RootAccessKey, cfg.RootSecretKey, cfg.Out, filepath.Join(cfg.DataDir, "root-credentials")); err != nil {
		s.Close()
		return nil, fmt.Errorf("root key: %w", err)
	}
	publicHost := ""
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			s.Close()
			return nil, fmt.Errorf("public URL %q: want scheme://host[:port]", cfg.PublicURL)
		}
		// Clients leave the scheme's default port out of Host, and so out
		// of what they sign.
		publicHost = strings.TrimSuffix(u.Host, map[string]string{"http": ":80", "https": ":443"}[strings.ToLower(u.Scheme)])
	}
	adminAPI := admin.New(s.keys)
	api := s3api.New(s3api.Config{
		Meta: s.meta, Blobs: s.blobs, Keys: s.keys, Region: cfg.Region, Domain: cfg.Domain,
		PublicHost: publicHost, TrustProxy: cfg.TrustProxy, Logger: cfg.Logger,
		InlineThreshold: cfg.InlineThreshold, CORSAllowOrigin: cfg.CORSAllowOrigin,
		Internal: func(w http.ResponseWriter, r *http.Request, p *iam.Principal) {
			s.internal(w, r, p, adminAPI)
		},
	})
	s.handler = observe(limitConcurrency(api, cfg.MaxConcurrent), cfg.Logger, s.metrics)
	s.startIdleTrimmer(bg)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweep(bg)
	}()
	return s, nil
}

// openMeta opens the configured metadata store.
func openMeta(ctx context.Context, cfg Config) (storage.Meta, error) {
	switch {
	case cfg.Meta == "" || cfg.Meta == "bolt":
		return boltmeta.Open(filepath.Join(cfg.DataDir, "meta.db"), boltmeta.Options{NoSync: cfg.NoSync})
	case strings.HasPrefix(cfg.Meta, "postgres://") || strings.HasPrefix(cfg.Meta, "postgresql://"):
		return pgmeta.Open(ctx, cfg.Meta, pgmeta.Options{})
	}
	return nil, fmt.Errorf("unknown metadata store %q: want empty (embedded) or postgres://", redactDSN(cfg.Meta))
}

// openBlobs opens the configured blob store.
func openBlobs(ctx context.Context, cfg Config) (storage.Blobs, error) {
	switch {
	case cfg.Blobs == "" || cfg.Blobs == "file":
		return fsblob.New(filepath.Join(cfg.DataDir, "blobs"), fsblob.Options{NoSync: cfg.NoSync, DirectIO: cfg.DirectIO, RecycleBytes: cfg.RecycleBytes})
	case strings.HasPrefix(cfg.Blobs, "seaweedfs://"):
		return openSeaweed(ctx, cfg.Blobs, cfg)
	}
	return nil, fmt.Errorf("unknown blob store %q: want empty (local files) or seaweedfs://MASTER:PORT", cfg.Blobs)
}

// OpenStores opens the metadata and blob stores cfg names, as New does, for
// offline tools (nfyio fsck). The caller closes both.
func OpenStores(ctx context.Context, cfg Config) (storage.Meta, storage.Blobs, error) {
	cfg.setDefaults()
	meta, err := openMeta(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open metadata: %w", err)
	}
	blobs, err := openBlobs(ctx, cfg)
	if err != nil {
		meta.Close()
		return nil, nil, fmt.Errorf("open blobs: %w", err)
	}
	return meta, blobs, nil
}

// redactDSN hides a password in a connection URL for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}

// changeListener is a metadata store that reports changes made by other
// nodes (pgmeta's LISTEN/NOTIFY).
type changeListener interface {
	Listen(ctx context.Context, fn func(kind, id string)) error
}

// listenForChanges starts the change feed; the first connection error is
// returned, later ones are retried by the store.
func (s *Server) listenForChanges(ctx context.Context, l changeListener) error {
	started := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		first := true
		err := l.Listen(ctx, func(kind, id string) {
			switch kind {
			case "key":
				s.keys.Invalidate(id)
			case "reset":
				s.keys.InvalidateAll()
				if first {
					first = false
					started <- nil
				}
			}
		})
		if first {
			started <- err
		}
	}()
	return <-started
}

// Handler is the whole HTTP handler (tests may serve it themselves).
func (s *Server) Handler() http.Handler { return s.handler }

// Storage returns the server's stores, for tests and tools that check what
// the server wrote through the same interfaces.
func (s *Server) Storage() (storage.Meta, storage.Blobs) { return s.meta, s.blobs }

// Keys is the key service (tests and the CLI create keys through it).
func (s *Server) Keys() *iam.Service { return s.keys }

// internal serves the reserved /_nfyio/ prefix.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, p *iam.Principal, adminAPI http.Handler) {
	path := r.URL.Path
	switch {
	case path == "/_nfyio/health/live":
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok\n")
	case path == "/_nfyio/health/ready":
		s.ready(w, r)
	case path == "/_nfyio/metrics":
		s.metrics.handler().ServeHTTP(w, r)
	case s.cfg.Pprof && strings.HasPrefix(path, pprofPrefix):
		servePprof(w, r, p)
	case strings.HasPrefix(path, "/_nfyio/admin/"):
		if p == nil || !p.HasScope(iam.ScopeAdmin) {
			writeJSONError(w, http.StatusForbidden, "AccessDenied", "the admin API needs a key with scope admin")
			return
		}
		adminAPI.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\":%q,\"message\":%q}\n", code, msg)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.meta.Ping(ctx); err != nil {
		http.Error(w, "metadata: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := s.blobs.Ping(ctx); err != nil {
		http.Error(w, "blobs: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// limitConcurrency answers 503 SlowDown past max requests in flight, so an
// overload degrades into retries instead of memory growth.
func limitConcurrency(h http.Handler, max int) http.Handler {
	sem := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h.ServeHTTP(w, r)
		default:
			s3err.SlowDown.Write(w, r, "", "")
		}
	})
}

// sweep runs the periodic clean-ups: expired one-time redemptions and
// multipart uploads left unfinished for longer than UploadMaxAge.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if _, err := s.meta.SweepRedemptions(ctx, now); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("sweeping redemptions failed", "err", err)
		}
		if err := s.sweepUploads(ctx, now.Add(-s.cfg.UploadMaxAge)); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("sweeping stale uploads failed", "err", err)
		}
	}
}

// sweepUploads aborts uploads initiated before cutoff and deletes their parts.
func (s *Server) sweepUploads(ctx context.Context, cutoff time.Time) error {
	buckets, err := s.meta.ListBuckets(ctx)
	if err != nil {
		return err
	}
	for _, b := range buckets {
		opts := storage.ListUploadsOptions{MaxUploads: 1000}
		for {
			page, err := s.meta.ListUploads(ctx, b.Name, opts)
			if err != nil {
				return err
			}
			for _, u := range page.Uploads {
				if !u.Initiated.Before(cutoff) {
					continue
				}
				parts, err := s.meta.AbortUpload(ctx, u.Bucket, u.Key, u.ID)
				if err != nil {
					continue // completed or aborted meanwhile
				}
				for _, p := range parts {
					if err := s.blobs.Delete(ctx, p.Segment.Blob); err != nil {
						s.cfg.Logger.Warn("deleting part blob failed", "blob", p.Segment.Blob, "err", err)
					}
				}
				s.cfg.Logger.Info("aborted stale multipart upload", "bucket", u.Bucket, "key", u.Key, "upload_id", u.ID, "initiated", u.Initiated)
			}
			if !page.IsTruncated || len(page.Uploads) == 0 {
				break
			}
			last := page.Uploads[len(page.Uploads)-1]
			opts.KeyMarker, opts.UploadIDMarker = last.Key, last.ID
		}
	}
	return nil
}

// Listen opens the configured address.
func (s *Server) Listen() (net.Listener, error) {
	return net.Listen("tcp", s.cfg.Address)
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.http = hs
	s.mu.Unlock()
	ln = localTuning{Listener: ln, sendBuffer: s.cfg.LocalSendBuffer}
	var err error
	if s.tls != nil {
		err = hs.ServeTLS(ln, "", "")
	} else {
		err = hs.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets requests in flight finish within the
// configured timeout, then closes storage.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	main, admin := s.http, s.admin
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, hs := range []*http.Server{main, admin} {
		if hs != nil {
			errs = append(errs, hs.Shutdown(ctx))
		}
	}
	return errors.Join(append(errs, s.Close())...)
}

// Close releases storage without waiting for requests.
func (s *Server) Close() error {
	if s.stop != nil {
		s.stop()
		s.wg.Wait()
	}
	var errs []error
	if s.blobs != nil {
		errs = append(errs, s.blobs.Close())
	}
	if s.meta != nil {
		errs = append(errs, s.meta.Close())
	}
	return errors.Join(errs...)
}
