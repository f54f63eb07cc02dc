package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"nfyio.dev/storage/presign"
)

// target is one server under load, as the client sees it.
type target struct {
	Name     string
	Endpoint string // http://127.0.0.1:PORT
	PID      int    // for RSS and CPU sampling; 0 when unknown
	client   *http.Client
	signer   *signer
	access   string
	secret   string
}

// newTarget returns the client of one server. congestion names the TCP
// congestion control of its connections; empty keeps the host's default.
func newTarget(name, endpoint string, pid int, access, secret, congestion string) *target {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if congestion != "" {
		dialer.Control = func(_, _ string, rc syscall.RawConn) error { return setCongestion(rc, congestion) }
	}
	tr := &http.Transport{
		Proxy:               nil, // never a proxy from the environment: this is loopback
		DialContext:         dialer.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
	return &target{
		Name: name, Endpoint: endpoint, PID: pid,
		client: &http.Client{Transport: tr, Timeout: 5 * time.Minute},
		signer: newSigner(access, secret, "us-east-1"),
		access: access, secret: secret,
	}
}

// loadSpec is one load: an operation, object size and concurrency.
type loadSpec struct {
	Name    string `json:"name"`
	Op      string `json:"op"` // put, get, mixed, presign, list
	Size    int64  `json:"size"`
	Conc    int    `json:"concurrency"`
	Bucket  string `json:"bucket"`
	Prefix  string `json:"-"`
	Keys    int    `json:"-"` // key space (put/get/mixed/presign), or keys in the bucket (list)
	ReadPct int    `json:"-"` // mixed: percentage of GETs
}

// result is what one load measured on one target.
type result struct {
	Target      string   `json:"target"`
	Load        loadSpec `json:"load"`
	Ops         int64    `json:"ops"`
	Errors      int64    `json:"errors"`
	FirstError  string   `json:"first_error,omitempty"`
	Seconds     float64  `json:"seconds"`
	OpsPerSec   float64  `json:"ops_per_sec"`
	MiBPerSec   float64  `json:"mib_per_sec"`
	P50ms       float64  `json:"p50_ms"`
	P99ms       float64  `json:"p99_ms"`
	ClientCPUus float64  `json:"client_cpu_us_per_op"`
	ServerCPUus float64  `json:"server_cpu_us_per_op"`
	RSSMaxMiB   float64  `json:"rss_max_mib"`
	RSSIdleMiB  float64  `json:"rss_idle_mib"`
}

// payload is the random data PUT bodies are cut from.
var payload = func() []byte {
	b := make([]byte, 16<<20)
	r := rand.NewChaCha8([32]byte{'n', 'f', 'y', 'i', 'o'})
	_, _ = r.Read(b)
	return b
}()

// Large PUT bodies are sent from a file holding payload, so the client's
// kernel sends them with sendfile instead of copying them from user
// memory: the client shares the cores with the server it measures, and
// that copy is most of what a large PUT costs it. The transport closes a
// request body once it is sent, so each request opens its own descriptor
// (through /proc, of a file unlinked at once so nothing is left behind).
const fileBodyMin = 1 << 20

// payloadFile is the payload in an unlinked file, kept open (and
// reachable: once unreachable, its finalizer would close the descriptor,
// and payloadPath would then name whatever the process opened next, seen
// as PUTs whose body ended after a few hundred bytes). Nil if it could not
// be made.
var payloadFile = sync.OnceValue(func() *os.File {
	f, err := os.CreateTemp("", "nfyio-load-payload-*")
	if err != nil {
		return nil
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(payload); err != nil {
		f.Close()
		return nil
	}
	return f
})

// payloadPath names payloadFile's descriptor, "" when there is none.
var payloadPath = sync.OnceValue(func() string {
	f := payloadFile()
	if f == nil {
		return ""
	}
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd())
})

// putPayload PUTs the first size bytes of payload to u.
func (t *target) putPayload(u *url.URL, size int64, buf []byte) error {
	if path := payloadPath(); size >= fileBodyMin && path != "" {
		if f, err := os.Open(path); err == nil {
			return t.put(u, f, size, buf)
		}
	}
	return t.put(u, bytes.NewReader(payload[:size]), size, buf)
}

func keyName(prefix string, i int) string { return prefix + fmt.Sprintf("%07d", i) }

func (t *target) objectURL(bucket, key string) string {
	return t.Endpoint + "/" + bucket + "/" + key
}

// errStatus is an unexpected answer.
type errStatus struct {
	status int
	body   string
}

func (e *errStatus) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// do sends req and reads the answer into buf (discarding it), returning the
// body length. A status other than 200 is an error.
func (t *target) do(req *http.Request, buf []byte, keep *bytes.Buffer) (int64, error) {
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, &errStatus{resp.StatusCode, string(b)}
	}
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		n += int64(m)
		if keep != nil {
			keep.Write(buf[:m])
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// newRequest builds a request for an already parsed URL: the loads reuse
// one parsed URL per key rather than parse it for every request, to keep
// the client's cost per operation low. u is only read.
func newRequest(method string, u *url.URL, body io.Reader, size int64) *http.Request {
	req := &http.Request{
		Method: method, URL: u, Host: u.Host, Header: make(http.Header, 4),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if rc, ok := body.(io.ReadCloser); ok && size > 0 {
		// Handed over as is: the transport sends an *os.File with sendfile
		// only when it is the body itself, not wrapped, and closes it.
		req.Body, req.ContentLength = rc, size
	} else if body != nil && size > 0 {
		req.Body, req.ContentLength = io.NopCloser(body), size
	} else if method == http.MethodPut {
		req.Body = http.NoBody
	}
	return req
}

func (t *target) put(u *url.URL, body io.Reader, size int64, buf []byte) error {
	req := newRequest(http.MethodPut, u, body, size)
	t.signer.sign(req, time.Now())
	_, err := t.do(req, buf, nil)
	return err
}

func (t *target) get(u *url.URL, size int64, signed bool, buf []byte) error {
	req := newRequest(http.MethodGet, u, nil, 0)
	if signed {
		t.signer.sign(req, time.Now())
	}
	n, err := t.do(req, buf, nil)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("GET %s: %d bytes, want %d", u.Path, n, size)
	}
	return err
}

func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err) // URLs of our own making
	}
	return u
}

