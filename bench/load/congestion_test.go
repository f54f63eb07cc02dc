package main

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The load generator's connections use the congestion control asked for,
// and a name the kernel does not know fails the dial rather than falling
// back to the host's default unseen.
func TestCongestion(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dial := func(name string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error { return setCongestion(rc, name) }}
		return d.DialContext(context.Background(), "tcp", ln.Addr().String())
	}
	c, err := dial(defaultCongestion)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got string
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if got = strings.TrimRight(got, "\x00"); got != defaultCongestion {
		t.Fatalf("congestion control = %q, want %q", got, defaultCongestion)
	}
	if c, err := dial("no-such-algorithm"); err == nil {
		c.Close()
		t.Fatal("dial with an unknown congestion control succeeded")
	} else if !strings.Contains(err.Error(), "no-such-algorithm") {
		t.Fatalf("error does not name the algorithm: %v", err)
	}
	if hostCongestion() == "" {
		t.Error("host's default congestion control unreadable")
	}
}
