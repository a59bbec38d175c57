package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/engine"
)

type tlsFlags struct {
	commonFlags
	services serviceFlags
	export   exportFlags
	libs     []string
	pids     []uint
	uids     []uint
	comms    []string
	ring     byteSize
	record   string
	self     bool
	recordOW bool
}

func newTLSCmd() *cobra.Command {
	var f tlsFlags
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Capture TLS plaintext from programs using OpenSSL or GnuTLS (root)",
		Long: `Capture the plaintext of every SSL_read/SSL_write(_ex) and gnutls_record_send/recv call
of programs using OpenSSL or GnuTLS, with eBPF uprobes and the connection's addresses learned
in the kernel (no kprobes needed). Needs root (CAP_BPF + CAP_PERFMON). By default attaches to
the system's libssl (1.1 and 3) and libgnutls, to every such library running processes have
mapped, and, as processes start or load libraries later, to every file that exports OpenSSL's
or GnuTLS's functions (private copies, containers, node).

Not seen: programs that drive TLS through OpenSSL's SSL BIO (e.g. 'openssl s_server -www'),
Go programs (crypto/tls) and NSS.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd) },
	}
	fs := cmd.Flags()
	f.commonFlags.register(fs)
	f.services.register(fs)
	f.export.register(fs)
	fs.StringArrayVar(&f.libs, "libssl", nil, "attach to this libssl `path`, or a binary with OpenSSL linked statically (repeatable; default: discover)")
	fs.Var(&idList{ids: &f.pids, what: "process id"}, "pid", "capture only these process `ids` (repeatable or comma-separated; default: all)")
	fs.Var(&idList{ids: &f.uids, what: "user id"}, "uid", "capture only processes of these user `ids` (repeatable or comma-separated)")
	fs.StringArrayVar(&f.comms, "comm", nil, "capture only processes with this `name` (as in /proc/PID/comm; repeatable)")
	fs.Var(&f.ring, "ring-size", "kernel-to-user ring buffer `size`, a power of two: bytes or with a unit, e.g. 16MiB, \"64 MiB\", 1G (default 64 MiB)")
	fs.BoolVar(&f.self, "capture-self", false, "debugging tlstap: also capture connections to and from its own listeners, forwarders and sinks (by default they are excluded in the kernel; its tokens are masked either way)")
	fs.StringVar(&f.record, "record", "", "also write every captured chunk to this recording `file` (play it with 'tlstap replay'); flushed every half second, so a crash loses at most that")
	fs.BoolVar(&f.recordOW, "record-overwrite", false, "let --record replace an existing file (default: refuse)")
	return cmd
}

func (f *tlsFlags) run(cmd *cobra.Command) error {
	if f.ring != 0 && (f.ring < 4096 || f.ring&(f.ring-1) != 0) {
		return usageError{fmt.Errorf("--ring-size must be a power of two >= 4096 (e.g. 4MiB, 64MiB), got %d bytes", f.ring)}
	}
	opts, err := f.engineOptions(cmd)
	if err != nil {
		return err
	}
	f.services.configure(&opts)
	cfg := &opts.Config.Capture
	if fs := cmd.Flags(); fs.Changed("libssl") {
		cfg.Libs = f.libs
	}
	if fs := cmd.Flags(); fs.Changed("pid") {
		if cfg.PIDs, err = toUint32s("--pid", f.pids); err != nil {
			return err
		}
	}
	if fs := cmd.Flags(); fs.Changed("uid") {
		if cfg.UIDs, err = toUint32s("--uid", f.uids); err != nil {
			return err
		}
	}
	if fs := cmd.Flags(); fs.Changed("comm") {
		cfg.Comms = f.comms
	}
	opts.Record, opts.RecordOverwrite = f.record, f.recordOW
	opts.Live = true
	if err := validate(opts.Config); err != nil {
		return err
	}
	if err := f.export.apply(&opts); err != nil {
		return err
	}
	e := engine.New(opts)
	if err := f.export.addHAR(e); err != nil {
		return err
	}
	// The recording's path is checked before anything attaches or
	// listens; a file made for a run that never started is removed.
	if err := e.OpenRecording(); err != nil {
		return err
	}
	running := false
	defer func() {
		if !running && f.record != "" {
			e.Close()
			os.Remove(f.record)
		}
	}()
	src, err := openssl.New(openssl.Options{
		Libs:      cfg.Libs,
		Filter:    openssl.Filter{PIDs: cfg.PIDs, UIDs: cfg.UIDs, Comms: cfg.Comms},
		RingBytes: int(f.ring),
		Logger:    e.Log,
		WatchGo:   true,
	})
	if err != nil {
		return err
	}
	defer src.Close()
	if f.self {
		e.Self.Disable()
		e.Log.Warn("--capture-self: tlstap's own connections through other processes are captured")
	}
	e.Self.SetExcluder(src)
	e.WatchSelfExclusion(src)
	var names []string
	for _, l := range src.Libraries() {
		names = append(names, l.Path)
	}
	e.Log.Info("capturing", "libraries", strings.Join(names, ","), "pids", cfg.PIDs, "uids", cfg.UIDs, "comms", cfg.Comms)
	mountAPI(&f.services, e, src)
	if err := f.services.add(e); err != nil {
		return err
	}
	running = true
	return e.Run(cmd.Context(), src)
}

func toUint32s(flag string, vs []uint) ([]uint32, error) {
	out := make([]uint32, 0, len(vs))
	for _, v := range vs {
		if v == 0 || v > 1<<32-1 {
			return nil, usageError{fmt.Errorf("%s: %d is not a valid id", flag, v)}
		}
		out = append(out, uint32(v))
	}
	return out, nil
}
