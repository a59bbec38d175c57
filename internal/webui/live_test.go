package webui_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tlstap/tlstap/internal/exporttest"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestLiveCapture drives the page against a live `tlstap tls --comm curl`
// while curl fetches JSON, an image and binary data from nginx on
// loopback over HTTP/1.1 and HTTP/2: the rows appear paired, the detail
// pane shows each body, the HAR export validates, and the page's
// copy-as-cURL command, run, fetches the same response again.
func TestLiveCapture(t *testing.T) {
	testenv.RequireRoot(t, "live capture (CAP_BPF, CAP_PERFMON)")
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for x := 0; x < 40; x++ {
		for y := 0; y < 20; y++ {
			img.Set(x, y, color.RGBA{uint8(x * 6), uint8(y * 12), 200, 255})
		}
	}
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	binData := make([]byte, 300)
	for i := range binData {
		binData[i] = byte(i * 7)
	}
	nonce := fmt.Sprintf("webui-%d", time.Now().UnixNano())
	jsonBody := []byte(`{"greeting":"hello","nonce":"` + nonce + `","list":[1,2,3]}`)
	ngx := testenv.StartNginx(t, testenv.NginxConfig{HTTP2: true, Files: map[string][]byte{
		"hello.json": jsonBody,
		"pic.png":    pngBuf.Bytes(),
		"blob.bin":   binData,
	}})

	// A proxy forwarder that forwards nothing by itself: "Send to proxy"
	// is the only way through it.
	proxy := startConnectProxy(t)
	tl := startTlstap(t, "tls", "--comm", "curl",
		"--forward-url", proxy.URL, "--forward-mode", "proxy", "--forward-filter", "host=none.invalid")
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(tl.stderr.String(), "msg=capturing") {
		if time.Now().After(deadline) {
			t.Fatalf("tlstap did not start capturing:\n%s", tl.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := browser(t)
	art := artifacts(t)
	run(t, ctx, "open the page", chromedp.Navigate(tl.page))
	waitConn(t, ctx, "live")

	fetch := func(args ...string) []byte {
		t.Helper()
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(cctx, curl, append([]string{"-sS", "--cacert", ngx.Cert.CertFile}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return out
	}
	fetch("--http1.1", "-H", "X-Webui-Test: "+nonce, ngx.URL("/hello.json"))
	fetch("--http2", ngx.URL("/pic.png"))
	fetch("--http1.1", ngx.URL("/blob.bin"))

	want := map[string]string{"/hello.json": "http1", "/pic.png": "http2", "/blob.bin": "http1"}
	rows := waitRows(t, ctx, "the three exchanges", func(rs []pageRow) bool {
		n := 0
		for _, r := range rs {
			if p, ok := want[r.Path]; ok && r.Protocol == p && r.Status == 200 && r.Comm == "curl" {
				n++
			}
		}
		return n == 3
	})
	byPath := map[string]pageRow{}
	for _, r := range rows {
		if _, ok := want[r.Path]; ok {
			if _, dup := byPath[r.Path]; dup {
				t.Errorf("two rows for %s: %+v", r.Path, rows)
			}
			byPath[r.Path] = r
			if r.Req == 0 || r.Resp == 0 || r.RequestSeq != r.Req || r.Method != "GET" {
				t.Errorf("row not paired: %+v", r)
			}
		}
	}
	screenshot(t, ctx, art, "live-list")

	click := func(path string) {
		t.Helper()
		run(t, ctx, "click "+path, chromedp.Click(fmt.Sprintf(`#rows .row[data-id="%d"]`, byPath[path].ID), chromedp.ByQuery))
	}
	click("/hello.json")
	d := text(t, ctx, "#detail-body")
	for _, want := range []string{"GET /hello.json HTTP/1.1", "X-Webui-Test: " + nonce, "HTTP/1.1 200 OK", "JSON, pretty-printed", `"nonce": "` + nonce + `"`, "TLS library", "openssl", "127.0.0.1:" + fmt.Sprint(ngx.Addr.Port())} {
		if !strings.Contains(d, want) {
			t.Errorf("HTTP/1 detail lacks %q:\n%s", want, d)
		}
	}
	screenshot(t, ctx, art, "live-detail-http1-json")

	// Copy as cURL, then run what the page wrote.
	run(t, ctx, "copy as cURL", chromedp.Click("#copy-curl", chromedp.ByQuery), chromedp.WaitVisible("#copy-text", chromedp.ByQuery))
	var cmdline string
	eval(t, ctx, `document.getElementById("copy-text").value`, &cmdline)
	if !strings.HasPrefix(cmdline, "curl ") || !strings.Contains(cmdline, "X-Webui-Test: "+nonce) || !strings.Contains(cmdline, ngx.URL("/hello.json")) {
		t.Errorf("cURL command: %s", cmdline)
	}
	screenshot(t, ctx, art, "live-copy-curl")
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	out, err := exec.CommandContext(cctx, "/bin/sh", "-c", cmdline+" -sS --cacert "+ngx.Cert.CertFile).Output()
	cancel()
	if err != nil {
		t.Fatalf("running the page's cURL command %s: %v", cmdline, err)
	}
	if !bytes.Equal(out, jsonBody) {
		t.Errorf("the page's cURL command fetched %q, want %q", out, jsonBody)
	}
	run(t, ctx, "close", chromedp.Click("#copy-dialog button", chromedp.ByQuery))

	// Send to proxy: a confirmation that says the request is repeated,
	// then the request goes through the proxy to nginx.
	run(t, ctx, "send to proxy", chromedp.Click("#resend", chromedp.ByQuery), chromedp.WaitVisible("#resend-confirm", chromedp.ByQuery))
	if d := text(t, ctx, "#resend-dialog"); !strings.Contains(d, "This repeats the request") || !strings.Contains(d, "/hello.json") {
		t.Errorf("the confirmation says: %s", d)
	}
	if s := proxy.seen(); len(s) != 0 {
		t.Errorf("the proxy was used before the confirmation: %v", s)
	}
	screenshot(t, ctx, art, "live-send-to-proxy")
	run(t, ctx, "confirm", chromedp.Click("#resend-confirm", chromedp.ByQuery))
	var res string
	deadline = time.Now().Add(time.Minute)
	for !strings.Contains(res, "answered") && !strings.Contains(res, "Not sent") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		res = text(t, ctx, "#resend-result")
	}
	if !strings.Contains(res, "the server answered 200") {
		t.Errorf("send to proxy: %q", res)
	}
	if s := proxy.seen(); len(s) != 1 || s[0] != ngx.Addr.String() {
		t.Errorf("the proxy saw CONNECT to %v, want %s once", s, ngx.Addr)
	}
	run(t, ctx, "close", chromedp.Click("#resend-cancel", chromedp.ByQuery))

	click("/pic.png")
	var imgW int
	deadline = time.Now().Add(time.Minute)
	for imgW == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		eval(t, ctx, `(document.querySelector("#detail-body img.resp-body") || {naturalWidth: 0}).naturalWidth`, &imgW)
	}
	if imgW != 40 {
		t.Errorf("the HTTP/2 image body shows %d pixels wide, want 40", imgW)
	}
	if d := text(t, ctx, "#detail-body"); !strings.Contains(d, "GET /pic.png HTTP/2") || !strings.Contains(d, "HTTP/2 200") {
		t.Errorf("HTTP/2 detail:\n%s", d)
	}
	screenshot(t, ctx, art, "live-detail-http2-image")

	click("/blob.bin")
	if d := text(t, ctx, "#detail-body .resp-body"); !strings.HasPrefix(d, "00000000  00 07 0e 15 1c 23 2a 31") {
		t.Errorf("binary body not hex-dumped: %q", d)
	}
	screenshot(t, ctx, art, "live-detail-binary")

	var har string
	eval(t, ctx, `tlstapUI.harText()`, &har)
	p := filepath.Join(t.TempDir(), "live.har")
	if err := os.WriteFile(p, []byte(har), 0o644); err != nil {
		t.Fatal(err)
	}
	exporttest.ValidateHAR(t, p)
	h := exporttest.ReadHAR(t, p)
	paths := map[string]bool{}
	for _, e := range h.Log.Entries {
		for path := range want {
			if strings.HasSuffix(e.Request.URL, path) {
				paths[path] = true
			}
		}
	}
	if len(paths) != 3 {
		t.Errorf("HAR has %v of the three exchanges (%d entries)", paths, len(h.Log.Entries))
	}
}

// waitConn waits until the page's stream is in state s.
func waitConn(t testing.TB, ctx context.Context, s string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var got string
	for got != s {
		if time.Now().After(deadline) {
			t.Fatalf("the page's stream is %q, not %q", got, s)
		}
		time.Sleep(100 * time.Millisecond)
		eval(t, ctx, `document.body.dataset.conn || ""`, &got)
	}
}
