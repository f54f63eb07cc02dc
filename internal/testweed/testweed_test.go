package testweed

import (
	"bufio"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// TestClusterListensOnLoopbackOnly starts a cluster and checks every socket
// its processes listen on: 127.0.0.1 only, and the ports the cluster chose.
func TestClusterListensOnLoopbackOnly(t *testing.T) {
	c := StartCluster(t, Options{Volumes: 2})
	want := map[int]bool{}
	for _, u := range []string{c.MasterURL, c.VolumeURL(0), c.VolumeURL(1)} {
		port, _ := strconv.Atoi(u[strings.LastIndex(u, ":")+1:])
		want[port] = true
	}
	pids := []int{c.master.cmd.Process.Pid}
	for _, v := range c.volumes {
		pids = append(pids, v.p.cmd.Process.Pid)
		want[v.grpc] = true
	}
	// gRPC port of the master, from "127.0.0.1:port.grpc".
	g, _ := strconv.Atoi(c.masterAddr[strings.LastIndex(c.masterAddr, ".")+1:])
	want[g] = true

	// Volume servers open their gRPC listener a moment after they answer
	// HTTP: look again until every port is open, or give up.
	var seen map[int]bool
	for deadline := time.Now().Add(10 * time.Second); ; {
		seen = map[int]bool{}
		for _, pid := range pids {
			for _, s := range listeningSockets(t, pid) {
				if s.addr != "127.0.0.1" {
					t.Errorf("pid %d listens on %s:%d (%s); want 127.0.0.1 only", pid, s.addr, s.port, s.proto)
				}
				if !want[s.port] {
					t.Errorf("pid %d listens on unexpected port %d (%s)", pid, s.port, s.proto)
				}
				seen[s.port] = true
			}
		}
		if len(seen) >= len(want) || time.Now().After(deadline) || t.Failed() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("nothing listens on port %d", p)
		}
	}

	// And the cluster works: the master hands out file ids on both servers.
	resp, err := http.Get(c.MasterURL + "/dir/assign")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("assign: HTTP %d", resp.StatusCode)
	}
}

// TestSharedClusterIsShared checks that Start returns one cluster per test
// binary, and that it answers.
func TestSharedClusterIsShared(t *testing.T) {
	a := Start(t)
	b := Start(t)
	if a != b {
		t.Fatalf("Start returned %q then %q", a, b)
	}
	var st struct{ Leader string }
	if err := getJSON(a+"/cluster/status", &st); err != nil || st.Leader == "" {
		t.Fatalf("cluster status: %+v, %v", st, err)
	}
}

// TestKillAndRestartVolume checks the crash helpers the blob tests rely on.
func TestKillAndRestartVolume(t *testing.T) {
	c := StartCluster(t, Options{})
	c.KillVolume(t, 0)
	if _, err := http.Get(c.VolumeURL(0) + "/status"); err == nil {
		t.Fatal("volume server still answers after KillVolume")
	}
	c.RestartVolume(t, 0)
	resp, err := http.Get(c.VolumeURL(0) + "/status")
	if err != nil {
		t.Fatalf("volume server after RestartVolume: %v", err)
	}
	resp.Body.Close()
}

type socket struct {
	proto string
	addr  string
	port  int
}

// listeningSockets reads the process's socket inodes from /proc/pid/fd and
// finds them in /proc/pid/net/{tcp,tcp6,udp,udp6}: TCP sockets in LISTEN
// state and every bound UDP socket.
func listeningSockets(t *testing.T, pid int) []socket {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatalf("reading fds of %d: %v", pid, err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var out []socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", proto))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			if strings.HasPrefix(proto, "tcp") && fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexAddr, hexPort, _ := strings.Cut(fields[1], ":")
			port, _ := strconv.ParseUint(hexPort, 16, 16)
			out = append(out, socket{proto: proto, addr: procAddr(hexAddr), port: int(port)})
		}
		f.Close()
	}
	return out
}

// procAddr decodes an address of /proc/net/*: 32-bit words in host (little
// endian) order. A v4-mapped v6 address is reported as plain v4.
func procAddr(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil || len(b)%4 != 0 {
		return h
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	if len(b) == 16 && string(b[:12]) == "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff" {
		b = b[12:]
	}
	if len(b) == 4 {
		return strconv.Itoa(int(b[0])) + "." + strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[2])) + "." + strconv.Itoa(int(b[3]))
	}
	return hex.EncodeToString(b)
}
