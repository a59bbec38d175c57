package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/container"
	"github.com/tlstap/tlstap/internal/kube"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/redact"
	"github.com/tlstap/tlstap/internal/selfnet"
	"github.com/tlstap/tlstap/internal/stats"
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
	// played and forwarders and sinks have delivered what they hold
	// (bounded by DrainTimeout); otherwise Run keeps serving until ctx is
	// cancelled, and drains then.
	Exit bool
	// VirtualClock: see pipeline.Options.
	VirtualClock bool
	// Live says the source stamps chunks with the present (a capture, not
	// a recording), so the delay from capture to publication is measured
	// (stats.PublishLatency).
	Live bool
	// RawOnly disables protocol decoding.
	RawOnly bool
	// Record writes every chunk to this recording file, which must not
	// exist unless RecordOverwrite. See Engine.OpenRecording.
	Record          string
	RecordOverwrite bool
	// DrainTimeout bounds how long forwarders and sinks may take, once
	// capture has stopped, to deliver what they hold (default
	// DefaultDrainTimeout).
	DrainTimeout time.Duration
	// Taps receive every chunk before the pipeline; Run closes them.
	Taps []ChunkWriter
	// Stdout receives rendered events; Stderr the program's log.
	Stdout, Stderr io.Writer
	LogLevel       slog.Level
	// Node is set on every event (see pipeline.Options.Node).
	Node string
	// Containers resolves cgroup ids to container ids; nil with Live
	// means this host's cgroup v2 hierarchy (container.NewResolver).
	Containers pipeline.Containers
	// Pods, with API set and Live, names each container's Kubernetes pod
	// (see package kube): API is a Kubernetes API (kube.InCluster or a
	// URL) or a container runtime's socket (docker:PATH, crio:PATH). New
	// fills in the dialer (tlstap's own connections are not captured),
	// the counters and the log, and the run keeps the lookups going.
	Pods kube.Options
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
	// Self is the set of tlstap's own endpoints, which the capture
	// excludes; the server's listeners and the forwarders' and sinks'
	// dials register through it.
	Self *selfnet.Registry
	// Secrets are masked out of captured data and log lines.
	Secrets *redact.Secrets

	services  []Service
	senders   *senders // the forwarders and sinks
	recording *recordingFile
}

// New builds the broker, pipeline and logger of a run, and the forwarders
// and sinks of its configuration (they subscribe now, so they see every
// event; Run starts them).
func New(opts Options) *Engine {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	st := stats.NewSet()
	b := broker.New(broker.Options{}, st)
	secrets := redact.New(st)
	hopts := &slog.HandlerOptions{Level: opts.LogLevel}
	// The program's own log lines go to stderr and, as process-log
	// entries, into the stream for every client.
	log := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(secrets.Writer(opts.Stderr), hopts),
		slog.NewTextHandler(secrets.Writer(broker.LogWriter{B: b}), hopts),
	))
	popts := pipeline.Options{
		IdleFlush:    time.Duration(opts.Config.Pipeline.IdleTimeout),
		TSize:        opts.Config.Pipeline.TSize,
		StreamParts:  opts.Config.Pipeline.StreamParts,
		RawOnly:      opts.RawOnly,
		VirtualClock: opts.VirtualClock,
		Stats:        st,
		Node:         opts.Node,
	}
	if opts.Live {
		if opts.Containers == nil {
			opts.Containers = container.NewResolver("")
		}
		popts.Containers = opts.Containers
		popts.Latency = st.Histogram(stats.PublishLatency,
			"Seconds from the capture of the byte that completed a message to the event's publication.", stats.LatencyBuckets)
	}
	self := selfnet.New(log)
	var pods Service // the pod source's lookups, run beside the pipeline
	if _, _, ok := kube.ParseRuntime(opts.Pods.API); ok && opts.Live {
		// A container runtime's socket (docker:PATH, crio:PATH).
		if r, err := kube.NewRuntime(opts.Pods.API, st, log); err != nil {
			log.Error("pod names off", "err", err)
		} else {
			pods, popts.Pods = r, r
		}
	} else if opts.Live && opts.Pods.API != "" {
		po := opts.Pods
		po.Dial = self.DialContext(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second})
		po.Stats, po.Log = st, log
		if w, err := kube.New(po); err != nil {
			// Settings were validated; what fails here is the
			// environment (a missing file): run without pods.
			log.Error("pod names off", "err", err)
			st.Counter("tlstap_pods_api_errors_total", "Kubernetes API list and watch failures (each is retried).").Inc()
		} else {
			pods, popts.Pods = w, w
		}
	}
	p := pipeline.New(popts, b)
	e := &Engine{Opts: opts, Stats: st, Broker: b, Pipeline: p, Log: log, Started: time.Now(),
		Self: self, Secrets: secrets}
	if pods != nil {
		e.Add(pods)
	}
	if f, err := output.ParseFormat(opts.Config.Output.Format); err == nil {
		e.Output = output.NewSwitch(f, opts.Config.Output.Hex)
	}
	e.senders = newSenders(e, opts.Config)
	warm()
	return e
}

