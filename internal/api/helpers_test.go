package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/stats"
)

// fakeApplier records every change and checks that changes chain: each
// one starts from the configuration the previous one produced.
type fakeApplier struct {
	t    testing.TB
	mu   sync.Mutex
	live config.Config
	n    int
	fail error // returned (and nothing applied) while set
}

func (f *fakeApplier) Apply(_ context.Context, from, to config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !config.Equal(from, f.live) {
		f.t.Errorf("Apply from %+v, but %+v is live", from, f.live)
	}
	if f.fail != nil {
		return f.fail
	}
	f.live = to
	f.n++
	return nil
}

func (f *fakeApplier) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *fakeApplier) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

// env is an API mounted on a real server on loopback, behind its token.
type env struct {
	t        testing.TB
	api      *api.API
	applier  *fakeApplier
	st       *stats.Set
	base     string // http://127.0.0.1:port
	token    string
	stateDir string
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB, initial config.Config) *env {
	t.Helper()
	st := stats.NewSet()
	b := broker.New(broker.Options{}, st)
	stateDir := t.TempDir()
	srv, err := server.New(server.Options{Listen: "127.0.0.1:0", NoTLS: true, StateDir: stateDir}, b, st, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeApplier{t: t, live: initial}
	a := api.New(api.Options{Config: initial, Applier: fa, StateDir: stateDir, Stats: st, Log: testLogger(), Version: "test"})
	a.Mount(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		b.Close()
	})
	return &env{t: t, api: a, applier: fa, st: st, base: "http://" + srv.Addr().String(), token: srv.Token(), stateDir: stateDir}
}

// request is one HTTP request; zero fields take sensible defaults.
type request struct {
	method, path string
	ctype        string // "-" for none
	body         string
	header       map[string]string
	noToken      bool
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(r request) response {
	e.t.Helper()
	req, err := http.NewRequest(r.method, e.base+r.path, bytes.NewReader([]byte(r.body)))
	if err != nil {
		e.t.Fatal(err)
	}
	if r.ctype != "-" {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if !r.noToken {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

func (e *env) patch(body string) response {
	e.t.Helper()
	return e.do(request{method: "PATCH", path: "/api/v1/config", ctype: "application/merge-patch+json", body: body})
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// snapshot is the running config and revision, to compare before and after.
func (e *env) snapshot() (config.Config, uint64) { return e.api.Config() }

func sameConfig(a, b config.Config) bool {
	return config.Equal(a, b) && slices.Equal(a.Capture.PIDs, b.Capture.PIDs)
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
