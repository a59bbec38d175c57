package engine

import (
	"context"
	"fmt"
	"os"

	"github.com/tlstap/tlstap/capture"
	"github.com/tlstap/tlstap/recording"
)

// recorder tees a source's chunks into a recording file.
type recorder struct {
	src  capture.Source
	f    *os.File
	w    *recording.Writer
	path string
}

func newRecorder(src capture.Source, path string) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	w, err := recording.NewWriter(f, "tlstap")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	return &recorder{src: src, f: f, w: w, path: path}, nil
}

// Run implements capture.Source.
func (r *recorder) Run(ctx context.Context, out chan<- capture.Chunk) error {
	in := make(chan capture.Chunk, 1024)
	done := make(chan error, 1)
	go func() {
		defer close(in)
		done <- r.src.Run(ctx, in)
	}()
	var werr error
	for c := range in {
		if werr == nil {
			if werr = r.w.Write(&c); werr != nil {
				werr = fmt.Errorf("record %s: %w", r.path, werr)
			}
		}
		out <- c
	}
	srcErr := <-done
	if err := r.w.Flush(); err != nil && werr == nil {
		werr = fmt.Errorf("record %s: %w", r.path, err)
	}
	if err := r.f.Close(); err != nil && werr == nil {
		werr = fmt.Errorf("record %s: %w", r.path, err)
	}
	if srcErr != nil {
		return srcErr
	}
	return werr
}
