package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/kube"
	"github.com/tlstap/tlstap/internal/output/har"
	"github.com/tlstap/tlstap/internal/output/pcapng"
	"github.com/tlstap/tlstap/internal/sched"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
	"github.com/tlstap/tlstap/internal/stats"
	"github.com/tlstap/tlstap/internal/webui"
)

// source is what a run captures: the live eBPF capture (tlstap tls), a
// recording (tlstap replay, tlstap demo), or a fleet's events from NATS
// JetStream (tlstap view).
type source struct {
	live  bool
	fleet *fleetSource
	// The recording: its name for the log, how to open it, and whether
	// to shift its times to now (demo).
	name   string
	open   func() (io.ReadCloser, error)
	rebase bool
}

// run is one run of tlstap tls, replay or demo, wired top to bottom: the
// one place that says what a run starts, and in which order. flags holds
// what the command line parsed.
func run(cmd *cobra.Command, flags *settings, src source) error {
	// 1. Settings: defaults, the --config file, the flags given; all of
	// it judged by config.Validate before anything opens.
	s, err := resolve(cmd.Flags(), flags)
	if err != nil {
		return err
	}
	r := s.cfg.Run

	// 2. The pcapng export tees chunks before the pipeline; the engine
	// closes it.
	var taps []engine.ChunkWriter
	if r.PCAPNG != "" {
		pf, err := pcapng.Create(r.PCAPNG, r.PCAPNGRotateBytes, pcapng.Options{Application: "tlstap " + versionString()})
		if err != nil {
			return err
		}
		taps = append(taps, pf)
	}

	// Pod names: the files and the in-cluster environment are checked
	// before anything attaches or listens.
	var pods kube.Options
	if src.live && r.Pods != "" {
		pods = kube.Options{API: r.Pods, TokenFile: r.PodsTokenFile, CAFile: r.PodsCAFile, Node: cmp.Or(r.PodsNode, r.Node)}
		if _, socket, ok := kube.ParseRuntime(r.Pods); ok {
			if st, err := os.Stat(socket); err != nil || st.Mode()&os.ModeSocket == 0 {
				return fmt.Errorf("--pods: %s is not a socket", socket)
			}
		} else if _, err := kube.New(pods); err != nil {
			return fmt.Errorf("--pods: %w", err)
		}
	}

	// 3. The engine: logger, counters, broker, pipeline, standard output,
	// and the forwarders and sinks of the configuration.
	e := engine.New(engine.Options{
		Config:          s.cfg,
		Exit:            r.Exit,
		VirtualClock:    src.open != nil && r.Speed == 0, // time from the recording alone: the same events every run
		Live:            src.live,
		RawOnly:         r.RawOnly,
		Record:          r.Record,
		RecordOverwrite: r.RecordOverwrite,
		DrainTimeout:    time.Duration(r.DrainTimeout),
		Taps:            taps,
		Stdout:          cmd.OutOrStdout(),
		Stderr:          cmd.ErrOrStderr(),
		LogLevel:        r.Level(),
		Node:            r.Node,
		Pods:            pods,
	})

	var realtime *sched.Governor // nil: tlstap's threads stay in the fair class
	if src.live {
		engine.SetMemoryLimit()
		realtimeGauge(e).Set(0)
		if r.Realtime {
			realtime = startRealtime(e)
		}
	}

	// 4. The HAR export, subscribed before anything is published.
	if r.HAR != "" {
		if err := addHAR(e, r.HAR); err != nil {
			return err
		}
	}

	// 5. The source: the eBPF capture, after the recording file it
	// writes; or the recording played.
	var chunks capture.Source
	var feed *fleet.Feed
	var control engine.CaptureControl // what the config API may change in the capture
	running := false
	if src.live {
		// The recording's path is checked before anything attaches or
		// listens; a file made for a run that never started is removed.
		if err := e.OpenRecording(); err != nil {
			return err
		}
		defer func() {
			if !running && r.Record != "" {
				e.Close()
				os.Remove(r.Record)
			}
		}()
		live, err := openCapture(e, s.cfg, realtime)
		if err != nil {
			return err
		}
		defer live.Close()
		chunks, control = live, live
	} else if src.fleet != nil {
		if feed, err = src.fleet.open(e); err != nil {
			return err
		}
		chunks = feed
	} else {
		chunks, err = replay.New(replay.Options{Open: src.open, Name: src.name, Speed: r.Speed, Loop: r.Loop, Rebase: src.rebase, Log: e.Log})
		if err != nil {
			return err
		}
	}

	// 6. The stream server, with the config API on its main listener (a
	// viewer's is read-only and reports every node).
	mountAPI := func(srv *server.Server, stateDir string) { mountRunAPI(srv, e, s, stateDir, e.NewApplier(control)) }
	if feed != nil {
		mountAPI = func(srv *server.Server, stateDir string) { mountViewAPI(srv, e, stateDir, feed) }
	}
	if err := serve(e, s, mountAPI); err != nil {
		return err
	}
	if feed != nil {
		// The retained tail is in the broker before the first client
		// can be served: a client of a restarted viewer resumes with no
		// gap and no duplicate.
		if err := src.fleet.prime(cmd.Context(), e, feed); err != nil {
			return nil // interrupted while priming
		}
	}

	// 7. Run until the source ends (--exit) or ctx is cancelled; then
	// every consumer drains and every goroutine ends. The governor
	// watches tlstap's CPU use from here: the heavy start-up is behind,
	// so it puts the threads in the real-time class at once, unless the
	// ring reader is already busy (startRealtime).
	if realtime != nil {
		ctx, stop := context.WithCancel(cmd.Context())
		var wg sync.WaitGroup
		wg.Go(func() { realtime.Run(ctx) })
		defer wg.Wait()
		defer stop()
	}
	running = true
	return e.Run(cmd.Context(), chunks)
}

