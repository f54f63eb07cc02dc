package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Credentials every server under test is started with.
const (
	benchAccess = "NFYIOBENCHROOTKEY001"
	benchSecret = "bench-root-secret-key-0123456789abcdefghij"
)

// Key spaces of the loads.
const (
	smallBucket = "bench"
	smallPrefix = "s/"
	smallKeys   = 1000
	smallSize   = 4 << 10
	largePrefix = "L/"
	largeKeys   = 48
	largeSize   = 16 << 20
	listBucket  = "list"
	listPrefix  = "k/"
)

// e2eReport is everything `load e2e` measured; `load report` renders it.
type e2eReport struct {
	Started  time.Time         `json:"started"`
	Duration float64           `json:"duration_s"`
	Warmup   float64           `json:"warmup_s"`
	Elapsed  float64           `json:"elapsed_s"`
	Results  []result          `json:"results"`
	Populate []populateResult  `json:"populate"`
	Idle     []idleResult      `json:"idle"`
	Startup  *startupResult    `json:"startup,omitempty"`
	Big      []bigResult       `json:"big"`
	Versions map[string]string `json:"versions"`
	Commands map[string]string `json:"commands"`
	LoadAvg  map[string]string `json:"loadavg"`
	Notes    []string          `json:"notes"`

	// TCP congestion control: the host's default and the one the load
	// generator's connections use.
	HostCongestion   string `json:"host_congestion"`
	ClientCongestion string `json:"client_congestion"`
}

type populateResult struct {
	Target  string  `json:"target"`
	What    string  `json:"what"`
	Objects int     `json:"objects"`
	Wanted  int     `json:"wanted"`
	Seconds float64 `json:"seconds"`
	Capped  bool    `json:"capped"`
}

type idleResult struct {
	Target string  `json:"target"`
	When   string  `json:"when"`
	MiB    float64 `json:"rss_mib"`
	// AnonMiB is the anonymous part of the RSS (RssAnon): what the
	// process allocated, without file pages it maps (bbolt's mmap).
	AnonMiB float64 `json:"rss_anon_mib"`
}

func idleNow(target string, pid int, when string) idleResult {
	r := idleResult{Target: target, When: when, MiB: rssMiB(pid)}
	if kb, err := statusKiB(pid, "RssAnon:"); err == nil {
		r.AnonMiB = float64(kb) / 1024
	}
	return r
}

type startupResult struct {
	Objects int     `json:"objects"`
	Millis  float64 `json:"ms_to_first_ready"`
}

type bigResult struct {
	Target    string  `json:"target"`
	Op        string  `json:"op"`
	Size      int64   `json:"size"`
	Seconds   float64 `json:"seconds"`
	MiBPerSec float64 `json:"mib_per_sec"`
	RSSMaxMiB float64 `json:"rss_max_mib"`
	Error     string  `json:"error,omitempty"`
}

// proc is a server process under test.
type proc struct {
	name  string
	bin   string
	args  []string
	env   []string
	dir   string
	ready string // path polled until it answers (any status unless readyOK)
	ok200 bool
	cmd   *exec.Cmd
	tg    *target

	congestion string // of the load generator's connections to it
	// of is the server process this entry shares, nil when it runs its
	// own: the same server seen by a client set up differently.
	of *proc
}

// cleanEnv is the environment without variables that would change a
// server's or client's behaviour behind our back.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "NFYIO_") || strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "VGW_") ||
			strings.HasPrefix(name, "ROOT_") || strings.HasSuffix(strings.ToUpper(name), "_PROXY") || name == "GOMAXPROCS" || name == "GOGC" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start launches p on a free port and waits until it answers; it returns
// the time from launch to the first good answer.
func (p *proc) start(ctx context.Context) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := make([]string, len(p.args))
	for i, a := range p.args {
		args[i] = strings.ReplaceAll(a, "{addr}", addr)
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The servers must not outlive the benchmark, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	endpoint := "http://" + addr
	p.tg = newTarget(p.name, endpoint, cmd.Process.Pid, benchAccess, benchSecret, p.congestion)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	poll := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return 0, fmt.Errorf("%s exited during start-up; see %s", p.name, logf.Name())
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		resp, err := poll.Get(endpoint + p.ready)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if !p.ok200 || resp.StatusCode == http.StatusOK {
				return time.Since(began), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("%s did not answer within 60s; see %s", p.name, logf.Name())
}

// stop ends p with SIGTERM (SIGKILL after 30 s) and waits for it.
func (p *proc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.cmd.Process.Pid)); err != nil {
			break
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)); err == nil && bytes.Contains(b, []byte(") Z ")) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
	p.cmd = nil
}

