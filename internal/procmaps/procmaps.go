// Package procmaps reads how much of a file this process holds resident
// through memory maps, from Linux's /proc/self/smaps. Tests use it to see
// what releasing mapped pages achieves.
package procmaps

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ResidentKiB returns the resident size, in KiB, of this process's
// mappings of the file at path, and whether the file is mapped at all.
func ResidentKiB(path string) (kib int64, mapped bool, err error) {
	path, err = filepath.EvalSymlinks(path)
	if err != nil {
		return 0, false, err
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, false, err
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header line
			in = len(f) >= 6 && strings.Join(f[5:], " ") == path
			mapped = mapped || in
			continue
		}
		if in && f[0] == "Rss:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("procmaps: smaps line %q: %w", line, err)
			}
			kib += n
		}
	}
	return kib, mapped, nil
}
