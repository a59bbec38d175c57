package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/webui"
)

// serviceFlags configure what runs beside the pipeline: the streaming
// server, forwarders and push sinks.
type serviceFlags struct {
	srv server.Options
	tls bool
	fwd struct {
		URLs           []string
		Filter, Method string
	}
	fwdMode      string
	fwdFormat    string
	sinks        []string
	sinkFormat   string
	rotateSize   int64
	rotateAge    time.Duration
	drain        time.Duration
	setupServers []func(*server.Server) // extra mounts (the config API)
}

func (f *serviceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.srv.Listen, "listen", server.DefaultListen, "main listener `host:port` for the WebSocket stream (/ws) and the API; \"\" disables it")
	fs.StringVar(&f.srv.ECaptureQ, "ecaptureq", "", "also serve the eCaptureQ GUI on this plain WebSocket `URL`, e.g. ws://127.0.0.1:28257 (any path; only the GUI's Origin http://localhost/, native clients and --allow-origin; a non-loopback address needs ?token)")
	fs.BoolVar(&f.tls, "tls", true, "serve the main listener over TLS (--tls=false is only allowed on loopback)")
	fs.StringVar(&f.srv.TLSCert, "tls-cert", "", "PEM certificate `file` for the main listener (default: a self-signed one kept in the state directory)")
	fs.StringVar(&f.srv.TLSKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	fs.StringVar(&f.srv.ClientCA, "client-ca", "", "PEM CA `file`: require client certificates signed by it (mutual TLS)")
	fs.StringVar(&f.srv.StateDir, "state-dir", "", "`directory` for the generated certificate and token (default /var/lib/tlstap as root, else the user config directory)")
	fs.StringVar(&f.srv.Auth, "auth", "token", "client authentication: token, or none (only on loopback listeners)")
	fs.StringVar(&f.srv.Token, "token", "", "use this access `token` instead of the generated one (at least 16 characters)")
	fs.StringArrayVar(&f.srv.AllowOrigins, "allow-origin", nil, "allow WebSocket upgrades from this browser `origin` pattern, on the main and eCaptureQ listeners (repeatable; e.g. 'https://*.example.com')")
	fs.DurationVar(&f.srv.Heartbeat, "heartbeat", 15*time.Second, "interval between heartbeats sent to stream clients")
	fs.DurationVar(&f.srv.WriteTimeout, "write-timeout", 10*time.Second, "disconnect a stream client that accepted nothing for this long")
	fs.IntVar(&f.srv.ClientQueue, "client-queue", 4096, "entries queued per stream client before it starts missing entries (it is told how many)")

	fs.StringArrayVar(&f.fwd.URLs, "forward-url", nil, "forward captured HTTP events to this `URL` (repeatable): a webhook endpoint, or an HTTP proxy such as Burp's http://127.0.0.1:8080 with --forward-mode proxy")
	fs.StringVar(&f.fwdMode, "forward-mode", "webhook", "webhook: send each event as JSON/protobuf; proxy: RE-SEND each captured request, with its cookies and tokens, through the proxy TO THE REAL SERVER, which executes it a second time (side effects!); only GET, HEAD and OPTIONS unless --forward-filter names methods")
	fs.StringVar(&f.fwd.Filter, "forward-filter", "", "which events to forward: a filter expression (docs/filters.md, e.g. '~m POST & host=*.example.com & !~c 404') or the older syntax of comma-separated key=glob|glob terms (key!= excludes), all keys must match; keys: content-type (or a bare pattern), host, path, method, type (http1-request, http2-request, http1-response, http2-response, websocket, raw or a number), pname (process name); e.g. 'content-type=application/json|text/*,host=*.example.com,path=/api/*,method=GET,pname!=backup' (proxy mode defaults to method=GET|HEAD|OPTIONS). Requests tlstap sent itself (header X-Tlstap-Forwarded) and the receiving side's copy of a message whose sender was captured are never forwarded")
	fs.StringVar(&f.fwd.Method, "forward-method", "POST", "HTTP `method` of webhook requests")
	fs.StringVar(&f.fwdFormat, "forward-format", "json", "webhook body: json (every field, payload base64) or protobuf (one LogEntry)")

	fs.StringArrayVar(&f.sinks, "eventaddr", nil, "push every LogEntry to this `address` (repeatable): tcp://host:port (varint-length-delimited), ws:// or wss:// (one binary message each), nats://host:port or tls://host:port (JetStream, see docs/fleet.md), or a file path")
	fs.StringVar(&f.sinkFormat, "eventaddr-format", "protobuf", "--eventaddr encoding: protobuf, json or text")
	fs.Int64Var(&f.rotateSize, "eventaddr-rotate-size", 0, "start a new --eventaddr file after this many `bytes` (0: never)")
	fs.DurationVar(&f.rotateAge, "eventaddr-rotate-age", 0, "start a new --eventaddr file after this long (0: never)")
	fs.DurationVar(&f.drain, "drain-timeout", engine.DefaultDrainTimeout, "at exit (--exit or Ctrl-C), give forwarders and sinks this long to deliver what they hold; then print what was delivered, failed and dropped")
}

// configure adds the forwarders and sinks given as flags to cfg: the
// engine's applier starts them, and the config API can then see, change
// and remove them like any other.
func (f *serviceFlags) configure(opts *engine.Options) {
	opts.DrainTimeout = f.drain
	cfg := &opts.Config
	for _, u := range f.fwd.URLs {
		cfg.Forward = append(cfg.Forward, config.Forward{URL: u, Mode: f.fwdMode, Method: f.fwd.Method, Filter: f.fwd.Filter, Format: f.fwdFormat})
	}
	for _, a := range f.sinks {
		cfg.Sinks = append(cfg.Sinks, config.Sink{Addr: a, Format: f.sinkFormat, RotateBytes: f.rotateSize, RotateAge: config.Duration(f.rotateAge)})
	}
}

// add builds the configured services into e. Errors here are the user's
// (bad flags) and are reported before capture starts.
func (f *serviceFlags) add(e *engine.Engine) error {
	if f.srv.Listen != "" || f.srv.ECaptureQ != "" {
		opts := f.srv
		opts.NoTLS = !f.tls
		opts.WrapListener = e.Self.Listener
		srv, err := server.New(opts, e.Broker, e.Stats, e.Log)
		if err != nil {
			return serverHint(err)
		}
		for _, s := range srv.Secrets() {
			e.Secrets.Add(s)
		}
		for _, setup := range f.setupServers {
			setup(srv)
		}
		webui.Mount(srv)
		// Printed to the terminal only: the URLs carry the token, and the
		// log also goes to every stream client.
		fmt.Fprintf(e.Opts.Stderr, "tlstap: serving events\n")
		for _, u := range srv.URLs() {
			fmt.Fprintf(e.Opts.Stderr, "  %s\n", u)
		}
		if opts.Listen != "" {
			fmt.Fprintf(e.Opts.Stderr, "  web UI: %s\n", webui.PageURL(srv.URLs()[0]))
		}
		if opts.Listen != "" && !opts.NoTLS {
			fmt.Fprintf(e.Opts.Stderr, "  certificate SHA-256 fingerprint: %s\n", srv.Fingerprint())
		}
		e.Add(srv)
	}
	return nil
}
