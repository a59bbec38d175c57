package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// resumeState is what tlstapUI.resume() reports.
type resumeState struct {
	Since       uint64 `json:"since"`
	Restored    int    `json:"restored"`
	ResumedFrom uint64 `json:"resumedFrom"`
	Stored      bool   `json:"stored"`
}

// waitResumePoint waits until the page has written its events up to want.
func waitResumePoint(t *testing.T, get func() resumeState, want uint64) resumeState {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := get()
		if r.Since >= want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("resume point %d, want %d", r.Since, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPaired fails unless every row is a request with its response.
func checkPaired(t *testing.T, rows []pageRow) {
	t.Helper()
	for _, r := range rows {
		if r.Req == 0 || r.Resp != r.Req+1 || r.RequestSeq != r.Req {
			t.Errorf("row %+v is not request seq N with response N+1", r)
		}
	}
}

// TestReloadResumes: a reloaded page shows the rows it had, asks the
// stream for what follows the last event it received (since=), and
// lists new events once: no duplicate row, no gap. Cleared rows stay
// cleared across a reload.
func TestReloadResumes(t *testing.T) {
	srv := startBenchServer(t)
	for seq := uint64(1); seq < 21; seq += 2 {
		srv.publishPair(seq)
	}
	ctx := browser(t)
	art := artifacts(t)
	run(t, ctx, "open the page", chromedp.Navigate(srv.page))
	waitRows(t, ctx, "10 rows", func(r []pageRow) bool { return len(r) == 10 })
	get := func() (r resumeState) { eval(t, ctx, `tlstapUI.resume()`, &r); return r }
	if r := waitResumePoint(t, get, 20); !r.Stored || r.Since != 20 {
		t.Fatalf("before the reload: %+v, want the point at 20 stored", r)
	}

	run(t, ctx, "reload", chromedp.Reload())
	waitConn(t, ctx, "live")
	rows := waitRows(t, ctx, "10 rows back", func(r []pageRow) bool { return len(r) >= 10 })
	if len(rows) != 10 {
		t.Errorf("%d rows after the reload, want the 10 held", len(rows))
	}
	checkPaired(t, rows)
	if r := get(); r.Restored != 20 || r.ResumedFrom != 20 {
		t.Errorf("after the reload: %+v, want 20 events read back and since=20", r)
	}
	for seq := uint64(21); seq < 31; seq += 2 {
		srv.publishPair(seq)
	}
	waitRows(t, ctx, "15 rows", func(r []pageRow) bool { return len(r) >= 15 })
	time.Sleep(time.Second)
	rows = waitRows(t, ctx, "15 rows", func([]pageRow) bool { return true })
	if len(rows) != 15 {
		t.Errorf("%d rows, want 15", len(rows))
	}
	checkPaired(t, rows)
	for i, r := range rows {
		if want := uint64(2*i + 1); r.Req != want {
			t.Errorf("row %d is request seq %d, want %d (a gap or a repeat)", i, r.Req, want)
		}
	}
	var conn [][]any
	eval(t, ctx, `tlstapUI.connEvents()`, &conn)
	if len(conn) != 10 {
		t.Errorf("the stream after the reload carried %d events, want only the 10 new ones", len(conn))
	}
	for _, e := range conn {
		if seq, _ := e[0].(float64); seq <= 20 {
			t.Errorf("the stream after the reload repeated seq %v", seq)
		}
	}
	screenshot(t, ctx, art, "reloaded")

	// Clear, reload: the list stays empty, the stream goes on from 30.
	waitResumePoint(t, get, 30)
	run(t, ctx, "clear", chromedp.Click("#clear", chromedp.ByQuery))
	time.Sleep(time.Second) // the store is written within 300 ms
	run(t, ctx, "reload", chromedp.Reload())
	waitConn(t, ctx, "live")
	srv.publishPair(31)
	waitRows(t, ctx, "the new row", func(r []pageRow) bool { return len(r) >= 1 })
	time.Sleep(time.Second)
	rows = waitRows(t, ctx, "the new row", func([]pageRow) bool { return true })
	if len(rows) != 1 || rows[0].Req != 31 {
		t.Errorf("after Clear and a reload: rows %+v, want only the request seq 31", rows)
	}
	if r := get(); r.Restored != 0 || r.ResumedFrom != 30 {
		t.Errorf("after Clear and a reload: %+v, want nothing read back and since=30", r)
	}
}

// TestRowCap: past ?maxrows= rows, the oldest are evicted (a tenth of the
// cap at once), the status bar counts them, and a reload brings back only
// the rows kept.
func TestRowCap(t *testing.T) {
	srv := startBenchServer(t)
	for seq := uint64(1); seq < 301; seq += 2 {
		srv.publishPair(seq)
	}
	ctx := browser(t)
	art := artifacts(t)
	run(t, ctx, "open the page", chromedp.Navigate(strings.Replace(srv.page, "/#", "/?maxrows=100#", 1)))
	waitConn(t, ctx, "live")
	var events int
	deadline := time.Now().Add(2 * time.Minute)
	for events < 300 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		eval(t, ctx, `tlstapUI.state.model.events`, &events)
	}
	// 150 rows into a cap of 100: at 101 rows the oldest 11 go (down to
	// 90), five times, and 5 more rows come: 95 rows, 55 evicted.
	rows := waitRows(t, ctx, "95 rows", func(r []pageRow) bool { return len(r) == 95 })
	checkPaired(t, rows)
	if rows[0].Path != "/items/55" || rows[94].Path != "/items/149" {
		t.Errorf("rows %s to %s, want /items/55 to /items/149", rows[0].Path, rows[94].Path)
	}
	notice := text(t, ctx, "#st-evicted")
	if want := "55 oldest rows (110 events) evicted: the page keeps 100 rows"; notice != want {
		t.Errorf("notice %q, want %q", notice, want)
	}
	var hidden bool
	eval(t, ctx, `document.getElementById("st-evicted").hidden`, &hidden)
	if hidden {
		t.Error("the eviction notice is hidden")
	}
	screenshot(t, ctx, art, "row-cap")

	get := func() (r resumeState) { eval(t, ctx, `tlstapUI.resume()`, &r); return r }
	waitResumePoint(t, get, 300)
	time.Sleep(time.Second) // the deletions are written with the last batch
	run(t, ctx, "reload", chromedp.Reload())
	waitConn(t, ctx, "live")
	rows = waitRows(t, ctx, "95 rows back", func(r []pageRow) bool { return len(r) >= 95 })
	if len(rows) != 95 || rows[0].Path != "/items/55" {
		t.Errorf("after the reload: %d rows from %s, want 95 from /items/55", len(rows), rows[0].Path)
	}
	if r := get(); r.Restored != 190 || r.ResumedFrom != 300 {
		t.Errorf("after the reload: %+v, want 190 events read back and since=300", r)
	}
}

// TestResumeAfterRestart: tlstap restarts on the same address (sequence
// numbers start again). The reconnecting page sees a first heartbeat
// behind its resume point: it drops the last run's rows, says so, and
// lists the new run's; a reload then restores the new run's rows only.
func TestResumeAfterRestart(t *testing.T) {
	srv, stop := startBenchServerAt(t, "127.0.0.1:0")
	for seq := uint64(1); seq < 21; seq += 2 {
		srv.publishPair(seq)
	}
	ctx := browser(t)
	art := artifacts(t)
	run(t, ctx, "open the page", chromedp.Navigate(srv.page))
	waitRows(t, ctx, "10 rows", func(r []pageRow) bool { return len(r) == 10 })
	get := func() (r resumeState) { eval(t, ctx, `tlstapUI.resume()`, &r); return r }
	waitResumePoint(t, get, 20)

	stop()
	srv2, _ := startBenchServerAt(t, srv.addr)
	srv2.publishPair(1)
	srv2.publishPair(3)
	rows := waitRows(t, ctx, "the new run's 2 rows", func(r []pageRow) bool { return len(r) == 2 })
	checkPaired(t, rows)
	if rows[0].Path != "/items/0" || rows[1].Path != "/items/1" {
		t.Errorf("rows %+v, want the new run's /items/0 and /items/1", rows)
	}
	if n := text(t, ctx, "#filter-error"); !strings.Contains(n, "tlstap restarted") {
		t.Errorf("notice %q, want one that says tlstap restarted", n)
	}
	screenshot(t, ctx, art, "restarted")
	waitResumePoint(t, get, 4)
	time.Sleep(time.Second)

	run(t, ctx, "reload", chromedp.Reload())
	waitConn(t, ctx, "live")
	waitRows(t, ctx, "2 rows back", func(r []pageRow) bool { return len(r) >= 2 })
	time.Sleep(time.Second)
	rows = waitRows(t, ctx, "2 rows back", func([]pageRow) bool { return true })
	if len(rows) != 2 {
		t.Errorf("after the reload: %d rows, want the new run's 2", len(rows))
	}
	if r := get(); r.Restored != 4 || r.ResumedFrom != 4 {
		t.Errorf("after the reload: %+v, want the new run's 4 events read back and since=4", r)
	}
}
