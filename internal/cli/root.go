package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; the next one kills the
	// process, for when draining takes too long.
	go func() {
		<-ctx.Done()
		stop()
	}()
	root := newRoot()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "tlstap: %v\nRun '%s --help' for usage.\n", err, root.CommandPath())
			return 2
		}
		fmt.Fprintf(os.Stderr, "tlstap: %v\n", err)
		return 1
	}
	return 0
}

// usageError marks errors caused by bad flags or arguments (exit code 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "tlstap",
		Short: "Capture TLS plaintext with eBPF and stream it as structured events",
		Long: `tlstap captures TLS plaintext from running programs with eBPF uprobes on OpenSSL
(no certificates, no proxy), decodes HTTP/1.x, HTTP/2 and WebSocket messages, and
delivers them as ecapture-compatible protobuf events to the eCaptureQ GUI, Burp Suite,
scripts, files and pipelines.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newTLSCmd(), newReplayCmd(), newDemoCmd(), newWatchCmd(), newViewCmd(), newVersionCmd())
	return root
}

// usageArgs makes cobra's argument validators report usage errors.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