func runE2E(args []string) error {
	fs := flag.NewFlagSet("load e2e", flag.ContinueOnError)
	nfyioBin := fs.String("nfyio", "bin/nfyio", "nfyio binary")
	vgwBin := fs.String("versitygw", "", "versitygw binary (empty: skip the peer)")
	memBin := fs.String("memserver", "", "memserver binary (empty: skip the loopback limit)")
	work := fs.String("work", "", "scratch directory for data and logs (default: a new temp dir, removed after)")
	out := fs.String("out", "e2e.json", "JSON results file")
	dur := fs.Duration("duration", 5*time.Second, "measured time of each load")
	warm := fs.Duration("warmup", time.Second, "warm-up before each load")
	listKeys := fs.Int("list-keys", 100_000, "keys in the listing bucket")
	capPop := fs.Duration("populate-cap", 60*time.Second, "longest a server may take to populate the listing bucket")
	loadsRe := fs.String("loads", "", "regexp: run only loads whose name matches (empty: all)")
	nosync := fs.Bool("nosync", true, "also run the PUT loads against nfyio --unsafe-no-fsync")
	norecycle := fs.Bool("norecycle", true, "also run the 16 MiB PUT loads against nfyio --recycle-bytes 0")
	sendbuf := fs.Bool("sendbuf", true, "also run the 16 MiB GET loads against nfyio --local-send-buffer 0 and memserver with nfyio's send buffer")
	pprof := fs.Bool("pprof", false, "start nfyio with NFYIO_PPROF=1 (profiling while it runs)")
	big := fs.Bool("big", true, "measure a 1 GiB PUT and GET against nfyio")
	rounds := fs.Int("rounds", 3, "windows each load's measured time is split in, the servers taking turns")
	congestion := fs.String("congestion", defaultCongestion, "TCP congestion control of the load generator's connections (empty: the host's default)")
	hostcc := fs.Bool("hostcc", true, "also run the 16 MiB PUT loads against nfyio and memserver with the host's default congestion control, where it is another")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var only *regexp.Regexp
	if *loadsRe != "" {
		var err error
		if only, err = regexp.Compile(*loadsRe); err != nil {
			return err
		}
	}
	dir := *work
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	} else {
		d, err := os.MkdirTemp("", "nfyio-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := &e2eReport{Started: time.Now().UTC(), Duration: dur.Seconds(), Warmup: warm.Seconds(),
		Versions: map[string]string{}, Commands: map[string]string{}, LoadAvg: map[string]string{"start": loadAvg()}}

	nfyioEnv := []string{"NFYIO_ROOT_ACCESS_KEY=" + benchAccess, "NFYIO_ROOT_SECRET_KEY=" + benchSecret}
	if *pprof {
		nfyioEnv = append(nfyioEnv, "NFYIO_PPROF=1")
	}
	procs := []*proc{{
		name: "nfyio", bin: *nfyioBin, dir: dir, ready: "/_nfyio/health/ready", ok200: true,
		args: []string{"server", "--address", "{addr}", "--data", filepath.Join(dir, "nfyio-data")},
		env:  cleanEnv(nfyioEnv...),
	}}
	if *vgwBin != "" {
		vdir := filepath.Join(dir, "versitygw-data")
		if err := os.MkdirAll(vdir, 0o700); err != nil {
			return err
		}
		// --keep-alive: versitygw closes every connection after one
		// request unless told otherwise, which no client would want.
		procs = append(procs, &proc{
			name: "versitygw", bin: *vgwBin, dir: dir, ready: "/",
			args: []string{"--port", "{addr}", "--access", benchAccess, "--secret", benchSecret, "--keep-alive", "--quiet", "posix", vdir},
			env:  cleanEnv(),
		})
	}
	if *memBin != "" {
		procs = append(procs, &proc{name: "memserver", bin: *memBin, dir: dir, ready: "/", args: []string{"-addr", "{addr}"}, env: cleanEnv()})
	}
	if *nosync {
		procs = append(procs, &proc{
			name: "nfyio-nosync", bin: *nfyioBin, dir: dir, ready: "/_nfyio/health/ready", ok200: true,
			args: []string{"server", "--unsafe-no-fsync", "--address", "{addr}", "--data", filepath.Join(dir, "nfyio-nosync-data")},
			env:  cleanEnv(nfyioEnv...),
		})
	}
	if *norecycle {
		// The PUT loads overwrite their keys, so every PUT of a large blob
		// finds the file of a replaced one to write over. This server shows
		// what writing new files costs, as uploads of new keys do.
		procs = append(procs, &proc{
			name: "nfyio-norecycle", bin: *nfyioBin, dir: dir, ready: "/_nfyio/health/ready", ok200: true,
			args: []string{"server", "--recycle-bytes", "0", "--address", "{addr}", "--data", filepath.Join(dir, "nfyio-norecycle-data")},
			env:  cleanEnv(nfyioEnv...),
		})
	}
	if *sendbuf {
		// nfyio sets a 256 KiB send buffer on connections from its own host
		// (the loads' client); these two show that setting's share of the
		// 16 MiB GET figures: nfyio without it, and the loopback limit with
		// it.
		procs = append(procs, &proc{
			name: "nfyio-kernelbuf", bin: *nfyioBin, dir: dir, ready: "/_nfyio/health/ready", ok200: true,
			args: []string{"server", "--local-send-buffer", "0", "--address", "{addr}", "--data", filepath.Join(dir, "nfyio-kernelbuf-data")},
			env:  cleanEnv(nfyioEnv...),
		})
		if *memBin != "" {
			procs = append(procs, &proc{name: "memserver-sendbuf", bin: *memBin, dir: dir, ready: "/", args: []string{"-addr", "{addr}", "-send-buffer", "262144"}, env: cleanEnv()})
		}
	}
	for _, p := range procs {
		p.congestion = *congestion
	}
	rep.HostCongestion, rep.ClientCongestion = hostCongestion(), *congestion
	if host := rep.HostCongestion; *hostcc && *congestion != "" && host != "" && host != *congestion {
		// The same nfyio and memserver, with the client of an S3 SDK that
		// leaves its sockets alone on this host.
		for _, p := range procs { // the range ends at the procs it started with
			if p.name == "nfyio" || p.name == "memserver" {
				procs = append(procs, &proc{name: p.name + "-hostcc", of: p})
			}
		}
	}
	for _, p := range procs {
		if p.of != nil {
			rep.Commands[p.name] = fmt.Sprintf("the %s process; the load generator's connections on the host's default congestion control (%s)", p.of.name, rep.HostCongestion)
			continue
		}
		cmd := filepath.Base(p.bin) + " " + strings.Join(p.args, " ")
		cmd = strings.ReplaceAll(strings.ReplaceAll(cmd, "{addr}", "127.0.0.1:PORT"), dir, "$WORK")
		cmd = strings.ReplaceAll(cmd, benchSecret, "$SECRET")
		rep.Commands[p.name] = cmd
		rep.Versions[p.name] = binVersion(p.bin)
	}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, p := range procs {
		if p.of != nil {
			p.tg = newTarget(p.name, p.of.tg.Endpoint, p.of.tg.PID, benchAccess, benchSecret, p.congestion)
			continue
		}
		if _, err := p.start(ctx); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "load: %s listening at %s (pid %d)\n", p.name, p.tg.Endpoint, p.tg.PID)
	}
	byName := func(name string) *proc {
		for _, p := range procs {
			if p.name == name {
				return p
			}
		}
		return nil
	}
	// servers run every load; the variants only the loads extras names.
	variants := []string{"nfyio-nosync", "nfyio-norecycle", "nfyio-kernelbuf", "memserver-sendbuf", "nfyio-hostcc", "memserver-hostcc"}
	servers := procs[:0:0]
	for _, p := range procs {
		if !slices.Contains(variants, p.name) {
			servers = append(servers, p)
		}
	}
	time.Sleep(time.Second)
	// Entries that share another's process are left out of what concerns
	// the process alone.
	own := slices.DeleteFunc(slices.Clone(procs), func(p *proc) bool { return p.of != nil })
	for _, p := range own {
		rep.Idle = append(rep.Idle, idleNow(p.name, p.tg.PID, "after start-up"))
	}
	for _, p := range own {
		for _, b := range []string{smallBucket, listBucket} {
			if err := p.tg.createBucket(ctx, b); err != nil {
				return err
			}
		}
	}
	want := func(name string) bool { return only == nil || only.MatchString(name) }
	var extras func(loadSpec) []string
	// runs returns the servers spec runs against: every one, and the
	// variants extras names for it.
	runs := func(spec loadSpec) []*proc {
		ps := servers
		for _, name := range extras(spec) {
			if p := byName(name); p != nil {
				ps = append(slices.Clip(ps), p)
			}
		}
		return ps
	}
	begun := time.Now()
	runLoads := func(specs []loadSpec) {
		for _, spec := range specs {
			if !want(spec.Name) {
				continue
			}
			ps := runs(spec)
			tgs := make([]*target, len(ps))
			for i, p := range ps {
				tgs[i] = p.tg
			}
			for _, r := range runRounds(ctx, tgs, spec, *rounds, *warm, *dur) {
				rep.Results = append(rep.Results, r)
				logResult(r)
			}
		}
	}
	pop := func(p *proc, bucket, prefix string, n int, size int64, conc int, limit time.Duration, what string) (int, error) {
		t0 := time.Now()
		got, err := p.tg.populate(ctx, bucket, prefix, n, size, conc, t0.Add(limit))
		pr := populateResult{Target: p.name, What: what, Objects: got, Wanted: n, Seconds: time.Since(t0).Seconds(), Capped: got < n && err == nil}
		rep.Populate = append(rep.Populate, pr)
		fmt.Fprintf(os.Stderr, "load: populate %-22s %-13s %d/%d objects in %.1fs\n", what, p.name, got, n, pr.Seconds)
		return got, err
	}

	small := func(name, op string, conc int) loadSpec {
		return loadSpec{Name: name, Op: op, Size: smallSize, Conc: conc, Bucket: smallBucket, Prefix: smallPrefix, Keys: smallKeys, ReadPct: 70}
	}
	large := func(name, op string, conc int) loadSpec {
		return loadSpec{Name: name, Op: op, Size: largeSize, Conc: conc, Bucket: smallBucket, Prefix: largePrefix, Keys: largeKeys}
	}
	extras = func(s loadSpec) []string {
		var names []string
		if s.Op == "put" && s.Conc == 32 {
			names = append(names, "nfyio-nosync")
		}
		if s.Op == "put" && s.Size >= 1<<20 {
			names = append(names, "nfyio-norecycle", "nfyio-hostcc", "memserver-hostcc")
		}
		if s.Op == "get" && s.Size >= 1<<20 {
			names = append(names, "nfyio-kernelbuf", "memserver-sendbuf")
		}
		return names
	}

	anyWanted := func(specs []loadSpec) bool {
		return slices.ContainsFunc(specs, func(s loadSpec) bool { return want(s.Name) })
	}
	// 4 KiB objects.
	smallLoads := []loadSpec{
		small("PUT 4KiB", "put", 8), small("PUT 4KiB", "put", 32),
		small("GET 4KiB", "get", 8), small("GET 4KiB", "get", 32),
		// Presigned GETs right after the header-signed ones, on the same
		// state, before the mixed load's overwrites change it.
		small("presigned GET 4KiB", "presign", 32),
		small("mixed 70/30 4KiB", "mixed", 32),
	}
	if anyWanted(smallLoads) {
		for _, p := range servers {
			if _, err := pop(p, smallBucket, smallPrefix, smallKeys, smallSize, 32, 10*time.Minute, "4 KiB objects"); err != nil {
				return err
			}
		}
	}
	runLoads(smallLoads)

	// 16 MiB objects.
	largeLoads := []loadSpec{
		large("PUT 16MiB", "put", 8), large("PUT 16MiB", "put", 32),
		large("GET 16MiB", "get", 8), large("GET 16MiB", "get", 32),
	}
	if anyWanted(largeLoads) {
		// The GET loads' variants read the objects too.
		for _, p := range runs(large("GET 16MiB", "get", 8)) {
			if _, err := pop(p, smallBucket, largePrefix, largeKeys, largeSize, 8, 10*time.Minute, "16 MiB objects"); err != nil {
				return err
			}
		}
	}
	runLoads(largeLoads)

	// Listing pages of a 100,000-key bucket.
	if want("LIST") {
		for _, p := range servers {
			got, err := pop(p, listBucket, listPrefix, *listKeys, 0, 32, *capPop, fmt.Sprintf("%d empty objects", *listKeys))
			if err != nil {
				return err
			}
			if got <= 1000 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: only %d keys populated; listing skipped", p.name, got))
				continue
			}
			spec := func(conc int) loadSpec {
				return loadSpec{Name: "LIST 1000 of 100k", Op: "list", Conc: conc, Bucket: listBucket, Prefix: listPrefix, Keys: got}
			}
			for _, s := range []loadSpec{spec(1), spec(8)} {
				r := runRounds(ctx, []*target{p.tg}, s, 1, *warm, *dur)[0]
				rep.Results = append(rep.Results, r)
				logResult(r)
			}
		}
	}

	nf := byName("nfyio")
	time.Sleep(2 * time.Second)
	for _, p := range own {
		rep.Idle = append(rep.Idle, idleNow(p.name, p.tg.PID, "2 s after the loads"))
	}

	// Start-up with everything above stored: stop, start, first ready.
	if want("startup") {
		nf.stop()
		d, err := nf.start(ctx)
		if err != nil {
			return err
		}
		objects := 0
		for _, pr := range rep.Populate {
			if pr.Target == "nfyio" {
				objects += pr.Objects
			}
		}
		rep.Startup = &startupResult{Objects: objects, Millis: float64(d) / 1e6}
		fmt.Fprintf(os.Stderr, "load: nfyio start-up with %d objects: %.0f ms to first ready\n", objects, rep.Startup.Millis)
	}

	if *big && want("1GiB") {
		rep.Big = append(rep.Big, bigTransfer(nf.tg, "PUT", 1<<30), bigTransfer(nf.tg, "GET", 1<<30))
		time.Sleep(2 * time.Second)
		rep.Idle = append(rep.Idle, idleNow("nfyio", nf.tg.PID, "2 s after the 1 GiB PUT and GET"))
	}
	rep.Elapsed = time.Since(begun).Seconds()
	rep.LoadAvg["end"] = loadAvg()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

