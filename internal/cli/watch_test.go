package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/forward"
	"github.com/tlstap/tlstap/internal/output/har"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/stats"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// The cross-user filter tests: one table (internal/filter/testdata/
// cases.json: filters, events and the events each filter selects) run
// through every user of the filter model — the stream server, GET
// /api/v1/har, the forwarder's filter, tlstap watch and client.Filters —
// so that the same filter text meaning different things anywhere fails
// here. They live in cli because cli is the one package that reaches all
// of them.

// sentinelPID marks the events published after the table's: a stream
// read ends at the first, because every filter is sent as
// "(F) | pid=sentinelPID". There are as many sentinels as table events
// plus one, so "tlstap watch --count" of that many always ends, whatever
// the filter selects.
const sentinelPID = 4_000_000_000

type filterTable struct {
	events []*eventpb.Event // in seq order
	names  map[uint64]string
	cases  []struct {
		Filter string   `json:"filter"`
		Match  []string `json:"match"`
	}
	errors []struct {
		Filter string `json:"filter"`
		Error  string `json:"error"`
	}
}

func loadFilterTable(t *testing.T) *filterTable {
	t.Helper()
	b, err := os.ReadFile("../filter/testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Events map[string]json.RawMessage `json:"events"`
		Cases  json.RawMessage            `json:"cases"`
		Errors json.RawMessage            `json:"errors"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	tb := &filterTable{names: map[uint64]string{}}
	if err := json.Unmarshal(raw.Cases, &tb.cases); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw.Errors, &tb.errors); err != nil {
		t.Fatal(err)
	}
	for name, r := range raw.Events {
		ev := &eventpb.Event{}
		if err := protojson.Unmarshal(r, ev); err != nil {
			t.Fatalf("event %s: %v", name, err)
		}
		if ev.GetSeq() == 0 || tb.names[ev.GetSeq()] != "" {
			t.Fatalf("event %s: seq %d missing or not unique", name, ev.GetSeq())
		}
		tb.names[ev.GetSeq()] = name
		tb.events = append(tb.events, ev)
	}
	sort.Slice(tb.events, func(i, j int) bool { return tb.events[i].GetSeq() < tb.events[j].GetSeq() })
	return tb
}

// filterServer is a plain-WebSocket streaming server holding the table's
// events (and, if asked, the sentinels after them) in its retention window.
type filterServer struct {
	srv   *server.Server
	token string
	names map[uint64]string
}

func startFilterServer(t *testing.T, tb *filterTable, sentinels bool) *filterServer {
	t.Helper()
	st := stats.NewSet()
	b := broker.New(broker.Options{}, st)
	s, err := server.New(server.Options{Listen: "127.0.0.1:0", NoTLS: true, StateDir: t.TempDir()}, b, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
		b.Close()
	})
	for _, ev := range tb.events {
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}})
	}
	last := tb.events[len(tb.events)-1].GetSeq()
	for i := range len(tb.events) + 1 {
		if !sentinels {
			break
		}
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{
			EventPayload: &eventpb.Event{Seq: last + 1 + uint64(i), Pid: sentinelPID, Pname: "sentinel"}}})
	}
	return &filterServer{srv: s, token: s.Token(), names: tb.names}
}

func (fs *filterServer) url(scheme, path string) string {
	return scheme + "://" + fs.srv.Addr().String() + path
}

func withSentinel(f string) string {
	if strings.TrimSpace(f) == "" {
		return f // everything, the sentinels too
	}
	return fmt.Sprintf("(%s) | pid=%d", f, sentinelPID)
}

func (tb *filterTable) want(match []string) []string {
	w := slices.Clone(match)
	sort.Strings(w)
	return w
}

func (tb *filterTable) named(seqs []uint64) []string {
	var out []string
	for _, s := range seqs {
		out = append(out, tb.names[s])
	}
	sort.Strings(out)
	return out
}

func TestFilterMeansTheSameEverywhere(t *testing.T) {
	tb := loadFilterTable(t)
	fs := startFilterServer(t, tb, true)
	hs := startFilterServer(t, tb, false) // for HAR: the table's events only
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()

	for _, c := range tb.cases {
		want := tb.want(c.Match)
		t.Run(c.Filter, func(t *testing.T) {
			// The forwarder's filter (either syntax is accepted; the
			// table's filters must all mean the same through it).
			ff, err := forward.ParseFilter(c.Filter)
			if err != nil {
				t.Fatalf("forward: %v", err)
			}
			var seqs []uint64
			for _, ev := range tb.events {
				if ff.Match(ev) {
					seqs = append(seqs, ev.GetSeq())
				}
			}
			if got := tb.named(seqs); !slices.Equal(got, want) {
				t.Errorf("forward filter selects %v, want %v", got, want)
			}

			// client.Filters over the stream server.
			if got := tb.named(clientSelect(ctx, t, fs, client.Filters{Filter: withSentinel(c.Filter)})); !slices.Equal(got, want) {
				t.Errorf("client.Filters (stream server) selects %v, want %v", got, want)
			}

			// tlstap watch --filter.
			if got := tb.named(watchSelect(t, fs, 0, "--filter", withSentinel(c.Filter))); !slices.Equal(got, want) {
				t.Errorf("tlstap watch --filter selects %v, want %v", got, want)
			}

			// GET /api/v1/har: the document the HAR writer makes of
			// exactly the wanted events.
			got := harGet(ctx, t, hc, hs, url.Values{"filter": {c.Filter}, "since": {"0"}})
			var exp bytes.Buffer
			hw := har.NewWriter(&exp, har.Options{Creator: "tlstap"})
			for _, ev := range tb.events {
				if slices.Contains(c.Match, tb.names[ev.GetSeq()]) {
					if err := hw.Add(ev); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := hw.Close(); err != nil {
				t.Fatal(err)
			}
			if got != exp.String() {
				t.Errorf("GET /api/v1/har?filter= answered\n%s\nwant the HAR of %v:\n%s", got, want, exp.String())
			}
		})
	}
}

// TestOldSpellingsMeanTheirExpression: each older spelling selects what
// the expression docs/filters.md equates it with, through the user that
// accepts it.
func TestOldSpellingsMeanTheirExpression(t *testing.T) {
	tb := loadFilterTable(t)
	fs := startFilterServer(t, tb, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	expr := func(f string) []string {
		return tb.named(clientSelect(ctx, t, fs, client.Filters{Filter: withSentinel(f)}))
	}
	for _, tt := range []struct {
		old  client.Filters
		flag []string
		expr string
	}{
		{client.Filters{PIDs: []int64{42, 7}, Types: []string{"request"}}, []string{"--pid", "42,7", "--type", "request"}, "pid=42,7 & type=request"},
		{client.Filters{Hosts: []string{"*.example.com", "example.com"}}, []string{"--host", "*.example.com", "--host", "example.com"}, "host=*.example.com,example.com"},
		{client.Filters{Pnames: []string{"curl"}, Ports: []uint16{8443}}, []string{"--pname", "curl", "--port", "8443"}, "comm=curl & port=8443"},
		{client.Filters{Nodes: []string{"web-2"}, Types: []string{"http2-response"}}, []string{"--node", "web-2", "--type", "http2-response"}, "node=web-2 & type=http2-response"},
		{client.Filters{Containers: []string{"3f2a"}, Types: []string{"0", "1"}}, []string{"--container", "3f2a", "--type", "0,1"}, "container=3f2a & type=0,1"},
		{client.Filters{PIDs: []int64{42}, Filter: "~s"}, []string{"--pid", "42", "--filter", "~s"}, "pid=42 & ~s"},
	} {
		want := expr(tt.expr)
		if len(want) == 0 {
			t.Fatalf("%q selects nothing: a useless row", tt.expr)
		}
		// The stream query the old fields make, judged in process over
		// every event: exactly the expression's selection.
		q, err := server.ParseQuery(tt.old.Values())
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, ev := range tb.events {
			if q.Match(&broker.Entry{Msg: &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}}}) {
				seqs = append(seqs, ev.GetSeq())
			}
		}
		if got := tb.named(seqs); !slices.Equal(got, want) {
			t.Errorf("stream query %s selects %v, %q selects %v", tt.old.Values().Encode(), got, tt.expr, want)
		}
		// Over the network the old fields cannot let the sentinel
		// through; the first len(want) events in seq order must be the
		// wanted ones.
		if got := tb.named(clientSelectN(ctx, t, fs, tt.old, len(want))); !slices.Equal(got, want) {
			t.Errorf("client.Filters %+v selects %v, %q selects %v", tt.old, got, tt.expr, want)
		}
		if got := tb.named(watchSelect(t, fs, len(want), tt.flag...)); !slices.Equal(got, want) {
			t.Errorf("tlstap watch %q selects %v, %q selects %v", tt.flag, got, tt.expr, want)
		}
	}
	// --forward-filter: the old syntax against its expression.
	for _, tt := range []struct{ old, expr string }{
		{"application/json,text/*", "ct=application/json,text/*"},
		{"text/*,method=GET|POST,method!=POST", "ct=text/* & method=GET & !method=POST"},
		{"host=*.example.com,path=/api/*", "host=*.example.com & path=/api/*"},
		{"pname=curl,type=http1-*", "comm=curl & type=http1-*"},
	} {
		want := expr(tt.expr)
		if len(want) == 0 {
			t.Fatalf("%q selects nothing: a useless row", tt.expr)
		}
		f, err := forward.ParseFilter(tt.old)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, ev := range tb.events {
			if f.Match(ev) {
				seqs = append(seqs, ev.GetSeq())
			}
		}
		if got := tb.named(seqs); !slices.Equal(got, want) {
			t.Errorf("--forward-filter %q selects %v, %q selects %v", tt.old, got, tt.expr, want)
		}
	}
}

// TestBadFilterEverywhere: a filter that does not parse is refused by
// every user with the parser's message, never read as "everything".
func TestBadFilterEverywhere(t *testing.T) {
	tb := loadFilterTable(t)
	fs := startFilterServer(t, tb, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	for _, e := range tb.errors {
		if len(e.Filter) > 1000 {
			continue // too long for a command line in a test name; the parser tests cover it
		}
		t.Run(e.Filter, func(t *testing.T) {
			// Stream: 400 with the message, through the client.
			_, err := client.Dial(ctx, client.Options{URL: fs.url("ws", "/ws"), Token: fs.token, NoReconnect: true,
				Filters: client.Filters{Filter: e.Filter}})
			if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), e.Error) {
				t.Errorf("client.Dial: %v, want a 400 naming %q", err, e.Error)
			}
			// HAR.
			req, _ := http.NewRequestWithContext(ctx, "GET", fs.url("http", "/api/v1/har?"+url.Values{"filter": {e.Filter}}.Encode()), nil)
			req.Header.Set("Authorization", "Bearer "+fs.token)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), e.Error) {
				t.Errorf("HAR: %d %s, want 400 naming %q", resp.StatusCode, body, e.Error)
			}
			// Forwarder, except where its old syntax gives the text a
			// meaning (docs/filters.md, "Older spellings").
			if ff, err := forward.ParseFilter(e.Filter); err == nil && !oldForwardSyntax[e.Filter] {
				t.Errorf("forward.ParseFilter accepted it as %q", ff.Expr())
			} else if err != nil && oldForwardSyntax[e.Filter] {
				t.Errorf("forward.ParseFilter: %v; the old syntax gives it a meaning", err)
			}
			// tlstap watch: a usage error before connecting.
			code, _, stderr := runMain(t, "watch", fs.url("ws", "/ws"), "--token", fs.token, "--filter", e.Filter)
			if code != 2 || !strings.Contains(stderr, e.Error) {
				t.Errorf("watch: exit code %d, stderr %q; want 2 naming %q", code, stderr, e.Error)
			}
		})
	}
}

// oldForwardSyntax: texts of the error table that are valid old
// --forward-filters.
var oldForwardSyntax = map[string]bool{
	"application/json": true, // a bare content type
}

// clientSelect reads the retained window through client.Filters until
// the sentinel and returns the seqs of the events before it.
func clientSelect(ctx context.Context, t *testing.T, fs *filterServer, f client.Filters) []uint64 {
	t.Helper()
	return clientRead(ctx, t, fs, f, -1)
}

// clientSelectN reads n events, or up to the sentinel.
func clientSelectN(ctx context.Context, t *testing.T, fs *filterServer, f client.Filters, n int) []uint64 {
	t.Helper()
	return clientRead(ctx, t, fs, f, n)
}

func clientRead(ctx context.Context, t *testing.T, fs *filterServer, f client.Filters, n int) []uint64 {
	t.Helper()
	c, err := client.Dial(ctx, client.Options{URL: fs.url("ws", "/ws"), Token: fs.token, Filters: f, Replay: true, NoReconnect: true})
	if err != nil {
		t.Fatalf("client.Dial: %v", err)
	}
	defer c.Close()
	var seqs []uint64
	for n != 0 {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("client.Next: %v", err)
		}
		ev := m.GetEventPayload()
		if ev == nil {
			continue
		}
		if ev.GetPid() == sentinelPID {
			break
		}
		seqs = append(seqs, ev.GetSeq())
		n--
	}
	return seqs
}

// watchSelect runs tlstap watch with args over the retained window: it
// returns the seqs printed before the sentinel, or, with count > 0, the
// first count printed.
func watchSelect(t *testing.T, fs *filterServer, count int, args ...string) []uint64 {
	t.Helper()
	n := count
	if n <= 0 {
		n = len(fs.names) + 1 // ends among the sentinels, see sentinelPID
	}
	argv := append([]string{"watch", fs.url("ws", "/ws"), "--token", fs.token, "--since", "0", "--json", "--no-logs",
		"--count", strconv.Itoa(n)}, args...)
	code, stdout, stderr := runMain(t, argv...)
	if code != 0 {
		t.Fatalf("watch: exit code %d: %s", code, stderr)
	}
	var seqs []uint64
	sentinel := false
	for line := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var ev struct {
			Seq uint64 `json:"seq"`
			PID int64  `json:"pid"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("watch printed %q: %v", line, err)
		}
		if ev.PID == sentinelPID {
			sentinel = true
			break
		}
		seqs = append(seqs, ev.Seq)
	}
	if !sentinel && count <= 0 {
		t.Fatalf("watch ended before the sentinel: %s", stdout)
	}
	return seqs
}

