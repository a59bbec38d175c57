package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/golden"
)

// parse registers the flags of the commands on, parses args and
// resolves them as a run command does.
func parse(t *testing.T, on commands, args ...string) (settings, error) {
	t.Helper()
	given := defaultSettings()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	registerFlags(fs, on, &given)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return resolve(fs, &given)
}

// TestFlagTableFields: every field a flag names is one config.Validate
// can report, so that its errors are told by the flag's name.
func TestFlagTableFields(t *testing.T) {
	paths := map[string]bool{}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			p := prefix + name
			paths[p] = true
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[config.Duration]():
				walk(p+".", f.Type)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(p+"[].", f.Type.Elem())
			}
		}
	}
	walk("", reflect.TypeFor[config.Config]())
	run := reflect.TypeFor[config.Run]()
	for i := range run.NumField() {
		paths["run."+snake(run.Field(i).Name)] = true
	}
	walk("run.server.", reflect.TypeFor[config.Server]())
	seen := map[string]bool{}
	for _, d := range flagTable {
		if seen[d.name] {
			t.Errorf("--%s is in the table twice", d.name)
		}
		seen[d.name] = true
		if d.field != "" && !paths[d.field] {
			t.Errorf("--%s names field %q, which config.Config does not have", d.name, d.field)
		}
	}
}

// snake writes a Go field name as config.Validate's run paths do:
// PCAPNGRotateBytes → pcapng_rotate_bytes.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		upper := r >= 'A' && r <= 'Z'
		if upper && i > 0 {
			prevLower := s[i-1] >= 'a' && s[i-1] <= 'z'
			nextLower := i+1 < len(s) && s[i+1] >= 'a' && s[i+1] <= 'z'
			if prevLower || nextLower {
				b.WriteByte('_')
			}
		}
		b.WriteString(strings.ToLower(string(r)))
	}
	return b.String()
}

