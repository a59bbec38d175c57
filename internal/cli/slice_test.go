package cli

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/sched"
)

// TestRequestSlice: --sched-slice reaches every thread of the process, 0
// asks nothing, and a value the kernel refuses is logged at debug, not
// fatal. It changes the test process's threads for good, which no other
// test minds.
func TestRequestSlice(t *testing.T) {
	slices := func() map[int]time.Duration {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		m := map[int]time.Duration{}
		for _, e := range ents {
			tid, _ := strconv.Atoi(e.Name())
			if d, err := sched.Slice(tid); err == nil {
				m[tid] = d
			}
		}
		return m
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	before := slices()
	requestSlice(log, 0)
	if after := slices(); len(before) > 0 && !mapsEqual(before, after) {
		t.Errorf("--sched-slice 0 changed the threads' slices: %v, then %v", before, after)
	}
	if logs.Len() != 0 {
		t.Errorf("--sched-slice 0 logged %q", logs.String())
	}

	const d = 400 * time.Microsecond
	requestSlice(log, d)
	if _, err := sched.Slice(0); errors.Is(err, sched.ErrUnsupported) {
		t.Skipf("no per-thread slice on this kernel: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "scheduling slice requested") {
		t.Fatalf("log %q, want the request reported", logs.String())
	}
	for tid, got := range slices() {
		if got != d {
			t.Errorf("thread %d: slice %v, want %v", tid, got, d)
		}
	}

	// Out of the kernel's range (config.Validate keeps it from the
	// command line): logged, nothing else.
	logs.Reset()
	requestSlice(log, time.Hour)
	if !strings.Contains(logs.String(), "not requested") {
		t.Errorf("log %q, want the refusal at debug", logs.String())
	}
}

func mapsEqual(a, b map[int]time.Duration) bool {
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return false
		}
	}
	return true
}
