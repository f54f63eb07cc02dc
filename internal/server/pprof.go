package server

import (
	"net"
	"net/http"
	"net/http/pprof"
	"strings"

	"nfyio.dev/storage/internal/iam"
)

// pprofPrefix is where Config.Pprof mounts the runtime profiles.
const pprofPrefix = "/_nfyio/debug/pprof/"

// servePprof serves net/http/pprof under pprofPrefix. Profiles reveal
// memory contents (heap samples, goroutine stacks with arguments), so even
// when enabled they are given only to clients on the loopback interface or
// holding an admin key. Behind a proxy on the same host every client looks
// like loopback: do not enable profiling there.
func servePprof(w http.ResponseWriter, r *http.Request, p *iam.Principal) {
	if !loopbackClient(r) && (p == nil || !p.HasScope(iam.ScopeAdmin)) {
		writeJSONError(w, http.StatusForbidden, "AccessDenied", "profiles are served to loopback clients and admin keys only")
		return
	}
	// pprof's handlers expect /debug/pprof/NAME; dispatch on NAME here.
	switch name := strings.TrimPrefix(r.URL.Path, pprofPrefix); name {
	case "":
		pprof.Index(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
}

func loopbackClient(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
