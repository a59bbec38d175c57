package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/filter"
	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

type watchOptions struct {
	json        bool
	hex         bool
	fingerprint string
	token       string
	ca          string
	insecure    bool
	filter      string
	pids        []int64
	pnames      []string
	types       []string
	hosts       []string
	ports       []uint
	nodes       []string
	containers  []string
	noLogs      bool
	since       uint64
	count       int
	noReconnect bool
}

func newWatchCmd() *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use:   "watch [URL]",
		Short: "Print the live event stream of a running tlstap",
		Long: `Connect to a tlstap streaming server and print its events: as text (a header
line and the payload, hex-dumped when binary) or, with --json, one JSON object
per line. The server's own log lines go to stderr.

URL defaults to ` + client.DefaultURL + `. For a local server (loopback URL)
the token and the certificate fingerprint are read from the state directory
(` + tlsauth.DefaultStateDir() + `) when readable, so plain "tlstap watch"
works on the same machine. For a remote server pass --fingerprint (printed by
the server at start) or --ca, and --token (or paste the URL with ?token=).

Filters are applied by the server. --filter takes an expression of tlstap's
filter language (docs/filters.md), e.g. '~m POST & ~c 5xx' or
'host=*.example.com & !path=/health'. The older flags (--pid, --host, ...) are
single terms of it: repeat one or give a comma list for alternatives; everything
given must match. The connection is
re-established after failures and resumes exactly after the last event
received, so nothing is printed twice or skipped while the server still
retains it.

A nats:// or tls:// URL reads a fleet's JetStream stream instead (see
docs/fleet.md): every node's events, --since counting the stream's sequence
numbers, and the same filters, applied here.`,
		Example: `  tlstap watch
  tlstap watch --json --type request --host '*.example.com' | jq .path
  tlstap watch --filter '~m POST & ~d *.example.com & !~c 2xx'  # failed POSTs to example.com
  tlstap watch wss://10.0.0.5:28256/ws --fingerprint AB:CD:... --token TOKEN --pid 1234
  tlstap watch --since 0 --count 100   # everything retained, then exit after 100 events
  tlstap watch nats://10.0.0.9:4222 --node web-1 --json   # a fleet, through NATS JetStream`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true // from here on errors are not about usage
			u := client.DefaultURL
			if len(args) == 1 {
				u = args[0]
			}
			return runWatch(cmd, o, u)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print one JSON object per event (every field; payload as UTF-8 or base64)")
	f.BoolVar(&o.hex, "hex", false, "hex-dump every payload in text output, not only binary ones")
	f.StringVar(&o.fingerprint, "fingerprint", "", "pin the server certificate by its SHA-256 fingerprint (hex, colons optional); default for loopback URLs: the local server's certificate")
	f.StringVar(&o.token, "token", "", "token to authenticate with; default for loopback URLs: the local token file")
	f.StringVar(&o.ca, "ca", "", "verify the server certificate against the CAs in this PEM file instead of pinning")
	f.BoolVar(&o.insecure, "insecure", false, "accept ANY server certificate: anyone on the path can read the stream and steal the token")
	f.StringVar(&o.filter, "filter", "", `only events this filter expression selects (docs/filters.md), e.g. "~m POST & status>=500"`)
	f.Int64SliceVar(&o.pids, "pid", nil, "only events of these process ids")
	f.StringSliceVar(&o.pnames, "pname", nil, "only events of these process names (comm)")
	f.StringSliceVar(&o.types, "type", nil, "only these event types: raw, http1-request, http2-request, http1-response, http2-response, websocket, request, response, http, or 0-5")
	f.StringSliceVar(&o.hosts, "host", nil, `only HTTP messages for these hosts: "example.com" (any port), "example.com:8443", "*.example.com"`)
	f.UintSliceVar(&o.ports, "port", nil, "only events whose source or destination port is one of these")
	f.StringSliceVar(&o.nodes, "node", nil, "only events captured by these nodes (--node of the capturing tlstap)")
	f.StringSliceVar(&o.containers, "container", nil, "only events of these containers (id or unique id prefix)")
	f.BoolVar(&o.noLogs, "no-logs", false, "do not print the server's process-log lines")
	f.Uint64Var(&o.since, "since", 0, "start with the retained events after this sequence number (0: everything retained) instead of live events")
	f.IntVar(&o.count, "count", 0, "exit after printing this many events (0: run until interrupted)")
	f.BoolVar(&o.noReconnect, "no-reconnect", false, "exit when the connection ends instead of reconnecting")
	return cmd
}

