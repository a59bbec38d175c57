package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// waitTimeout bounds waits for things that must happen; it is a deadline
// for failure, not a timing assertion.
const waitTimeout = 20 * time.Second

// fakeCapture is a CaptureControl that records what it was asked, in order.
type fakeCapture struct {
	mu      sync.Mutex
	filter  openssl.Filter
	libs    []openssl.Library
	ops     []string
	badLibs []string // AttachLib fails for these
}

func (f *fakeCapture) SetFilter(fl openssl.Filter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = fl
	f.ops = append(f.ops, fmt.Sprintf("filter %v", fl.PIDs))
	return nil
}

func (f *fakeCapture) AttachLib(path string) (openssl.Library, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.badLibs, path) {
		return openssl.Library{}, errors.New("no SSL_write in " + path)
	}
	f.ops = append(f.ops, "attach "+path)
	for _, l := range f.libs {
		if l.Path == path {
			return l, nil
		}
	}
	l := openssl.Library{Path: path, Inode: uint64(len(f.libs) + 100), Kind: openssl.KindOpenSSL, Found: openssl.FoundOption}
	f.libs = append(f.libs, l)
	return l, nil
}

func (f *fakeCapture) DetachLib(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "detach "+path)
	f.libs = slices.DeleteFunc(f.libs, func(l openssl.Library) bool { return l.Path == path })
	return nil
}

func (f *fakeCapture) Libraries() []openssl.Library {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.libs)
}

func (f *fakeCapture) takeOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

// chanSource delivers the chunks a test sends.
type chanSource chan capture.Chunk

func (s chanSource) Run(ctx context.Context, out chan<- capture.Chunk) error {
	for {
		select {
		case c := <-s:
			out <- c
		case <-ctx.Done():
			return nil
		}
	}
}

// mux adapts an http.ServeMux to api.Mux, without auth: the token is the
// server package's business and tested there and in package api.
type mux struct{ *http.ServeMux }

func (m mux) Handle(pattern string, h http.Handler, _ bool) { m.ServeMux.Handle(pattern, h) }

// rig is an engine running a chanSource, with the API applying changes to
// it through an Applier.
type rig struct {
	t    *testing.T
	e    *Engine
	ap   *Applier
	api  *api.API
	src  chanSource
	sub  *broker.Subscription
	http *httptest.Server
	conn uint64
}

func newRig(t *testing.T, cfg config.Config, ctl CaptureControl) *rig {
	t.Helper()
	e := New(Options{Config: cfg, RawOnly: false, Stdout: io.Discard, Stderr: io.Discard})
	ap := e.NewApplier(ctl)
	ap.Output = output.NewSwitch(output.Format(cfg.Output.Format), cfg.Output.Hex)
	a := api.New(api.Options{Config: cfg, Applier: ap, StateDir: t.TempDir(), Stats: e.Stats, Log: e.Log, Status: ap.RunStatus})
	m := mux{http.NewServeMux()}
	a.Mount(m)
	hs := httptest.NewServer(m)
	t.Cleanup(hs.Close)
	r := &rig{t: t, e: e, ap: ap, api: a, src: make(chanSource), http: hs}
	r.sub = e.Broker.Subscribe(broker.SubOptions{Name: "test", Policy: broker.Block, Queue: 1 << 14})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, r.src) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func (r *rig) patch(body string) (int, string) {
	r.t.Helper()
	req, _ := http.NewRequest("PATCH", r.http.URL+"/api/v1/config", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/merge-patch+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// request feeds one HTTP request with a body of size bytes, numbered n,
// on a new connection of pid.
func (r *rig) request(pid uint32, n, size int) {
	r.conn++
	msg := fmt.Sprintf("POST /?n=%d HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n\r\n%s", n, size, strings.Repeat("x", size))
	r.src <- capture.Chunk{
		Time: time.Now().UnixNano(), PID: pid, TID: pid, Comm: "client", FD: 3, Conn: r.conn,
		Local:  netip.MustParseAddrPort("127.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("127.0.0.1:443"),
		Dir:    capture.Write, Kind: capture.Data, Data: []byte(msg),
	}
}

// event waits for the next event.
func (r *rig) event() *eventpb.Event {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		en, err := r.sub.Next(ctx)
		if err != nil {
			r.t.Fatalf("no event: %v", err)
		}
		if ev := en.Event(); ev != nil {
			return ev
		}
	}
}

// logLine waits for a process-log line containing all of want.
func (r *rig) logLine(want ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		en, err := r.sub.Next(ctx)
		if err != nil {
			r.t.Fatalf("no log line with %q: %v", want, err)
		}
		line := en.Msg.GetRunLog()
		if line != "" && !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(line, w) }) {
			return line
		}
	}
}

