package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// goBench is one line of `go test -bench` output.
type goBench struct {
	Pkg     string
	Name    string
	Iters   int64
	Metrics map[string]float64 // unit -> value: ns/op, MB/s, B/op, allocs/op, custom
	Units   []string           // in the order printed
}

// parseGoBench reads `go test -bench` output, tracking the package from the
// "pkg:" lines.
func parseGoBench(r io.Reader) ([]goBench, error) {
	var out []goBench
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a benchmark's own log line, not a result
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := goBench{Pkg: pkg, Name: f[0], Iters: iters, Metrics: map[string]float64{}}
		// Drop the -GOMAXPROCS suffix.
		if i := strings.LastIndexByte(b.Name, '-'); i > 0 {
			if _, err := strconv.Atoi(b.Name[i+1:]); err == nil {
				b.Name = b.Name[:i]
			}
		}
		b.Name = strings.TrimPrefix(b.Name, "Benchmark")
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			b.Metrics[f[i+1]] = v
			b.Units = append(b.Units, f[i+1])
		}
		if ok {
			out = append(out, b)
		}
	}
	return out, sc.Err()
}

func runReport(args []string) error {
	fs := flag.NewFlagSet("load report", flag.ContinueOnError)
	gobench := fs.String("gobench", "", "go test -bench output")
	e2e := fs.String("e2e", "", "load e2e JSON")
	disk := fs.String("disk", "", "load disk JSON files, comma-separated (sequential runs are pooled; sync loops come from the first)")
	out := fs.String("out", "", "markdown file to write (the same is printed)")
	wall := fs.Duration("wall", 0, "total wall time of the run, for the record")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var benches []goBench
	if *gobench != "" {
		f, err := os.Open(*gobench)
		if err != nil {
			return err
		}
		benches, err = parseGoBench(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	var rep e2eReport
	if *e2e != "" {
		if err := readJSON(*e2e, &rep); err != nil {
			return err
		}
	}
	var dr diskReport
	for i, name := range strings.Split(*disk, ",") {
		if name == "" {
			continue
		}
		var d diskReport
		if err := readJSON(name, &d); err != nil {
			return err
		}
		if i == 0 {
			dr = d
			continue
		}
		dr.SeqWriteRuns = append(dr.SeqWriteRuns, d.SeqWriteRuns...)
		dr.SeqWriteMiBps = max(dr.SeqWriteMiBps, d.SeqWriteMiBps)
	}
	md := render(benches, &rep, &dr, *wall)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	_, err := io.WriteString(os.Stdout, md)
	return err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// machine describes the computer the figures come from.
func machine() [][2]string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) >= 2 {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fsType := ""
	if o, err := exec.Command("df", "-T", os.TempDir()).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(o)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) >= 2 {
			fsType = f[1] + " on " + f[0]
		}
	}
	commit := "unknown"
	if o, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(o))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			commit += " (with uncommitted changes)"
		}
	}
	return [][2]string{
		{"CPU", fmt.Sprintf("%s, %d cores", cpu, runtime.NumCPU())},
		{"memory", mem},
		{"kernel", strings.TrimSpace(string(kernel))},
		{"file system", fsType + " (" + os.TempDir() + ")"},
		{"Go", runtime.Version()},
		{"commit", commit},
	}
}

// find returns the result of load name at conc on target.
func (r *e2eReport) find(target, name string, conc int) *result {
	for i := range r.Results {
		x := &r.Results[i]
		if x.Target == target && x.Load.Name == name && x.Load.Conc == conc {
			return x
		}
	}
	return nil
}

func ratio(a, b *result, mib bool) (float64, bool) {
	if a == nil || b == nil {
		return 0, false
	}
	x, y := a.OpsPerSec, b.OpsPerSec
	if mib {
		x, y = a.MiBPerSec, b.MiBPerSec
	}
	if y == 0 {
		return 0, false
	}
	return x / y, true
}

