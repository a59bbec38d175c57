package engine_test

import (
	"context"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
)

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
