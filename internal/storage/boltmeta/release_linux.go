package boltmeta

import "golang.org/x/sys/unix"

// dropPages applies MADV_DONTNEED to [addr, addr+n). addr stays a uintptr
// end to end: the range is bbolt's mapping, not Go memory, and turning it
// into a slice would only hide that.
func dropPages(addr uintptr, n int64) error {
	if n <= 0 {
		return nil
	}
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(n), unix.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
