package webui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tlstap/tlstap/internal/exporttest"
)

// The demo recording holds 5 HTTP/1.1 exchanges (curl, shop.example.com),
// 7 HTTP/2 streams (python3, api.example.com), one WebSocket connection
// (node, chat.example.com: upgrade and 12 messages) and 6 raw events
// (redis-cli): 19 rows.
const demoRows = 19

// TestDemo drives the page in Chromium against `tlstap demo`: rows appear
// and pair, a filter narrows the list and the stream, filter errors show
// where typed, the detail pane shows HTTP/1, HTTP/2 and WebSocket bodies,
// the HAR export of the current filter validates, and the settings panel
// shows the config API's validation messages.
func TestDemo(t *testing.T) {
	tl := startTlstap(t, "demo", "--speed", "0")
	ctx := browser(t)
	art := artifacts(t)

	run(t, ctx, "open the page", chromedp.Navigate(tl.page))
	rows := waitRows(t, ctx, "all demo rows", func(r []pageRow) bool { return len(r) >= demoRows })
	if len(rows) != demoRows {
		t.Errorf("%d rows, want %d: %+v", len(rows), demoRows, rows)
	}
	var raw, ws, h1, h2 int
	for _, r := range rows {
		switch {
		case r.Kind == "raw":
			raw++
			if r.Comm != "redis-cli" {
				t.Errorf("raw row of %q", r.Comm)
			}
		case r.Kind == "ws":
			ws++
			if r.WS != 12 || r.Status != 101 || r.Req == 0 || r.RequestSeq != r.Req || r.Host != "chat.example.com" {
				t.Errorf("WebSocket row: %+v, want the upgrade paired and 12 messages", r)
			}
		default:
			if r.Req == 0 || r.Resp == 0 || r.RequestSeq != r.Req {
				t.Errorf("row not paired: %+v", r)
			}
			if r.Protocol == "http1" {
				h1++
			} else if r.Protocol == "http2" {
				h2++
			}
		}
	}
	if raw != 6 || ws != 1 || h1 != 5 || h2 != 7 {
		t.Errorf("rows: %d http1, %d http2, %d ws, %d raw; want 5, 7, 1, 6", h1, h2, ws, raw)
	}
	// HTTP/2 responses came back out of order; each still joins its stream.
	for _, r := range rows {
		if r.Path == "/v1/users/4" && (r.Req != 17 || r.Resp != 26) {
			t.Errorf("/v1/users/4 paired as %d -> %d, want 17 -> 26", r.Req, r.Resp)
		}
		if r.Path == "/missing" && r.Status != 404 {
			t.Errorf("/missing has status %d", r.Status)
		}
	}
	screenshot(t, ctx, art, "demo-list")

	// The detail pane: HTTP/1 gzip JSON, HTTP/2 JSON, WebSocket.
	clickRow := func(path string) {
		t.Helper()
		for _, r := range rows {
			if r.Path == path {
				run(t, ctx, "click "+path, chromedp.Click(fmt.Sprintf(`#rows .row[data-id="%d"]`, r.ID), chromedp.ByQuery))
				return
			}
		}
		t.Fatalf("no row for %s", path)
	}
	clickRow("/api/products")
	d := text(t, ctx, "#detail-body")
	for _, want := range []string{"GET /api/products HTTP/1.1", "HTTP/1.1 200", "decoded from Content-Encoding: gzip", "JSON, pretty-printed", "\n  "} {
		if !strings.Contains(d, want) {
			t.Errorf("HTTP/1 detail lacks %q:\n%s", want, d)
		}
	}
	if b := text(t, ctx, "#detail-body .resp-body"); !strings.HasPrefix(strings.TrimSpace(b), "[") && !strings.HasPrefix(strings.TrimSpace(b), "{") {
		t.Errorf("HTTP/1 JSON body not shown: %q", b)
	}
	screenshot(t, ctx, art, "demo-detail-http1")

	clickRow("/v1/users/1")
	d = text(t, ctx, "#detail-body")
	for _, want := range []string{"GET /v1/users/1 HTTP/2", "HTTP/2 200", "JSON, pretty-printed", "HTTP/2 stream1", "TLS library"} {
		if !strings.Contains(d, want) {
			t.Errorf("HTTP/2 detail lacks %q:\n%s", want, d)
		}
	}
	screenshot(t, ctx, art, "demo-detail-http2")

	clickRow("/chat")
	d = text(t, ctx, "#detail-body")
	for _, want := range []string{"WebSocket messages (12)", "text", "binary", "ping", "pong", "close code", "hex dump"} {
		if !strings.Contains(d, want) {
			t.Errorf("WebSocket detail lacks %q:\n%s", want, d)
		}
	}
	var wsBodies int
	eval(t, ctx, `document.querySelectorAll("#detail-body .ws-msg").length`, &wsBodies)
	if wsBodies != 12 {
		t.Errorf("%d WebSocket messages shown, want 12", wsBodies)
	}
	screenshot(t, ctx, art, "demo-detail-websocket")

	// A filter error shows where it is typed, and changes nothing.
	setInput(t, ctx, "#filter", "~m")
	if e := text(t, ctx, "#filter-error"); !strings.Contains(e, "expected a value") {
		t.Errorf("filter error shown: %q", e)
	}
	var bad bool
	eval(t, ctx, `document.getElementById("filter").classList.contains("bad") && !document.getElementById("filter-error").hidden`, &bad)
	if !bad {
		t.Error("the filter box is not marked bad")
	}
	if n := len(waitRows(t, ctx, "rows kept", func(r []pageRow) bool { return true })); n != demoRows {
		t.Errorf("a bad filter changed the list to %d rows", n)
	}
	screenshot(t, ctx, art, "demo-filter-error")

	// A filter narrows the list and the stream.
	// "~d" is only expressible as filter=, which the server applies.
	setInput(t, ctx, "#filter", "~d api.example.com")
	rows = waitRows(t, ctx, "the filtered list", func(r []pageRow) bool { return len(r) == 7 })
	for _, r := range rows {
		if r.Host != "api.example.com" {
			t.Errorf("filtered list has %+v", r)
		}
	}
	var sf string
	eval(t, ctx, `tlstapUI.serverFilter()`, &sf)
	if sf != "filter=%7Ed+api.example.com" {
		t.Errorf("stream asked for %q, want the filter", sf)
	}
	// The new stream (since 0: what the server retains) carries only
	// matching events: 7 requests and 7 responses.
	var got [][]any
	deadline := time.Now().Add(time.Minute)
	for {
		eval(t, ctx, `tlstapUI.connEvents()`, &got)
		if len(got) >= 14 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	eval(t, ctx, `tlstapUI.connEvents()`, &got)
	if len(got) != 14 {
		t.Errorf("the filtered stream delivered %d events, want 14: %v", len(got), got)
	}
	for _, e := range got {
		if e[1] != "api.example.com" {
			t.Errorf("the filtered stream delivered %v", e)
		}
	}
	var loc string
	eval(t, ctx, `location.search`, &loc)
	if loc != "?filter=%7Ed+api.example.com" {
		t.Errorf("the filter is not in the page URL: %q", loc)
	}
	// Highlighting marks rows without hiding any.
	setInput(t, ctx, "#highlight", "~m POST")
	var hl int
	deadline = time.Now().Add(time.Minute)
	for hl != 1 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		eval(t, ctx, `document.querySelectorAll("#rows .row.hl:not([hidden])").length`, &hl)
	}
	if hl != 1 {
		t.Errorf("%d rows highlighted, want the one POST", hl)
	}
	screenshot(t, ctx, art, "demo-filter")

	// HAR of the current filter.
	var har string
	eval(t, ctx, `tlstapUI.harText()`, &har)
	p := filepath.Join(t.TempDir(), "ui.har")
	if err := os.WriteFile(p, []byte(har), 0o644); err != nil {
		t.Fatal(err)
	}
	exporttest.ValidateHAR(t, p)
	h := exporttest.ReadHAR(t, p)
	if len(h.Log.Entries) != 7 {
		t.Errorf("HAR has %d entries, want the 7 of the filter", len(h.Log.Entries))
	}
	for _, e := range h.Log.Entries {
		if !strings.Contains(e.Request.URL, "api.example.com") {
			t.Errorf("HAR entry %s outside the filter", e.Request.URL)
		}
	}

	// Settings: the config API's validation messages are shown.
	run(t, ctx, "open settings", chromedp.Click("#settings-open", chromedp.ByQuery),
		chromedp.WaitVisible("#set-pids", chromedp.ByQuery))
	setInput(t, ctx, "#set-pids", "0")
	deadline = time.Now().Add(time.Minute)
	var errs string
	for errs == "" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		errs = text(t, ctx, "#settings-errors")
	}
	if !strings.Contains(errs, "capture.pids[0]") {
		t.Errorf("settings errors: %q, want capture.pids[0]'s", errs)
	}
	screenshot(t, ctx, art, "demo-settings")
}

