package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tlstap/tlstap/broker"
	"github.com/tlstap/tlstap/capture"
	"github.com/tlstap/tlstap/config"
	"github.com/tlstap/tlstap/output"
	"github.com/tlstap/tlstap/pipeline"
	"github.com/tlstap/tlstap/stats"
)

// Service is anything that runs beside the pipeline until cancelled:
// the streaming server, forwarders, push sinks.
type Service interface {
	Run(ctx context.Context) error
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context) error

// Run implements Service.
func (f ServiceFunc) Run(ctx context.Context) error { return f(ctx) }

// Options configure a run.
type Options struct {
	Config config.Config
	// Exit makes Run return once a finite source (a recording) has been
	// played and everything flushed; otherwise Run keeps serving until ctx
	// is cancelled.
	Exit bool
	// VirtualClock: see pipeline.Options.
	VirtualClock bool
	// RawOnly disables protocol decoding.
	RawOnly bool
	// Record writes every chunk to this recording file.
	Record string
	// Stdout receives rendered events; Stderr the program's log.
	Stdout, Stderr io.Writer
	LogLevel       slog.Level
	// Node is set on every event (see pipeline.Options.Node).
	Node string
}

// Engine is one run's shared parts. Services are built from it before Run.
type Engine struct {
	Opts     Options
	Stats    *stats.Set
	Broker   *broker.Broker
	Pipeline *pipeline.Pipeline
	Log      *slog.Logger
	Started  time.Time
	// Output renders standard output; the config API may switch its
	// format while the run goes on.
	Output *output.Switch

	services []Service
}

// New builds the broker, pipeline and logger of a run.
func New(opts Options) *Engine {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	st := stats.NewSet()
	b := broker.New(broker.Options{}, st)
	hopts := &slog.HandlerOptions{Level: opts.LogLevel}
	// The program's own log lines go to stderr and, as process-log
	// entries, into the stream for every client.
	log := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(opts.Stderr, hopts),
		slog.NewTextHandler(broker.LogWriter{B: b}, hopts),
	))
	p := pipeline.New(pipeline.Options{
		IdleFlush:    time.Duration(opts.Config.Pipeline.IdleTimeout),
		TSize:        opts.Config.Pipeline.TSize,
		RawOnly:      opts.RawOnly,
		VirtualClock: opts.VirtualClock,
		Stats:        st,
		Node:         opts.Node,
	}, b)
	e := &Engine{Opts: opts, Stats: st, Broker: b, Pipeline: p, Log: log, Started: time.Now()}
	if f, err := output.ParseFormat(opts.Config.Output.Format); err == nil {
		e.Output = output.NewSwitch(f, opts.Config.Output.Hex)
	}
	return e
}

// Add registers a service to run beside the pipeline.
func (e *Engine) Add(s Service) { e.services = append(e.services, s) }

// Run plays src through the pipeline until src ends (with Exit) or ctx is
// cancelled, then flushes and stops everything. It returns the source's
// error, if any.
func (e *Engine) Run(ctx context.Context, src capture.Source) error {
	// Everything that can fail on bad options fails here, before any
	// goroutine starts: an early return must not leave one behind.
	if e.Output == nil {
		_, err := output.ParseFormat(e.Opts.Config.Output.Format)
		return err
	}
	if e.Opts.Record != "" {
		rec, err := newRecorder(src, e.Opts.Record)
		if err != nil {
			return err
		}
		src = rec
	}

	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	var svcWG sync.WaitGroup
	svcErr := make(chan error, len(e.services))
	for _, s := range e.services {
		svcWG.Add(1)
		go func() {
			defer svcWG.Done()
			if err := s.Run(svcCtx); err != nil && !errors.Is(err, context.Canceled) {
				svcErr <- err
			}
		}()
	}

	// Standard output blocks the pipeline rather than drop: a person or a
	// pipe reading our output expects all of it.
	var outWG sync.WaitGroup
	// Subscribed even with format none, so the API can turn output on.
	sub := e.Broker.Subscribe(broker.SubOptions{
		Name:   "stdout",
		Policy: broker.Block,
		Queue:  8192,
		Filter: func(en *broker.Entry) bool { return en.Seq != 0 },
	})
	outWG.Add(1)
	go func() {
		defer outWG.Done()
		if err := output.Run(context.Background(), sub, e.Opts.Stdout, e.Output); err != nil {
			e.Log.Error("writing standard output", "err", err)
			sub.Close()
		}
	}()

	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	chunks := make(chan capture.Chunk, 4096)
	srcDone := make(chan error, 1)
	go func() {
		defer close(chunks)
		srcDone <- src.Run(srcCtx, chunks)
	}()
	pipeDone := make(chan struct{})
	go func() {
		defer close(pipeDone)
		_ = e.Pipeline.Run(context.Background(), chunks)
	}()

	var srcErr error
	select {
	case srcErr = <-srcDone:
	case err := <-svcErr:
		stopSource()
		srcErr = <-srcDone
		if srcErr == nil {
			srcErr = err
		}
	}
	<-pipeDone
	if srcErr != nil {
		e.Log.Error("capture source failed", "err", srcErr)
	} else if ctx.Err() == nil {
		e.Log.Info("source ended; everything flushed", "events", e.Broker.LastSeq())
		if !e.Opts.Exit {
			// Keep serving the retained stream until interrupted.
			select {
			case <-ctx.Done():
			case err := <-svcErr:
				srcErr = err
			}
		}
	}
	// Stop services first (they close client connections gracefully),
	// then end every subscription so local outputs drain and return.
	stopServices()
	svcWG.Wait()
	e.Broker.Close()
	outWG.Wait()
	if srcErr != nil {
		return fmt.Errorf("capture: %w", srcErr)
	}
	select {
	case err := <-svcErr:
		return err
	default:
	}
	return nil
}
