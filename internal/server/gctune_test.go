package server

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 400}, {1 << 20, 400}, {12 << 20, 400}, {16 << 20, 300},
		{24 << 20, 200}, {48 << 20, 100}, {1 << 30, 100},
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// TestTuneGC: after a collection, a process with a small live heap runs
// with more room than the default pace.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	TuneGC()
	want := gcPercentFor(liveHeap())
	for start := time.Now(); ; {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // finalizers run in their own goroutine
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		if p > 100 {
			if p != want && p != gcPercentFor(liveHeap()) {
				t.Errorf("GOGC %d, want %d for a live heap of %d bytes", p, want, liveHeap())
			}
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("GOGC still %d after collections", p)
		}
	}
}
