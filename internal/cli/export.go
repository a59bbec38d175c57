package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/output/har"
	"github.com/tlstap/tlstap/internal/output/pcapng"
)

// exportFlags write the capture for other tools: pcapng for Wireshark,
// HAR for HTTP tools.
type exportFlags struct {
	pcapng       string
	pcapngRotate int64
	har          string
}

func (f *exportFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.pcapng, "pcapng", "", "also write the plaintext as TCP packets to this pcapng `file` for Wireshark (for HTTP/2 on a port it does not guess, use -d tcp.port==PORT,http2)")
	fs.Int64Var(&f.pcapngRotate, "pcapng-rotate-size", 0, "start a new --pcapng file after this many `bytes` (0: never)")
	fs.StringVar(&f.har, "har", "", "also write every HTTP exchange to this HAR 1.2 `file` (complete when tlstap exits)")
}

// apply opens the pcapng file and hooks it into opts; the engine's Run
// closes it.
func (f *exportFlags) apply(opts *engine.Options) error {
	if f.pcapngRotate < 0 {
		return usageError{fmt.Errorf("--pcapng-rotate-size must be >= 0, got %d", f.pcapngRotate)}
	}
	if f.pcapng != "" {
		pf, err := pcapng.Create(f.pcapng, f.pcapngRotate, pcapng.Options{Application: "tlstap " + versionString()})
		if err != nil {
			return err
		}
		opts.Taps = append(opts.Taps, pf)
	}
	return nil
}

// addHAR subscribes the HAR file to e's events; call it before e.Run so
// that it sees every event.
func (f *exportFlags) addHAR(e *engine.Engine) error {
	if f.har == "" {
		return nil
	}
	fh, err := os.OpenFile(f.har, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("har: %w", err)
	}
	// A file gets every event: block the pipeline rather than drop, as
	// standard output does.
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "har", Policy: broker.Block, Queue: 8192,
		Filter: func(en *broker.Entry) bool { return en.Seq != 0 }})
	w := har.NewWriter(fh, har.Options{Creator: "tlstap", Version: versionString()})
	e.Add(engine.ServiceFunc(func(ctx context.Context) error {
		err := har.Run(ctx, sub, w)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// The HAR is an export: losing it must not stop the capture.
			e.Log.Error("HAR export stopped; capture goes on", "file", f.har, "err", err)
		}
		return nil
	}))
	return nil
}
