package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
)

// ChunkWriter receives every chunk before the pipeline does: the bytes
// as they crossed the TLS library, in order per connection and direction,
// from a live capture or a recording alike. The pcapng writer is one.
type ChunkWriter interface {
	Write(*capture.Chunk) error
	Flush() error
	Close() error
}

// tapFlushEvery bounds how stale a tap's file may be while capture goes
// on, so it can be read while it is written.
const tapFlushEvery = time.Second

// tap tees a source's chunks into a ChunkWriter. A write error stops the
// tap, not the capture: it is logged at once and returned when the source
// ends.
type tap struct {
	src capture.Source
	w   ChunkWriter
	log *slog.Logger
}

// Run implements capture.Source.
func (t *tap) Run(ctx context.Context, out chan<- capture.Chunk) error {
	in := make(chan capture.Chunk, 1024)
	done := make(chan error, 1)
	go func() {
		defer close(in)
		done <- t.src.Run(ctx, in)
	}()
	flush := time.NewTicker(tapFlushEvery)
	defer flush.Stop()
	var werr error
	fail := func(err error) {
		if err != nil && werr == nil {
			werr = err
			t.log.Error("export stopped; capture goes on", "err", err)
		}
	}
loop:
	for {
		select {
		case c, ok := <-in:
			if !ok {
				break loop
			}
			if werr == nil {
				fail(t.w.Write(&c))
			}
			out <- c
		case <-flush.C:
			if werr == nil {
				fail(t.w.Flush())
			}
		}
	}
	srcErr := <-done
	fail(t.w.Close())
	if srcErr != nil {
		return srcErr
	}
	return werr
}