// TestResolve: defaults, then the --config file, then the flags given;
// flags not given leave the file's values alone.
func TestResolve(t *testing.T) {
	file := writeFile(t, "c.json", []byte(`{"pipeline":{"tsize":7,"stream_parts":false},"output":{"format":"json","hex":true},
		"forward":[{"url":"http://127.0.0.1:1/a","mode":"webhook"}],"capture":{"comms":["nginx"]}}`))
	sinkFile := filepath.Join(t.TempDir(), "s.pb")
	tests := []struct {
		name string
		on   commands
		args []string
		want func(c *config.Config)
	}{
		{"defaults", onPlay, nil, func(*config.Config) {}},
		{"flags", onTLS, []string{"--tsize", "3", "-o", "none", "--pid", "12,34", "--pid", "56", "--uid", "0", "--comm", "curl", "--ring-size", "16MiB", "--record", "x.rec"},
			func(c *config.Config) {
				c.Pipeline.TSize, c.Output.Format = 3, "none"
				c.Capture = config.Capture{PIDs: []uint32{12, 34, 56}, UIDs: []uint32{0}, Comms: []string{"curl"}}
				c.Run.RingBytes, c.Run.Record = 16<<20, "x.rec"
			}},
		{"file", onPlay, []string{"--config", file}, func(c *config.Config) {
			c.Pipeline.TSize, c.Pipeline.StreamParts = 7, false
			c.Output = config.Output{Format: "json", Hex: true}
			c.Forward = []config.Forward{{URL: "http://127.0.0.1:1/a", Mode: "webhook"}}
			c.Capture.Comms = []string{"nginx"}
		}},
		{"flags over the file", onTLS, []string{"--config", file, "--tsize", "3", "--hex=false", "--comm", "curl"}, func(c *config.Config) {
			c.Pipeline.TSize, c.Pipeline.StreamParts = 3, false
			c.Output = config.Output{Format: "json"}
			c.Forward = []config.Forward{{URL: "http://127.0.0.1:1/a", Mode: "webhook"}}
			c.Capture.Comms = []string{"curl"}
		}},
		{"forwarders and sinks follow the file's", onPlay, []string{"--config", file,
			"--forward-url", "http://127.0.0.1:2/b", "--forward-url", "http://127.0.0.1:3/c", "--forward-mode", "proxy", "--forward-filter", "method=GET",
			"--eventaddr", sinkFile, "--eventaddr-format", "json", "--eventaddr-rotate-age", "1h"}, func(c *config.Config) {
			c.Pipeline.TSize, c.Pipeline.StreamParts = 7, false
			c.Output = config.Output{Format: "json", Hex: true}
			c.Capture.Comms = []string{"nginx"}
			c.Forward = []config.Forward{{URL: "http://127.0.0.1:1/a", Mode: "webhook"},
				{URL: "http://127.0.0.1:2/b", Mode: "proxy", Method: "POST", Filter: "method=GET", Format: "json"},
				{URL: "http://127.0.0.1:3/c", Mode: "proxy", Method: "POST", Filter: "method=GET", Format: "json"}}
			c.Sinks = []config.Sink{{Addr: sinkFile, Format: "json", RotateAge: config.Duration(time.Hour)}}
		}},
		{"run settings", onPlay, []string{"--speed", "0", "--exit", "--node=", "--log-level", "debug", "--raw", "--drain-timeout", "2s", "--har", "x.har"}, func(c *config.Config) {
			c.Run.Speed, c.Run.Exit, c.Run.Node, c.Run.LogLevel, c.Run.RawOnly = 0, true, "", "debug", true
			c.Run.DrainTimeout, c.Run.HAR = config.Duration(2*time.Second), "x.har"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(t, tt.on, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := defaultSettings().cfg
			tt.want(&want)
			if !reflect.DeepEqual(norm(got.cfg), norm(want)) {
				g, _ := json.Marshal(got.cfg)
				w, _ := json.Marshal(want)
				t.Errorf("config\n got %s %+v\nwant %s %+v", g, got.cfg.Run, w, want.Run)
			}
		})
	}
}

// norm makes nil and empty lists equal, as config.Equal does.
func norm(c config.Config) config.Config {
	for _, l := range []*[]string{&c.Capture.Comms, &c.Capture.Libs} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	for _, l := range []*[]uint32{&c.Capture.PIDs, &c.Capture.UIDs} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(c.Forward) == 0 {
		c.Forward = nil
	}
	if len(c.Sinks) == 0 {
		c.Sinks = nil
	}
	return c
}

// TestSettingsErrors: config.Validate judges every setting; one a flag
// set is told by the flag's name, one in a list element or from the file
// by its path.
func TestSettingsErrors(t *testing.T) {
	file := writeFile(t, "c.json", []byte(`{"pipeline":{"tsize":-3}}`))
	tests := []struct {
		on   commands
		args []string
		want string
	}{
		{onPlay, []string{"--tsize", "-1"}, "--tsize must be >= 0, got -1 (0: no limit)"},
		{onPlay, []string{"--config", file}, "invalid settings: pipeline.tsize: must be >= 0, got -3 (0: no limit)"},
		{onPlay, []string{"--config", file, "--tsize", "-2"}, "--tsize must be >= 0, got -2 (0: no limit)"},
		{onPlay, []string{"-o", "xml"}, `--output: unknown output format "xml" (want text, json or none)`},
		{onPlay, []string{"--loop", "--exit"}, "--loop and --exit contradict each other"},
		{onPlay, []string{"--speed", "-1", "--idle-timeout", "0s"},
			"--idle-timeout must be > 0, got 0s; --speed must be >= 0, got -1"},
		{onPlay, []string{"--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{onPlay, []string{"--pcapng-rotate-size", "-1"}, "--pcapng-rotate-size must be >= 0, got -1"},
		{onTLS, []string{"--ring-size", "1000"}, "--ring-size must be a power of two >= 4096 (e.g. 4MiB, 64MiB), got 1000 bytes"},
		{onTLS, []string{"--pods", "ftp://api"}, `--pods "ftp://api": want in-cluster, the API server's https://HOST[:PORT] (no user or query), docker:SOCKET or crio:SOCKET`},
		{onTLS, []string{"--pods", "https://u:p@api:6443"}, `--pods "https://u:p@api:6443": want in-cluster, the API server's https://HOST[:PORT] (no user or query), docker:SOCKET or crio:SOCKET`},
		{onTLS, []string{"--pods-token", "/t"}, "--pods-token must go with --pods"},
		{onTLS, []string{"--pods", "crio:run/crio.sock"}, `--pods "crio:run/crio.sock": want an absolute socket path after crio:`},
		{onTLS, []string{"--pods", "docker:/run/docker.sock", "--pods-ca", "/ca"}, "--pods-ca must go with a Kubernetes API in --pods, not a runtime socket"},
		{onTLS, []string{"--pods", "in-cluster", "--node", "", "--pods-node", ""}, "--pods-node must be set to list the node's pods (--node is empty)"},
		{onTLS, []string{"--pods", "in-cluster", "--pods-node", "a,b"}, `--pods-node "a,b" is not a Kubernetes node name`},
		{onTLS, []string{"--pid", "5,0"}, "invalid settings: capture.pids[1]: 0 is not a process id"},
		{onTLS, []string{"--tsize", "-1", "--comm", ""}, "--tsize must be >= 0, got -1 (0: no limit); invalid settings: capture.comms[0]: empty process name"},
		{onPlay, []string{"--forward-url", "127.0.0.1:8080"}, `invalid settings: forward[0].url: "127.0.0.1:8080" has no scheme: did you mean http://127.0.0.1:8080 ?`},
		{onPlay, []string{"--eventaddr", "tcp://h:1", "--eventaddr-format", "xml"}, `invalid settings: sinks[0].format: unknown event format "xml" (want protobuf, json or text)`},
		// The stream server's settings (config.Server).
		{onTLS, []string{"--listen", "0.0.0.0:1", "--tls=false"}, "--tls: TLS can only be turned off on loopback, not on 0.0.0.0:1 (--listen)"},
		{onView, []string{"--listen", "[::]:1", "--auth", "none"}, `--auth "none" is refused on the non-loopback address [::]:1 (--listen): loopback only`},
		{onPlay, []string{"--auth", "maybe"}, `--auth "maybe": want "token" or "none"`},
		{onPlay, []string{"--token", "abc"}, "--token must be at least 16 characters, got 3"},
		{onPlay, []string{"--listen", "localhost"}, `--listen "localhost": want host:port (missing port in address)`},
		{onPlay, []string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{onPlay, []string{"--allow-origin", "["}, `--allow-origin "[": syntax error in pattern`},
		{onPlay, []string{"--ecaptureq", "wss://127.0.0.1:1/"}, `--ecaptureq "wss://127.0.0.1:1/": scheme must be ws:// (the eCaptureQ GUI speaks plain WebSocket)`},
		{onPlay, []string{"--listen", "", "--ecaptureq", "ws://0.0.0.0:2/"}, `--ecaptureq: non-loopback address 0.0.0.0:2 needs a token: use ws://0.0.0.0:2/?token (clients then append ?token=...) or auth "none"`},
		{onPlay, []string{"--heartbeat", "-1s", "--client-queue", "-1"}, "--heartbeat must be >= 0 (0: the default), got -1s; --client-queue must be >= 0 (0: the default), got -1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parse(t, tt.on, tt.args...)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v, want a usage error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n %s\nwant\n %s", err, tt.want)
			}
		})
	}
}

// TestEveryRunFlagInTable: the run commands have exactly the table's
// flags, so no flag is wired outside it.
func TestEveryRunFlagInTable(t *testing.T) {
	root := newRoot()
	for _, c := range []struct {
		name string
		on   commands
	}{{"tls", onTLS}, {"replay", onPlay}, {"demo", onPlay}} {
		cmd, _, err := root.Find([]string{c.name})
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) { got = append(got, f.Name) })
		for _, d := range flagTable {
			if d.on&c.on != 0 {
				want = append(want, d.name)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s flags %q, table %q", c.name, got, want)
		}
	}
}

