package capture_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
)

// fixed sends one chunk per pid, then ends.
type fixed struct{ pids []uint32 }

func (f fixed) Run(ctx context.Context, out chan<- capture.Chunk) error {
	for _, p := range f.pids {
		out <- capture.Chunk{PID: p}
	}
	return nil
}

// inline is a fixed source that applies keep itself and records that it did.
type inline struct {
	fixed
	ran *bool
}

func (s inline) RunKeep(ctx context.Context, out chan<- capture.Chunk, keep func(*capture.Chunk) bool) error {
	*s.ran = true
	for _, p := range s.pids {
		if c := (capture.Chunk{PID: p}); keep(&c) {
			out <- c
		}
	}
	return nil
}

// Two filters in a row apply in order (the inner one sees each chunk
// first and may change it), whether they fuse into a relay or run inside
// a KeepRunner source.
func TestFilterChain(t *testing.T) {
	var ran bool
	for _, tc := range []struct {
		name   string
		src    capture.Source
		inline bool
	}{
		{"relay", fixed{[]uint32{1, 2, 3, 4, 5}}, false},
		{"inline", inline{fixed{[]uint32{1, 2, 3, 4, 5}}, &ran}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran = false
			// Inner: drop pid 2, double the others. Outer: drop what
			// the inner filter made 8 (pid 4), so order matters.
			src := capture.Filter(tc.src, func(c *capture.Chunk) bool {
				c.PID *= 2
				return c.PID != 4
			})
			src = capture.Filter(src, func(c *capture.Chunk) bool { return c.PID != 8 })
			out := make(chan capture.Chunk, 16)
			if err := src.Run(context.Background(), out); err != nil {
				t.Fatal(err)
			}
			close(out)
			var got []uint32
			for c := range out {
				got = append(got, c.PID)
			}
			if want := []uint32{2, 6, 10}; !slices.Equal(got, want) {
				t.Errorf("got pids %v, want %v", got, want)
			}
			if ran != tc.inline {
				t.Errorf("RunKeep used: %v, want %v", ran, tc.inline)
			}
		})
	}
}
