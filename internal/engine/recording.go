package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/recording"
)

// recordingFlushEvery bounds what a crash (kill -9, the OOM killer) can cost
// a recording: at most the chunks of the last interval.
const recordingFlushEvery = 500 * time.Millisecond

// recordingFile is an open recording whose header is already on disk.
type recordingFile struct {
	f    *os.File
	w    *recording.Writer
	path string
}

// createRecording creates path and writes the header to disk at once, so
// that a bad path fails before capture starts and a crash leaves a file
// that replays. An existing file is refused unless overwrite.
func createRecording(path string, overwrite bool) (*recordingFile, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_EXCL
	if overwrite {
		flags = os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("record: %s already exists; choose another file or pass --record-overwrite", path)
	}
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	w, err := recording.NewWriter(f, "tlstap")
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	return &recordingFile{f: f, w: w, path: path}, nil
}

// OpenRecording creates the recording file of Options.Record now, rather
// than when Run starts, so that a command can report a bad path before it
// starts capturing or serving. Run uses the file opened here; if Run is
// never called, Close releases it.
func (e *Engine) OpenRecording() error {
	if e.Opts.Record == "" || e.recording != nil {
		return nil
	}
	rec, err := createRecording(e.Opts.Record, e.Opts.RecordOverwrite)
	if err != nil {
		return err
	}
	e.recording = rec
	return nil
}

// Close releases what OpenRecording opened when Run was never called.
func (e *Engine) Close() error {
	if e.recording == nil {
		return nil
	}
	err := e.recording.f.Close()
	e.recording = nil
	return err
}

// recordingTee tees a source's chunks into a recording file.
type recordingTee struct {
	src capture.Source
	*recordingFile
}

// Run implements capture.Source. It flushes the file every
// recordingFlushEvery while chunks arrive, and closes it at the end.
func (r *recordingTee) Run(ctx context.Context, out chan<- capture.Chunk) error {
	in := make(chan capture.Chunk, 1024)
	done := make(chan error, 1)
	go func() {
		defer close(in)
		done <- r.src.Run(ctx, in)
	}()
	tick := time.NewTicker(recordingFlushEvery)
	defer tick.Stop()
	var werr error
	fail := func(err error) {
		if err != nil && werr == nil {
			werr = fmt.Errorf("record %s: %w", r.path, err)
		}
	}
	dirty := false
	for in != nil {
		select {
		case c, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			if werr == nil {
				fail(r.w.Write(&c))
				dirty = true
			}
			out <- c
		case <-tick.C:
			if dirty && werr == nil {
				fail(r.w.Flush())
				dirty = false
			}
		}
	}
	srcErr := <-done
	if werr == nil {
		fail(r.w.Flush())
	}
	fail(r.f.Close())
	if srcErr != nil {
		return srcErr
	}
	return werr
}
