//go:build !linux

package fsblob

import (
	"errors"
	"io/fs"
	"os"
)

// startWriteback has no portable equivalent; the fsync at commit does all
// the work.
func startWriteback(f *os.File, off, n int64) {}

// setDirect: direct I/O is used on Linux only; elsewhere every blob goes
// through the page cache.
func setDirect(f *os.File, on bool) error {
	if on {
		return errors.ErrUnsupported
	}
	return nil
}

func isDirectRefusal(error) bool { return false }

// preallocate is a Linux optimisation; elsewhere files grow as written.
func preallocate(*os.File, int64) {}

// singleLink is not known here: no file is recycled.
func singleLink(fs.FileInfo) bool { return false }
