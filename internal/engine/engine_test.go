package engine_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/redact"
)

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

// replayFile plays a recording through a complete engine, as 'tlstap
// replay --speed 0 --exit' does, and returns standard output and every
// event entry the broker published.
func replayFile(t *testing.T, path, format string) (string, []*broker.Entry) {
	t.Helper()
	cfg := config.Default()
	cfg.Output.Format = format
	var stdout, stderr bytes.Buffer
	e := engine.New(engine.Options{Config: cfg, Exit: true, VirtualClock: true, Stdout: &stdout, Stderr: &stderr})
	sub := e.Broker.Subscribe(broker.SubOptions{Policy: broker.Block, Filter: func(en *broker.Entry) bool { return en.Seq != 0 }})
	var entries []*broker.Entry
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			en, err := sub.Next(context.Background())
			if err != nil {
				return
			}
			entries = append(entries, en)
		}
	}()
	src, err := replay.New(replay.Options{Open: func() (io.ReadCloser, error) { return os.Open(path) }, Name: path, Speed: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background(), src); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	<-done
	return stdout.String(), entries
}

func TestGolden(t *testing.T) {
	for name, gen := range recordings {
		t.Run(name, func(t *testing.T) {
			rec := filepath.Join("testdata", name+".rec")
			if *golden.Update {
				writeRecording(t, name, gen())
			}
			text, textEntries := replayFile(t, rec, "text")
			golden.Check(t, filepath.Join("testdata", name+".txt"), []byte(text))

			jsonOut, _ := replayFile(t, rec, "json")
			golden.Check(t, filepath.Join("testdata", name+".jsonl"), []byte(jsonOut))

			_, entries := replayFile(t, rec, "none")
			var pb strings.Builder
			for _, en := range entries {
				fmt.Fprintf(&pb, "%d %s\n", en.Seq, hex.EncodeToString(en.Bytes))
			}
			golden.Check(t, filepath.Join("testdata", name+".pb.hex"), []byte(pb.String()))

			// Every output format sees the same stream.
			if len(textEntries) != len(entries) {
				t.Errorf("text run published %d events, protobuf run %d", len(textEntries), len(entries))
			}
			for i := range min(len(textEntries), len(entries)) {
				if !bytes.Equal(textEntries[i].Bytes, entries[i].Bytes) {
					t.Errorf("event %d differs between two replays of the same recording", i+1)
				}
			}
			if n := strings.Count(jsonOut, "\n"); n != len(entries) {
				t.Errorf("%d JSON lines for %d events", n, len(entries))
			}
		})
	}
}

// TestReplayTornRecording: a recording whose writer was killed mid-record
// plays every complete record, says its tail was cut, and is no error.
func TestReplayTornRecording(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "http1.rec"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.rec")
	if err := os.WriteFile(path, data[:len(data)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	e := engine.New(engine.Options{Config: config.Default(), Exit: true, VirtualClock: true, Stdout: &stdout, Stderr: &stderr})
	src, _ := replay.New(replay.Options{Open: func() (io.ReadCloser, error) { return os.Open(path) }, Name: path, Log: e.Log})
	if err := e.Run(context.Background(), src); err != nil {
		t.Fatalf("Run: %v, want the complete records played without error", err)
	}
	if !strings.Contains(stdout.String(), "GET /api/items") {
		t.Errorf("events before the cut are missing from output:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "tail was cut") {
		t.Errorf("no word about the cut tail:\n%s", stderr.String())
	}
}

type chunkSource []capture.Chunk

func (s chunkSource) Run(ctx context.Context, out chan<- capture.Chunk) error {
	for _, c := range s {
		select {
		case out <- c:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// TestSecretsNeverLeave: a captured request carrying tlstap's token (as
// if self-exclusion had missed it) reaches no output with the token in
// it: not the events, not the recording, not the log.
func TestSecretsNeverLeave(t *testing.T) {
	const token = "tok3n-0f-tlstap_abcdefghijklmnop"
	req := "GET /ws?token=" + token + " HTTP/1.1\r\nHost: 127.0.0.1:28256\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	now := time.Now().UnixNano()
	meta := capture.Chunk{PID: 42, TID: 42, Comm: "python3", Conn: 7, FD: 3,
		Local: netip.MustParseAddrPort("127.0.0.1:50000"), Remote: netip.MustParseAddrPort("127.0.0.1:28256")}
	write, closed := meta, meta
	write.Time, write.Dir, write.Kind, write.Data = now, capture.Write, capture.Data, []byte(req)
	closed.Time, closed.Kind = now+1, capture.Close

	rec := filepath.Join(t.TempDir(), "out.rec")
	var stdout, stderr bytes.Buffer
	cfg := config.Default()
	cfg.Output.Format = "json"
	e := engine.New(engine.Options{Config: cfg, Exit: true, Record: rec, Stdout: &stdout, Stderr: &stderr})
	e.Secrets.Add(token)
	e.Log.Info("a log line that quotes a URL", "url", "wss://127.0.0.1:28256/ws?token="+token)
	if err := e.Run(context.Background(), chunkSource{write, closed}); err != nil {
		t.Fatal(err)
	}
	recorded, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(stdout.Bytes(), []byte(`"pid":42`)) {
		t.Fatalf("the request's event is missing from standard output:\n%s", stdout.String())
	}
	for name, out := range map[string][]byte{"standard output": stdout.Bytes(), "log": stderr.Bytes(), "recording": recorded} {
		if bytes.Contains(out, []byte(token)) {
			t.Errorf("%s holds the token", name)
		}
	}
	if n := e.Stats.Value(redact.RedactedTotal); n < 3 {
		t.Errorf("%s = %v, want at least 3 (two in the request, one in the log)", redact.RedactedTotal, n)
	}
}
