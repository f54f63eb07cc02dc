// Package testweed starts throwaway SeaweedFS clusters (one master, one or
// more volume servers) for tests, from the weed binary that
// scripts/weed-build.sh builds.
//
// Everything listens on 127.0.0.1 only, on ports picked free at start (HTTP
// and gRPC explicitly, so nothing depends on SeaweedFS's "port+10000"
// convention), and the master's usage reporting is off. The processes get
// SIGKILL when the test binary dies, however it dies.
package testweed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"nfyio.dev/storage/internal/childproc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a cluster may take to accept an assign.
const startTimeout = 60 * time.Second

// Binary returns the weed binary tests use: $NFYIO_WEED_BIN, else
// $HOME/.cache/nfyio/weed, else weed on PATH.
func Binary() (string, error) {
	if p := os.Getenv("NFYIO_WEED_BIN"); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("NFYIO_WEED_BIN: %w", err)
		}
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "nfyio", "weed")
		if executable(p) == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("weed")
	if err != nil {
		return "", errors.New("no weed binary in $NFYIO_WEED_BIN, ~/.cache/nfyio/weed or PATH")
	}
	return p, nil
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// binaryOrSkip returns the binary, or skips the test (fails it when
// NFYIO_REQUIRE_WEED=1, as CI sets, or when NFYIO_WEED_BIN names a file that
// is not there).
func binaryOrSkip(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err == nil {
		return bin
	}
	if os.Getenv("NFYIO_REQUIRE_WEED") == "1" || os.Getenv("NFYIO_WEED_BIN") != "" {
		t.Fatalf("SeaweedFS is required: %v", err)
	}
	t.Skipf("skipping: SeaweedFS not available (%v); build it with scripts/weed-build.sh", err)
	return ""
}

// Options shape a cluster; zero values take the defaults.
type Options struct {
	// Volumes is the number of volume servers (default 1).
	Volumes int
	// MaxVolumes is each volume server's -max (default 50). A small value
	// makes "no free volumes" reachable: every collection grows its own.
	MaxVolumes int
	// VolumeSizeLimitMB is the master's -volumeSizeLimitMB (default 1024).
	// Volumes are sparse files, so this costs no disk until written.
	VolumeSizeLimitMB int
}

// Cluster is a running master with its volume servers.
type Cluster struct {
	// MasterURL is the master's base URL, "http://127.0.0.1:port".
	MasterURL string

	bin        string
	dir        string
	masterAddr string // "127.0.0.1:port.grpcport", as volume servers want it
	opts       Options
	master     *proc
	volumes    []*volumeServer

	stopOnce sync.Once
}

type volumeServer struct {
	port, grpc int
	dir        string
	p          *proc
}

// StartCluster starts a cluster of its own for t, stopped when t ends.
func StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := binaryOrSkip(t)
	c, err := startCluster(bin, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Start returns the master URL of a cluster shared by the whole test
// binary, started on first use. Tests that need isolation use their own
// Options.Collection or their own store journal; tests that break servers
// use StartCluster. The cluster lives until StopShared or the end of the
// binary; its directory is removed by StopShared, or by the next run.
func Start(t testing.TB) string {
	t.Helper()
	bin := binaryOrSkip(t)
	shared.once.Do(func() {
		removeStaleDirs()
		dir, err := os.MkdirTemp("", sharedPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			shared.err = err
			return
		}
		shared.c, shared.err = startCluster(bin, dir, Options{})
	})
	if shared.err != nil {
		t.Fatalf("shared SeaweedFS cluster: %v", shared.err)
	}
	return shared.c.MasterURL
}

// StopShared stops the shared cluster, if it was started, and removes its
// directory. Call it from TestMain after m.Run.
func StopShared() {
	if c := shared.c; c != nil {
		c.Stop()
		_ = os.RemoveAll(c.dir)
	}
}

const sharedPrefix = "nfyio-testweed-"

// removeStaleDirs removes the directories of shared clusters whose test
// binary is gone (ended without StopShared).
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), sharedPrefix)
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}

