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

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/forward"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/sink"
)

// senders are the forwarders and sinks of a run: those of the starting
// configuration, built by New, and those the Applier adds. Engine.Run
// starts them with the other services and drains them at exit.
type senders struct {
	e *Engine

	mu sync.Mutex
	// ctx is the services' parent, set when the engine runs them; senders
	// added before wait, unstarted, in byKey.
	ctx     context.Context
	running bool
	byKey   map[string][]*service // by identity, see serviceKey
	wg      sync.WaitGroup
}

// service is one forwarder or sink.
type service struct {
	svc    Service
	name   string             // for the summary at exit; no credentials
	cancel context.CancelFunc // nil until started
	done   chan struct{}
}

// newSenders builds the forwarders and sinks of cfg. A destination that
// cannot be built is logged and left out; config.Validate has already
// refused what is invalid, so what fails here is the world (a file that
// cannot be created).
func newSenders(e *Engine, cfg config.Config) *senders {
	s := &senders{e: e, byKey: map[string][]*service{}}
	for _, f := range cfg.Forward {
		if err := s.add(serviceKey("forward", f), forwardName(f), func() (Service, error) { return s.newForwarder(f) }); err != nil {
			e.Log.Error("forwarder from the configuration", "url", f.URL, "err", err)
		}
	}
	for _, k := range cfg.Sinks {
		if err := s.add(serviceKey("sink", k), sinkName(k), func() (Service, error) { return s.newSink(k) }); err != nil {
			e.Log.Error("sink from the configuration", "addr", k.Addr, "err", err)
		}
	}
	return s
}

// begin starts what was added before the engine ran. The engine calls it
// before the source runs, not from run's goroutine: a source that ends at
// once (a short recording with --exit) would otherwise reach the drain
// before any forwarder was started, and the drain waits only for started
// ones.
func (s *senders) begin(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx, s.running = ctx, true
	for _, list := range s.byKey {
		for _, sv := range list {
			s.start(sv)
		}
	}
}

// run stops everything once ctx ends; begin has started it.
func (s *senders) run(ctx context.Context) {
	<-ctx.Done()
	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
	s.wg.Wait()
}

// start runs sv; s.mu held.
func (s *senders) start(sv *service) {
	if s.ctx == nil || sv.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	sv.cancel, sv.done = cancel, make(chan struct{})
	s.wg.Go(func() {
		defer close(sv.done)
		if err := sv.svc.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.e.Log.Error("service stopped", "err", err)
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

func (s *senders) add(key, name string, build func() (Service, error)) error {
	svc, err := build()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := &service{svc: svc, name: name}
	s.byKey[key] = append(s.byKey[key], sv)
	s.start(sv)
	return nil
}

func serviceKey(kind string, v any) string {
	b, _ := json.Marshal(v)
	return kind + " " + string(b)
}

func (s *senders) newForwarder(f config.Forward) (Service, error) {
	return forward.New(forward.Options{
		URLs:        []string{f.URL},
		Filter:      f.Filter,
		Method:      f.Method,
		Mode:        forward.Mode(f.Mode),
		Format:      output.Format(f.Format),
		DialContext: s.e.Self.DialContext(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}),
	}, s.e.Broker, s.e.Stats, s.e.Log)
}

func (s *senders) newSink(k config.Sink) (Service, error) {
	if fleet.IsURL(k.Addr) {
		if k.Format != "" && k.Format != string(output.Protobuf) {
			return nil, fmt.Errorf("sink %s: NATS carries protobuf LogEntry messages only, not %s", k.Addr, k.Format)
		}
		p, err := fleet.NewPublisher(k.Addr, s.e.Opts.Node, s.e.Broker, s.e.Stats, s.e.Log)
		if err != nil {
			return nil, err
		}
		p.DialWith(s.e.Self.DialContext(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}))
		return p, nil
	}
	opts := sink.Options{Format: output.Format(k.Format), RotateBytes: k.RotateBytes, RotateAge: time.Duration(k.RotateAge),
		DialContext: s.e.Self.DialContext(&net.Dialer{KeepAlive: 15 * time.Second})}
	return sink.New(k.Addr, opts, s.e.Broker, s.e.Stats, s.e.Log)
}

// swap builds and starts the forwarders and sinks to has and from has
// not, then stops those only from has. Building is where bad settings
// show, so it happens before anything runs; stopping cannot fail and
// comes last, so nothing needs undoing after it.
func (s *senders) swap(from, to config.Config) error {
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
	for _, k := range from.Sinks {
		fromKeys = append(fromKeys, serviceKey("sink", k))
	}
	for _, f := range to.Forward {
		k := serviceKey("forward", f)
		toKeys = append(toKeys, k)
		wants = append(wants, want{k, forwardName(f), func() (Service, error) { return s.newForwarder(f) }})
	}
	for _, sk := range to.Sinks {
		k := serviceKey("sink", sk)
		toKeys = append(toKeys, k)
		wants = append(wants, want{k, sinkName(sk), func() (Service, error) { return s.newSink(sk) }})
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
			for _, b := range built {
				stop(b)
			}
			return fmt.Errorf("%s: %w", w.key, err)
		}
		built = append(built, &service{svc: svc, name: w.name})
	}

	s.mu.Lock()
	for i, w := range added {
		s.byKey[w.key] = append(s.byKey[w.key], built[i])
		s.start(built[i])
	}
	var stopping []*service
	for _, k := range removed {
		list := s.byKey[k]
		if len(list) == 0 {
			continue
		}
		stopping = append(stopping, list[len(list)-1])
		if len(list) == 1 {
			delete(s.byKey, k)
		} else {
			s.byKey[k] = list[:len(list)-1]
		}
	}
	s.mu.Unlock()
	for _, sv := range stopping {
		stop(sv)
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