// createBucket creates bucket; an existing bucket is fine.
func (t *target) createBucket(ctx context.Context, bucket string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, t.Endpoint+"/"+bucket, http.NoBody)
	if err != nil {
		return err
	}
	t.signer.sign(req, time.Now())
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
	if resp.StatusCode == http.StatusOK || bytes.Contains(b, []byte("BucketAlreadyOwnedByYou")) {
		return nil
	}
	return fmt.Errorf("create bucket %s on %s: %w", bucket, t.Name, &errStatus{resp.StatusCode, string(b)})
}

// populate PUTs keys [0, n) of size bytes with conc clients, stopping at
// the deadline. It returns how many objects were stored.
func (t *target) populate(ctx context.Context, bucket, prefix string, n int, size int64, conc int, deadline time.Time) (int, error) {
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := t.put(mustParse(t.objectURL(bucket, keyName(prefix, i))), bytes.NewReader(payload[:size]), size, buf)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return int(done.Load()), fmt.Errorf("populate %s/%s on %s: %w", bucket, prefix, t.Name, firstErr)
	}
	// Keys are handed out in order, so with every PUT done the stored
	// keys are exactly [0, done).
	return int(done.Load()), nil
}

// worker is one client's state and tallies.
type worker struct {
	rng   *rand.Rand
	buf   []byte
	keep  bytes.Buffer
	lat   []int64 // nanoseconds of ops completed while measuring
	bytes int64
	errs  int64
	first error
}

// sample is the raw tally of one measured window.
type sample struct {
	lat            []int64 // nanoseconds per op
	bytes, errs    int64
	first          error
	elapsed        time.Duration
	cliCPU, srvCPU time.Duration
	srvOK          bool
	rssMax         float64
}

