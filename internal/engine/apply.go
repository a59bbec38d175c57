package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/forward"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/sink"
)

// CaptureControl is what a configuration change may do to a live capture
// source; *openssl.Source has it.
type CaptureControl interface {
	SetFilter(openssl.Filter) error
	AttachLib(path string) (openssl.Library, error)
	DetachLib(path string) error
	Libraries() []openssl.Library
}

var _ CaptureControl = (*openssl.Source)(nil)

// Applier applies configuration changes to a running engine in place:
// the capture filter through the BPF maps, libraries attached before
// others are detached, pipeline settings atomically, forwarders and sinks
// started and stopped one by one. Nothing restarts, so nothing goes
// uncaptured while a change applies. It implements api.Applier.
type Applier struct {
	e   *Engine
	src CaptureControl // nil: the source is a recording

	// Output, if set, is the standard output renderer; output changes are
	// refused without it.
	Output *output.Switch

	mu sync.Mutex
	// ctx is the services' parent, set when the engine runs them; services
	// added before wait in pending.
	ctx      context.Context
	running  bool
	services map[string][]*service // by identity, see serviceKey
	wg       sync.WaitGroup
}

// service is one forwarder or sink the applier runs.
type service struct {
	svc    Service
	name   string             // for the summary at exit; no credentials
	cancel context.CancelFunc // nil until started
	done   chan struct{}
}

// NewApplier returns an Applier for e, which must not be running yet: it
// registers itself as a service so that the forwarders and sinks of the
// starting configuration run, and all it started stop, with the engine.
// src is the live capture source, nil when replaying: capture changes are
// then refused as not applicable.
func (e *Engine) NewApplier(src CaptureControl) *Applier {
	a := &Applier{e: e, src: src, services: map[string][]*service{}}
	cfg := e.Opts.Config
	for _, f := range cfg.Forward {
		if err := a.add(serviceKey("forward", f), forwardName(f), func() (Service, error) { return a.newForwarder(f) }); err != nil {
			e.Log.Error("forwarder from the configuration", "url", f.URL, "err", err)
		}
	}
	for _, s := range cfg.Sinks {
		if err := a.add(serviceKey("sink", s), sinkName(s), func() (Service, error) { return a.newSink(s) }); err != nil {
			e.Log.Error("sink from the configuration", "addr", s.Addr, "err", err)
		}
	}
	e.Add(ServiceFunc(a.run))
	e.applier = a
	return a
}

// run starts what was added before the engine ran, then stops everything
// once ctx ends.
func (a *Applier) run(ctx context.Context) error {
	a.mu.Lock()
	a.ctx, a.running = ctx, true
	for _, list := range a.services {
		for _, s := range list {
			a.start(s)
		}
	}
	a.mu.Unlock()
	<-ctx.Done()
	a.mu.Lock()
	a.running = false
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// start runs s; a.mu held.
func (a *Applier) start(s *service) {
	if a.ctx == nil || s.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	s.cancel, s.done = cancel, make(chan struct{})
	a.wg.Go(func() {
		defer close(s.done)
		if err := s.svc.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			a.e.Log.Error("service stopped", "err", err)
		}
	})
}

// stop ends s and waits for it; a service never started is run with an
// ended context so that it releases its broker subscription.
func stop(s *service) {
	if s.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.svc.Run(ctx)
		return
	}
	s.cancel()
	<-s.done
}

func (a *Applier) add(key, name string, build func() (Service, error)) error {
	svc, err := build()
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &service{svc: svc, name: name}
	a.services[key] = append(a.services[key], s)
	a.start(s)
	return nil
}

func serviceKey(kind string, v any) string {
	b, _ := json.Marshal(v)
	return kind + " " + string(b)
}

func (a *Applier) newForwarder(f config.Forward) (Service, error) {
	return forward.New(forward.Options{
		URLs:        []string{f.URL},
		Filter:      f.Filter,
		Method:      f.Method,
		Mode:        forward.Mode(f.Mode),
		Format:      forward.Format(f.Format),
		DialContext: a.e.Self.DialContext(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}),
	}, a.e.Broker, a.e.Stats, a.e.Log)
}