// TestHelpGolden: the run commands' --help, flag by flag, as it was
// before the flags became a table; the host name, the --node default,
// is replaced.
func TestHelpGolden(t *testing.T) {
	host, _ := os.Hostname()
	for _, name := range []string{"tls", "replay", "demo"} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, name, "--help")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if host != "" {
				stdout = strings.ReplaceAll(stdout, `(default "`+host+`")`, `(default "HOSTNAME")`)
			}
			golden.Check(t, filepath.Join("testdata", "help-"+name+".txt"), []byte(stdout))
		})
	}
}

// TestStreamPartsFlag: with an idle timeout short enough for the demo's
// event stream not to complete at once, it is streamed in parts, unless
// --stream-parts=false.
func TestStreamPartsFlag(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		parts bool
	}{{"--stream-parts=true", true}, {"--stream-parts=false", false}} {
		args := append([]string{"demo", "--exit", "--speed", "0", "-o", "json", "--idle-timeout", "1us", tc.flag}, noListen...)
		code, stdout, stderr := runMain(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if got := strings.Contains(stdout, `"part":"head"`) && strings.Contains(stdout, `"sse_data":`); got != tc.parts {
			t.Errorf("%s: streamed parts in the output: %v, want %v", tc.flag, got, tc.parts)
		}
	}
}