// prepare lists the URLs spec uses on t.
func (t *target) prepare(spec loadSpec) (urls, presigned []*url.URL) {
	if spec.Op == "presign" {
		presigned = t.presignGets(spec)
	}
	if spec.Op != "list" {
		urls = make([]*url.URL, spec.Keys)
		for i := range urls {
			urls[i] = mustParse(t.objectURL(spec.Bucket, keyName(spec.Prefix, i)))
		}
	}
	return urls, presigned
}

// measure runs spec for warmup, then measures it for dur, with the
// server's RSS sampled every 100 ms and both processes' CPU time taken at
// the edges of the measured window.
func (t *target) measure(ctx context.Context, spec loadSpec, urls, presigned []*url.URL, warmup, dur time.Duration) sample {
	const (
		warming = iota
		measuring
		stopped
	)
	var phase atomic.Int32
	workers := make([]*worker, spec.Conc)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{rng: rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))), buf: make([]byte, 256<<10)}
		w.lat = make([]int64, 0, 4096)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p := phase.Load()
				if p == stopped || ctx.Err() != nil {
					return
				}
				start := time.Now()
				n, err := t.op(spec, w, urls, presigned)
				if phase.Load() != measuring {
					continue
				}
				if err != nil {
					w.errs++
					if w.first == nil {
						w.first = err
					}
					// An error may be instant (a refused connection):
					// do not spin on it.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				w.lat = append(w.lat, int64(time.Since(start)))
				w.bytes += n
			}
		}()
	}
	sleepCtx(ctx, warmup)
	rss := sampleRSS(t.PID)
	srv0, srvErr := procCPU(t.PID)
	cpu0 := selfCPU()
	t0 := time.Now()
	phase.Store(measuring)
	sleepCtx(ctx, dur)
	phase.Store(stopped)
	var s sample
	s.elapsed = time.Since(t0)
	s.cliCPU = selfCPU() - cpu0
	srv1, srvErr1 := procCPU(t.PID)
	s.srvCPU, s.srvOK = srv1-srv0, srvErr == nil && srvErr1 == nil && t.PID > 0
	s.rssMax = rss.stop()
	wg.Wait()
	for _, w := range workers {
		s.lat = append(s.lat, w.lat...)
		s.bytes += w.bytes
		s.errs += w.errs
		if w.first != nil && s.first == nil {
			s.first = w.first
		}
	}
	return s
}

// summarize merges the samples of one target's rounds.
func summarize(t *target, spec loadSpec, idle float64, samples []sample) result {
	res := result{Target: t.Name, Load: spec, RSSIdleMiB: idle}
	var lat []int64
	var nbytes int64
	var elapsed, cli, srv time.Duration
	srvOK := true
	for _, s := range samples {
		lat = append(lat, s.lat...)
		nbytes += s.bytes
		res.Errors += s.errs
		if s.first != nil && res.FirstError == "" {
			res.FirstError = s.first.Error()
		}
		elapsed += s.elapsed
		cli += s.cliCPU
		srv += s.srvCPU
		srvOK = srvOK && s.srvOK
		res.RSSMaxMiB = max(res.RSSMaxMiB, s.rssMax)
	}
	slices.Sort(lat)
	res.Ops = int64(len(lat))
	res.Seconds = elapsed.Seconds()
	res.OpsPerSec = float64(res.Ops) / res.Seconds
	res.MiBPerSec = float64(nbytes) / (1 << 20) / res.Seconds
	if len(lat) > 0 {
		res.P50ms = float64(lat[len(lat)*50/100]) / 1e6
		res.P99ms = float64(lat[min(len(lat)-1, len(lat)*99/100)]) / 1e6
		res.ClientCPUus = float64(cli) / 1e3 / float64(res.Ops)
		if srvOK {
			res.ServerCPUus = float64(srv) / 1e3 / float64(res.Ops)
		}
	}
	return res
}