func startCluster(bin, dir string, opts Options) (*Cluster, error) {
	if opts.Volumes <= 0 {
		opts.Volumes = 1
	}
	if opts.MaxVolumes <= 0 {
		opts.MaxVolumes = 50
	}
	if opts.VolumeSizeLimitMB <= 0 {
		opts.VolumeSizeLimitMB = 1024
	}
	var lastErr error
	// A port picked free can be taken before weed binds it: try again.
	for attempt := 0; attempt < 3; attempt++ {
		c, err := tryStart(bin, dir, opts, attempt)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func tryStart(bin, dir string, opts Options, attempt int) (*Cluster, error) {
	ports, err := freePorts(2 + 2*opts.Volumes)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "try"+strconv.Itoa(attempt))
	c := &Cluster{
		MasterURL:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		bin:        bin,
		dir:        dir,
		masterAddr: fmt.Sprintf("127.0.0.1:%d.%d", ports[0], ports[1]),
		opts:       opts,
	}
	mdir := filepath.Join(base, "master")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(mdir, "master.toml"), []byte(masterTOML), 0o644); err != nil {
		return nil, err
	}
	c.master, err = startProc(bin, mdir, "master.log",
		"master",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-port="+strconv.Itoa(ports[0]), "-port.grpc="+strconv.Itoa(ports[1]),
		"-mdir="+mdir,
		"-peers=none", // a single master: no raft quorum to wait for
		"-telemetry=false",
		"-volumeSizeLimitMB="+strconv.Itoa(opts.VolumeSizeLimitMB),
	)
	if err != nil {
		return nil, err
	}
	for i := range opts.Volumes {
		v := &volumeServer{port: ports[2+2*i], grpc: ports[3+2*i], dir: filepath.Join(base, "volume"+strconv.Itoa(i))}
		if err := os.MkdirAll(v.dir, 0o755); err != nil {
			c.Stop()
			return nil, err
		}
		c.volumes = append(c.volumes, v)
		if v.p, err = c.startVolumeProc(v); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.waitReady(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// masterTOML is read by the master from its working directory.
//
// A master that mints a new topology holds back file ids for a few
// heartbeats, in case volume servers of an older cluster still report in;
// a test cluster has none, and the hold would cost ~10 s per start. Two
// volumes per grown collection (instead of 7) keep small -max settings
// meaningful and growth quick.
const masterTOML = `[master.volume_growth]
allocation_deferral = "0s"
copy_1 = 2
`

func (c *Cluster) startVolumeProc(v *volumeServer) (*proc, error) {
	return startProc(c.bin, v.dir, "volume.log",
		"volume",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-port="+strconv.Itoa(v.port), "-port.grpc="+strconv.Itoa(v.grpc),
		"-dir="+v.dir,
		"-master="+c.masterAddr,
		"-max="+strconv.Itoa(c.opts.MaxVolumes),
		"-preStopSeconds=0", // stop at once when told to
	)
}

// waitReady waits until the master hands out a file id, which needs a
// volume server registered and a volume grown.
func (c *Cluster) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		if err := c.exited(); err != nil {
			return err
		}
		var ans struct {
			Fid string `json:"fid"`
		}
		if getJSON(c.MasterURL+"/dir/assign", &ans) == nil && ans.Fid != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SeaweedFS cluster not ready after %v\n%s", startTimeout, c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exited reports a process of the cluster that ended early.
func (c *Cluster) exited() error {
	all := []*proc{c.master}
	for _, v := range c.volumes {
		all = append(all, v.p)
	}
	for _, p := range all {
		select {
		case <-p.done:
			return fmt.Errorf("weed %s exited: %v\n%s", p.name, p.err, tail(p.log))
		default:
		}
	}
	return nil
}

func (c *Cluster) logs() string {
	var b strings.Builder
	b.WriteString(tail(c.master.log))
	for _, v := range c.volumes {
		if v.p != nil {
			b.WriteString(tail(v.p.log))
		}
	}
	return b.String()
}

// VolumeURL returns volume server i's base URL.
func (c *Cluster) VolumeURL(i int) string {
	return "http://127.0.0.1:" + strconv.Itoa(c.volumes[i].port)
}

// KillVolume kills volume server i with SIGKILL, as a crash would, and
// waits for it to be gone.
func (c *Cluster) KillVolume(t testing.TB, i int) {
	t.Helper()
	v := c.volumes[i]
	_ = v.p.cmd.Process.Kill()
	<-v.p.done
}

// RestartVolume starts volume server i again, on its directory and ports,
// and waits until the master lists it with its volumes.
func (c *Cluster) RestartVolume(t testing.TB, i int) {
	t.Helper()
	v := c.volumes[i]
	select {
	case <-v.p.done:
	default:
		t.Fatalf("volume server %d is still running", i)
	}
	p, err := c.startVolumeProc(v)
	if err != nil {
		t.Fatal(err)
	}
	v.p = p
	want := "127.0.0.1:" + strconv.Itoa(v.port)
	deadline := time.Now().Add(startTimeout)
	for {
		if err := c.exited(); err != nil {
			t.Fatal(err)
		}
		if c.masterLists(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume server %d not back after %v\n%s", i, startTimeout, tail(p.log))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// masterLists reports whether the master's topology has the volume server
// at addr with at least one volume.
func (c *Cluster) masterLists(addr string) bool {
	var st struct {
		Topology struct {
			DataCenters []struct {
				Racks []struct {
					DataNodes []struct {
						URL     string `json:"Url"`
						Volumes int    `json:"Volumes"`
					} `json:"DataNodes"`
				} `json:"Racks"`
			} `json:"DataCenters"`
		} `json:"Topology"`
	}
	if getJSON(c.MasterURL+"/dir/status", &st) != nil {
		return false
	}
	for _, dc := range st.Topology.DataCenters {
		for _, r := range dc.Racks {
			for _, n := range r.DataNodes {
				if n.URL == addr && n.Volumes > 0 {
					return true
				}
			}
		}
	}
	return false
}

// Stop stops every process of the cluster (volume servers first).
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		for _, v := range c.volumes {
			if v.p != nil {
				v.p.stop()
			}
		}
		if c.master != nil {
			c.master.stop()
		}
	})
}

// proc is a running weed process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(bin, dir, logName string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, logName)
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir // weed reads security.toml from ".": let it find none
	cmd.Stdout = lf
	cmd.Stderr = lf
	if err := childproc.Start(cmd); err != nil {
		return nil, fmt.Errorf("start weed %s: %w", args[0], err)
	}
	p := &proc{name: args[0], cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop asks the process to end, then kills it if it takes too long.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freePorts returns n distinct ports free on 127.0.0.1 right now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func getJSON(u string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// tail returns the end of a log file, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "--- " + path + "\n" + string(b)
}