// TestAccess: without a token the page asks for one; a wrong token is
// refused with a message; the right one opens the stream. A page of
// another origin cannot open the stream or read the API, even with the
// token.
func TestAccess(t *testing.T) {
	tl := startTlstap(t, "demo", "--speed", "0")
	ctx := browser(t)
	art := artifacts(t)

	run(t, ctx, "open without token", chromedp.Navigate(tl.base+"/"), chromedp.WaitVisible("#token-input", chromedp.ByQuery))
	screenshot(t, ctx, art, "access-no-token")
	setInput(t, ctx, "#token-input", "wrong-token-0123456789")
	deadline := time.Now().Add(time.Minute)
	var msg string
	for !strings.Contains(msg, "refused") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		msg = text(t, ctx, "#token-error")
	}
	if !strings.Contains(msg, "refused") {
		t.Errorf("a wrong token: %q, want it refused", msg)
	}
	var rowsN int
	eval(t, ctx, `tlstapUI.rows().length`, &rowsN)
	if rowsN != 0 {
		t.Errorf("%d rows with a wrong token", rowsN)
	}
	screenshot(t, ctx, art, "access-wrong-token")
	setInput(t, ctx, "#token-input", tl.token)
	waitRows(t, ctx, "rows with the right token", func(r []pageRow) bool { return len(r) == demoRows })

	// A foreign page, told the token, tries the stream and the API.
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><div id="r">pending</div><script>
const out = [];
const done = () => { document.getElementById("r").textContent = out.join(" "); };
const ws = new WebSocket("wss://%[1]s/ws?since=0&token=%[2]s");
ws.onopen = () => out.push("ws-open");
ws.onmessage = () => out.push("ws-message");
ws.onclose = () => {
  out.push("ws-closed");
  fetch("https://%[1]s/api/v1/status", {headers: {Authorization: "Bearer %[2]s"}})
    .then((r) => r.text()).then((t) => { out.push("api-read:" + t.length); done(); }, () => { out.push("api-refused"); done(); });
};
</script>`, strings.TrimPrefix(tl.base, "https://"), tl.token)
	}))
	defer foreign.Close()
	run(t, ctx, "foreign page", chromedp.Navigate(foreign.URL))
	deadline = time.Now().Add(time.Minute)
	var res string
	for (res == "" || res == "pending") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		res = text(t, ctx, "#r")
	}
	if res != "ws-closed api-refused" {
		t.Errorf("a foreign page got %q, want %q", res, "ws-closed api-refused")
	}
	if !strings.Contains(tl.stderr.String(), "foreign Origin") {
		t.Errorf("tlstap did not log the foreign Origin:\n%s", tl.stderr.String())
	}
}
