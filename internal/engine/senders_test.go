package engine_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
)

// TestSendersNeedNoApplier: the forwarders and sinks of the starting
// configuration are the engine's own. A run that never asks for an
// Applier (nothing mounts the config API) still delivers to them, and
// asking for one starts nothing twice.
func TestSendersNeedNoApplier(t *testing.T) {
	for _, tc := range []struct {
		name     string
		appliers int
	}{{"no applier", 0}, {"two appliers", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHook(t, nil)
			cfg := withForward(h.URL + "/hook")
			sinkPath := filepath.Join(t.TempDir(), "out.pb")
			cfg.Sinks = []config.Sink{{Addr: sinkPath, Format: "protobuf"}}
			var stderr syncBuf
			e := engine.New(engine.Options{Config: cfg, Exit: true, VirtualClock: true, Stdout: &bytes.Buffer{}, Stderr: &stderr})
			for range tc.appliers {
				e.NewApplier(nil)
			}
			if err := e.Run(context.Background(), fileSource(t, filepath.Join("testdata", "http1.rec"))); err != nil {
				t.Fatal(err)
			}
			n := e.Broker.LastSeq()
			if n == 0 {
				t.Fatal("no events")
			}
			if got := h.n.Load(); got != int64(n) {
				t.Errorf("webhook received %d of %d events", got, n)
			}
			if st, err := os.Stat(sinkPath); err != nil || st.Size() == 0 {
				t.Errorf("sink file: %v, %v", st, err)
			}
		})
	}
}
