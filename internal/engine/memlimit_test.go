package engine

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestSetMemoryLimit: a live run's soft limit covers the bounded queues,
// and a GOMEMLIMIT the user set wins.
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	tests := []struct {
		name, env string
		want      int64
	}{
		{"default", "", MemoryLimit()},
		{"GOMEMLIMIT set", "1GiB", math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tt.env)
			debug.SetMemoryLimit(math.MaxInt64)
			SetMemoryLimit()
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("memory limit %d, want %d", got, tt.want)
			}
		})
	}
	if floor := int64(64<<20 + StdoutQueueBytes + chunkQueueBytes); MemoryLimit() <= floor {
		t.Errorf("limit %d does not exceed the bounded queues (%d)", MemoryLimit(), floor)
	}
}
