package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/recording"
)

// Run owns every goroutine it starts; none may survive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fileSource(t *testing.T, path string) capture.Source {
	t.Helper()
	src, err := replay.New(replay.Options{Open: func() (io.ReadCloser, error) { return os.Open(path) }, Name: path})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func readChunks(t *testing.T, path string) []capture.Chunk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := recording.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []capture.Chunk
	for {
		c, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func TestRecordTeesChunks(t *testing.T) {
	in := filepath.Join("testdata", "http2.rec")
	out := filepath.Join(t.TempDir(), "again.rec")
	cfg := config.Default()
	cfg.Output.Format = "none"
	e := engine.New(engine.Options{Config: cfg, Exit: true, VirtualClock: true, Record: out, Stdout: io.Discard, Stderr: io.Discard})
	if err := e.Run(context.Background(), fileSource(t, in)); err != nil {
		t.Fatal(err)
	}
	if got, want := readChunks(t, out), readChunks(t, in); !reflect.DeepEqual(got, want) {
		t.Errorf("recorded %d chunks that differ from the %d played", len(got), len(want))
	}
}

func TestRecordToBadPath(t *testing.T) {
	e := engine.New(engine.Options{Config: config.Default(), Exit: true, Record: filepath.Join(t.TempDir(), "no", "such", "dir.rec"), Stdout: io.Discard, Stderr: io.Discard})
	err := e.Run(context.Background(), fileSource(t, filepath.Join("testdata", "raw.rec")))
	if err == nil || !strings.Contains(err.Error(), "record") {
		t.Errorf("Run: %v, want a record error", err)
	}
}

func TestServiceLifecycle(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cfg := config.Default()
	e := engine.New(engine.Options{Config: cfg, Exit: true, VirtualClock: true, Stdout: &stdout, Stderr: &stderr})
	stopped := make(chan struct{})
	e.Add(engine.ServiceFunc(func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return ctx.Err()
	}))
	if err := e.Run(context.Background(), fileSource(t, filepath.Join("testdata", "raw.rec"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	default:
		t.Error("Run returned before stopping its service")
	}
	if !strings.Contains(stderr.String(), "source ended") {
		t.Errorf("log: %s", stderr.String())
	}
}

func TestFailingServiceStopsRun(t *testing.T) {
	boom := errors.New("listener failed")
	e := engine.New(engine.Options{Config: config.Default(), Stdout: io.Discard, Stderr: io.Discard})
	e.Add(engine.ServiceFunc(func(context.Context) error { return boom }))
	// A source that never ends: only the service's failure stops Run.
	src := sourceFunc(func(ctx context.Context, _ chan<- capture.Chunk) error { <-ctx.Done(); return nil })
	if err := e.Run(context.Background(), src); !errors.Is(err, boom) {
		t.Errorf("Run: %v, want the service's error", err)
	}
}

func TestCancelStopsServing(t *testing.T) {
	// Without Exit, Run keeps serving after the recording until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	e := engine.New(engine.Options{Config: config.Default(), Stdout: io.Discard, Stderr: io.Discard})
	e.Add(engine.ServiceFunc(func(sctx context.Context) error {
		// Cancel once the recording has been fully published.
		for e.Broker.LastSeq() < 1 {
			select {
			case <-sctx.Done():
				return nil
			default:
			}
			waitABit(sctx)
		}
		cancel()
		<-sctx.Done()
		return nil
	}))
	// One chunk and its close: one event, published as soon as the
	// close arrives.
	src := sourceFunc(func(ctx context.Context, out chan<- capture.Chunk) error {
		out <- capture.Chunk{Time: 1, PID: 1, Conn: 1, FD: -1, Data: []byte("\x00data")}
		out <- capture.Chunk{Time: 2, PID: 1, Conn: 1, FD: -1, Kind: capture.Close}
		return nil
	})
	if err := e.Run(ctx, src); err != nil {
		t.Fatal(err)
	}
	if e.Broker.LastSeq() != 1 {
		t.Errorf("LastSeq = %d, want 1", e.Broker.LastSeq())
	}
}

func TestBadOutputFormat(t *testing.T) {
	cfg := config.Default()
	cfg.Output.Format = "xml"
	e := engine.New(engine.Options{Config: cfg, Stdout: io.Discard, Stderr: io.Discard})
	if err := e.Run(context.Background(), fileSource(t, filepath.Join("testdata", "raw.rec"))); err == nil {
		t.Error("Run accepted output format xml")
	}
}

type sourceFunc func(ctx context.Context, out chan<- capture.Chunk) error

func (f sourceFunc) Run(ctx context.Context, out chan<- capture.Chunk) error { return f(ctx, out) }

// waitABit yields for a millisecond or until ctx is done.
func waitABit(ctx context.Context) {
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