// startRealtime checks that tlstap's threads may enter the real-time class
// (run.realtime) and returns the governor that moves them between classes
// from the capture's start on, or nil if they stay in the fair class. The
// threads stay in the fair class while the probes are attached and the
// ring is warmed, which is heavy; the governor's Run, started after that,
// puts them in the real-time class. A refusal (no CAP_SYS_NICE:
// an unprivileged container, say) is a warning, not an error: the capture
// works in the fair class, only a lone request's events may wait behind
// the programs that make it.
func startRealtime(e *engine.Engine) *sched.Governor {
	tid := unix.Gettid()
	err := sched.SetThread(tid, sched.RealTime)
	if err == nil {
		err = sched.SetThread(tid, sched.Fair)
	}
	if err != nil {
		e.Log.Warn("staying in the fair scheduling class: a lone request's events may wait a few ms behind the programs that make it (--realtime=false silences this)", "err", err)
		return nil
	}
	if n, err := sched.PrefaultExecutable(); err != nil {
		e.Log.Debug("executable not prefaulted", "err", err)
	} else {
		e.Log.Debug("executable prefaulted", "bytes", n)
	}
	g := sched.NewGovernor(sched.Fair)
	g.OnSwitch = func(c sched.Class, threads int, err error) { switched(e, c, threads, err) }
	return g
}

// openCapture attaches the eBPF capture and keeps it off tlstap's own
// connections (internal/selfnet). With realtime, tlstap's threads leave
// the real-time class while the ring reader is busy.
func openCapture(e *engine.Engine, cfg config.Config, realtime *sched.Governor) (*openssl.Source, error) {
	c := cfg.Capture
	opts := openssl.Options{
		Libs:      c.Libs,
		Filter:    engine.CaptureFilter(c),
		RingBytes: cfg.Run.RingBytes,
		Logger:    e.Log,
		WatchGo:   true,
	}
	if realtime != nil {
		opts.OnBusy = realtime.Busy
	}
	src, err := openssl.New(opts)
	if err != nil {
		return nil, err
	}
	if cfg.Run.CaptureSelf {
		e.Self.Disable()
		e.Log.Warn("--capture-self: tlstap's own connections through other processes are captured")
	}
	e.Self.SetExcluder(src)
	e.WatchSelfExclusion(src)
	e.WatchWatcher(src)
	// Before tlstap says it serves: what runs now is captured from then
	// on, and the first requests after start do not share the CPU with
	// the scan.
	start := time.Now()
	src.AttachRunning()
	e.Log.Debug("looked at the running programs", "took", time.Since(start))
	var names []string
	for _, l := range src.Libraries() {
		names = append(names, l.Path)
	}
	e.Log.Info("capturing", "libraries", strings.Join(names, ","), "pids", c.PIDs, "uids", c.UIDs, "comms", c.Comms)
	return src, nil
}

