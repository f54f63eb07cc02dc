//go:build !linux

package fsblob

import "os"

// startWriteback has no portable equivalent; the fsync at commit does all
// the work.
func startWriteback(f *os.File, off, n int64) {}