func TestApplyTSize(t *testing.T) {
	r := newRig(t, config.Default(), &fakeCapture{})
	r.request(1, 1, 100)
	if ev := r.event(); ev.GetTruncated() || !bytes.Contains(ev.GetPayload(), []byte(strings.Repeat("x", 100))) {
		t.Fatalf("before: truncated=%v payload %q", ev.GetTruncated(), ev.GetPayload())
	}
	if code, body := r.patch(`{"pipeline":{"tsize":16}}`); code != 200 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	r.logLine("configuration changed", "revision=2", "pipeline.tsize", "0 -> 16")
	r.request(1, 2, 100)
	if ev := r.event(); !ev.GetTruncated() || len(ev.GetPayload()) > 16 {
		t.Errorf("after: truncated=%v payload %d bytes", ev.GetTruncated(), len(ev.GetPayload()))
	}
	if got := r.e.Pipeline.Runtime().TSize; got != 16 {
		t.Errorf("pipeline tsize %d", got)
	}
}

func TestApplyCapture(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctl := &fakeCapture{libs: []openssl.Library{{Path: "/old/libssl.so.3", Inode: 1}}, badLibs: []string{"/bin/sh"}}
	r := newRig(t, config.Default(), ctl)

	if code, body := r.patch(`{"capture":{"pids":[42,43]}}`); code != 200 {
		t.Fatalf("PATCH pids: %d %s", code, body)
	}
	if ops := ctl.takeOps(); !slices.Equal(ops, []string{"filter [42 43]"}) {
		t.Errorf("ops %q", ops)
	}
	// New libraries are attached before the old ones are detached.
	if code, body := r.patch(fmt.Sprintf(`{"capture":{"libs":[%q]}}`, exe)); code != 200 {
		t.Fatalf("PATCH libs: %d %s", code, body)
	}
	if ops := ctl.takeOps(); !slices.Equal(ops, []string{"attach " + exe, "detach /old/libssl.so.3"}) {
		t.Errorf("ops %q", ops)
	}
	// A failure half way rolls back: the filter set first is restored.
	code, body := r.patch(`{"capture":{"pids":[7],"libs":["/bin/sh"]}}`)
	if code != http.StatusConflict || !strings.Contains(body, "no SSL_write") {
		t.Errorf("failing PATCH: %d %s", code, body)
	}
	if ops := ctl.takeOps(); !slices.Equal(ops, []string{"filter [7]", "filter [42 43]"}) {
		t.Errorf("ops %q, want the filter set and restored", ops)
	}
	if c, rev := r.api.Config(); rev != 3 || !slices.Equal(c.Capture.PIDs, []uint32{42, 43}) || !slices.Equal(c.Capture.Libs, []string{exe}) {
		t.Errorf("after the failure: revision %d %+v", rev, c.Capture)
	}
	if libs := ctl.Libraries(); len(libs) != 1 || libs[0].Path != exe {
		t.Errorf("libraries %v", libs)
	}
	st := r.ap.RunStatus()
	if st.Source != "openssl" || len(st.Libraries) != 1 || st.Libraries[0] != (api.Library{Path: exe, Kind: "openssl", Found: "option"}) {
		t.Errorf("status %+v", st)
	}
}

func TestApplyReplay(t *testing.T) {
	r := newRig(t, config.Default(), nil)
	code, body := r.patch(`{"capture":{"pids":[42]}}`)
	if code != http.StatusConflict || !strings.Contains(body, "not applicable") {
		t.Errorf("capture change in replay: %d %s", code, body)
	}
	if code, body := r.patch(`{"pipeline":{"idle_timeout":"1s"}}`); code != 200 {
		t.Errorf("pipeline change in replay: %d %s", code, body)
	}
	if got := r.e.Pipeline.Runtime().IdleFlush; got != time.Second {
		t.Errorf("idle flush %v", got)
	}
	if !r.e.Pipeline.Runtime().StreamParts {
		t.Errorf("stream parts off by default")
	}
	if code, body := r.patch(`{"pipeline":{"stream_parts":false}}`); code != 200 {
		t.Errorf("stream_parts change: %d %s", code, body)
	}
	if rt := r.e.Pipeline.Runtime(); rt.StreamParts || rt.IdleFlush != time.Second {
		t.Errorf("after stream_parts=false: %+v", rt)
	}
	// Running turns true once Run has started the applier, on its own
	// goroutine: on a loaded machine that may be after the patches above.
	for deadline := time.Now().Add(30 * time.Second); !r.ap.RunStatus().Running && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if st := r.ap.RunStatus(); st.Source != "replay" || !st.Running {
		t.Errorf("status %+v", st)
	}
}

