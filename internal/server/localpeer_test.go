package server

import (
	"net"
	"syscall"
	"testing"
)

// acceptedSendBuffer accepts one connection from 127.0.0.1 on l and
// returns the kernel's SO_SNDBUF of the accepted socket.
func acceptedSendBuffer(t *testing.T, l net.Listener) int {
	t.Helper()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return size
}

// TestLocalSendBuffer checks on real sockets that a connection from this
// host gets the configured send buffer (Linux reports twice what was set,
// its bookkeeping included) and that a non-positive size leaves the
// kernel's default.
func TestLocalSendBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const want = 96 << 10
	if got := acceptedSendBuffer(t, localTuning{Listener: ln, sendBuffer: want}); got != 2*want {
		t.Errorf("SO_SNDBUF of a local peer's connection = %d, want %d", got, 2*want)
	}
	if got := acceptedSendBuffer(t, localTuning{Listener: ln, sendBuffer: -1}); got == 2*want {
		t.Errorf("SO_SNDBUF with the tuning off = %d, the tuned size", got)
	}
}

func TestSameHost(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 9000} }
	for _, c := range []struct {
		local, remote string
		want          bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", true},
		{"::1", "::1", true},
		{"10.0.0.5", "10.0.0.5", true}, // the host's own address
		{"10.0.0.5", "10.0.0.6", false},
		{"10.0.0.5", "203.0.113.9", false},
		{"::ffff:10.0.0.5", "10.0.0.5", true},
	} {
		if got := sameHost(tcp(c.local), tcp(c.remote)); got != c.want {
			t.Errorf("sameHost(%s, %s) = %v, want %v", c.local, c.remote, got, c.want)
		}
	}
	if sameHost(&net.UnixAddr{Name: "a"}, &net.UnixAddr{Name: "a"}) {
		t.Error("sameHost of unix addresses = true, want false")
	}
}