func logResult(r result) {
	fmt.Fprintf(os.Stderr, "load: %-20s c%-2d %-17s %8.0f obj/s %7.1f MiB/s p50 %7.2f ms p99 %7.2f ms cli %6.0f µs/op srv %6.0f µs/op rss %6.1f MiB err %d %s\n",
		r.Load.Name, r.Load.Conc, r.Target, r.OpsPerSec, r.MiBPerSec, r.P50ms, r.P99ms, r.ClientCPUus, r.ServerCPUus, r.RSSMaxMiB, r.Errors, r.FirstError)
}

func rssMiB(pid int) float64 {
	kb, err := rssKiB(pid)
	if err != nil {
		return 0
	}
	return float64(kb) / 1024
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// binVersion is the module version a Go binary was built from.
func binVersion(bin string) string {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" {
			return f[1] + " " + f[2]
		}
	}
	return ""
}

// cycleReader yields n bytes cut from payload, over and over, so a 1 GiB
// body costs the client no memory.
type cycleReader struct {
	left int64
	off  int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n := copy(p, payload[c.off:])
	c.off = (c.off + n) % len(payload)
	c.left -= int64(n)
	return n, nil
}

// bigTransfer PUTs or GETs one object of size bytes, sampling the server's
// RSS throughout.
func bigTransfer(t *target, op string, size int64) bigResult {
	r := bigResult{Target: t.Name, Op: op, Size: size}
	u := mustParse(t.objectURL(smallBucket, "big/object"))
	rss := sampleRSS(t.PID)
	t0 := time.Now()
	buf := make([]byte, 256<<10)
	var err error
	if op == "PUT" {
		err = t.put(u, &cycleReader{left: size}, size, buf)
	} else {
		err = t.get(u, size, true, buf)
	}
	r.Seconds = time.Since(t0).Seconds()
	r.RSSMaxMiB = rss.stop()
	r.MiBPerSec = float64(size) / (1 << 20) / r.Seconds
	if err != nil {
		r.Error = err.Error()
		var es *errStatus
		if !errors.As(err, &es) {
			r.Error = "transfer: " + err.Error()
		}
	}
	fmt.Fprintf(os.Stderr, "load: %s 1 GiB on %s: %.1f MiB/s, RSS max %.1f MiB %s\n", op, t.Name, r.MiBPerSec, r.RSSMaxMiB, r.Error)
	return r
}
