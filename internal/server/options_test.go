package server_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/server"
)

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts server.Options
		want string
	}{
		{"no tls on all interfaces", server.Options{Listen: "0.0.0.0:28256", NoTLS: true}, "TLS"},
		{"no tls on empty host", server.Options{Listen: ":28256", NoTLS: true}, "TLS"},
		{"no tls on lan address", server.Options{Listen: "192.0.2.1:28256", NoTLS: true}, "TLS"},
		{"auth none on all interfaces", server.Options{Listen: "[::]:28256", Auth: server.AuthNone}, "auth"},
		{"ecaptureq non-loopback without token", server.Options{Listen: "", ECaptureQ: "ws://0.0.0.0:28257/"}, "token"},
		{"ecaptureq wss", server.Options{Listen: "", ECaptureQ: "wss://127.0.0.1:28257/"}, "ws://"},
		{"ecaptureq short token", server.Options{Listen: "", ECaptureQ: "ws://0.0.0.0:28257/?token=short"}, "token"},
		{"ecaptureq unknown param", server.Options{Listen: "", ECaptureQ: "ws://127.0.0.1:28257/?x=1"}, "x"},
		{"no listener", server.Options{}, "no listener"},
		{"bad auth", server.Options{Listen: "127.0.0.1:0", Auth: "maybe"}, "auth"},
		{"short token", server.Options{Listen: "127.0.0.1:0", Token: "abc"}, "token"},
		{"bad origin pattern", server.Options{Listen: "127.0.0.1:0", AllowOrigins: []string{"["}}, "allow_origins"},
		{"cert without key", server.Options{Listen: "127.0.0.1:0", TLSCert: "x.pem"}, "tls_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.StateDir = dir
			s, err := server.New(tt.opts, broker.New(broker.Options{}, nil), nil, nil)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	// What the same rules allow on loopback.
	for _, o := range []server.Options{
		{Listen: "127.0.0.1:0", NoTLS: true, Auth: server.AuthNone},
		{Listen: "[::1]:0", NoTLS: true},
		{Listen: "localhost:0"},
	} {
		o.StateDir = dir
		s, err := server.New(o, broker.New(broker.Options{}, nil), nil, nil)
		if err != nil {
			t.Errorf("New(%+v): %v", o, err)
			continue
		}
		s.Close()
	}
}

// TestOptionsOf: every setting of config.Server reaches Options (TLS as
// its negation, NoTLS), so a flag cannot be judged and then dropped.
func TestOptionsOf(t *testing.T) {
	c := config.Server{
		Listen: "127.0.0.1:1", ECaptureQ: "ws://127.0.0.1:2/", TLS: true,
		TLSCert: "c.pem", TLSKey: "k.pem", ClientCA: "ca.pem", StateDir: "/state",
		Auth: config.AuthNone, Token: "0123456789abcdef", AllowOrigins: []string{"https://x"},
		Heartbeat: time.Second, WriteTimeout: 2 * time.Second, ClientQueue: 3,
	}
	o := reflect.ValueOf(server.OptionsOf(c))
	cv := reflect.ValueOf(c)
	for i := range cv.NumField() {
		name := cv.Type().Field(i).Name
		if name == "TLS" {
			if o.FieldByName("NoTLS").Bool() != !c.TLS {
				t.Errorf("NoTLS = %v for TLS %v", o.FieldByName("NoTLS").Bool(), c.TLS)
			}
			continue
		}
		f := o.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("Options has no field %s", name)
			continue
		}
		if !reflect.DeepEqual(f.Interface(), cv.Field(i).Interface()) {
			t.Errorf("%s = %v, want %v", name, f.Interface(), cv.Field(i).Interface())
		}
	}
}
