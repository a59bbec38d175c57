package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/config"
)

func TestGetPatchPut(t *testing.T) {
	e := newEnv(t, config.Default())
	res := e.do(request{method: "GET", path: "/api/v1/config", ctype: "-"})
	got := decode[api.ConfigBody](t, res.body)
	if res.status != 200 || res.header.Get("ETag") != `"1"` || got.Revision != 1 || !config.Equal(got.Config, config.Default()) {
		t.Fatalf("GET: %d %s %s", res.status, res.header.Get("ETag"), res.body)
	}

	res = e.do(request{method: "PATCH", path: "/api/v1/config", ctype: "application/merge-patch+json",
		body: `{"capture":{"pids":[42]},"pipeline":{"tsize":16}}`, header: map[string]string{"If-Match": `"1"`}})
	got = decode[api.ConfigBody](t, res.body)
	if res.status != 200 || res.header.Get("ETag") != `"2"` || got.Revision != 2 ||
		!slices.Equal(got.Config.Capture.PIDs, []uint32{42}) || got.Config.Pipeline.TSize != 16 {
		t.Fatalf("PATCH: %d %s", res.status, res.body)
	}
	if live := e.applier.live; live.Pipeline.TSize != 16 || live.Capture.PIDs[0] != 42 {
		t.Errorf("applier saw %+v", live)
	}

	// application/json is accepted for PATCH too, and If-Match unquoted.
	res = e.do(request{method: "PATCH", path: "/api/v1/config", body: `{"output":{"hex":true}}`, header: map[string]string{"If-Match": "2"}})
	if res.status != 200 || res.header.Get("ETag") != `"3"` {
		t.Fatalf("PATCH json: %d %s", res.status, res.body)
	}

	// PUT replaces: what it leaves out takes the default.
	res = e.do(request{method: "PUT", path: "/api/v1/config", body: `{"output":{"format":"json"}}`, header: map[string]string{"If-Match": `W/"3", "9"`}})
	got = decode[api.ConfigBody](t, res.body)
	want := config.Default()
	want.Output.Format = "json"
	if res.status != 200 || got.Revision != 4 || !config.Equal(got.Config, want) {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}

	// A change to nothing keeps the revision.
	res = e.patch(`{"output":{"format":"json"}}`)
	if got := decode[api.ConfigBody](t, res.body); res.status != 200 || got.Revision != 4 {
		t.Errorf("no-op PATCH: %d %s", res.status, res.body)
	}
	if n := e.applier.calls(); n != 3 {
		t.Errorf("applier called %d times, want 3", n)
	}
}