func (a *Applier) newSink(s config.Sink) (Service, error) {
	if fleet.IsURL(s.Addr) {
		if s.Format != "" && s.Format != string(sink.Protobuf) {
			return nil, fmt.Errorf("sink %s: NATS carries protobuf LogEntry messages only, not %s", s.Addr, s.Format)
		}
		p, err := fleet.NewPublisher(s.Addr, a.e.Opts.Node, a.e.Broker, a.e.Stats, a.e.Log)
		if err != nil {
			return nil, err
		}
		p.DialWith(a.e.Self.DialContext(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}))
		return p, nil
	}
	opts := sink.Options{Format: sink.Format(s.Format), RotateBytes: s.RotateBytes, RotateAge: time.Duration(s.RotateAge),
		DialContext: a.e.Self.DialContext(&net.Dialer{KeepAlive: 15 * time.Second})}
	return sink.New(s.Addr, opts, a.e.Broker, a.e.Stats, a.e.Log)
}

// Apply implements api.Applier. Steps run in an order that never leaves a
// gap, and each records its undo; on failure the undos run in reverse.
func (a *Applier) Apply(_ context.Context, from, to config.Config) error {
	var undo []func() error
	fail := func(err error) error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				errs = append(errs, uerr)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w; %w: %w", err, api.ErrRollback, errors.Join(errs...))
		}
		return err
	}

	fc, tc := from.Capture, to.Capture
	if !slices.Equal(fc.PIDs, tc.PIDs) || !slices.Equal(fc.UIDs, tc.UIDs) || !slices.Equal(fc.Comms, tc.Comms) {
		if a.src == nil {
			return fmt.Errorf("capture filter: %w: this run replays a recording", api.ErrNotApplicable)
		}
		if err := a.src.SetFilter(filterOf(tc)); err != nil {
			return fail(fmt.Errorf("capture filter: %w", err))
		}
		undo = append(undo, func() error { return a.src.SetFilter(filterOf(fc)) })
	}
	if !slices.Equal(fc.Libs, tc.Libs) {
		if a.src == nil {
			return fail(fmt.Errorf("capture libraries: %w: this run replays a recording", api.ErrNotApplicable))
		}
		u, err := a.swapLibs(tc.Libs)
		undo = append(undo, u...)
		if err != nil {
			return fail(err)
		}
	}

	fp, tp := from.Pipeline, to.Pipeline
	if fp != tp {
		old := a.e.Pipeline.Runtime()
		a.e.Pipeline.SetRuntime(pipeline.Runtime{TSize: tp.TSize, IdleFlush: time.Duration(tp.IdleTimeout), StreamParts: tp.StreamParts})
		undo = append(undo, func() error { a.e.Pipeline.SetRuntime(old); return nil })
	}

	if from.Output != to.Output {
		if a.Output == nil {
			return fail(fmt.Errorf("output: %w: standard output cannot change in this run", api.ErrNotApplicable))
		}
		f, err := output.ParseFormat(to.Output.Format)
		if err != nil {
			return fail(err)
		}
		a.Output.Set(f, to.Output.Hex)
		old := from.Output
		undo = append(undo, func() error {
			f, err := output.ParseFormat(old.Format)
			a.Output.Set(f, old.Hex)
			return err
		})
	}

	if err := a.swapServices(from, to); err != nil {
		return fail(err)
	}
	return nil
}

func filterOf(c config.Capture) openssl.Filter {
	return openssl.Filter{PIDs: c.PIDs, UIDs: c.UIDs, Comms: c.Comms}
}

// swapLibs attaches every library of want not attached yet, then detaches
// the attached files want does not name, so that a process using either is
// never unprobed. Files are compared by inode, as the probes are: a path
// naming an attached file under another name keeps it. An empty want
// means "discover", which cannot be redone in place: the attached
// libraries stay. It returns the undos of what it did, also on error.
func (a *Applier) swapLibs(want []string) (undo []func() error, err error) {
	if len(want) == 0 {
		return nil, nil
	}
	type fileID struct{ dev, ino uint64 }
	have := a.src.Libraries()
	attached := map[fileID]bool{}
	for _, l := range have {
		attached[fileID{l.Dev, l.Inode}] = true
	}
	keep := map[fileID]bool{}
	for _, p := range want {
		lib, err := a.src.AttachLib(p)
		if err != nil {
			return undo, fmt.Errorf("attach %s: %w", p, err)
		}
		id := fileID{lib.Dev, lib.Inode}
		keep[id] = true
		if !attached[id] {
			attached[id] = true
			undo = append(undo, func() error { return a.src.DetachLib(lib.Path) })
		}
	}
	for _, l := range have {
		if keep[fileID{l.Dev, l.Inode}] {
			continue
		}
		if err := a.src.DetachLib(l.Path); err != nil {
			return undo, fmt.Errorf("detach %s: %w", l.Path, err)
		}
		undo = append(undo, func() error { _, err := a.src.AttachLib(l.Path); return err })
	}
	return undo, nil
}

