package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func(c *Config)
		fields []string // the JSON paths reported, in order
	}{
		{"defaults", func(*Config) {}, nil},
		{"everything valid", func(c *Config) {
			c.Capture = Capture{PIDs: []uint32{1, 2}, UIDs: []uint32{0}, Comms: []string{"curl", "123456789012345"}, Libs: []string{exe}}
			c.Pipeline.TSize = 10
			c.Output = Output{Format: "json", Hex: true}
			c.Forward = []Forward{{URL: "http://127.0.0.1:8080", Mode: "proxy", Method: "POST", Format: "protobuf", Filter: "method=GET"}}
			c.Sinks = []Sink{{Addr: "tcp://127.0.0.1:9000"}, {Addr: "ws://127.0.0.1:1/x", Format: "json"}, {Addr: "/tmp/x.pb"}}
		}, nil},
		{"pid 0", func(c *Config) { c.Capture.PIDs = []uint32{5, 0} }, []string{"capture.pids[1]"}},
		{"comm too long", func(c *Config) { c.Capture.Comms = []string{"1234567890123456"} }, []string{"capture.comms[0]"}},
		{"comm empty", func(c *Config) { c.Capture.Comms = []string{""} }, []string{"capture.comms[0]"}},
		{"too many pids", func(c *Config) { c.Capture.PIDs = slices.Repeat([]uint32{1}, MaxFilterEntries+1) }, []string{"capture.pids"}},
		{"relative lib", func(c *Config) { c.Capture.Libs = []string{"libssl.so.3"} }, []string{"capture.libs[0]"}},
		{"missing lib", func(c *Config) { c.Capture.Libs = []string{"/nonexistent/libssl.so.3"} }, []string{"capture.libs[0]"}},
		{"lib is a directory", func(c *Config) { c.Capture.Libs = []string{"/"} }, []string{"capture.libs[0]"}},
		{"negative tsize", func(c *Config) { c.Pipeline.TSize = -1 }, []string{"pipeline.tsize"}},
		{"zero idle", func(c *Config) { c.Pipeline.IdleTimeout = 0 }, []string{"pipeline.idle_timeout"}},
		{"huge idle", func(c *Config) { c.Pipeline.IdleTimeout = Duration(2 * time.Hour) }, []string{"pipeline.idle_timeout"}},
		{"bad output", func(c *Config) { c.Output.Format = "xml" }, []string{"output.format"}},
		{"forward not http", func(c *Config) { c.Forward = []Forward{{URL: "ftp://x"}} }, []string{"forward[0].url"}},
		{"forward no parse", func(c *Config) { c.Forward = []Forward{{URL: "http://[::1"}} }, []string{"forward[0].url"}},
		{"forward no host", func(c *Config) { c.Forward = []Forward{{URL: "http:///x"}} }, []string{"forward[0].url"}},
		{"forward bad mode, format, method, filter", func(c *Config) {
			c.Forward = []Forward{{URL: "http://h", Mode: "mirror", Format: "xml", Method: "GE T", Filter: "colour=red"}}
		}, []string{"forward[0].mode", "forward[0].format", "forward[0].method", "forward[0].filter"}},
		{"sink bad scheme", func(c *Config) { c.Sinks = []Sink{{Addr: "udp://h:1"}} }, []string{"sinks[0].addr"}},
		{"sink empty", func(c *Config) { c.Sinks = []Sink{{Addr: ""}} }, []string{"sinks[0].addr"}},
		{"sink tcp no port", func(c *Config) { c.Sinks = []Sink{{Addr: "tcp://h"}} }, []string{"sinks[0].addr"}},
		{"sink bad format", func(c *Config) { c.Sinks = []Sink{{Addr: "tcp://h:1", Format: "xml"}} }, []string{"sinks[0].format"}},
		{"several at once", func(c *Config) {
			c.Capture.PIDs = []uint32{0}
			c.Pipeline.TSize = -5
			c.Output.Format = ""
		}, []string{"capture.pids[0]", "pipeline.tsize", "output.format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			var got []string
			for _, fe := range Validate(c) {
				if fe.Reason == "" {
					t.Errorf("%s: empty reason", fe.Field)
				}
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields %q, want %q (%v)", got, tt.fields, Validate(c))
			}
		})
	}
}

func TestCheckUpdateStateDir(t *testing.T) {
	state := t.TempDir()
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(state, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A symlink inside the state directory pointing out of it.
	if err := os.Symlink(outside, filepath.Join(state, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "f"), filepath.Join(state, "link.pb")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		ok   bool
	}{
		{filepath.Join(state, "events.pb"), true},
		{"file://" + filepath.Join(state, "sub", "events.pb"), true},
		{filepath.Join(state, "sub", "..", "events.pb"), true},
		{filepath.Join(state, "..", "events.pb"), false},
		{filepath.Join(outside, "events.pb"), false},
		{"/etc/passwd", false},
		{filepath.Join(state, "escape", "events.pb"), false},
		{filepath.Join(state, "link.pb"), false},
		{filepath.Join(state, "missing", "events.pb"), false},
		{"events.pb", false},
		{"tcp://127.0.0.1:9", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			next := Default()
			next.Sinks = []Sink{{Addr: tt.addr}}
			errs := CheckUpdate(Default(), next, state)
			if ok := len(errs) == 0; ok != tt.ok {
				t.Errorf("CheckUpdate ok=%v, want %v: %v", ok, tt.ok, errs)
			}
			for _, fe := range errs {
				if fe.Field != "sinks[0].addr" {
					t.Errorf("field %q", fe.Field)
				}
			}
			// A sink the running configuration already has (given on the
			// command line) is not re-judged.
			if errs := CheckUpdate(next, next, state); len(errs) != 0 {
				t.Errorf("existing sink refused: %v", errs)
			}
		})
	}
	next := Default()
	next.Sinks = []Sink{{Addr: filepath.Join(state, "x")}}
	if errs := CheckUpdate(Default(), next, ""); len(errs) != 1 {
		t.Errorf("no state dir: %v, want one error", errs)
	}
}
