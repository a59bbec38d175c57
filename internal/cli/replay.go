package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/engine"
)

// playFlags are shared by replay and demo.
type playFlags struct {
	commonFlags
	services serviceFlags
	export   exportFlags
	speed    float64
	loop     bool
	exit     bool
}

func (f *playFlags) register(fs *pflag.FlagSet) {
	f.commonFlags.register(fs)
	f.services.register(fs)
	f.export.register(fs)
	fs.Float64Var(&f.speed, "speed", 1, "playback speed: 1 = recorded pace, 2 = twice as fast, 0 = as fast as possible")
	fs.BoolVar(&f.loop, "loop", false, "play the recording again and again until interrupted")
	fs.BoolVar(&f.exit, "exit", false, "exit once the recording has been played and forwarders and sinks have delivered what they hold (see --drain-timeout; default: keep serving clients until interrupted)")
}

func (f *playFlags) run(cmd *cobra.Command, name string, open func() (io.ReadCloser, error), rebase bool) error {
	if f.speed < 0 {
		return usageError{fmt.Errorf("--speed must be >= 0, got %v", f.speed)}
	}
	if f.loop && f.exit {
		return usageError{fmt.Errorf("--loop and --exit contradict each other")}
	}
	opts, err := f.engineOptions(cmd)
	if err != nil {
		return err
	}
	f.services.configure(&opts)
	if err := validate(opts.Config); err != nil {
		return err
	}
	opts.Exit = f.exit
	// At full speed, time comes from the recording alone, so raw data is
	// split the same way on every run.
	opts.VirtualClock = f.speed == 0
	if err := f.export.apply(&opts); err != nil {
		return err
	}
	e := engine.New(opts)
	if err := f.export.addHAR(e); err != nil {
		return err
	}
	src, err := replay.New(replay.Options{Open: open, Name: name, Speed: f.speed, Loop: f.loop, Rebase: rebase, Log: e.Log})
	if err != nil {
		return err
	}
	mountAPI(&f.services, e, nil)
	if err := f.services.add(e); err != nil {
		return err
	}
	return e.Run(cmd.Context(), src)
}

func newReplayCmd() *cobra.Command {
	var f playFlags
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
			return f.run(cmd, path, func() (io.ReadCloser, error) { return os.Open(path) }, false)
		},
	}
	f.register(cmd.Flags())
	return cmd
}