// swapServices builds and starts the forwarders and sinks to has and from
// has not, then stops those only from has. Building is where bad
// settings show, so it happens before anything runs; stopping cannot fail
// and comes last, so nothing needs undoing after it.
func (a *Applier) swapServices(from, to config.Config) error {
	type want struct {
		key   string
		name  string
		build func() (Service, error)
	}
	var fromKeys, toKeys []string
	var wants []want
	for _, f := range from.Forward {
		fromKeys = append(fromKeys, serviceKey("forward", f))
	}
	for _, s := range from.Sinks {
		fromKeys = append(fromKeys, serviceKey("sink", s))
	}
	for _, f := range to.Forward {
		k := serviceKey("forward", f)
		toKeys = append(toKeys, k)
		wants = append(wants, want{k, forwardName(f), func() (Service, error) { return a.newForwarder(f) }})
	}
	for _, s := range to.Sinks {
		k := serviceKey("sink", s)
		toKeys = append(toKeys, k)
		wants = append(wants, want{k, sinkName(s), func() (Service, error) { return a.newSink(s) }})
	}
	added := minus(wants, fromKeys, func(w want) string { return w.key })
	removed := minus(fromKeys, toKeys, func(k string) string { return k })
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}

	built := make([]*service, 0, len(added))
	for _, w := range added {
		svc, err := w.build()
		if err != nil {
			for _, s := range built {
				stop(s)
			}
			return fmt.Errorf("%s: %w", w.key, err)
		}
		built = append(built, &service{svc: svc, name: w.name})
	}

	a.mu.Lock()
	for i, w := range added {
		a.services[w.key] = append(a.services[w.key], built[i])
		a.start(built[i])
	}
	var stopping []*service
	for _, k := range removed {
		list := a.services[k]
		if len(list) == 0 {
			continue
		}
		stopping = append(stopping, list[len(list)-1])
		if len(list) == 1 {
			delete(a.services, k)
		} else {
			a.services[k] = list[:len(list)-1]
		}
	}
	a.mu.Unlock()
	for _, s := range stopping {
		stop(s)
	}
	return nil
}

// minus returns the elements of xs whose keys are not in ys, as a
// multiset: a key twice in xs and once in ys leaves one.
func minus[T any](xs []T, ys []string, key func(T) string) []T {
	left := slices.Clone(ys)
	var out []T
	for _, x := range xs {
		if i := slices.Index(left, key(x)); i >= 0 {
			left = slices.Delete(left, i, i+1)
			continue
		}
		out = append(out, x)
	}
	return out
}

// RunStatus reports the capture for /api/v1/status.
func (a *Applier) RunStatus() api.RunStatus {
	st := api.RunStatus{Source: "replay", Connections: a.e.Pipeline.Connections()}
	a.mu.Lock()
	st.Running = a.running
	a.mu.Unlock()
	for _, pr := range a.e.Pipeline.Processes() {
		st.Processes = append(st.Processes, api.Process{PID: pr.PID, Comm: pr.Comm, Connections: pr.Connections})
	}
	if a.src != nil {
		st.Source = "openssl"
		var inUse map[openssl.FileKey]int
		u, ok := a.src.(usageReporter)
		if ok {
			inUse = u.InUse()
		}
		for _, l := range a.src.Libraries() {
			st.Libraries = append(st.Libraries, api.Library{Path: l.Path, Kind: l.Kind, Version: l.Version, Found: l.Found,
				Processes: inUse[openssl.FileKey{Dev: l.Dev, Inode: l.Inode}]})
		}
		if ok {
			for _, g := range u.GoPrograms() {
				st.GoPrograms = append(st.GoPrograms, api.GoProgram{Path: g.Path, GoVersion: g.GoVersion, Stripped: g.Stripped,
					Processes: inUse[openssl.FileKey{Dev: g.Dev, Inode: g.Inode}]})
			}
		}
	}
	return st
}

// usageReporter is what a live capture source adds to CaptureControl for
// the status: its Go programs, and how many processes use each file.
type usageReporter interface {
	GoPrograms() []openssl.GoProgram
	InUse() map[openssl.FileKey]int
}

var _ usageReporter = (*openssl.Source)(nil)
