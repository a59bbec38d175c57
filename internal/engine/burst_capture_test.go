package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestLiveBurstDeliveredWhole: with live capture the ring reader runs the
// pipeline itself (Pipeline.RunSource), so a burst waits in the kernel's
// ring rather than in a channel; it must still come out whole, in order,
// in both directions, with nothing after it to push its end out (raw
// data: the idle flush, on the pipeline's timer, publishes the last part).
func TestLiveBurstDeliveredWhole(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	cli := testenv.StartOpenSSLClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cli.Stdin.Write([]byte("warm up\n")); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, "warm up\n"); err != nil {
		t.Fatal(err)
	}

	src, err := openssl.New(openssl.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("openssl.New: %v", err)
	}
	defer src.Close()
	cfg := config.Default()
	cfg.Output.Format = "none"
	e := New(Options{Config: cfg, Live: true, Stdout: io.Discard, Stderr: io.Discard})
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "test", Policy: broker.Block, Queue: 1 << 16})
	runCtx, stop := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(runCtx, src) }()
	defer func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-src.Watching():
	case <-ctx.Done():
		t.Fatal("library watcher never started")
	}

	var burst strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&burst, "burst line %04d %s\n", i, strings.Repeat("x", i%97))
	}
	if _, err := cli.Stdin.Write([]byte(burst.String())); err != nil {
		t.Fatal(err)
	}
	got := map[int64]*strings.Builder{int64(srv.PID()): {}, int64(cli.PID()): {}}
	done := func() bool {
		for _, b := range got {
			if b.Len() < burst.Len() {
				return false
			}
		}
		return true
	}
	for !done() {
		en, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the burst: %v (server read %d bytes, client wrote %d, want %d)",
				err, got[int64(srv.PID())].Len(), got[int64(cli.PID())].Len(), burst.Len())
		}
		if ev := en.Event(); ev != nil && got[ev.GetPid()] != nil {
			got[ev.GetPid()].Write(ev.GetPayload())
		}
	}
	for pid, b := range got {
		if b.String() != burst.String() {
			t.Errorf("pid %d: %d bytes, want the %d of the burst, in order", pid, b.Len(), burst.Len())
		}
	}
}
