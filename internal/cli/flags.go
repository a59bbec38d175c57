package cli

import (
	"fmt"
	"log/slog"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/output"
)

// commonFlags are shared by every command that runs the pipeline.
type commonFlags struct {
	configFile string
	output     string
	hex        bool
	tsize      int
	idle       time.Duration
	parts      bool
	rawOnly    bool
	logLevel   string
	node       string
}

func (f *commonFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.configFile, "config", "", "read settings from this JSON `file` first (flags given explicitly override it; see docs/config.md)")
	fs.StringVarP(&f.output, "output", "o", "text", "standard output `format`: text (header line + payload), json (one object per event) or none")
	fs.BoolVar(&f.hex, "hex", false, "print every payload as a hex dump in text output (binary payloads always are)")
	fs.IntVar(&f.tsize, "tsize", 0, "truncate event payloads to this many `bytes` and mark them truncated (0: no limit)")
	fs.DurationVar(&f.idle, "idle-timeout", 100*time.Millisecond, "emit undecodable (raw) data after this long without more data on its connection")
	fs.BoolVar(&f.parts, "stream-parts", true, "emit HTTP messages whose body is still arriving as head, body parts (SSE events, gRPC messages, lines) and end; false: whole messages only")
	fs.BoolVar(&f.rawOnly, "raw", false, "do not decode protocols: every event is raw data (type 0)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	host, _ := os.Hostname()
	fs.StringVar(&f.node, "node", host, "`name` of this node, set on every event so a fleet's events stay apart (\"\": none)")
}

// resolve merges defaults, the config file and explicitly given flags.
func (f *commonFlags) resolve(cmd *cobra.Command) (config.Config, slog.Level, error) {
	cfg := config.Default()
	if f.configFile != "" {
		var err error
		if cfg, err = config.Load(f.configFile, cfg); err != nil {
			return cfg, 0, err
		}
	}
	fs := cmd.Flags()
	if fs.Changed("output") || f.configFile == "" {
		cfg.Output.Format = f.output
	}
	if fs.Changed("hex") {
		cfg.Output.Hex = f.hex
	}
	if fs.Changed("tsize") {
		cfg.Pipeline.TSize = f.tsize
	}
	if fs.Changed("stream-parts") {
		cfg.Pipeline.StreamParts = f.parts
	}
	if fs.Changed("idle-timeout") {
		cfg.Pipeline.IdleTimeout = config.Duration(f.idle)
	}
	if _, err := output.ParseFormat(cfg.Output.Format); err != nil {
		return cfg, 0, usageError{err}
	}
	if cfg.Pipeline.TSize < 0 {
		return cfg, 0, usageError{fmt.Errorf("--tsize must be >= 0, got %d", cfg.Pipeline.TSize)}
	}
	if cfg.Pipeline.IdleTimeout <= 0 {
		return cfg, 0, usageError{fmt.Errorf("--idle-timeout must be > 0")}
	}
	if !utf8.ValidString(f.node) || len(f.node) > 255 {
		return cfg, 0, usageError{fmt.Errorf("--node must be valid UTF-8 of at most 255 bytes")}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return cfg, 0, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)}
	}
	return cfg, lvl, nil
}

func (f *commonFlags) engineOptions(cmd *cobra.Command) (engine.Options, error) {
	cfg, lvl, err := f.resolve(cmd)
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{
		Config:   cfg,
		RawOnly:  f.rawOnly,
		Stdout:   cmd.OutOrStdout(),
		Stderr:   cmd.ErrOrStderr(),
		LogLevel: lvl,
		Node:     f.node,
	}, nil
}

// validate reports every invalid setting, whether it came from a flag or
// the config file, as one usage error.
func validate(cfg config.Config) error {
	if errs := config.Validate(cfg); len(errs) > 0 {
		return usageError{fmt.Errorf("invalid settings: %w", config.FieldErrors(errs))}
	}
	return nil
}
