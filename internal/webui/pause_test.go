package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPauseAndResume: paused, new events are held and counted, not
// listed; resumed, they are listed. A dropped stream reconnects with
// since= the last seq seen: the events published meanwhile arrive once,
// and the new connection carries nothing seen before. The stream runs in
// worker.js (the page's CSP allows it).
func TestPauseAndResume(t *testing.T) {
	srv := startBenchServer(t)
	for seq := uint64(1); seq < 20; seq += 2 {
		srv.publishPair(seq)
	}
	ctx := browser(t)
	art := artifacts(t)
	run(t, ctx, "open the page", chromedp.Navigate(srv.page))
	waitRows(t, ctx, "10 rows", func(r []pageRow) bool { return len(r) == 10 })
	var mode string
	var batches int
	eval(t, ctx, `tlstapUI.streamMode()`, &mode)
	eval(t, ctx, `tlstapUI.state.stats.batches`, &batches)
	if mode != "worker" || batches == 0 {
		t.Errorf("stream mode %q, %d batches from the worker; want the stream in worker.js", mode, batches)
	}

	run(t, ctx, "pause", chromedp.Click("#pause", chromedp.ByQuery))
	for seq := uint64(21); seq < 41; seq += 2 {
		srv.publishPair(seq)
	}
	deadline := time.Now().Add(time.Minute)
	var label string
	for label != "Resume (20 new)" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		label = text(t, ctx, "#pause")
	}
	if label != "Resume (20 new)" {
		t.Errorf("paused button says %q", label)
	}
	if n := len(waitRows(t, ctx, "rows", func([]pageRow) bool { return true })); n != 10 {
		t.Errorf("%d rows while paused, want 10", n)
	}
	screenshot(t, ctx, art, "paused")
	run(t, ctx, "resume", chromedp.Click("#pause", chromedp.ByQuery))
	waitRows(t, ctx, "20 rows", func(r []pageRow) bool { return len(r) == 20 })

	// Drop the stream; publish while it is down.
	var last int
	eval(t, ctx, `tlstapUI.state.model.lastSeq`, &last)
	if last != 40 {
		t.Fatalf("last seq %d, want 40", last)
	}
	eval(t, ctx, `(tlstapUI.state.ws.close(), 0)`, nil)
	for seq := uint64(41); seq < 61; seq += 2 {
		srv.publishPair(seq)
	}
	waitRows(t, ctx, "30 rows", func(r []pageRow) bool { return len(r) >= 30 })
	time.Sleep(time.Second)
	rows := waitRows(t, ctx, "30 rows", func([]pageRow) bool { return true })
	if len(rows) != 30 {
		t.Errorf("%d rows after the reconnect, want 30", len(rows))
	}
	var conn [][]any
	eval(t, ctx, `tlstapUI.connEvents()`, &conn)
	if len(conn) != 20 {
		t.Errorf("the resumed stream carried %d events, want the 20 published while it was down", len(conn))
	}
	for _, e := range conn {
		if seq, _ := e[0].(float64); seq <= 40 {
			t.Errorf("the resumed stream repeated seq %v", seq)
		}
	}
	if s := text(t, ctx, "#st-conn"); !strings.Contains(s, "live") {
		t.Errorf("connection state %q", s)
	}
}
