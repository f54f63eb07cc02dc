package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"nfyio.dev/storage/internal/s3test"
	"nfyio.dev/storage/internal/server"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// Profiles are served only when asked for; then to loopback clients.
func TestPprof(t *testing.T) {
	s3test.NoEnv(t)
	off := s3test.Start(t)
	if code, _ := get(t, off.URL+"/_nfyio/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("profiling off: index answered %d, want 404", code)
	}

	on := s3test.Start(t, func(c *server.Config) { c.Pprof = true })
	code, body := get(t, on.URL+"/_nfyio/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("index: %d %.200q", code, body)
	}
	code, body = get(t, on.URL+"/_nfyio/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	code, body = get(t, on.URL+"/_nfyio/debug/pprof/cmdline")
	if code != http.StatusOK || body == "" {
		t.Errorf("cmdline: %d %.200q", code, body)
	}
	// From another host, even with profiling on: refused.
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/_nfyio/debug/pprof/", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	rec := httptest.NewRecorder()
	on.Srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("remote client: %d, want 403", rec.Code)
	}
	// The S3 API is untouched: a bucket named like the prefix is still
	// reserved, anything else still needs a signature.
	if code, _ := get(t, on.URL+"/debug/pprof/"); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ outside the reserved prefix: %d", code)
	}
}
