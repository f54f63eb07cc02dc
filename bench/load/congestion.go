package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// defaultCongestion is the congestion control of the load generator's
// connections. A sender with BBR paces its segments with a high-resolution
// timer; over loopback that is tens of thousands of timer interrupts a
// second, each an exit to the hypervisor on a virtual machine, and many of
// them fire in the server's process, which does the sender's transmitting
// when it acknowledges. With BBR as the host's default, 8 clients' 16 MiB
// PUTs cost a client ~4.9 ms instead of ~1.7 ms against memserver and nfyio
// ~17 instead of ~12 ms. Reno never paces and any process may choose it; on a
// link that loses nothing its window growth never comes into play.
const defaultCongestion = "reno"

// setCongestion sets the TCP congestion control of a socket being dialled.
func setCongestion(rc syscall.RawConn, name string) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("TCP congestion control %q: %w", name, serr)
	}
	return nil
}

// hostCongestion is the host's default TCP congestion control, or "" when
// it cannot be read.
func hostCongestion() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
