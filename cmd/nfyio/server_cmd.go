package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nfyio.dev/storage/internal/cors"
	"nfyio.dev/storage/internal/server"
)

// envString returns the NFYIO_* variable name's value, or def.
func envString(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok {
		b, err := strconv.ParseBool(v)
		if err == nil {
			return b
		}
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

func runServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nfyio server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg server.Config
	var accessLog string
	fs.StringVar(&cfg.Address, "address", envString("NFYIO_ADDRESS", "127.0.0.1:9000"), "listen address (NFYIO_ADDRESS)")
	fs.StringVar(&cfg.DataDir, "data", envString("NFYIO_DATA_DIR", "data"), "data directory (NFYIO_DATA_DIR)")
	fs.StringVar(&cfg.Meta, "meta", envString("NFYIO_META", ""), "metadata store: empty for the embedded store in the data dir, or postgres://USER:PASS@HOST:PORT/DB (NFYIO_META)")
	fs.StringVar(&cfg.Blobs, "blobs", envString("NFYIO_BLOBS", ""), "blob store: empty for files in the data dir, or seaweedfs://MASTER:PORT[?replication=001&collection=NAME&chunkSize=8MiB] (NFYIO_BLOBS)")
	fs.StringVar(&cfg.Region, "region", envString("NFYIO_REGION", "us-east-1"), "region reported by GetBucketLocation and used by our own tools; any region is accepted in signatures (NFYIO_REGION)")
	fs.StringVar(&cfg.Domain, "domain", envString("NFYIO_DOMAIN", ""), "domain for virtual-hosted addressing, BUCKET.DOMAIN (NFYIO_DOMAIN)")
	fs.StringVar(&cfg.PublicURL, "public-url", envString("NFYIO_PUBLIC_URL", ""), "URL clients use to reach the store behind a proxy; signatures are checked for its host (NFYIO_PUBLIC_URL)")
	fs.BoolVar(&cfg.TrustProxy, "trust-proxy", envBool("NFYIO_TRUST_PROXY", false), "accept X-Forwarded-Host and X-Forwarded-Proto from a proxy (NFYIO_TRUST_PROXY)")
	fs.BoolVar(&cfg.NoSync, "unsafe-no-fsync", envBool("NFYIO_UNSAFE_NO_FSYNC", false), "UNSAFE: do not fsync writes; acknowledged data can be lost on power failure (NFYIO_UNSAFE_NO_FSYNC)")
	directIO := fs.Bool("direct-io", envBool("NFYIO_DIRECT_IO", false), "write blob files of 4 MiB and more with direct I/O, bypassing the page cache: less CPU per large PUT, but some disks write slower this way (NFYIO_DIRECT_IO)")
	fs.Int64Var(&cfg.RecycleBytes, "recycle-bytes", envInt("NFYIO_RECYCLE_BYTES", 1<<30), "bytes of deleted or replaced blob files (of 1 MiB and more) kept for up to 30 s so new uploads overwrite them instead of allocating new files; 0 disables, and so does --unsafe-no-fsync (NFYIO_RECYCLE_BYTES)")
	localSendBuffer := fs.Int("local-send-buffer", int(envInt("NFYIO_LOCAL_SEND_BUFFER", server.DefaultLocalSendBuffer)), "send buffer in bytes of connections from clients on this host (a proxy in front of the store, a sidecar); the kernel would grow it to megabytes, which over loopback costs CPU; 0 leaves them to the kernel (NFYIO_LOCAL_SEND_BUFFER)")
	fs.Int64Var(&cfg.InlineThreshold, "inline-threshold", envInt("NFYIO_INLINE_THRESHOLD", 64<<10), "objects up to this many bytes are stored inside the metadata record; -1 disables (NFYIO_INLINE_THRESHOLD)")
	fs.DurationVar(&cfg.UploadMaxAge, "upload-max-age", envDuration("NFYIO_UPLOAD_MAX_AGE", 7*24*time.Hour), "unfinished multipart uploads older than this are aborted by the sweeper (NFYIO_UPLOAD_MAX_AGE)")
	maxConc := fs.Int("max-concurrent", int(envInt("NFYIO_MAX_CONCURRENT", 1024)), "requests served at once before answering 503 SlowDown (NFYIO_MAX_CONCURRENT)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", envDuration("NFYIO_SHUTDOWN_TIMEOUT", 30*time.Second), "how long requests in flight may finish on SIGTERM (NFYIO_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&accessLog, "access-log", envString("NFYIO_ACCESS_LOG", ""), "file for the access log; default stderr (NFYIO_ACCESS_LOG)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", envString("NFYIO_TLS_CERT", ""), "PEM certificate (chain) file: serve HTTPS and HTTP/2; reloaded when it changes (NFYIO_TLS_CERT)")
	fs.StringVar(&cfg.TLSKey, "tls-key", envString("NFYIO_TLS_KEY", ""), "PEM private key file of --tls-cert (NFYIO_TLS_KEY)")
	fs.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", envBool("NFYIO_TLS_SELF_SIGNED", false), "serve HTTPS with a self-signed certificate for localhost kept in the data dir, for development (NFYIO_TLS_SELF_SIGNED)")
	fs.StringVar(&cfg.AdminAddress, "admin-addr", envString("NFYIO_ADMIN_ADDR", ""), "separate plain-HTTP listener for /metrics, /health/live and /health/ready; keep it private (NFYIO_ADMIN_ADDR)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", envDuration("NFYIO_READ_HEADER_TIMEOUT", 10*time.Second), "time a client has to send a request's headers (NFYIO_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", envDuration("NFYIO_IDLE_TIMEOUT", 2*time.Minute), "idle keep-alive connections are closed after this (NFYIO_IDLE_TIMEOUT)")
	corsOrigins := fs.String("cors-allow-origin", envString("NFYIO_CORS_ALLOW_ORIGIN", ""), "comma-separated origins (one '*' wildcard each, or *) that may use every method from a browser on buckets without a CORS configuration of their own (NFYIO_CORS_ALLOW_ORIGIN)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "nfyio server: unexpected arguments %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	for _, o := range strings.Split(*corsOrigins, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if err := cors.ValidateOrigin(o); err != nil {
			fmt.Fprintf(stderr, "nfyio server: --cors-allow-origin %q: %v\n", o, err)
			return 2
		}
		cfg.CORSAllowOrigin = append(cfg.CORSAllowOrigin, o)
	}
	server.TuneGC()
	cfg.MaxConcurrent = *maxConc
	cfg.DirectIO = *directIO
	cfg.LocalSendBuffer = *localSendBuffer
	if cfg.LocalSendBuffer == 0 {
		cfg.LocalSendBuffer = -1
	}
	// Profiling endpoints have no flag in --help: a debugging aid only.
	cfg.Pprof = envBool("NFYIO_PPROF", false)
	cfg.MasterKey = os.Getenv("NFYIO_MASTER_KEY")
	cfg.RootAccessKey = os.Getenv("NFYIO_ROOT_ACCESS_KEY")
	cfg.RootSecretKey = os.Getenv("NFYIO_ROOT_SECRET_KEY")
	cfg.Out = stdout
	logOut := stderr
	if accessLog != "" {
		f, err := os.OpenFile(accessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "nfyio server: access log: %v\n", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	logBuf := newLogWriter(logOut, logFlushEvery)
	defer logBuf.Close()
	cfg.Logger = slog.New(slog.NewJSONHandler(logBuf, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "nfyio server: %v\n", err)
		return 1
	}
	ln, err := srv.Listen()
	if err != nil {
		srv.Close()
		fmt.Fprintf(stderr, "nfyio server: %v\n", err)
		return 1
	}
	adminLn, err := srv.ListenAdmin()
	if err != nil {
		ln.Close()
		srv.Close()
		fmt.Fprintf(stderr, "nfyio server: admin listener: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "nfyio %s listening on %s://%s, data in %s\n", version, srv.Scheme(), ln.Addr(), cfg.DataDir)
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ln) }()
	if adminLn != nil {
		fmt.Fprintf(stdout, "nfyio: metrics and health checks on http://%s\n", adminLn.Addr())
		go func() {
			if err := srv.ServeAdmin(adminLn); err != nil {
				done <- fmt.Errorf("admin listener: %w", err)
			}
		}()
	}
	select {
	case err := <-done:
		srv.Close()
		if err != nil {
			fmt.Fprintf(stderr, "nfyio server: %v\n", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "nfyio: shutting down")
	if err := srv.Shutdown(context.Background()); err != nil {
		fmt.Fprintf(stderr, "nfyio server: shutdown: %v\n", err)
		return 1
	}
	<-done
	return 0
}