// StdoutQueueBytes bounds in memory the events waiting for standard output
// (and other local writers that block the pipeline rather than drop).
const StdoutQueueBytes = 16 << 20

func (e *Engine) drainTimeout() time.Duration {
	if e.Opts.DrainTimeout > 0 {
		return e.Opts.DrainTimeout
	}
	return DefaultDrainTimeout
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
		e.Close()
		return err
	}
	// Masked before anything else sees a byte, the recording included.
	src = e.Secrets.Source(src)
	src = e.Self.Source(src, e.Stats.Counter("tlstap_self_excluded_unaddressed_total",
		"Chunks without addresses dropped because their process reads tlstap's stream (memory-BIO TLS: node, asyncio)."))
	if err := e.OpenRecording(); err != nil {
		return err
	}
	if e.recording != nil {
		src = &recordingTee{src: src, recordingFile: e.recording}
		e.recording = nil // the tee closes it
	}
	for _, w := range e.Opts.Taps {
		src = &tap{src: src, w: w, log: e.Log}
	}

	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	var svcWG sync.WaitGroup
	svcErr := make(chan error, len(e.services))
	for _, s := range e.services {
		svcWG.Go(func() {
			if err := s.Run(svcCtx); err != nil && !errors.Is(err, context.Canceled) {
				svcErr <- err
			}
		})
	}
	e.senders.begin(svcCtx)
	svcWG.Go(func() { e.senders.run(svcCtx) })

	// Standard output blocks the pipeline rather than drop: a person or a
	// pipe reading our output expects all of it.
	var outWG sync.WaitGroup
	// Subscribed even with format none, so the API can turn output on.
	// While standard output keeps up, the publisher writes the events
	// itself (output.Writer.Direct): no hand-off to the writer goroutine,
	// and one write per drain of the capture ring (output.Writer.Flush).
	ow := output.NewWriter(e.Opts.Stdout, e.Output)
	sub := e.Broker.Subscribe(broker.SubOptions{
		Direct: ow.Direct,
		Flush:  ow.Flush,
		Name:   "stdout",
		Policy: broker.Block,
		Queue:  8192,
		// 8192 parts of a download would be 512 MiB waiting for a slow
		// writer; the bytes bound keeps the wait short and the heap flat.
		QueueBytes: StdoutQueueBytes,
		Filter:     func(en *broker.Entry) bool { return en.Seq != 0 },
	})
	outWG.Add(1)
	go func() {
		defer outWG.Done()
		if err := ow.Run(context.Background(), sub); err != nil {
			e.Log.Error("writing standard output", "err", err)
			sub.Close()
		}
	}()

	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	// Ends once the source has ended and the pipeline has flushed.
	srcDone := make(chan error, 1)
	go func() { srcDone <- e.Pipeline.RunSource(srcCtx, src) }()

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
	if srcErr != nil {
		e.Log.Error("capture source failed", "err", srcErr)
	} else if ctx.Err() == nil {
		e.Log.Info("source ended", "events", e.Broker.LastSeq())
		if !e.Opts.Exit {
			// Keep serving the retained stream until interrupted.
			select {
			case <-ctx.Done():
			case err := <-svcErr:
				srcErr = err
			}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintf(e.Opts.Stderr, "tlstap: shutting down: capture stopped; delivering what is queued (at most %v; interrupt again to quit at once)\n", e.drainTimeout())
	}
	// Capture has stopped and the pipeline has published everything.
	// Ending every subscription lets each consumer deliver what it holds
	// and return; the drain timeout bounds the forwarders and sinks, then
	// the services are stopped (clients get a close frame).
	e.Broker.Close()
	dctx, cancel := context.WithTimeout(context.Background(), e.drainTimeout())
	if !e.senders.drain(dctx) {
		fmt.Fprintf(e.Opts.Stderr, "tlstap: drain timeout (%v) reached; what is still queued is dropped\n", e.drainTimeout())
	}
	cancel()
	stopServices()
	svcWG.Wait()
	outWG.Wait()
	e.senders.summary(e.Opts.Stderr)
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