func TestApplyOutput(t *testing.T) {
	r := newRig(t, config.Default(), nil)
	ev := &eventpb.Event{Type: 0, Payload: []byte("hello\x00world"), Pid: 1, Pname: "x"}
	render := func(rd output.Renderer) string {
		var b bytes.Buffer
		if rd != nil {
			if err := rd.Render(&b, ev); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	for _, tt := range []struct {
		patch string
		want  output.Renderer
	}{
		{`{"output":{"hex":true}}`, output.TextRenderer{Hex: true}},
		{`{"output":{"format":"json"}}`, output.JSONRenderer{}},
		{`{"output":{"format":"none"}}`, nil},
		{`{"output":{"format":"text","hex":false}}`, output.TextRenderer{}},
	} {
		if code, body := r.patch(tt.patch); code != 200 {
			t.Fatalf("%s: %d %s", tt.patch, code, body)
		}
		if got, want := render(r.ap.Output), render(tt.want); got != want {
			t.Errorf("%s: renders %q, want %q", tt.patch, got, want)
		}
	}
}

// A sink added through the API connects and receives events; removed, it
// disconnects.
func TestApplySinks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := newRig(t, config.Default(), nil)
	addr := "tcp://" + ln.Addr().String()
	if code, body := r.patch(fmt.Sprintf(`{"sinks":[{"addr":%q,"format":"json"}]}`, addr)); code != 200 {
		t.Fatalf("add sink: %d %s", code, body)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r.request(9, 1, 10)
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		t.Fatalf("sink sent nothing: %v", err)
	}
	if code, body := r.patch(`{"sinks":null}`); code != 200 {
		t.Fatalf("remove sink: %d %s", code, body)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("sink connection did not end cleanly: %v", err)
	}
	// A sink that cannot be built is refused, and nothing changes.
	if code, body := r.patch(`{"forward":[{"url":"http://127.0.0.1:1","filter":"path="}]}`); code == 200 {
		t.Errorf("bad forwarder accepted: %s", body)
	}
	if _, rev := r.api.Config(); rev != 3 {
		t.Errorf("revision %d, want 3", rev)
	}
}

// The forwarders and sinks of the starting configuration run with the
// engine.
func TestApplyInitialServices(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.Default()
	cfg.Sinks = []config.Sink{{Addr: "tcp://" + ln.Addr().String()}}
	newRig(t, cfg, nil)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

var requestNumber = regexp.MustCompile(`^GET /\?n=(\d+) HTTP/1\.1\r\n`)

// seen collects the request numbers captured per process.
type seen struct {
	mu  sync.Mutex
	ns  map[uint32][]int
	upd chan struct{}
}

func (s *seen) add(pid uint32, n int) {
	s.mu.Lock()
	s.ns[pid] = append(s.ns[pid], n)
	s.mu.Unlock()
	select {
	case s.upd <- struct{}{}:
	default:
	}
}

func (s *seen) count(pid uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ns[pid])
}

func (s *seen) of(pid uint32) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.ns[pid]...)
}

func (s *seen) waitCount(t *testing.T, pid uint32, n int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for s.count(pid) < n {
		select {
		case <-s.upd:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("pid %d: %d requests captured, waited for %d", pid, s.count(pid), n)
		}
	}
}

// consecutive reports the first break in ns, which must count up by one.
func consecutive(ns []int) error {
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return fmt.Errorf("request %d follows %d", ns[i], ns[i-1])
		}
	}
	return nil
}

