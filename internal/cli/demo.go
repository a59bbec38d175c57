package cli

import (
	"github.com/spf13/cobra"

	"github.com/tlstap/tlstap/internal/demo"
)

func newDemoCmd() *cobra.Command {
	flags := defaultSettings()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play an embedded recording of a realistic session (no root needed)",
		Long: `Play an embedded recording through the pipeline, decoders and every output, exactly
like 'tlstap replay': HTTP/1.1 keep-alive with JSON, gzip, chunked and event-stream
bodies, HTTP/2 with concurrent streams over IPv6, a compressed WebSocket conversation,
and a binary protocol. Timestamps are shifted to now. Use it to try outputs, the
streaming server and clients without root.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, &flags, source{name: "demo", open: demo.Open, rebase: true})
		},
	}
	registerFlags(cmd.Flags(), onPlay, &flags)
	return cmd
}
