package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// watchFleet prints a fleet's JetStream stream. NATS has no tlstap
// filters, so nodes are selected by subject and the rest here, with the
// streaming server's own matcher.
func watchFleet(ctx context.Context, cmd *cobra.Command, o watchOptions, addr string, f client.Filters) error {
	if o.token != "" || o.fingerprint != "" || o.ca != "" || o.insecure {
		return usageError{errors.New("--token, --fingerprint, --ca and --insecure are for the WebSocket stream; give NATS credentials and TLS files in the URL (see docs/fleet.md)")}
	}
	q, err := server.ParseQuery(f.Values())
	if err != nil {
		return usageError{err}
	}
	co := fleet.ConsumerOptions{
		Nodes:       f.Nodes,
		NoReconnect: o.noReconnect,
		Log:         slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	switch {
	case cmd.Flags().Changed("since") && o.since == 0:
		co.From = fleet.FromAll
	case o.since > 0:
		co.From, co.After = fleet.FromAfter, o.since
	}
	c, err := fleet.Subscribe(ctx, addr, co)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %s: %w", addr, err)
	}
	defer c.Close()
	next := func(ctx context.Context) (*eventpb.LogEntry, error) {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				return nil, err
			}
			if q.Match(&broker.Entry{Msg: m.Entry}) {
				return m.Entry, nil
			}
		}
	}
	return printStream(ctx, cmd, o, next, func() bool { return true })
}
