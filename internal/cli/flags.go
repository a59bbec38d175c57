package cli

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/server"
)

// settings is what the flags of a run command set: the configuration
// (config.Config, its Run part, the stream server's settings, included)
// and the templates that every --forward-url and --eventaddr gets.
type settings struct {
	configFile string
	cfg        config.Config

	forwardURLs []string
	forward     config.Forward // mode, method, filter, format of every --forward-url
	sinkAddrs   []string
	sink        config.Sink // format and rotation of every --eventaddr
}

// defaultSettings are the flags' defaults, which --help prints.
func defaultSettings() settings {
	cfg := config.Default()
	cfg.Run.Node, _ = os.Hostname()
	cfg.Run.PodsNode = os.Getenv("NODE_NAME")
	cfg.Run.LogLevel = "info"
	cfg.Run.DrainTimeout = config.Duration(engine.DefaultDrainTimeout)
	cfg.Run.Server = config.Server{Listen: server.DefaultListen, TLS: true, Auth: config.AuthToken,
		Heartbeat: 15 * time.Second, WriteTimeout: 10 * time.Second, ClientQueue: 4096}
	return settings{
		cfg:     cfg,
		forward: config.Forward{Mode: "webhook", Method: "POST", Format: "json"},
		sink:    config.Sink{Format: "protobuf"},
	}
}

// The commands a flag belongs to.
type commands uint8

const (
	onTLS  commands = 1 << iota // tlstap tls
	onPlay                      // tlstap replay and tlstap demo
	onView                      // tlstap view: output and the server's flags only
	onRun  = onTLS | onPlay
)

// flagDef maps one flag to the setting it sets.
type flagDef struct {
	name, short string
	on          commands
	// field is the config field the flag sets, as config.Validate names
	// it ("pipeline.tsize", "run.speed"): an error on that field is
	// reported by the flag's name. A flag that adds to a list names the
	// list's field ("forward[].url").
	field string
	usage string
	// ptr returns the flag's storage within s: a *string, *bool, *int,
	// *int64, *float64, *time.Duration, *config.Duration, *[]string or,
	// with value, anything value wraps.
	ptr func(s *settings) any
	// value, if set, parses the flag instead of pflag's type for ptr.
	value func(p any) pflag.Value
}

