package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
)

// page opens the eCaptureQ listener from a web page and writes what it
// got into the DOM, which chromium --dump-dom prints.
const page = `<!doctype html><html><body><div id="r">pending</div><script>
let n = 0;
const r = document.getElementById("r");
const ws = new WebSocket("ws://%s/");
ws.binaryType = "arraybuffer";
ws.onopen = () => { r.textContent = "open " + n; };
ws.onmessage = () => { n++; r.textContent = "received " + n; };
ws.onclose = (e) => { r.textContent = "closed after " + n; };
</script></body></html>`

// TestBrowserPageCannotRead: a page in headless Chromium, served from
// another origin, opens ws://127.0.0.1:PORT/ on the eCaptureQ listener and
// receives nothing. The same page from an --allow-origin origin does
// receive, which shows the test can see a leak.
func TestBrowserPageCannotRead(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed (apt-get install chromium): %v", err)
	}
	var ecq atomic.Value // the eCaptureQ listener's address, set per subtest
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, page, ecq.Load())
	})) // its URL is the page's origin
	defer web.Close()
	for _, tt := range []struct {
		name  string
		allow []string
		want  string
	}{
		// Refused before the upgrade: the page never opens the socket.
		{"foreign page", nil, `^(pending|closed after 0)$`},
		{"allowed page", []string{web.URL}, `^received [1-9]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, server.Options{Listen: "-", ECaptureQ: "ws://127.0.0.1:0/", AllowOrigins: tt.allow}, broker.Options{})
			ecq.Store(ts.ECaptureQAddr().String())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Events keep coming while the page is open.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for seq := uint64(1); ; seq++ {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						ts.b.Publish(event(seq))
					}
				}
			}()
			// A loaded machine can end the page's time budget before it
			// even dialled; such a run proves nothing either way, so it is
			// repeated (a page that received anything fails at once).
			var got []byte
			for try := 1; ; try++ {
				got = runPage(t, ctx, chromium, web.URL+"/")
				refused := ts.st.Value("tlstap_server_rejected_total", "reason", "forbidden_origin")
				inconclusive := (tt.allow == nil && refused == 0 && string(got) == "pending") ||
					(tt.allow != nil && !regexp.MustCompile(`^received`).Match(got))
				if !inconclusive || try == 3 {
					break
				}
				t.Logf("try %d inconclusive (page says %q, %v refused); again", try, got, refused)
			}
			if !regexp.MustCompile(tt.want).Match(got) {
				t.Errorf("page says %q, want %q", got, tt.want)
			}
			refused := ts.st.Value("tlstap_server_rejected_total", "reason", "forbidden_origin")
			if (tt.allow == nil) != (refused > 0) {
				t.Errorf("%v upgrades refused for a foreign Origin", refused)
			}
		})
	}
}

// runPage loads url in headless Chromium and returns what the page wrote
// into its result element.
func runPage(t *testing.T, ctx context.Context, chromium, url string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`<div id="r">([^<]*)</div>`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no result in the page:\n%s", out)
	}
	return m[1]
}
