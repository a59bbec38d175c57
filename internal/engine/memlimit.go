package engine

import (
	"os"
	"runtime/debug"

	"github.com/tlstap/tlstap/internal/broker"
)

// What a live run holds at most, by design, besides the runtime and the
// libraries: the broker's resume window, the events waiting for standard
// output, and the capture chunks waiting for the pipeline (4,096 of at
// most 16 KiB).
const (
	chunkQueueBytes = 4096 * 16 << 10
	baseHeapBytes   = 64 << 20
)

// MemoryLimit is the soft memory limit SetMemoryLimit sets: the bounded
// queues above plus room for everything else. With GOGC=100 alone the heap
// may grow to twice what is live; once that bound is near, the limit makes
// the collector run sooner instead.
func MemoryLimit() int64 {
	return int64(broker.DefaultRetainBytes + StdoutQueueBytes + chunkQueueBytes + 2*baseHeapBytes)
}

// SetMemoryLimit applies MemoryLimit to the process, unless GOMEMLIMIT
// sets one. It is soft: a heap that must exceed it still grows, the
// collector just runs more often.
func SetMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(MemoryLimit())
}
