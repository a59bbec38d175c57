package capture

import "context"

// Filter returns a Source that runs src and passes on the chunks for which
// keep returns true; keep may also change the chunk it is given. It is the
// one relay every chunk-level wrapper (token masking, self-exclusion)
// shares, so each states only what it does to a chunk.
//
// Filters of filters fuse into one, and a src that is a KeepRunner runs
// keep itself: then no relay goroutine stands between the source and its
// reader. Each relay cost a channel hand-off and often a thread wake-up
// per chunk, which under load was a tenth of tlstap's CPU.
func Filter(src Source, keep func(*Chunk) bool) Source {
	if inner, ok := src.(filter); ok {
		first := inner.keep
		return filter{src: inner.src, keep: func(c *Chunk) bool { return first(c) && keep(c) }}
	}
	return filter{src: src, keep: keep}
}

// KeepRunner is a Source that can apply a Filter's keep function itself,
// on its own goroutine, before it sends a chunk.
type KeepRunner interface {
	Source
	// RunKeep is Run, sending only the chunks for which keep (never nil)
	// returns true, after keep has seen them.
	RunKeep(ctx context.Context, out chan<- Chunk, keep func(*Chunk) bool) error
}

// DrainRunner is a KeepRunner that also tells its consumer when it has
// handed over everything it had, so the consumer can batch its own output
// (one write per batch) and still never hold back a chunk with nothing
// behind it. The live capture's batch is one drain of the kernel's ring.
type DrainRunner interface {
	KeepRunner
	// RunDrain is RunKeep, and calls drained on keep's goroutine after the
	// last chunk it had at hand, before it waits for more. Every chunk
	// keep sees is followed by a call of drained, sooner or later, with
	// no wait for more input in between.
	RunDrain(ctx context.Context, out chan<- Chunk, keep func(*Chunk) bool, drained func()) error
}

type filter struct {
	src  Source
	keep func(*Chunk) bool
}

// Run implements Source. The inner source runs on its own goroutine,
// which ends before Run returns, unless it is a KeepRunner.
func (f filter) Run(ctx context.Context, out chan<- Chunk) error {
	return f.RunKeep(ctx, out, func(*Chunk) bool { return true })
}

// RunKeep implements KeepRunner, so a consumer that handles chunks in a
// keep function (pipeline.Pipeline.RunSource) gets them on the inner
// source's own goroutine when it is a KeepRunner: for live capture, the
// ring reader's. f's own keep runs first.
func (f filter) RunKeep(ctx context.Context, out chan<- Chunk, keep func(*Chunk) bool) error {
	both := func(c *Chunk) bool { return f.keep(c) && keep(c) }
	if kr, ok := f.src.(KeepRunner); ok {
		return kr.RunKeep(ctx, out, both)
	}
	in := make(chan Chunk, 1024)
	done := make(chan error, 1)
	go func() {
		defer close(in)
		done <- f.src.Run(ctx, in)
	}()
	for c := range in {
		if both(&c) {
			out <- c
		}
	}
	return <-done
}

// RunDrain implements DrainRunner. With an inner source that cannot tell
// where its batches end, every chunk is a batch of its own.
func (f filter) RunDrain(ctx context.Context, out chan<- Chunk, keep func(*Chunk) bool, drained func()) error {
	both := func(c *Chunk) bool { return f.keep(c) && keep(c) }
	if dr, ok := f.src.(DrainRunner); ok {
		return dr.RunDrain(ctx, out, both, drained)
	}
	return f.RunKeep(ctx, out, func(c *Chunk) bool {
		ok := keep(c)
		drained()
		return ok
	})
}
