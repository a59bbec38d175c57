package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/recording"
)

// Options configure a replay.
type Options struct {
	// Open returns a fresh reader of the recording; it is called once per
	// pass, so Loop works on files and embedded data alike.
	Open func() (io.ReadCloser, error)
	// Name is used in errors (e.g. the file path).
	Name string
	// Speed 1 plays at the recorded pace, 2 twice as fast, 0 as fast as
	// possible.
	Speed float64
	// Loop plays the recording again and again until cancelled. Each pass
	// is shifted in time so timestamps keep increasing, and gets fresh
	// connection ids so passes are distinct connections.
	Loop bool
	// Rebase shifts timestamps so the first chunk happens when the replay
	// starts (the demo does this so clients show the current time).
	Rebase bool
	// Log receives the warning about a recording whose tail was cut
	// (nil: discarded).
	Log *slog.Logger
}

// Source plays a recording.
type Source struct {
	opts Options
}

// New returns a replay source.
func New(opts Options) (*Source, error) {
	if opts.Speed < 0 {
		return nil, fmt.Errorf("replay: speed must be >= 0, got %v", opts.Speed)
	}
	if opts.Open == nil {
		return nil, errors.New("replay: no recording to open")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Source{opts: opts}, nil
}

// Run implements capture.Source.
func (s *Source) Run(ctx context.Context, out chan<- capture.Chunk) error {
	var shift int64
	started := time.Now()
	for pass := uint64(0); ; pass++ {
		last, first, err := s.pass(ctx, out, pass, &shift, started)
		if err != nil {
			return err
		}
		if !s.opts.Loop || ctx.Err() != nil {
			return nil
		}
		// The next pass starts just after this one ended.
		shift += last - first + int64(time.Millisecond)
	}
}

// pass plays the recording once and returns the first and last original
// timestamps.
func (s *Source) pass(ctx context.Context, out chan<- capture.Chunk, pass uint64, shift *int64, started time.Time) (last, first int64, err error) {
	rc, err := s.opts.Open()
	if err != nil {
		return 0, 0, fmt.Errorf("replay %s: %w", s.opts.Name, err)
	}
	defer rc.Close()
	r, err := recording.NewReader(rc)
	if err != nil {
		return 0, 0, fmt.Errorf("replay %s: %w", s.opts.Name, err)
	}
	passStart := time.Now()
	for i := 0; ; i++ {
		c, err := r.Next()
		if err == io.EOF {
			return last, first, nil
		}
		if ce := (*recording.CorruptError)(nil); errors.As(err, &ce) && ce.Torn {
			// What a killed recorder leaves: everything before the cut
			// is good and has been played.
			if pass == 0 {
				s.opts.Log.Warn("recording's tail was cut (its writer was stopped mid-record); every complete record was replayed", "file", s.opts.Name, "offset", ce.Offset, "records", i)
			}
			return last, first, nil
		}
		if err != nil {
			return last, first, fmt.Errorf("replay %s: %w", s.opts.Name, err)
		}
		if i == 0 {
			first = c.Time
			if s.opts.Rebase && pass == 0 {
				*shift = started.UnixNano() - first
			}
		}
		last = max(last, c.Time)
		if s.opts.Speed > 0 {
			due := passStart.Add(time.Duration(float64(c.Time-first) / s.opts.Speed))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return last, first, nil
				}
			}
		}
		c.Time += *shift
		// Keep connections of different passes apart: the high bits of
		// the opaque connection id carry the pass number.
		c.Conn ^= pass << 48
		select {
		case out <- c:
		case <-ctx.Done():
			return last, first, nil
		}
	}
}
