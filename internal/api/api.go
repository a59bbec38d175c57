package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/stats"
)

// MaxBody bounds request bodies; a configuration is a few kilobytes.
const MaxBody = 1 << 20

// Applier makes a new configuration live. Apply is called with appliers
// serialised, and must either apply all of to or, on error, leave from
// live (rolling back what it changed).
type Applier interface {
	Apply(ctx context.Context, from, to config.Config) error
}

// ErrRollback, wrapped in an Applier's error, says that undoing a failed
// change failed too: the running state is neither configuration.
var ErrRollback = errors.New("rollback failed")

// ErrNotApplicable, wrapped in an Applier's error, says the change cannot
// apply to this run (capture settings while replaying a recording).
var ErrNotApplicable = errors.New("not applicable")

// Options configure an API.
type Options struct {
	// Config is the configuration in force when the API starts.
	Config config.Config
	// Applier applies changes; nil accepts them without effect (tests).
	Applier Applier
	// StateDir is the only directory file sinks added through the API may
	// write in; "" refuses new file sinks.
	StateDir string
	// Stats is the counter registry reported by /api/v1/status and
	// /metrics.
	Stats *stats.Set
	// Log records every change, who made it and what changed; tlstap's log
	// also feeds the event stream.
	Log *slog.Logger
	// Status fills in what the API cannot know itself; nil leaves those
	// parts empty.
	Status func() RunStatus
	// Version is reported by /api/v1/status.
	Version string
	// Started is when the run started (default: now).
	Started time.Time
}

// API holds the running configuration and serves the endpoints.
type API struct {
	opts Options
	log  *slog.Logger

	// mu serialises changes: a request is validated, applied and committed
	// under it, so revisions never interleave.
	mu sync.Mutex
	// state guards cfg and rev for readers, so that a GET does not wait
	// for a change being applied (which may take a while: a sink drains).
	state sync.RWMutex
	cfg   config.Config
	rev   uint64
}

// New returns an API serving opts.Config as revision 1.
func New(opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Stats == nil {
		opts.Stats = stats.NewSet()
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	return &API{opts: opts, log: opts.Log, cfg: opts.Config.Clone(), rev: 1}
}

// Config returns the running configuration and its revision.
func (a *API) Config() (config.Config, uint64) {
	a.state.RLock()
	defer a.state.RUnlock()
	return a.cfg.Clone(), a.rev
}

// Mux is where handlers are mounted: server.Server's Handle has this
// signature, with auth meaning "behind the token check".
type Mux interface {
	Handle(pattern string, h http.Handler, auth bool)
}

// Mount registers every endpoint on m. Everything but /healthz requires
// the token.
func (a *API) Mount(m Mux) {
	m.Handle("GET /api/v1/config", http.HandlerFunc(a.getConfig), true)
	m.Handle("PUT /api/v1/config", http.HandlerFunc(a.putConfig), true)
	m.Handle("PATCH /api/v1/config", http.HandlerFunc(a.patchConfig), true)
	for _, p := range ecaptureTLSPaths {
		m.Handle("POST "+p, http.HandlerFunc(a.ecaptureTLS), true)
	}
	m.Handle("GET /api/v1/status", http.HandlerFunc(a.status), true)
	m.Handle("GET /metrics", a.metricsHandler(), true)
	m.Handle("GET /healthz", http.HandlerFunc(healthz), false)
}

// commitError is a failed change, with the status it answers.
type commitError struct {
	status int
	msg    string
	fields []config.FieldError
}

func (e *commitError) Error() string { return e.msg }

// update computes, validates, applies and commits one change under mu.
// ifMatch, if not nil, must accept the current revision. It returns the
// new configuration and revision.
func (a *API) update(ctx context.Context, who string, ifMatch func(uint64) bool, next func(cur config.Config) (config.Config, error)) (config.Config, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ifMatch != nil && !ifMatch(a.rev) {
		return config.Config{}, 0, &commitError{status: http.StatusPreconditionFailed,
			msg: fmt.Sprintf("If-Match does not match the current revision %d", a.rev)}
	}
	to, err := next(a.cfg.Clone())
	if err != nil {
		return config.Config{}, 0, badRequest(err)
	}
	if fe := config.CheckUpdate(a.cfg, to, a.opts.StateDir); len(fe) > 0 {
		return config.Config{}, 0, &commitError{status: http.StatusBadRequest, msg: "invalid configuration", fields: fe}
	}
	changes := config.Diff(a.cfg, to)
	if len(changes) == 0 {
		return a.cfg.Clone(), a.rev, nil
	}
	if a.opts.Applier != nil {
		if err := a.opts.Applier.Apply(ctx, a.cfg.Clone(), to.Clone()); err != nil {
			status := http.StatusConflict
			if errors.Is(err, ErrRollback) {
				status = http.StatusInternalServerError
			}
			a.log.Error("configuration change failed; previous configuration kept", "by", who, "revision", a.rev, "err", err)
			return config.Config{}, 0, &commitError{status: status, msg: "applying the configuration failed: " + err.Error()}
		}
	}
	a.state.Lock()
	a.cfg = to.Clone()
	a.rev++
	a.state.Unlock()
	attrs := []any{"by", who, "revision", a.rev}
	for _, c := range changes {
		attrs = append(attrs, slog.String(c.Field, c.Old+" -> "+c.New))
	}
	a.log.Info("configuration changed", attrs...)
	return a.cfg.Clone(), a.rev, nil
}

// badRequest turns a decoding error into a 400 with field details where
// known.
func badRequest(err error) *commitError {
	var fe config.FieldError
	if errors.As(err, &fe) {
		return &commitError{status: http.StatusBadRequest, msg: "invalid configuration", fields: []config.FieldError{fe}}
	}
	return &commitError{status: http.StatusBadRequest, msg: err.Error()}
}
