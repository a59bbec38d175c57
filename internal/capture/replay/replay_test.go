package replay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/recording"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const base = int64(1_700_000_000_000_000_000)

func recordingOf(t *testing.T, chunks ...capture.Chunk) func() (io.ReadCloser, error) {
	t.Helper()
	var buf bytes.Buffer
	w, err := recording.NewWriter(&buf, "test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range chunks {
		if err := w.Write(&chunks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func threeChunks() []capture.Chunk {
	return []capture.Chunk{
		{Time: base, PID: 1, Conn: 7, FD: 3, Data: []byte("a")},
		{Time: base + 10e6, PID: 1, Conn: 7, FD: 3, Data: []byte("b")},
		{Time: base + 30e6, PID: 1, Conn: 7, FD: 3, Kind: capture.Close},
	}
}

// play runs src until it ends or n chunks arrived, then cancels.
func play(t *testing.T, src *replay.Source, n int) ([]capture.Chunk, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan capture.Chunk)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	var got []capture.Chunk
	for {
		select {
		case c := <-out:
			got = append(got, c)
			if len(got) == n {
				cancel()
				return got, <-done
			}
		case err := <-done:
			return got, err
		}
	}
}

func TestPlayOnce(t *testing.T) {
	src, err := replay.New(replay.Options{Open: recordingOf(t, threeChunks()...), Name: "x", Speed: 0})
	if err != nil {
		t.Fatal(err)
	}
	got, err := play(t, src, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := threeChunks()
	if len(got) != len(want) {
		t.Fatalf("got %d chunks, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Time != want[i].Time || got[i].Conn != want[i].Conn || got[i].Kind != want[i].Kind || string(got[i].Data) != string(want[i].Data) {
			t.Errorf("chunk %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestLoopShiftsTimeAndConnections(t *testing.T) {
	src, err := replay.New(replay.Options{Open: recordingOf(t, threeChunks()...), Speed: 0, Loop: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := play(t, src, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Time <= got[i-1].Time {
			t.Errorf("chunk %d time %d does not follow %d", i, got[i].Time, got[i-1].Time)
		}
	}
	conns := map[uint64]bool{}
	for _, c := range got {
		conns[c.Conn] = true
	}
	if len(conns) != 3 {
		t.Errorf("three passes used connection ids %v, want three distinct", conns)
	}
	// Pass 2 starts 1 ms after pass 1 ended.
	if d := got[3].Time - got[2].Time; d != 1e6 {
		t.Errorf("gap between passes %d ns, want 1 ms", d)
	}
}

func TestRebase(t *testing.T) {
	before := time.Now().UnixNano()
	src, err := replay.New(replay.Options{Open: recordingOf(t, threeChunks()...), Speed: 0, Rebase: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := play(t, src, -1)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixNano()
	if got[0].Time < before || got[0].Time > after {
		t.Errorf("rebased first chunk at %d, want within the replay's start [%d, %d]", got[0].Time, before, after)
	}
	if d := got[2].Time - got[0].Time; d != 30e6 {
		t.Errorf("rebase changed the spacing: %d ns, want 30 ms", d)
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	// At the recorded pace the second chunk is an hour away.
	chunks := []capture.Chunk{{Time: base, FD: -1, Data: []byte("a")}, {Time: base + int64(time.Hour), FD: -1, Data: []byte("b")}}
	src, err := replay.New(replay.Options{Open: recordingOf(t, chunks...), Speed: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := play(t, src, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d chunks, err %v; want the first chunk and a clean stop", len(got), err)
	}
}

func TestErrors(t *testing.T) {
	good := recordingOf(t, threeChunks()...)
	rc, _ := good()
	data, _ := io.ReadAll(rc)
	tests := []struct {
		name string
		open func() (io.ReadCloser, error)
		want string
		is   func(error) bool
	}{
		{
			name: "open fails", want: "replay rec.bin: ",
			open: func() (io.ReadCloser, error) { return nil, os.ErrNotExist },
			is:   func(err error) bool { return errors.Is(err, os.ErrNotExist) },
		},
		{
			name: "corrupt", want: "byte offset",
			open: func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(append(slices.Clone(data), 3, 0xff, 0xff, 0xff))), nil
			},
			is: func(err error) bool {
				var ce *recording.CorruptError
				return errors.As(err, &ce)
			},
		},
		{
			name: "not a recording", want: "bad magic",
			open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("hello world")), nil },
			is: func(err error) bool {
				var ce *recording.CorruptError
				return errors.As(err, &ce) && ce.Offset == 0
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := replay.New(replay.Options{Open: tt.open, Name: "rec.bin"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = play(t, src, -1)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !tt.is(err) {
				t.Errorf("error %v, want one mentioning %q of the right kind", err, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	open := recordingOf(t)
	if _, err := replay.New(replay.Options{Open: open, Speed: -1}); err == nil {
		t.Error("negative speed accepted")
	}
	if _, err := replay.New(replay.Options{}); err == nil {
		t.Error("missing Open accepted")
	}
}
