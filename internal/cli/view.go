package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
)

// viewFlags: the server flags of every run (but no forwarders or sinks: a
// viewer re-publishing the fleet would feed it back), standard output,
// and where the fleet is.
type viewFlags struct {
	commonFlags
	services serviceFlags
	nats     string
	nodes    []string
	tail     uint64
}

// viewServiceFlags are the serviceFlags a viewer takes.
var viewServiceFlags = []string{"listen", "ecaptureq", "tls", "tls-cert", "tls-key", "client-ca", "state-dir",
	"auth", "token", "allow-origin", "heartbeat", "write-timeout", "client-queue"}

func newViewCmd() *cobra.Command {
	var f viewFlags
	cmd := &cobra.Command{
		Use:   "view --nats nats://HOST:PORT",
		Short: "Serve a whole fleet's events from NATS JetStream to every stream client",
		Long: `Read the JetStream stream that tlstap nodes publish to (--eventaddr nats://...) and
serve it exactly as a capturing tlstap serves its own: the WebSocket stream (/ws, with
filters and resume), the eCaptureQ listener (--ecaptureq), /api/v1/status (read-only,
with every node's counts) and /metrics. The eCaptureQ GUI, 'tlstap watch' and every
other client then watch the whole fleet. Nothing is captured and the configuration
cannot be changed.

Events keep their node (field node) and container; their seq is the JetStream stream
sequence, the same on every viewer and after a restart, so clients resume across a
viewer restart with no gap and no duplicate. See docs/fleet.md.`,
		Example: `  tlstap view --nats nats://nats.example:4222 --listen 0.0.0.0:28256
  tlstap view --nats nats://127.0.0.1:4222 --ecaptureq ws://127.0.0.1:28257 --node web-1 --node web-2`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd) },
	}
	fs := cmd.Flags()
	var all pflag.FlagSet
	f.commonFlags.register(&all)
	f.services.register(&all)
	for _, name := range append([]string{"output", "hex", "log-level"}, viewServiceFlags...) {
		fs.AddFlag(all.Lookup(name))
	}
	fs.Lookup("output").DefValue = "none"
	f.output = "none"
	fs.StringVar(&f.nats, "nats", "", "the fleet's NATS `URL`, as given to the nodes' --eventaddr (nats:// or tls://; credentials and TLS files as URL parameters, see docs/fleet.md)")
	fs.StringSliceVar(&f.nodes, "node", nil, "serve only these nodes' events (default: every node)")
	fs.Uint64Var(&f.tail, "tail", 10000, "at start, load this many of the newest retained messages, so clients can look back and resume")
	return cmd
}

func (f *viewFlags) run(cmd *cobra.Command) error {
	if f.nats == "" {
		return usageError{fmt.Errorf("--nats is required")}
	}
	if !fleet.IsURL(f.nats) {
		return usageError{fmt.Errorf("--nats %q: want nats://HOST:PORT or tls://HOST:PORT", f.nats)}
	}
	if f.services.srv.Listen == "" && f.services.srv.ECaptureQ == "" {
		return usageError{fmt.Errorf("a viewer with neither --listen nor --ecaptureq serves nobody")}
	}
	opts, err := f.engineOptions(cmd)
	if err != nil {
		return err
	}
	opts.Node = ""
	e := engine.New(opts)
	feed, err := fleet.NewFeed(f.nats, e.Broker, fleet.FeedOptions{Nodes: f.nodes, Tail: f.tail, Stats: e.Stats, Log: e.Log})
	if err != nil {
		return usageError{err}
	}
	mountViewAPI(&f.services, e, feed)
	if err := f.services.add(e); err != nil {
		return err
	}
	// The retained tail is in the broker before the first client can
	// connect: a client of a restarted viewer resumes with no duplicate.
	pctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	err = feed.Prime(pctx)
	cancel()
	if err != nil {
		if cmd.Context().Err() != nil {
			return nil
		}
		e.Log.Warn("fleet stream not read yet; retrying while serving", "err", err)
	}
	return e.Run(cmd.Context(), feed)
}

// mountViewAPI serves the API's read endpoints on the main listener: the
// configuration (as it is), a status with every node's counts, /metrics
// and /healthz. Nothing that changes anything is mounted.
func mountViewAPI(f *serviceFlags, e *engine.Engine, feed *fleet.Feed) {
	stateDir := f.srv.StateDir
	if stateDir == "" {
		stateDir = tlsauth.DefaultStateDir()
	}
	a := api.New(api.Options{
		Config:   e.Opts.Config,
		StateDir: stateDir,
		Stats:    e.Stats,
		Log:      e.Log,
		Status: func() api.RunStatus {
			return api.RunStatus{Source: "nats", Running: feed.Status().Connected, Libraries: []api.Library{}}
		},
		Version: versionString(),
		Started: e.Started,
	})
	status := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(viewStatus{Status: a.Status(), Fleet: feed.Status()})
	}
	f.setupServers = append(f.setupServers, func(s *server.Server) {
		a.Mount(readOnly{s})
		s.Handle("GET /api/v1/status", http.HandlerFunc(status), true)
	})
}

// viewStatus is a viewer's /api/v1/status: the usual status (capture.source
// "nats") and the fleet's nodes.
type viewStatus struct {
	api.Status
	Fleet fleet.FeedStatus `json:"fleet"`
}

// readOnly mounts only the GET endpoints of the API, except status, which
// the viewer serves itself.
type readOnly struct{ m api.Mux }

func (r readOnly) Handle(pattern string, h http.Handler, auth bool) {
	if strings.HasPrefix(pattern, "GET ") && pattern != "GET /api/v1/status" {
		r.m.Handle(pattern, h, auth)
	}
}