func fmtRatio(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	s := fmt.Sprintf("%.2f×", v)
	// Two decimals can round a miss up to the threshold (0.798 shows as
	// 0.80×, next to "not met"): then show three.
	for _, limit := range []float64{0.8, 2} {
		if v < limit && s == fmt.Sprintf("%.2f×", limit) {
			return fmt.Sprintf("%.3f×", v)
		}
	}
	return s
}

func metOrNot(ok, known bool) string {
	switch {
	case !known:
		return "not measured"
	case ok:
		return "**met**"
	}
	return "**not met**"
}

func render(benches []goBench, rep *e2eReport, dr *diskReport, wall time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# nfyio storage — benchmark results\n\n")
	p("Written by `make bench` (scripts/bench.sh); numbers from one run on the machine below. ")
	p("The load generator (bench/load) shares the machine's cores with the server it measures, so each load also reports ")
	p("the client's CPU time per operation (getrusage) and the server's (/proc/PID/stat). ")
	p("How it is measured, and what the profiles say about the figures: [README.md](README.md).\n\n")
	p("## Machine and run\n\n| | |\n|---|---|\n")
	date := rep.Started
	if date.IsZero() {
		date = time.Now().UTC()
	}
	p("| date | %s |\n", date.Format("2006-01-02 15:04 MST"))
	for _, kv := range machine() {
		p("| %s | %s |\n", kv[0], kv[1])
	}
	if rep.LoadAvg != nil {
		p("| load average (1, 5, 15 min) | start %s; end %s |\n", rep.LoadAvg["start"], rep.LoadAvg["end"])
	}
	if wall > 0 {
		p("| wall time of `make bench` | %s |\n", wall.Round(time.Second))
	}
	if rep.Duration > 0 {
		p("| each load | %.0f s measured after %.0f s warm-up |\n", rep.Duration, rep.Warmup)
	}
	if rep.ClientCongestion != "" {
		p("| TCP congestion control | host's default %s; the load generator's connections %s |\n", orUnknown(rep.HostCongestion), rep.ClientCongestion)
	}
	for _, name := range []string{"nfyio", "nfyio-nosync", "nfyio-norecycle", "nfyio-kernelbuf", "nfyio-hostcc", "versitygw", "memserver", "memserver-sendbuf", "memserver-hostcc"} {
		if c, ok := rep.Commands[name]; ok {
			if strings.HasSuffix(name, "-hostcc") {
				p("| %s | %s |\n", name, c) // a description, not a command
				continue
			}
			v := rep.Versions[name]
			if v != "" {
				v = " (" + v + ")"
			}
			p("| %s | `%s`%s |\n", name, c, v)
		}
	}
	p("\n")

	if len(benches) > 0 {
		p("## Go benchmarks\n\n| package | benchmark | ns/op | MB/s | B/op | allocs/op | other |\n|---|---|--:|--:|--:|--:|---|\n")
		for _, x := range benches {
			cell := func(unit, format string) string {
				if v, ok := x.Metrics[unit]; ok {
					return fmt.Sprintf(format, v)
				}
				return ""
			}
			var other []string
			for _, u := range x.Units {
				switch u {
				case "ns/op", "MB/s", "B/op", "allocs/op":
				default:
					other = append(other, fmt.Sprintf("%.3g %s", x.Metrics[u], u))
				}
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(x.Pkg, "nfyio.dev/storage/"), x.Name,
				cell("ns/op", "%.0f"), cell("MB/s", "%.0f"), cell("B/op", "%.0f"), cell("allocs/op", "%.0f"), strings.Join(other, ", "))
		}
		p("\n")
	}

	if dr.SeqWriteMiBps > 0 {
		p("## Raw disk (same run)\n\n| measure | figure |\n|---|--:|\n")
		runs := make([]string, len(dr.SeqWriteRuns))
		for i, v := range dr.SeqWriteRuns {
			runs[i] = fmt.Sprintf("%.0f", v)
		}
		p("| sequential write of 256 MiB, then fsync: best of %d runs (before and after the end-to-end loads: %s) | %.0f MiB/s |\n",
			len(runs), strings.Join(runs, ", "), dr.SeqWriteMiBps)
		p("| 4 KiB append + fdatasync, in a loop | %.0f ops/s |\n", dr.AppendSyncOps)
		p("| 4 KiB overwrite in place + fdatasync, in a loop | %.0f ops/s |\n", dr.OverwriteSyncOps)
		if dr.NewFilesMiBps > 0 {
			p("| 8 writers of 16 MiB files, fdatasync each: new files (deleted once written) | %.0f MiB/s |\n", dr.NewFilesMiBps)
			p("| the same, rewriting 4 files per writer in place (what recycling does) | %.0f MiB/s |\n", dr.RewriteMiBps)
		}
		p("\n")
	}

	if len(rep.Results) > 0 {
		p("## End to end on loopback\n\n")
		p("Same load, same client, one run: **nfyio** (embedded backends, durable writes), **versitygw** (posix backend; the peer), ")
		p("**memserver** (bench/memserver: a map in memory, no auth; the loopback limit) and, for PUTs, **nfyio-nosync** (`--unsafe-no-fsync`, which also turns recycling off) ")
		p("and **nfyio-norecycle** (`--recycle-bytes 0`: the PUT loads overwrite their keys, so nfyio writes each large blob over the file of a replaced one; ")
		p("this is nfyio writing new files, as uploads of new keys do). ")
		p("For 16 MiB GETs, **nfyio-kernelbuf** (`--local-send-buffer 0`) is nfyio without the 256 KiB send buffer it sets on connections from its own host, as the client's are, ")
		p("and **memserver-sendbuf** is the loopback limit with that buffer too. ")
		if rep.find("nfyio-hostcc", "PUT 16MiB", 8) != nil {
			p("The load generator's connections use %s, which never paces; for 16 MiB PUTs, **nfyio-hostcc** and **memserver-hostcc** are the same two servers loaded by a client that keeps the host's default, %s, ", rep.ClientCongestion, rep.HostCongestion)
			p("as an S3 SDK does (see README.md on what pacing costs on this machine). ")
		}
		p("obj/s and MiB/s are over the measured window; latencies are per request; RSS is the server's VmRSS, sampled every 100 ms; ")
		p("CPU is µs of CPU time per operation.\n\n")
		p("| load | c | server | obj/s | MiB/s | p50 ms | p99 ms | RSS MiB before / max | server CPU µs/op | client CPU µs/op | errors |\n")
		p("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, r := range rep.Results {
			errs := strconv.FormatInt(r.Errors, 10)
			if r.FirstError != "" {
				e := r.FirstError
				if len(e) > 80 {
					e = e[:80] + "…"
				}
				errs += " (" + strings.ReplaceAll(e, "|", "/") + ")"
			}
			p("| %s | %d | %s | %.0f | %.1f | %.2f | %.2f | %.1f / %.1f | %.0f | %.0f | %s |\n", r.Load.Name, r.Load.Conc, r.Target,
				r.OpsPerSec, r.MiBPerSec, r.P50ms, r.P99ms, r.RSSIdleMiB, r.RSSMaxMiB, r.ServerCPUus, r.ClientCPUus, errs)
		}
		p("\n### Ratios (throughput)\n\n| load | c | nfyio / versitygw | nfyio / memserver | nfyio-nosync / nfyio | nfyio-norecycle / versitygw | nfyio-kernelbuf / memserver | nfyio / memserver-sendbuf | nfyio-hostcc / memserver-hostcc |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		seen := map[string]bool{}
		for _, r := range rep.Results {
			k := r.Load.Name + "/" + strconv.Itoa(r.Load.Conc)
			if seen[k] {
				continue
			}
			seen[k] = true
			nf := rep.find("nfyio", r.Load.Name, r.Load.Conc)
			mib := r.Load.Size >= 1<<20
			mem := rep.find("memserver", r.Load.Name, r.Load.Conc)
			p("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Load.Name, r.Load.Conc,
				fmtRatio(ratio(nf, rep.find("versitygw", r.Load.Name, r.Load.Conc), mib)),
				fmtRatio(ratio(nf, mem, mib)),
				fmtRatio(ratio(rep.find("nfyio-nosync", r.Load.Name, r.Load.Conc), nf, mib)),
				fmtRatio(ratio(rep.find("nfyio-norecycle", r.Load.Name, r.Load.Conc), rep.find("versitygw", r.Load.Name, r.Load.Conc), mib)),
				fmtRatio(ratio(rep.find("nfyio-kernelbuf", r.Load.Name, r.Load.Conc), mem, mib)),
				fmtRatio(ratio(nf, rep.find("memserver-sendbuf", r.Load.Name, r.Load.Conc), mib)),
				fmtRatio(ratio(rep.find("nfyio-hostcc", r.Load.Name, r.Load.Conc), rep.find("memserver-hostcc", r.Load.Name, r.Load.Conc), mib)))
		}
		p("\n")
	}
	if len(rep.Populate) > 0 {
		p("### Populating\n\n| server | what | objects | s | obj/s | note |\n|---|---|--:|--:|--:|---|\n")
		for _, x := range rep.Populate {
			note := ""
			if x.Capped {
				note = fmt.Sprintf("capped: %d of %d in the time allowed", x.Objects, x.Wanted)
			}
			p("| %s | %s | %d | %.1f | %.0f | %s |\n", x.Target, x.What, x.Objects, x.Seconds, float64(x.Objects)/x.Seconds, note)
		}
		p("\n")
	}
	if len(rep.Idle) > 0 || len(rep.Big) > 0 || rep.Startup != nil {
		p("### Memory and start-up\n\n| server | measure | figure |\n|---|---|--:|\n")
		for _, x := range rep.Idle {
			p("| %s | idle RSS, %s | %.1f MiB (anonymous %.1f MiB) |\n", x.Target, x.When, x.MiB, x.AnonMiB)
		}
		for _, x := range rep.Big {
			e := ""
			if x.Error != "" {
				e = " (error: " + x.Error + ")"
			}
			p("| %s | %s of 1 GiB: RSS max | %.1f MiB at %.0f MiB/s%s |\n", x.Target, x.Op, x.RSSMaxMiB, x.MiBPerSec, e)
		}
		if s := rep.Startup; s != nil {
			p("| nfyio | start-up to the first ready answer, %d objects stored | %.0f ms |\n", s.Objects, s.Millis)
		}
		p("\n")
	}
	if len(rep.Results) > 0 {
		p("## Targets\n\n| target | measured | met? |\n|---|---|---|\n")
		for _, t := range targets(rep, dr) {
			p("| %s | %s | %s |\n", t[0], t[1], t[2])
		}
		p("\n")
	}
	if len(rep.Notes) > 0 {
		p("## Notes from the run\n\n")
		for _, n := range rep.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	return b.String()
}

// targets evaluates the goals against the run.
func targets(rep *e2eReport, dr *diskReport) [][3]string {
	var out [][3]string
	add := func(goal, measured string, ok, known bool) {
		out = append(out, [3]string{goal, measured, metOrNot(ok, known)})
	}
	vsPeer := func(name string, conc int) {
		v, ok := ratio(rep.find("nfyio", name, conc), rep.find("versitygw", name, conc), false)
		add(fmt.Sprintf("%s, %d clients: ≥ 2× versitygw", name, conc), fmtRatio(v, ok), v >= 2, ok)
	}
	vsPeer("GET 4KiB", 8)
	vsPeer("GET 4KiB", 32)
	vsPeer("presigned GET 4KiB", 32)
	vsPeer("PUT 4KiB", 8)
	vsPeer("PUT 4KiB", 32)
	for _, c := range []int{8, 32} {
		v, ok := ratio(rep.find("nfyio", "GET 16MiB", c), rep.find("memserver", "GET 16MiB", c), true)
		measured := fmtRatio(v, ok)
		if kb, ok := ratio(rep.find("nfyio-kernelbuf", "GET 16MiB", c), rep.find("memserver", "GET 16MiB", c), true); ok {
			measured += fmt.Sprintf(" (without the local send buffer, nfyio-kernelbuf: %s", fmtRatio(kb, ok))
			if sb, ok := ratio(rep.find("nfyio", "GET 16MiB", c), rep.find("memserver-sendbuf", "GET 16MiB", c), true); ok {
				measured += fmt.Sprintf("; against memserver with it: %s", fmtRatio(sb, ok))
			}
			measured += ")"
		}
		add(fmt.Sprintf("GET 16MiB, %d clients: ≥ 80%% of memserver", c), measured, v >= 0.8, ok)
	}
	for _, c := range []int{8, 32} {
		nf, mem := rep.find("nfyio", "PUT 16MiB", c), rep.find("memserver", "PUT 16MiB", c)
		if nf == nil || mem == nil {
			add(fmt.Sprintf("PUT 16MiB, %d clients: ≥ 80%% of min(loopback, disk)", c), "", false, false)
			continue
		}
		limit, what := mem.MiBPerSec, "memserver"
		if dr.SeqWriteMiBps > 0 && dr.SeqWriteMiBps < limit {
			limit, what = dr.SeqWriteMiBps, "disk"
		}
		v := nf.MiBPerSec / limit
		measured := fmt.Sprintf("%.0f MiB/s = %.0f%% of %s's %.0f MiB/s", nf.MiBPerSec, v*100, what, limit)
		if nr := rep.find("nfyio-norecycle", "PUT 16MiB", c); nr != nil {
			measured += fmt.Sprintf(" (new files, nfyio-norecycle: %.0f MiB/s = %.0f%%)", nr.MiBPerSec, nr.MiBPerSec/limit*100)
		}
		if hc := rep.find("nfyio-hostcc", "PUT 16MiB", c); hc != nil {
			// That client's loopback limit is memserver-hostcc.
			hlimit, hwhat := limit, what
			if hm := rep.find("memserver-hostcc", "PUT 16MiB", c); hm != nil && hm.MiBPerSec < hlimit {
				hlimit, hwhat = hm.MiBPerSec, "memserver-hostcc"
			}
			measured += fmt.Sprintf(" (client on the host's %s, nfyio-hostcc: %.0f MiB/s = %.0f%% of %s)", rep.HostCongestion, hc.MiBPerSec, hc.MiBPerSec/hlimit*100, hwhat)
		}
		add(fmt.Sprintf("PUT 16MiB, %d clients: ≥ 80%% of min(loopback PUT, disk write)", c), measured, v >= 0.8, true)
	}
	if r := rep.find("nfyio", "PUT 16MiB", 32); r != nil {
		add("RSS during 32 concurrent 16 MiB PUTs < 100 MiB", fmt.Sprintf("%.1f MiB", r.RSSMaxMiB), r.RSSMaxMiB < 100, true)
	}
	for _, x := range rep.Idle {
		if x.Target == "nfyio" {
			add("idle RSS < 40 MiB ("+x.When+")", fmt.Sprintf("%.1f MiB (anonymous %.1f MiB; the rest is mapped files: the bbolt database, the binary)", x.MiB, x.AnonMiB), x.MiB < 40, true)
		}
	}
	if r := rep.find("nfyio", "LIST 1000 of 100k", 1); r != nil {
		add("1,000-key ListObjectsV2 page of a 100,000-key bucket: p50 < 20 ms (1 client)", fmt.Sprintf("%.2f ms", r.P50ms), r.P50ms < 20 && r.Errors == 0, true)
	}
	if s := rep.Startup; s != nil {
		add(fmt.Sprintf("start-up to first answer with %d objects < 300 ms", s.Objects), fmt.Sprintf("%.0f ms", s.Millis), s.Millis < 300, true)
	}
	for _, x := range rep.Big {
		add("1 GiB "+x.Op+": RSS < 100 MiB", fmt.Sprintf("%.1f MiB", x.RSSMaxMiB), x.RSSMaxMiB < 100 && x.Error == "", true)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
