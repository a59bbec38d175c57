package fleet

import (
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		addr, err string
		check     func(Target) bool
	}{
		{addr: "nats://127.0.0.1:4222", check: func(t Target) bool {
			return t.Server == "nats://127.0.0.1:4222" && t.Stream == DefaultStream && t.Prefix == DefaultPrefix && t.Buffer == DefaultBuffer
		}},
		{addr: "tls://u:p@h:4443?stream=S&subject=a.b&max_age=1h&max_bytes=100&buffer=5&inflight=2", check: func(t Target) bool {
			return t.Server == "tls://u:p@h:4443" && t.Stream == "S" && t.Prefix == "a.b" && t.MaxAge == time.Hour && t.MaxBytes == 100 && t.Buffer == 5 && t.InFlight == 2
		}},
		{addr: "nats://h", err: "host:port"},
		{addr: "http://h:1", err: "want nats://"},
		{addr: "nats://h:1/x", err: "no path"},
		{addr: "nats://h:1?colour=red", err: "unknown parameter"},
		{addr: "nats://h:1?stream=a.b", err: "not a stream name"},
		{addr: "nats://h:1?subject=a.>", err: "not a subject prefix"},
		{addr: "nats://h:1?max_age=-1s", err: ">= 0"},
		{addr: "nats://h:1?buffer=0", err: "between"},
		{addr: "nats://h:1?cert=c", err: "cert and key"},
		{addr: "nats://h:1?stream=a&stream=b", err: "2 times"},
	} {
		got, err := ParseURL(tc.addr)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseURL(%q) error %v, want one containing %q", tc.addr, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("ParseURL(%q): %v", tc.addr, err)
		case tc.err == "" && !tc.check(got):
			t.Errorf("ParseURL(%q) = %+v", tc.addr, got)
		}
	}
}

func TestSubject(t *testing.T) {
	ev := event("a.b c", 1, 1)
	if got := Subject("tlstap", "a.b c*>", Kind(ev)); got != "tlstap.a_b_c__.http1_request" {
		t.Errorf("Subject = %q", got)
	}
	if got := Token(""); got != "_" {
		t.Errorf("Token(\"\") = %q", got)
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("nats://u:p@127.0.0.1:4222?stream=S&max_age=1h")
	f.Add("tls://h:1?cert=a&key=b")
	f.Fuzz(func(t *testing.T, addr string) {
		tg, err := ParseURL(addr)
		if err != nil {
			return
		}
		if !IsURL(tg.Server) || tg.Buffer <= 0 || tg.InFlight <= 0 || tg.Stream == "" {
			t.Fatalf("ParseURL(%q) accepted %+v", addr, tg)
		}
		if s := Subject(tg.Prefix, addr, "log"); strings.ContainsAny(s, " *>") {
			t.Fatalf("subject %q has a wildcard or blank", s)
		}
	})
}
