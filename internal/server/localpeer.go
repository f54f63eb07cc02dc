package server

import (
	"net"
)

// DefaultLocalSendBuffer is the send buffer of connections from clients on
// the same host (Config.LocalSendBuffer).
//
// The kernel sizes a connection's send buffer from what it has seen in
// flight, up to 4 MiB, which a path with a long round trip needs. Over
// loopback the round trip is tens of microseconds and a few hundred KiB
// keep the reader busy; on the benchmark machine (a 2-core VM), letting
// the buffer grow cost both sides of a local 16 MiB GET sent with sendfile
// about half their CPU: 4.0-4.4 ms of the server's and 3.0-3.3 ms of the
// client's per GET, against 2.0-2.5 ms each with 256 KiB (the kernel
// doubles it to 512 KiB), and throughput doubled at 8 and 32 clients. 512
// KiB (1 MiB doubled) already lost the gain. Clients on other hosts keep
// the kernel's autotuning. The kernel caps the size at net.core.wmem_max,
// 208 KiB on many distributions: between the 128 and 256 KiB that both
// kept the gain.
const DefaultLocalSendBuffer = 256 << 10

// localTuning sets the send buffer of connections accepted from the same
// host; sendBuffer <= 0 leaves every connection to the kernel.
type localTuning struct {
	net.Listener
	sendBuffer int
}

func (l localTuning) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || l.sendBuffer <= 0 {
		return c, err
	}
	if tc, ok := c.(*net.TCPConn); ok && sameHost(tc.LocalAddr(), tc.RemoteAddr()) {
		// Best effort: a size the kernel refuses leaves its autotuning.
		_ = tc.SetWriteBuffer(l.sendBuffer)
	}
	return c, nil
}

// sameHost reports whether a connection's peer is on this host: a
// loopback address, or the very address the connection reached us at
// (a client using the host's own address also goes over loopback).
func sameHost(local, remote net.Addr) bool {
	l, ok := local.(*net.TCPAddr)
	r, ok2 := remote.(*net.TCPAddr)
	if !ok || !ok2 {
		return false
	}
	return r.IP.IsLoopback() || r.IP.Equal(l.IP)
}