// runRounds applies spec to every target: rounds windows of dur/rounds
// each, the targets taking turns. The first window of each target follows
// a full warm-up, later ones a short one (connections are warm by then).
func runRounds(ctx context.Context, targets []*target, spec loadSpec, rounds int, warmup, dur time.Duration) []result {
	rounds = max(rounds, 1)
	type state struct {
		urls, presigned []*url.URL
		idle            float64
		samples         []sample
	}
	st := make([]state, len(targets))
	for i, t := range targets {
		st[i].urls, st[i].presigned = t.prepare(spec)
		if t.PID > 0 {
			if kb, err := rssKiB(t.PID); err == nil {
				st[i].idle = float64(kb) / 1024
			}
		}
	}
	for r := range rounds {
		for i, t := range targets {
			w := warmup
			if r > 0 {
				w = min(warmup, 200*time.Millisecond)
			}
			// Dirty pages another server (or an earlier window) left
			// behind would be written back during this window, on the
			// same cores and disk: each window starts with none.
			syscall.Sync()
			time.Sleep(200 * time.Millisecond)
			st[i].samples = append(st[i].samples, t.measure(ctx, spec, st[i].urls, st[i].presigned, w, dur/time.Duration(rounds)))
		}
	}
	out := make([]result, len(targets))
	for i, t := range targets {
		out[i] = summarize(t, spec, st[i].idle, st[i].samples)
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// op performs one operation of spec and returns the payload bytes moved.
func (t *target) op(spec loadSpec, w *worker, urls, presigned []*url.URL) (int64, error) {
	switch spec.Op {
	case "put":
		u := urls[w.rng.IntN(len(urls))]
		return spec.Size, t.putPayload(u, spec.Size, w.buf)
	case "get":
		return spec.Size, t.get(urls[w.rng.IntN(len(urls))], spec.Size, true, w.buf)
	case "mixed":
		u := urls[w.rng.IntN(len(urls))]
		if w.rng.IntN(100) < spec.ReadPct {
			return spec.Size, t.get(u, spec.Size, true, w.buf)
		}
		return spec.Size, t.putPayload(u, spec.Size, w.buf)
	case "presign":
		return spec.Size, t.get(presigned[w.rng.IntN(len(presigned))], spec.Size, false, w.buf)
	case "list":
		return t.list(spec, w)
	}
	return 0, fmt.Errorf("unknown op %q", spec.Op)
}

// presignGets mints one presigned GET per key with our presign package,
// before the load: the load measures the server checking them.
func (t *target) presignGets(spec loadSpec) []*url.URL {
	s := &presign.Signer{Endpoint: t.Endpoint, Region: "us-east-1",
		Credentials: presign.Credentials{AccessKeyID: t.access, SecretAccessKey: t.secret}}
	out := make([]*url.URL, spec.Keys)
	for i := range out {
		u, err := s.Presign(spec.Bucket, keyName(spec.Prefix, i), presign.Options{Expires: time.Hour})
		if err != nil {
			panic(err) // our own keys and endpoint: cannot fail
		}
		out[i] = mustParse(u.URL)
	}
	return out
}

var keyTag = []byte("<Key>")

// list asks for one ListObjectsV2 page of 1,000 keys starting after a
// random key, and checks that it holds 1,000 keys.
func (t *target) list(spec loadSpec, w *worker) (int64, error) {
	const page = 1000
	if spec.Keys <= page {
		return 0, errors.New("list: bucket holds too few keys")
	}
	after := keyName(spec.Prefix, w.rng.IntN(spec.Keys-page))
	// Parameters in canonical (sorted, encoded) order, sent as signed.
	q := "list-type=2&max-keys=" + strconv.Itoa(page) + "&start-after=" + queryEscape(after)
	req := newRequest(http.MethodGet, mustParse(t.Endpoint+"/"+spec.Bucket+"?"+q), nil, 0)
	t.signer.sign(req, time.Now())
	w.keep.Reset()
	n, err := t.do(req, w.buf, &w.keep)
	if err != nil {
		return n, err
	}
	if k := bytes.Count(w.keep.Bytes(), keyTag); k != page {
		return n, fmt.Errorf("list after %s: %d keys, want %d", after, k, page)
	}
	return n, nil
}