func runWatch(cmd *cobra.Command, o watchOptions, rawURL string) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr := cmd.ErrOrStderr()
	if _, err := filter.Parse(o.filter); err != nil {
		return usageError{fmt.Errorf("--filter: %w", err)}
	}
	filters := client.Filters{
		Filter: o.filter,
		PIDs:   o.pids, Pnames: o.pnames, Types: o.types, Hosts: o.hosts, NoLogs: o.noLogs,
		Nodes: o.nodes, Containers: o.containers,
	}
	for _, p := range o.ports {
		if p > 65535 {
			return fmt.Errorf("--port %d: not a port", p)
		}
		filters.Ports = append(filters.Ports, uint16(p))
	}
	if fleet.IsURL(rawURL) {
		return watchFleet(ctx, cmd, o, rawURL, filters)
	}

	copts := client.Options{
		URL:                rawURL,
		Token:              o.token,
		Fingerprint:        o.fingerprint,
		CACert:             o.ca,
		InsecureSkipVerify: o.insecure,
		Since:              o.since,
		Replay:             cmd.Flags().Changed("since") && o.since == 0,
		NoReconnect:        o.noReconnect,
		Filters:            filters,
	}
	localDefaults(&copts, stderr)
	if o.insecure {
		fmt.Fprintln(stderr, "WARNING: --insecure: the server certificate is not verified; the stream and the token can be intercepted")
	}

	c, err := client.Dial(ctx, copts)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	defer c.Close()
	return printStream(ctx, cmd, o, c.Next, func() bool { return len(c.C()) == 0 })
}

// printStream renders entries from next until ctx ends, next fails or
// --count is reached; idle says whether nothing more is waiting.
func printStream(ctx context.Context, cmd *cobra.Command, o watchOptions, next func(context.Context) (*eventpb.LogEntry, error), idle func() bool) error {
	stderr := cmd.ErrOrStderr()
	var r output.Renderer = output.TextRenderer{Hex: o.hex}
	if o.json {
		r = output.JSONRenderer{}
	}
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer out.Flush()
	printed := 0
	for {
		m, err := next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return err
		}
		switch m.GetLogType() {
		case eventpb.LogType_LOG_TYPE_EVENT:
			if err := r.Render(out, m.GetEventPayload()); err != nil {
				return err
			}
			printed++
		case eventpb.LogType_LOG_TYPE_PROCESS_LOG:
			if err := out.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(stderr, "tlstap:", strings.TrimRight(m.GetRunLog(), "\n"))
		}
		if o.count > 0 && printed >= o.count {
			return out.Flush()
		}
		// Flush when caught up, so a burst costs few writes and a quiet
		// stream shows up at once.
		if idle() {
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
}

// localDefaults fills in the token and the certificate pin of the local
// server for loopback URLs. Never for other hosts: the local token must
// not be sent elsewhere, and a remote server has another certificate.
func localDefaults(o *client.Options, stderr io.Writer) {
	u, err := url.Parse(o.URL)
	if err != nil || !loopbackHost(u.Hostname()) {
		return
	}
	dir := tlsauth.DefaultStateDir()
	if dir == "" {
		return
	}
	if o.Token == "" && !u.Query().Has("token") {
		if t, err := tlsauth.ReadToken(dir); err == nil {
			o.Token = t
		}
	}
	if (u.Scheme == "wss" || u.Scheme == "https") && o.Fingerprint == "" && o.CACert == "" && !o.InsecureSkipVerify {
		if fp, err := tlsauth.FileFingerprint(filepath.Join(dir, tlsauth.CertFile)); err == nil {
			o.Fingerprint = fp.String()
		} else {
			fmt.Fprintf(stderr, "tlstap watch: no local server certificate (%v); pass --fingerprint or --ca\n", err)
		}
	}
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}