// switched reports a change of scheduling class the governor made (or
// tried): while records come densely, or tlstap is busy with something
// else, it takes its turn like the programs it traces (fair class, the
// same throughput as without run.realtime); once the ring has been quiet
// and tlstap light, it goes back to preempting them, so that the next
// lone request's events are not queued behind them.
func switched(e *engine.Engine, c sched.Class, threads int, err error) {
	if err != nil {
		e.Log.Warn("scheduling class not changed", "class", c, "err", err)
		return
	}
	rt := int64(0)
	if c == sched.RealTime {
		rt = 1
	}
	realtimeGauge(e).Set(rt)
	e.Stats.Counter("tlstap_sched_switches_total", "run.realtime: changes of tlstap's scheduling class with the load.").Inc()
	e.Log.Debug("scheduling class", "class", c, "threads", threads)
}

// realtimeGauge says, with --realtime, which class tlstap's threads are in.
func realtimeGauge(e *engine.Engine) *stats.Gauge {
	return e.Stats.Gauge("tlstap_realtime", "--realtime: 1 while tlstap's threads are in the real-time class (traffic sparse), 0 while in the fair class (load).")
}

// serve starts the stream server, if a listener is configured, and lets
// mountAPI mount the API on it. Errors here are the user's (a port in
// use, a bad certificate) and are reported before capture starts.
func serve(e *engine.Engine, s settings, mountAPI func(srv *server.Server, stateDir string)) error {
	opts := server.OptionsOf(s.cfg.Run.Server) // judged by config.Validate in resolve
	if opts.Listen == "" && opts.ECaptureQ == "" {
		return nil
	}
	opts.WrapListener = e.Self.Listener
	srv, err := server.New(opts, e.Broker, e.Stats, e.Log)
	if err != nil {
		return serverHint(err)
	}
	for _, secret := range srv.Secrets() {
		e.Secrets.Add(secret)
	}
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = tlsauth.DefaultStateDir()
	}
	mountAPI(srv, stateDir)
	webui.Mount(srv)
	// Printed to the terminal only: the URLs carry the token, and the
	// log also goes to every stream client.
	fmt.Fprintf(e.Opts.Stderr, "tlstap: serving events\n")
	for _, u := range srv.URLs() {
		fmt.Fprintf(e.Opts.Stderr, "  %s\n", u)
	}
	if opts.Listen != "" {
		fmt.Fprintf(e.Opts.Stderr, "  web UI: %s\n", webui.PageURL(srv.URLs()[0]))
	}
	if opts.Listen != "" && !opts.NoTLS {
		fmt.Fprintf(e.Opts.Stderr, "  certificate SHA-256 fingerprint: %s\n", srv.Fingerprint())
	}
	e.Add(srv)
	return nil
}

// mountRunAPI mounts the configuration, status and metrics API of a run
// that captures or replays; it changes e through ap.
func mountRunAPI(srv *server.Server, e *engine.Engine, s settings, stateDir string, ap *engine.Applier) {
	// The API sees the configuration proper: the run settings cannot
	// change while tlstap runs.
	cfg := s.cfg
	cfg.Run = config.Run{}
	a := api.New(api.Options{
		Config:   cfg,
		Applier:  ap,
		StateDir: stateDir,
		Stats:    e.Stats,
		Log:      e.Log,
		Status:   ap.RunStatus,
		Version:  versionString(),
		Started:  e.Started,
	})
	a.Mount(srv)
	webui.MountResend(srv, webui.ResendOptions{
		Broker:      e.Broker,
		Config:      func() config.Config { c, _ := a.Config(); return c },
		DialContext: e.Self.DialContext(&net.Dialer{Timeout: 10 * time.Second}),
		Log:         e.Log,
	})
}

// addHAR subscribes the HAR file to e's events.
func addHAR(e *engine.Engine, path string) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("har: %w", err)
	}
	// A file gets every event: block the pipeline rather than drop, as
	// standard output does.
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "har", Policy: broker.Block, Queue: 8192, QueueBytes: engine.StdoutQueueBytes,
		Filter: func(en *broker.Entry) bool { return en.Seq != 0 }})
	w := har.NewWriter(fh, har.Options{Creator: "tlstap", Version: versionString()})
	e.Add(engine.ServiceFunc(func(ctx context.Context) error {
		err := har.Run(ctx, sub, w)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// The HAR is an export: losing it must not stop the capture.
			e.Log.Error("HAR export stopped; capture goes on", "file", path, "err", err)
		}
		return nil
	}))
	return nil
}