// Every bad request gets its documented status, and leaves the running
// configuration and revision as they were.
func TestBadRequests(t *testing.T) {
	initial := config.Default()
	initial.Capture.PIDs = []uint32{7}
	e := newEnv(t, initial)
	big := `{"capture":{"comms":["` + strings.Repeat("a", api.MaxBody) + `"]}}`
	deep := strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000)
	outside := t.TempDir()
	const cfgPath = "/api/v1/config"
	tests := []struct {
		name   string
		req    request
		status int
		field  string // a field the 400 body must name
	}{
		{"malformed JSON", request{method: "PATCH", path: cfgPath, body: `{"pipeline":`}, 400, ""},
		{"malformed JSON PUT", request{method: "PUT", path: cfgPath, body: `{,}`}, 400, ""},
		{"trailing garbage", request{method: "PUT", path: cfgPath, body: `{} x`}, 400, ""},
		{"two objects", request{method: "PATCH", path: cfgPath, body: `{}{}`}, 400, ""},
		{"empty body", request{method: "PUT", path: cfgPath, body: ``}, 400, ""},
		{"wrong type", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"tsize":"big"}}`}, 400, "pipeline.tsize"},
		{"wrong type in list", request{method: "PATCH", path: cfgPath, body: `{"capture":{"pids":["1"]}}`}, 400, "capture.pids[0]"},
		{"unknown field", request{method: "PATCH", path: cfgPath, body: `{"capture":{"pid":[1]}}`}, 400, "capture.pid"},
		{"unknown top-level field", request{method: "PUT", path: cfgPath, body: `{"debug":true}`}, 400, "debug"},
		{"negative tsize", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"tsize":-1}}`}, 400, "pipeline.tsize"},
		{"bad duration", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"idle_timeout":"fast"}}`}, 400, ""},
		{"zero duration", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"idle_timeout":"0s"}}`}, 400, "pipeline.idle_timeout"},
		{"pid 0", request{method: "PATCH", path: cfgPath, body: `{"capture":{"pids":[1,0]}}`}, 400, "capture.pids[1]"},
		{"comm too long", request{method: "PATCH", path: cfgPath, body: `{"capture":{"comms":["abcdefghijklmnop"]}}`}, 400, "capture.comms[0]"},
		{"relative lib", request{method: "PATCH", path: cfgPath, body: `{"capture":{"libs":["libssl.so"]}}`}, 400, "capture.libs[0]"},
		{"unknown output format", request{method: "PATCH", path: cfgPath, body: `{"output":{"format":"yaml"}}`}, 400, "output.format"},
		{"forward not http", request{method: "PATCH", path: cfgPath, body: `{"forward":[{"url":"file:///etc/passwd"}]}`}, 400, "forward[0].url"},
		{"forward bad mode", request{method: "PATCH", path: cfgPath, body: `{"forward":[{"url":"http://127.0.0.1:1","mode":"tee"}]}`}, 400, "forward[0].mode"},
		{"sink outside state dir", request{method: "PATCH", path: cfgPath, body: fmt.Sprintf(`{"sinks":[{"addr":%q}]}`, filepath.Join(outside, "x.pb"))}, 400, "sinks[0].addr"},
		{"sink /etc/passwd", request{method: "PATCH", path: cfgPath, body: `{"sinks":[{"addr":"file:///etc/passwd"}]}`}, 400, "sinks[0].addr"},
		{"sink dot-dot", request{method: "PATCH", path: cfgPath, body: fmt.Sprintf(`{"sinks":[{"addr":%q}]}`, e.stateDir+"/../x.pb")}, 400, "sinks[0].addr"},
		{"sink bad scheme", request{method: "PATCH", path: cfgPath, body: `{"sinks":[{"addr":"udp://127.0.0.1:1"}]}`}, 400, "sinks[0].addr"},
		{"merge patch not an object", request{method: "PATCH", path: cfgPath, body: `[{"op":"replace","path":"/pipeline/tsize","value":1}]`}, 400, ""},
		{"merge patch null", request{method: "PATCH", path: cfgPath, body: `null`}, 400, ""},
		{"too deep", request{method: "PATCH", path: cfgPath, body: deep}, 400, ""},
		{"text/plain", request{method: "PATCH", path: cfgPath, ctype: "text/plain", body: `{"pipeline":{"tsize":1}}`}, 415, ""},
		{"form", request{method: "PUT", path: cfgPath, ctype: "application/x-www-form-urlencoded", body: `a=b`}, 415, ""},
		{"no content type", request{method: "PUT", path: cfgPath, ctype: "-", body: `{}`}, 415, ""},
		{"merge-patch on PUT", request{method: "PUT", path: cfgPath, ctype: "application/merge-patch+json", body: `{}`}, 415, ""},
		{"latin1 charset", request{method: "PATCH", path: cfgPath, ctype: "application/json; charset=latin1", body: `{}`}, 415, ""},
		{"no token", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"tsize":1}}`, noToken: true}, 401, ""},
		{"wrong token", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"tsize":1}}`, noToken: true, header: map[string]string{"Authorization": "Bearer nope-nope-nope-nope"}}, 401, ""},
		{"GET without token", request{method: "GET", path: cfgPath, ctype: "-", noToken: true}, 401, ""},
		{"stale If-Match", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"tsize":1}}`, header: map[string]string{"If-Match": `"0"`}}, 412, ""},
		{"bad If-Match", request{method: "PATCH", path: cfgPath, body: `{"pipeline":{"tsize":1}}`, header: map[string]string{"If-Match": `"abc"`}}, 400, ""},
		{"oversized body", request{method: "PUT", path: cfgPath, body: big}, 413, ""},
		{"POST not allowed", request{method: "POST", path: cfgPath, body: `{}`}, 405, ""},
		{"ecapture text/plain", request{method: "POST", path: "/tls", ctype: "text/plain", body: `{"pid":1}`}, 415, ""},
		{"ecapture no token", request{method: "POST", path: "/openssl", body: `{"pid":1}`, noToken: true}, 401, ""},
		{"ecapture pcapfile", request{method: "POST", path: "/tls", body: `{"pid":1,"model":"pcap","pcapfile":"/etc/shadow"}`}, 400, ""},
		{"ecapture keylog", request{method: "POST", path: "/boringssl", body: `{"keylog":"/root/.bashrc"}`}, 400, ""},
		{"ecapture bad JSON", request{method: "POST", path: "/tls", body: `{"pid":`}, 400, ""},
		{"ecapture wrong type", request{method: "POST", path: "/tls", body: `{"pid":"1"}`}, 400, ""},
		{"metrics without token", request{method: "GET", path: "/metrics", ctype: "-", noToken: true}, 401, ""},
		{"status without token", request{method: "GET", path: "/api/v1/status", ctype: "-", noToken: true}, 401, ""},
	}
	wantCfg, wantRev := e.snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(tt.req)
			if res.status != tt.status {
				t.Errorf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			if tt.status != 401 && tt.status != 405 && !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type %q", res.header.Get("Content-Type"))
			}
			if tt.field != "" {
				body := decode[struct {
					Error  string
					Fields []config.FieldError
				}](t, res.body)
				if !slices.ContainsFunc(body.Fields, func(f config.FieldError) bool { return f.Field == tt.field && f.Reason != "" }) {
					t.Errorf("body %s does not name field %s", res.body, tt.field)
				}
			}
			if c, rev := e.snapshot(); rev != wantRev || !sameConfig(c, wantCfg) {
				t.Errorf("config changed to revision %d: %+v", rev, c)
			}
		})
	}
	if n := e.applier.calls(); n != 0 {
		t.Errorf("applier called %d times", n)
	}
}

func TestApplyFailureKeepsConfig(t *testing.T) {
	e := newEnv(t, config.Default())
	for _, tt := range []struct {
		err    error
		status int
	}{
		{errors.New("attach /x: no SSL_write"), http.StatusConflict},
		{fmt.Errorf("capture: %w", api.ErrNotApplicable), http.StatusConflict},
		{fmt.Errorf("attach: boom; %w: detach failed", api.ErrRollback), http.StatusInternalServerError},
	} {
		e.applier.setFail(tt.err)
		res := e.patch(`{"pipeline":{"tsize":3}}`)
		if res.status != tt.status || !strings.Contains(string(res.body), tt.err.Error()) {
			t.Errorf("%v: %d %s, want %d with the reason", tt.err, res.status, res.body, tt.status)
		}
		if c, rev := e.snapshot(); rev != 1 || c.Pipeline.TSize != 0 {
			t.Errorf("after a failed apply: revision %d, tsize %d", rev, c.Pipeline.TSize)
		}
	}
	e.applier.setFail(nil)
	if res := e.patch(`{"pipeline":{"tsize":3}}`); res.status != 200 {
		t.Errorf("after failures: %d %s", res.status, res.body)
	}
}

// Many clients patching at once: every success has its own revision, the
// revisions have no gaps, and the final configuration is the one the
// last revision reported. With If-Match read-modify-write, no update is
// lost.
func TestConcurrentPatches(t *testing.T) {
	e := newEnv(t, config.Default())
	const clients, each = 8, 10
	var mu sync.Mutex
	byRev := map[uint64]int{} // revision -> tsize it set
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				tsize := 1 + c*each + i
				res := e.patch(fmt.Sprintf(`{"pipeline":{"tsize":%d}}`, tsize))
				if res.status != 200 {
					t.Errorf("PATCH: %d %s", res.status, res.body)
					return
				}
				body := decode[api.ConfigBody](t, res.body)
				mu.Lock()
				if _, dup := byRev[body.Revision]; dup {
					t.Errorf("revision %d reported twice", body.Revision)
				}
				byRev[body.Revision] = tsize
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for r := uint64(2); r <= clients*each+1; r++ {
		if _, ok := byRev[r]; !ok {
			t.Errorf("revision %d missing", r)
		}
	}
	final, rev := e.snapshot()
	if rev != clients*each+1 || final.Pipeline.TSize != byRev[rev] || e.applier.live.Pipeline.TSize != byRev[rev] {
		t.Errorf("final revision %d tsize %d, applier %d; revision %d set %d", rev, final.Pipeline.TSize, e.applier.live.Pipeline.TSize, rev, byRev[rev])
	}

	// Read-modify-write of a list with If-Match: each client adds its pid.
	for c := range clients {
		wg.Go(func() {
			for {
				res := e.do(request{method: "GET", path: "/api/v1/config", ctype: "-"})
				cur := decode[api.ConfigBody](t, res.body)
				pids := append(cur.Config.Capture.PIDs, uint32(1000+c))
				b, _ := jsonMarshal(map[string]any{"capture": map[string]any{"pids": pids}})
				res = e.do(request{method: "PATCH", path: "/api/v1/config", ctype: "application/merge-patch+json", body: b,
					header: map[string]string{"If-Match": strconv.Quote(strconv.FormatUint(cur.Revision, 10))}})
				if res.status == http.StatusPreconditionFailed {
					continue
				}
				if res.status != 200 {
					t.Errorf("PATCH: %d %s", res.status, res.body)
				}
				return
			}
		})
	}
	wg.Wait()
	final, _ = e.snapshot()
	pids := slices.Sorted(slices.Values(final.Capture.PIDs))
	if len(pids) != clients || pids[0] != 1000 || pids[clients-1] != 1000+clients-1 {
		t.Errorf("pids %v: updates were lost", pids)
	}
}

type plainMux struct{ *http.ServeMux }

func (m plainMux) Handle(p string, h http.Handler, _ bool) { m.ServeMux.Handle(p, h) }

// FuzzRequests: no body sent to PATCH /api/v1/config or POST /tls makes
// the API panic or answer 5xx, and whatever it accepts is valid.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"pipeline":{"tsize":16}}`,
		`{"capture":{"pids":[42],"comms":["curl"]},"output":{"hex":true}}`,
		`{"pid": 0, "uid": 0, "debug": false, "hex": false, "btf": 0, "per_cpu_map_size": 1024, "truncate_size": 0}`,
		`{"pid": 12345, "is_hex": true, "truncate_size": 64, "model": "text"}`,
		`{"model": "pcap", "pcapfile": "/tmp/x.pcapng"}`,
		`{"sinks":[{"addr":"/etc/passwd"}]}`,
	} {
		f.Add("/api/v1/config", s)
		f.Add("/tls", s)
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		method := "PATCH"
		if path != "/api/v1/config" {
			path, method = "/tls", "POST"
		}
		a := api.New(api.Options{Config: config.Default(), StateDir: t.TempDir()})
		m := plainMux{http.NewServeMux()}
		a.Mount(m)
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		c, _ := a.Config()
		if errs := config.Validate(c); len(errs) > 0 {
			t.Fatalf("accepted an invalid config: %v", errs)
		}
	})
}