// Two real curl processes make numbered requests over TLS; a PATCH of the
// pid filter keeps one. The other's requests stop being captured, and the
// kept one's continue with no request missing across the change.
func TestApplyLivePIDFilter(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	srv := testenv.StartPythonHTTPS(t, netip.MustParseAddr("127.0.0.1"), map[string][]byte{"index.html": []byte("ok\n")})
	url := srv.URL("/?n=[1-1000000]")
	// curl numbers its requests by URL globbing and keeps the connection.
	a := testenv.Start(t, "curl", "-sk", "--rate", "50/s", url)
	b := testenv.Start(t, "curl", "-sk", "--rate", "50/s", url)
	pa, pb := uint32(a.PID()), uint32(b.PID())

	cfg := config.Default()
	cfg.Output.Format = "none"
	cfg.Capture.PIDs = []uint32{pa, pb}
	e := New(Options{Config: cfg, Stdout: io.Discard, Stderr: io.Discard})
	src, err := openssl.New(openssl.Options{Filter: filterOf(cfg.Capture), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("openssl.New: %v", err)
	}
	defer src.Close()
	ap := e.NewApplier(src)
	srvAPI := api.New(api.Options{Config: cfg, Applier: ap, Stats: e.Stats, Log: e.Log})
	m := mux{http.NewServeMux()}
	srvAPI.Mount(m)
	hs := httptest.NewServer(m)
	defer hs.Close()

	got := &seen{ns: map[uint32][]int{}, upd: make(chan struct{}, 1)}
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "test", Policy: broker.Block, Queue: 1 << 14,
		Filter: func(en *broker.Entry) bool { return en.Event() != nil }})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			en, err := sub.Next(ctx)
			if err != nil {
				return
			}
			ev := en.Event()
			if mm := requestNumber.FindSubmatch(ev.GetPayload()); mm != nil {
				n, _ := strconv.Atoi(string(mm[1]))
				got.add(uint32(ev.GetPid()), n)
			}
		}
	})
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		wg.Wait()
	}()

	got.waitCount(t, pa, 10)
	got.waitCount(t, pb, 10)
	req, _ := http.NewRequest("PATCH", hs.URL+"/api/v1/config", strings.NewReader(fmt.Sprintf(`{"capture":{"pids":[%d]}}`, pa)))
	req.Header.Set("Content-Type", "application/merge-patch+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("PATCH: %d %s", res.StatusCode, body)
	}
	mark := got.count(pa)
	// Once pid a has made 15 more requests, whatever b wrote before the
	// switch has long passed the ring; b's count must not move after.
	got.waitCount(t, pa, mark+15)
	bHalf, bOut := got.count(pb), len(b.Output())
	got.waitCount(t, pa, mark+30)
	if n := got.count(pb); n != bHalf {
		t.Errorf("pid %d (filtered out): %d requests captured, then %d more", pb, bHalf, n-bHalf)
	}
	if len(b.Output()) == bOut {
		t.Errorf("pid %d stopped making requests; the test proves nothing", pb)
	}
	for _, pid := range []uint32{pa, pb} {
		if err := consecutive(got.of(pid)); err != nil {
			t.Errorf("pid %d: %v (captured %v)", pid, err, got.of(pid))
		}
	}
	if n := got.count(pa); n < mark+30 {
		t.Errorf("pid %d: %d requests", pa, n)
	}
}

// TestRunStatusProcesses: the status lists each attached file with the
// number of processes that map it now. A private copy of libssl is mapped
// by exactly the two Python processes started here, then by one.
func TestRunStatusProcesses(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	dir := t.TempDir()
	for _, name := range []string{"libssl.so.3", "libcrypto.so.3"} {
		b, err := os.ReadFile(filepath.Join("/usr/lib/x86_64-linux-gnu", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lib := filepath.Join(dir, "libssl.so.3")
	src, err := openssl.New(openssl.Options{Libs: []string{lib}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("openssl.New: %v", err)
	}
	defer src.Close()
	cfg := config.Default()
	cfg.Output.Format = "none"
	ap := New(Options{Config: cfg, Stdout: io.Discard, Stderr: io.Discard}).NewApplier(src)

	var procs []*testenv.Proc
	for range 2 {
		cmd := exec.Command(testenv.Python(t), "-c", "import ssl, time; print('up', flush=True); time.sleep(600)")
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
		p := testenv.StartCmd(t, cmd)
		ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
		err := p.WaitOutput(ctx, "up")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	processes := func() int {
		st := ap.RunStatus()
		if len(st.Libraries) != 1 || st.Libraries[0].Path != lib || st.Libraries[0].Kind != openssl.KindOpenSSL {
			t.Fatalf("status libraries %+v, want only %s", st.Libraries, lib)
		}
		return st.Libraries[0].Processes
	}
	if n := processes(); n != 2 {
		t.Errorf("%s used by %d processes, want 2", lib, n)
	}
	procs[0].Cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
	defer cancel()
	procs[0].Wait(ctx)
	if n := processes(); n != 1 {
		t.Errorf("%s used by %d processes after one exited, want 1", lib, n)
	}
}
