package engine_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/golden"
)

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
