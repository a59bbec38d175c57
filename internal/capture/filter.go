package capture

import "context"

// Filter returns a Source that runs src and passes on the chunks for which
// keep returns true; keep may also change the chunk it is given. It is the
// one relay every chunk-level wrapper (token masking, self-exclusion)
// shares, so each states only what it does to a chunk.
func Filter(src Source, keep func(*Chunk) bool) Source {
	return filter{src: src, keep: keep}
}

type filter struct {
	src  Source
	keep func(*Chunk) bool
}

// Run implements Source. The inner source runs on its own goroutine,
// which ends before Run returns.
func (f filter) Run(ctx context.Context, out chan<- Chunk) error {
	in := make(chan Chunk, 1024)
	done := make(chan error, 1)
	go func() {
		defer close(in)
		done <- f.src.Run(ctx, in)
	}()
	for c := range in {
		if f.keep(&c) {
			out <- c
		}
	}
	return <-done
}
