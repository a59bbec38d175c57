package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/server"
)

// fleetSource is where tlstap view reads: the fleet's JetStream stream.
type fleetSource struct {
	nats  string
	nodes []string
	tail  uint64
}

func newViewCmd() *cobra.Command {
	flags := defaultSettings()
	// A viewer stamps nothing: every event keeps the node that sent it.
	flags.cfg.Run.Node = ""
	flags.cfg.Output.Format = "none"
	var fs fleetSource
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := fs.check(&flags); err != nil {
				return err
			}
			return run(cmd, &flags, source{fleet: &fs})
		},
	}
	f := cmd.Flags()
	registerFlags(f, onView, &flags)
	f.Lookup("output").DefValue = "none"
	f.StringVar(&fs.nats, "nats", "", "the fleet's NATS `URL`, as given to the nodes' --eventaddr (nats:// or tls://; credentials and TLS files as URL parameters, see docs/fleet.md)")
	f.StringSliceVar(&fs.nodes, "node", nil, "serve only these nodes' events (default: every node)")
	f.Uint64Var(&fs.tail, "tail", 10000, "at start, load this many of the newest retained messages, so clients can look back and resume")
	return cmd
}

// check judges the viewer's own flags before anything starts.
func (fs *fleetSource) check(s *settings) error {
	if fs.nats == "" {
		return usageError{fmt.Errorf("--nats is required")}
	}
	if !fleet.IsURL(fs.nats) {
		return usageError{fmt.Errorf("--nats %q: want nats://HOST:PORT or tls://HOST:PORT", fs.nats)}
	}
	if srv := s.cfg.Run.Server; srv.Listen == "" && srv.ECaptureQ == "" {
		return usageError{fmt.Errorf("a viewer with neither --listen nor --ecaptureq serves nobody")}
	}
	return nil
}

// open connects the feed that publishes the fleet's entries to e's broker.
func (fs *fleetSource) open(e *engine.Engine) (*fleet.Feed, error) {
	feed, err := fleet.NewFeed(fs.nats, e.Broker, fleet.FeedOptions{Nodes: fs.nodes, Tail: fs.tail, Stats: e.Stats, Log: e.Log})
	if err != nil {
		return nil, usageError{err}
	}
	return feed, nil
}

// prime loads the retained tail into the broker; it fails only when ctx
// ended. A fleet stream that cannot be read yet is retried while serving.
func (fs *fleetSource) prime(ctx context.Context, e *engine.Engine, feed *fleet.Feed) error {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := feed.Prime(pctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.Log.Warn("fleet stream not read yet; retrying while serving", "err", err)
	}
	return nil
}

// mountViewAPI serves the API's read endpoints on the main listener: the
// configuration (as it is), a status with every node's counts, /metrics
// and /healthz. Nothing that changes anything is mounted.
func mountViewAPI(srv *server.Server, e *engine.Engine, stateDir string, feed *fleet.Feed) {
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
	a.Mount(readOnly{srv})
	srv.Handle("GET /api/v1/status", http.HandlerFunc(status), true)
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