// flagTable is every flag of the run commands. Flag values land in a
// settings value that holds the defaults; resolve lays the --config file
// under the flags the user gave.
var flagTable = []flagDef{
	{name: "config", on: onRun, usage: "read settings from this JSON `file` first (flags given explicitly override it; see docs/config.md)",
		ptr: func(s *settings) any { return &s.configFile }},

	// Standard output and the pipeline (config.Output, config.Pipeline).
	{name: "output", short: "o", on: onRun | onView, field: "output.format", usage: "standard output `format`: text (header line + payload), json (one object per event) or none",
		ptr: func(s *settings) any { return &s.cfg.Output.Format }},
	{name: "hex", on: onRun | onView, field: "output.hex", usage: "print every payload as a hex dump in text output (binary payloads always are)",
		ptr: func(s *settings) any { return &s.cfg.Output.Hex }},
	{name: "tsize", on: onRun, field: "pipeline.tsize", usage: "truncate event payloads to this many `bytes` and mark them truncated (0: no limit)",
		ptr: func(s *settings) any { return &s.cfg.Pipeline.TSize }},
	{name: "idle-timeout", on: onRun, field: "pipeline.idle_timeout", usage: "emit undecodable (raw) data after this long without more data on its connection",
		ptr: func(s *settings) any { return &s.cfg.Pipeline.IdleTimeout }},
	{name: "stream-parts", on: onRun, field: "pipeline.stream_parts", usage: "emit HTTP messages whose body is still arriving as head, body parts (SSE events, gRPC messages, lines) and end; false: whole messages only",
		ptr: func(s *settings) any { return &s.cfg.Pipeline.StreamParts }},

	// The run (config.Run).
	{name: "raw", on: onRun, field: "run.raw_only", usage: "do not decode protocols: every event is raw data (type 0)",
		ptr: func(s *settings) any { return &s.cfg.Run.RawOnly }},
	{name: "log-level", on: onRun | onView, field: "run.log_level", usage: "log `level`: debug, info, warn or error",
		ptr: func(s *settings) any { return &s.cfg.Run.LogLevel }},
	{name: "node", on: onRun, field: "run.node", usage: "`name` of this node, set on every event so a fleet's events stay apart (\"\": none)",
		ptr: func(s *settings) any { return &s.cfg.Run.Node }},
	{name: "drain-timeout", on: onRun, field: "run.drain_timeout", usage: "at exit (--exit or Ctrl-C), give forwarders and sinks this long to deliver what they hold; then print what was delivered, failed and dropped",
		ptr: func(s *settings) any { return &s.cfg.Run.DrainTimeout }},
	{name: "pcapng", on: onRun, field: "run.pcapng", usage: "also write the plaintext as TCP packets to this pcapng `file` for Wireshark (for HTTP/2 on a port it does not guess, use -d tcp.port==PORT,http2)",
		ptr: func(s *settings) any { return &s.cfg.Run.PCAPNG }},
	{name: "pcapng-rotate-size", on: onRun, field: "run.pcapng_rotate_bytes", usage: "start a new --pcapng file after this many `bytes` (0: never)",
		ptr: func(s *settings) any { return &s.cfg.Run.PCAPNGRotateBytes }},
	{name: "har", on: onRun, field: "run.har", usage: "also write every HTTP exchange to this HAR 1.2 `file` (complete when tlstap exits)",
		ptr: func(s *settings) any { return &s.cfg.Run.HAR }},

	// Live capture (config.Capture, config.Run).
	{name: "libssl", on: onTLS, field: "capture.libs", usage: "attach to this libssl `path`, or a binary with OpenSSL linked statically (repeatable; default: discover)",
		ptr: func(s *settings) any { return &s.cfg.Capture.Libs }},
	{name: "pid", on: onTLS, field: "capture.pids", usage: "capture only these process `ids` (repeatable or comma-separated; default: all)",
		ptr: func(s *settings) any { return &s.cfg.Capture.PIDs }, value: ids("process id")},
	{name: "uid", on: onTLS, field: "capture.uids", usage: "capture only processes of these user `ids` (repeatable or comma-separated)",
		ptr: func(s *settings) any { return &s.cfg.Capture.UIDs }, value: ids("user id")},
	{name: "comm", on: onTLS, field: "capture.comms", usage: "capture only processes with this `name` (as in /proc/PID/comm; repeatable)",
		ptr: func(s *settings) any { return &s.cfg.Capture.Comms }},
	{name: "ring-size", on: onTLS, field: "run.ring_bytes", usage: "kernel-to-user ring buffer `size`, a power of two: bytes or with a unit, e.g. 16MiB, \"64 MiB\", 1G (default 64 MiB)",
		ptr: func(s *settings) any { return &s.cfg.Run.RingBytes }, value: func(p any) pflag.Value { return (*byteSize)(p.(*int)) }},
	{name: "capture-self", on: onTLS, field: "run.capture_self", usage: "debugging tlstap: also capture connections to and from its own listeners, forwarders and sinks (by default they are excluded in the kernel; its tokens are masked either way)",
		ptr: func(s *settings) any { return &s.cfg.Run.CaptureSelf }},
	{name: "realtime", on: onTLS, field: "run.realtime", usage: "while traffic is sparse, run tlstap's threads in the real-time class (SCHED_FIFO, lowest priority; needs CAP_SYS_NICE, else a warning and the fair class), so a lone request's events are not queued behind the programs that make it; while records come densely (load), back in the fair class, batching as without it; --realtime=false keeps tlstap in the fair class throughout (docs/benchmarks.md, issue 19)",
		ptr: func(s *settings) any { return &s.cfg.Run.Realtime }},
	{name: "pods", on: onTLS, field: "run.pods", usage: "name each container's Kubernetes pod and namespace (`source`): from the API, in-cluster (this pod's service account; needs get/list/watch on pods) or https://HOST:PORT; or from a runtime's container labels, docker:SOCKET or crio:SOCKET; events a connection emits before its pod is known go out without it",
		ptr: func(s *settings) any { return &s.cfg.Run.Pods }},
	{name: "pods-token", on: onTLS, field: "run.pods_token_file", usage: "bearer token `file` for --pods (default with in-cluster: the service account's; read again for every request)",
		ptr: func(s *settings) any { return &s.cfg.Run.PodsTokenFile }},
	{name: "pods-ca", on: onTLS, field: "run.pods_ca_file", usage: "PEM `file` of the CAs of the --pods API server (default with in-cluster: the service account's; otherwise the system's)",
		ptr: func(s *settings) any { return &s.cfg.Run.PodsCAFile }},
	{name: "pods-node", on: onTLS, field: "run.pods_node", usage: "Kubernetes `node` whose pods --pods lists (default: $NODE_NAME, else --node)",
		ptr: func(s *settings) any { return &s.cfg.Run.PodsNode }},
	{name: "record", on: onTLS, field: "run.record", usage: "also write every captured chunk to this recording `file` (play it with 'tlstap replay'); flushed every half second, so a crash loses at most that",
		ptr: func(s *settings) any { return &s.cfg.Run.Record }},
	{name: "record-overwrite", on: onTLS, field: "run.record_overwrite", usage: "let --record replace an existing file (default: refuse)",
		ptr: func(s *settings) any { return &s.cfg.Run.RecordOverwrite }},

	// Replay (config.Run).
	{name: "speed", on: onPlay, field: "run.speed", usage: "playback speed: 1 = recorded pace, 2 = twice as fast, 0 = as fast as possible",
		ptr: func(s *settings) any { return &s.cfg.Run.Speed }},
	{name: "loop", on: onPlay, field: "run.loop", usage: "play the recording again and again until interrupted",
		ptr: func(s *settings) any { return &s.cfg.Run.Loop }},
	{name: "exit", on: onPlay, field: "run.exit", usage: "exit once the recording has been played and forwarders and sinks have delivered what they hold (see --drain-timeout; default: keep serving clients until interrupted)",
		ptr: func(s *settings) any { return &s.cfg.Run.Exit }},

	// Forwarders (config.Forward): one per --forward-url, each with the
	// other --forward-* settings.
	{name: "forward-url", on: onRun, field: "forward[].url", usage: "forward captured HTTP events to this `URL` (repeatable): a webhook endpoint, or an HTTP proxy such as Burp's http://127.0.0.1:8080 with --forward-mode proxy",
		ptr: func(s *settings) any { return &s.forwardURLs }},
	{name: "forward-mode", on: onRun, field: "forward[].mode", usage: "webhook: send each event as JSON/protobuf; proxy: RE-SEND each captured request, with its cookies and tokens, through the proxy TO THE REAL SERVER, which executes it a second time (side effects!); only GET, HEAD and OPTIONS unless --forward-filter names methods",
		ptr: func(s *settings) any { return &s.forward.Mode }},
	{name: "forward-filter", on: onRun, field: "forward[].filter", usage: "which events to forward: a filter expression (docs/filters.md, e.g. '~m POST & host=*.example.com & !~c 404') or the older syntax of comma-separated key=glob|glob terms (key!= excludes), all keys must match; keys: content-type (or a bare pattern), host, path, method, type (http1-request, http2-request, http1-response, http2-response, websocket, raw or a number), pname (process name); e.g. 'content-type=application/json|text/*,host=*.example.com,path=/api/*,method=GET,pname!=backup' (proxy mode defaults to method=GET|HEAD|OPTIONS). Requests tlstap sent itself (header X-Tlstap-Forwarded) and the receiving side's copy of a message whose sender was captured are never forwarded",
		ptr: func(s *settings) any { return &s.forward.Filter }},
	{name: "forward-method", on: onRun, field: "forward[].method", usage: "HTTP `method` of webhook requests",
		ptr: func(s *settings) any { return &s.forward.Method }},
	{name: "forward-format", on: onRun, field: "forward[].format", usage: "webhook body: json (every field, payload base64) or protobuf (one LogEntry)",
		ptr: func(s *settings) any { return &s.forward.Format }},

	// Push sinks (config.Sink): one per --eventaddr.
	{name: "eventaddr", on: onRun, field: "sinks[].addr", usage: "push every LogEntry to this `address` (repeatable): tcp://host:port (varint-length-delimited), ws:// or wss:// (one binary message each), nats://host:port or tls://host:port (JetStream, see docs/fleet.md), or a file path",
		ptr: func(s *settings) any { return &s.sinkAddrs }},
	{name: "eventaddr-format", on: onRun, field: "sinks[].format", usage: "--eventaddr encoding: protobuf, json or text",
		ptr: func(s *settings) any { return &s.sink.Format }},
	{name: "eventaddr-rotate-size", on: onRun, field: "sinks[].rotate_bytes", usage: "start a new --eventaddr file after this many `bytes` (0: never)",
		ptr: func(s *settings) any { return &s.sink.RotateBytes }},
	{name: "eventaddr-rotate-age", on: onRun, field: "sinks[].rotate_age", usage: "start a new --eventaddr file after this long (0: never)",
		ptr: func(s *settings) any { return &s.sink.RotateAge }},

	// The stream server (config.Server).
	{name: "listen", on: onRun | onView, field: "run.server.listen", usage: "main listener `host:port` for the WebSocket stream (/ws) and the API; \"\" disables it",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.Listen }},
	{name: "ecaptureq", on: onRun | onView, field: "run.server.ecaptureq", usage: "also serve the eCaptureQ GUI on this plain WebSocket `URL`, e.g. ws://127.0.0.1:28257 (any path; only the GUI's Origin http://localhost/, native clients and --allow-origin; a non-loopback address needs ?token)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.ECaptureQ }},
	{name: "tls", on: onRun | onView, field: "run.server.tls", usage: "serve the main listener over TLS (--tls=false is only allowed on loopback)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.TLS }},
	{name: "tls-cert", on: onRun | onView, field: "run.server.tls_cert", usage: "PEM certificate `file` for the main listener (default: a self-signed one kept in the state directory)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.TLSCert }},
	{name: "tls-key", on: onRun | onView, field: "run.server.tls_key", usage: "PEM private key `file` for --tls-cert",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.TLSKey }},
	{name: "client-ca", on: onRun | onView, field: "run.server.client_ca", usage: "PEM CA `file`: require client certificates signed by it (mutual TLS)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.ClientCA }},
	{name: "state-dir", on: onRun | onView, field: "run.server.state_dir", usage: "`directory` for the generated certificate and token (default /var/lib/tlstap as root, else the user config directory)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.StateDir }},
	{name: "auth", on: onRun | onView, field: "run.server.auth", usage: "client authentication: token, or none (only on loopback listeners)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.Auth }},
	{name: "token", on: onRun | onView, field: "run.server.token", usage: "use this access `token` instead of the generated one (at least 16 characters)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.Token }},
	{name: "allow-origin", on: onRun | onView, field: "run.server.allow_origins", usage: "allow WebSocket upgrades from this browser `origin` pattern, on the main and eCaptureQ listeners (repeatable; e.g. 'https://*.example.com')",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.AllowOrigins }},
	{name: "heartbeat", on: onRun | onView, field: "run.server.heartbeat", usage: "interval between heartbeats sent to stream clients",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.Heartbeat }},
	{name: "write-timeout", on: onRun | onView, field: "run.server.write_timeout", usage: "disconnect a stream client that accepted nothing for this long",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.WriteTimeout }},
	{name: "client-queue", on: onRun | onView, field: "run.server.client_queue", usage: "entries queued per stream client before it starts missing entries (it is told how many)",
		ptr: func(s *settings) any { return &s.cfg.Run.Server.ClientQueue }},
}

// registerFlags adds the flags of the commands on to fs, their values
// in s, whose values are the defaults --help prints.
func registerFlags(fs *pflag.FlagSet, on commands, s *settings) {
	for _, d := range flagTable {
		if d.on&on == 0 {
			continue
		}
		if d.value != nil {
			fs.VarP(d.value(d.ptr(s)), d.name, d.short, d.usage)
			continue
		}
		switch p := d.ptr(s).(type) {
		case *string:
			fs.StringVarP(p, d.name, d.short, *p, d.usage)
		case *bool:
			fs.BoolVarP(p, d.name, d.short, *p, d.usage)
		case *int:
			fs.IntVarP(p, d.name, d.short, *p, d.usage)
		case *int64:
			fs.Int64VarP(p, d.name, d.short, *p, d.usage)
		case *float64:
			fs.Float64VarP(p, d.name, d.short, *p, d.usage)
		case *time.Duration:
			fs.DurationVarP(p, d.name, d.short, *p, d.usage)
		case *config.Duration:
			fs.DurationVarP((*time.Duration)(p), d.name, d.short, time.Duration(*p), d.usage)
		case *[]string:
			fs.StringArrayVarP(p, d.name, d.short, *p, d.usage)
		default:
			panic(fmt.Sprintf("flag --%s: no flag type for %T", d.name, p))
		}
	}
}

// resolve merges, lowest first, the defaults, the --config file and the
// flags given on the command line, and judges the result with
// config.Validate. given holds what the flags parsed into. Only the
// configuration proper comes from the file; the rest of settings is
// flags only.
func resolve(fs *pflag.FlagSet, given *settings) (settings, error) {
	s := *given
	if s.configFile != "" {
		file, err := config.Load(s.configFile, config.Default())
		if err != nil {
			return s, err
		}
		file.Run = given.cfg.Run
		s.cfg = file
		for _, d := range flagTable {
			if d.field != "" && fs.Lookup(d.name) != nil && fs.Changed(d.name) {
				reflect.ValueOf(d.ptr(&s)).Elem().Set(reflect.ValueOf(d.ptr(given)).Elem())
			}
		}
	}
	for _, u := range s.forwardURLs {
		f := s.forward
		f.URL = u
		s.cfg.Forward = append(s.cfg.Forward, f)
	}
	for _, a := range s.sinkAddrs {
		k := s.sink
		k.Addr = a
		s.cfg.Sinks = append(s.cfg.Sinks, k)
	}
	if errs := config.Validate(s.cfg); len(errs) > 0 {
		return s, usageError{fieldErrors(fs, errs)}
	}
	return s, nil
}

// joiner is what goes between a flag's name and a reason: nothing but a
// space where the reason continues the sentence ("--tsize must be ...",
// `--log-level "loud": want ...`), a colon where it is one of its own.
func joiner(reason string) string {
	for _, p := range []string{"must ", "and ", "with ", "at most ", `"`} {
		if strings.HasPrefix(reason, p) {
			return " "
		}
	}
	return ": "
}

// pathIndex matches the list index of a field path: "capture.pids[1]".
var pathIndex = regexp.MustCompile(`\[\d+\]`)

// fieldErrors words config.Validate's errors for the command line. An
// error on a field a flag set is told by the flag's name ("--tsize must
// be >= 0"), and so is any field path its reason names; one in a list
// element, or in what the --config file set, keeps its path
// ("forward[0].url: ..."), which says which element or setting it is.
func fieldErrors(fs *pflag.FlagSet, errs []config.FieldError) error {
	byFlag := map[string]string{}
	for _, d := range flagTable {
		if d.field != "" && fs.Lookup(d.name) != nil && (fs.Changed(d.name) || strings.HasPrefix(d.field, "run.")) {
			byFlag[d.field] = "--" + d.name
		}
	}
	// Longest first: run.server.tls is a prefix of run.server.tls_key.
	fields := slices.Collect(maps.Keys(byFlag))
	slices.SortFunc(fields, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	var flagged, pathed []string
	for _, fe := range errs {
		reason := fe.Reason
		for _, field := range fields {
			if strings.HasPrefix(field, "run.") {
				reason = strings.ReplaceAll(reason, field, byFlag[field])
			}
		}
		if flag, ok := byFlag[fe.Field]; ok && !pathIndex.MatchString(fe.Field) {
			flagged = append(flagged, flag+joiner(reason)+reason)
			continue
		}
		pathed = append(pathed, config.FieldError{Field: fe.Field, Reason: reason}.Error())
	}
	msg := strings.Join(flagged, "; ")
	if len(pathed) > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += "invalid settings: " + strings.Join(pathed, "; ")
	}
	return errors.New(msg)
}
