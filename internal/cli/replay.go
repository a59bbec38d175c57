package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

func newReplayCmd() *cobra.Command {
	flags := defaultSettings()
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Play a recording through the pipeline and every output",
		Long: `Play a recording (written by 'tlstap tls --record FILE') through the same pipeline,
decoders and outputs as a live capture. Without --exit, tlstap keeps serving after the
recording ends, so clients can still connect and resume.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			// Fail early, before anything starts, and explain the files
			// people mistake for recordings.
			if err := checkRecording(path); err != nil {
				return err
			}
			return run(cmd, &flags, source{name: path, open: func() (io.ReadCloser, error) { return os.Open(path) }})
		},
	}
	registerFlags(cmd.Flags(), onPlay, &flags)
	return cmd
}
