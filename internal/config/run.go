package config

import (
	"log/slog"
	"unicode/utf8"
)

// Bounds of the run settings.
const (
	// MaxNode is the longest node name, in bytes.
	MaxNode = 255
	// MinRingBytes is the smallest BPF ring buffer (one page).
	MinRingBytes = 4096
)

// run checks the run settings. Their paths are "run.<field>"; a reason
// may name another field by its path ("and run.exit ..."), which the
// command line turns into a flag name.
func (ck *checker) run(r Run) {
	if !utf8.ValidString(r.Node) || len(r.Node) > MaxNode {
		ck.add("run.node", "must be valid UTF-8 of at most %d bytes", MaxNode)
	}
	if r.LogLevel != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(r.LogLevel)); err != nil {
			ck.add("run.log_level", "%q: want debug, info, warn or error", r.LogLevel)
		}
	}
	if n := r.RingBytes; n != 0 && (n < MinRingBytes || n&(n-1) != 0) {
		ck.add("run.ring_bytes", "must be a power of two >= %d (e.g. 4MiB, 64MiB), got %d bytes", MinRingBytes, n)
	}
	if r.Speed < 0 {
		ck.add("run.speed", "must be >= 0, got %v", r.Speed)
	}
	if r.Loop && r.Exit {
		ck.add("run.loop", "and run.exit contradict each other")
	}
	if r.PCAPNGRotateBytes < 0 {
		ck.add("run.pcapng_rotate_bytes", "must be >= 0, got %d", r.PCAPNGRotateBytes)
	}
	ck.server(r.Server)
}

// Level returns the run's log level; an invalid one (Validate reports
// it) is info.
func (r Run) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(r.LogLevel))
	return l
}
