//go:build !linux

package boltmeta

// dropPages does nothing outside Linux: MADV_DONTNEED's "drop now, refault
// from the file" meaning is Linux's (BSD and macOS treat it as a hint).
func dropPages(addr uintptr, n int64) error { return nil }
