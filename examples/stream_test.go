package examples

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/sink"
	"github.com/tlstap/tlstap/internal/stats"
)

// python returns an interpreter with the examples' modules.
func python(t *testing.T) string {
	t.Helper()
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(cand, "-c", "import websocket, google.protobuf").Run() == nil {
			return cand
		}
	}
	t.Fatal("no python3 with websocket-client and protobuf (apt-get install python3-websocket python3-protobuf)")
	return ""
}

// runSink pushes events() through a sink of kind ("file", "tcp") to addr
// and stops it once all are written.
func runSink(t *testing.T, kind, addr string) {
	t.Helper()
	st := stats.NewSet()
	b := broker.New(broker.Options{}, st)
	s, err := sink.New(addr, sink.Options{BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	evs := events()
	for _, e := range evs {
		b.Publish(e)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.Value("tlstap_sink_sent_total", "sink", kind) < float64(len(evs)) {
		if time.Now().After(deadline) {
			t.Fatal("sink did not write every entry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The Python stream reader decodes what the Go sinks write, from a file
// and as the TCP sink's receiver, and prints what watch.py prints.
func TestPythonStreamReader(t *testing.T) {
	py := python(t)
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.pb")
		runSink(t, "file", path)
		out, err := exec.Command(py, filepath.Join("python", "read_stream.py"), path).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		checkGolden(t, "all.golden", out)
	})
	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // the reader binds it; the sink retries until it does
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, py, filepath.Join("python", "read_stream.py"), "--listen", addr, "--count", "4")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runSink(t, "tcp", "tcp://"+addr)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		checkGolden(t, "all.golden", out.Bytes())
	})
}
