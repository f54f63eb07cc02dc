package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// The admin listener serves what operators' tools scrape, apart from the S3
// port: a firewall can then expose S3 to the world and keep metrics and
// health checks on a private interface. It speaks plain HTTP and asks for
// no credentials, like the /_nfyio/ equivalents on the main listener.

// ListenAdmin opens the configured admin address; (nil, nil) when none is
// configured.
func (s *Server) ListenAdmin() (net.Listener, error) {
	if s.cfg.AdminAddress == "" {
		return nil, nil
	}
	return net.Listen("tcp", s.cfg.AdminAddress)
}

// adminHandler routes /metrics, /health/live and /health/ready.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /health/ready", s.ready)
	return mux
}

// ServeAdmin serves the admin endpoints on ln until Shutdown.
func (s *Server) ServeAdmin(ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.admin = hs
	s.mu.Unlock()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