func harGet(ctx context.Context, t *testing.T, hc *http.Client, fs *filterServer, q url.Values) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", fs.url("http", "/api/v1/har?"+q.Encode()), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+fs.token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HAR: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// TestFilterLive: against a live 'tlstap tls' capturing curl for real, one
// filter text selects the same events from the stream (client.Filters)
// and for the webhook forwarder (--forward-filter), and --comm (the
// capture-side filter, pushed into the BPF maps through the filter model)
// keeps every other process out.
func TestFilterLive(t *testing.T) {
	testenv.RequireRoot(t, "live capture (CAP_BPF, CAP_PERFMON)")
	const expr = "~m POST & ~c 5xx"
	dir := t.TempDir()
	curlPath, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	curl := filepath.Join(dir, "tlstapf-curl") // its comm selects this test's curls
	if err := os.Symlink(curlPath, curl); err != nil {
		t.Fatal(err)
	}
	app := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, "done")
	}))
	defer app.Close()

	var (
		hookMu sync.Mutex
		hooked []map[string]any
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			hookMu.Lock()
			hooked = append(hooked, ev)
			hookMu.Unlock()
		}
	}))
	defer hook.Close()

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	const token = "filter-live-test-token-0123456789"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "tls", "--listen", addr, "--tls=false", "--token", token, "--state-dir", dir, "-o", "none",
		"--comm", "tlstapf-curl", "--forward-url", hook.URL, "--forward-filter", expr)
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	var c *client.Client
	for {
		c, err = client.Dial(ctx, client.Options{URL: "ws://" + addr + "/ws", Token: token, Filters: client.Filters{Filter: expr}})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no stream: %v\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.Close()

	// Unfiltered, the stream would carry a GET and its 200, a POST and its
	// 500, per round, and plain curl's (not selected by --comm) too.
	got := make(chan *eventpb.Event, 64)
	go func() {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				close(got)
				return
			}
			if ev := m.GetEventPayload(); ev != nil {
				got <- ev
			}
		}
	}()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	var streamed []*eventpb.Event
	for round := 0; len(streamed) == 0; round++ {
		for _, args := range [][]string{
			{curl, "-sk", "--http1.1", app.URL + fmt.Sprintf("/get-%d", round)},
			{curl, "-sk", "--http1.1", "-d", "x=1", app.URL + fmt.Sprintf("/post-%d", round)},
			{"curl", "-sk", "--http1.1", "-d", "x=1", app.URL + "/other-process"},
		} {
			if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", args, err, out)
			}
		}
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatalf("stream ended: %v\n%s", c.Err(), stderr.String())
			}
			streamed = append(streamed, ev)
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no event selected by %q\n%s", expr, stderr.String())
		}
	}
	for _, ev := range streamed {
		if ev.GetMethod() != "POST" || ev.GetStatus() != 500 || ev.GetPname() != "tlstapf-curl" {
			t.Errorf("stream with %q delivered %s %s %d from %s", expr, ev.GetMethod(), ev.GetPath(), ev.GetStatus(), ev.GetPname())
		}
	}
	// The webhook gets the same selection; wait until it has one.
	for {
		hookMu.Lock()
		n := len(hooked)
		hookMu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the webhook got nothing for %q\n%s", expr, stderr.String())
		case <-tick.C:
		}
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	for _, ev := range hooked {
		if ev["method"] != "POST" || ev["status"] != float64(500) || ev["pname"] != "tlstapf-curl" {
			t.Errorf("webhook with %q got method %v status %v path %v from %v", expr, ev["method"], ev["status"], ev["path"], ev["pname"])
		}
	}
}
