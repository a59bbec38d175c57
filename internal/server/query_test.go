package server

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/broker"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		query   string
		want    Query
		wantErr string
	}{
		{"", Query{Logs: true}, ""},
		{"token=abc", Query{Logs: true}, ""},
		{"pid=1&pid=2,3", Query{PIDs: []int64{1, 2, 3}, Logs: true}, ""},
		{"pname=curl,node", Query{Pnames: []string{"curl", "node"}, Logs: true}, ""},
		{"type=0,http1-response&type=WebSocket", Query{Types: 1 | 1<<3 | 1<<5, Logs: true}, ""},
		{"type=request", Query{Types: 1<<1 | 1<<2, Logs: true}, ""},
		{"host=Example.COM", Query{Hosts: []string{"example.com"}, Logs: true}, ""},
		{"port=443,8443", Query{Ports: []uint32{443, 8443}, Logs: true}, ""},
		{"logs=0", Query{}, ""},
		{"logs=true", Query{Logs: true}, ""},
		{"since=0", Query{Logs: true, HasSince: true}, ""},
		{"since=18446744073709551615", Query{Logs: true, Since: 1<<64 - 1, HasSince: true}, ""},
		{"since=18446744073709551616", Query{}, `"since"`},
		{"pid=x", Query{}, `"pid"`},
		{"pid=", Query{}, `"pid"`},
		{"port=65536", Query{}, `"port"`},
		{"type=6", Query{}, `"type"`},
		{"logs=", Query{}, `"logs"`},
		{"logs=1&logs=0", Query{}, `"logs"`},
		{"Pid=1", Query{}, `unknown parameter "Pid"`},
		{"x=" + strings.Repeat("y", 10), Query{}, `unknown parameter "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseQuery(v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.PIDs, tt.want.PIDs) || !slices.Equal(got.Pnames, tt.want.Pnames) ||
				got.Types != tt.want.Types || !slices.Equal(got.Hosts, tt.want.Hosts) ||
				!slices.Equal(got.Ports, tt.want.Ports) || got.Logs != tt.want.Logs ||
				got.Since != tt.want.Since || got.HasSince != tt.want.HasSince {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func entry(ev *eventpb.Event) *broker.Entry {
	return &broker.Entry{Msg: &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev},
	}, Seq: ev.GetSeq()}
}

func TestMatch(t *testing.T) {
	ev := &eventpb.Event{Seq: 1, Pid: 42, Pname: "curl", Type: 3, Host: "api.Example.com:8443", SrcPort: 8443, DstPort: 51000}
	tests := []struct {
		query string
		want  bool
	}{
		{"", true},
		{"pid=42", true},
		{"pid=41,43", false},
		{"pname=curl", true},
		{"pname=Curl", false},
		{"type=3", true},
		{"type=response", true},
		{"type=request", false},
		{"port=51000", true},
		{"port=443", false},
		{"host=api.example.com", true},
		{"host=api.example.com:8443", true},
		{"host=api.example.com:443", false},
		{"host=*.example.com", true},
		{"host=*.api.example.com", false},
		{"host=example.com", false},
		{"pid=42&type=3&host=*.EXAMPLE.com&port=8443&pname=curl", true},
		{"pid=42&type=4", false},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		q, err := ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Match(entry(ev)); got != tt.want {
			t.Errorf("%q: Match = %v, want %v", tt.query, got, tt.want)
		}
	}
	logEntry := broker.Notice("hello")
	for query, want := range map[string]bool{"": true, "pid=1": true, "logs=0": false, "logs=0&pid=1": false} {
		v, _ := url.ParseQuery(query)
		q, _ := ParseQuery(v)
		if got := q.Match(logEntry); got != want {
			t.Errorf("%q on a process log: %v, want %v", query, got, want)
		}
	}
	noHost := &eventpb.Event{Seq: 2}
	q, _ := ParseQuery(url.Values{"host": {"*.example.com"}})
	if q.Match(entry(noHost)) {
		t.Error("host filter matched an event without host")
	}
}

func TestHostMatchIPv6(t *testing.T) {
	for _, tt := range []struct {
		pattern, host string
		want          bool
	}{
		{"::1", "[::1]:443", true},
		{"[::1]:443", "[::1]:443", true},
		{"::1", "::1", true},
		{"fe80::1", "[::1]:443", false},
	} {
		// Host matching lives in internal/filter; this keeps the query's
		// IPv6 behaviour pinned.
		q, err := ParseQuery(url.Values{"host": {tt.pattern}})
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Match(entry(&eventpb.Event{Seq: 1, Host: tt.host})); got != tt.want {
			t.Errorf("host=%s on %q: %v, want %v", tt.pattern, tt.host, got, tt.want)
		}
	}
}

// FuzzParseQuery: no query string makes the parser or the filter panic,
// and a parsed query stays within its bounds.
func FuzzParseQuery(f *testing.F) {
	// Seeds are the query strings of the tests above, read back from the
	// checked-in corpus, plus a few raw forms.
	for _, s := range []string{"pid=1,2&type=http&host=*.example.com&port=443&logs=0&since=5", "host=[::1]:443", "type=%00", "pid=1;2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			if len(err.Error()) > 512 { // clip bounds what is echoed to the client
				t.Fatalf("error message of %d bytes", len(err.Error()))
			}
			return
		}
		if len(q.PIDs) > maxQueryValues || len(q.Hosts) > maxQueryValues || len(q.Pnames) > maxQueryValues || len(q.Ports) > maxQueryValues {
			t.Fatal("value bound exceeded")
		}
		for _, h := range []string{"", "example.com", "a.example.com:443", "[::1]:8443", "::1", "[", "[]:", ":"} {
			q.Match(entry(&eventpb.Event{Seq: 1, Host: h, Pid: 1, Type: 2, SrcPort: 443}))
		}
		q.Match(broker.Notice("x"))
	})
}

// TestFuzzCorpusPresent keeps the checked-in seed corpus from vanishing.
func TestFuzzCorpusPresent(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseQuery", "*"))
	if len(m) == 0 {
		t.Fatal("no seed corpus in testdata/fuzz/FuzzParseQuery")
	}
	for _, p := range m {
		if b, err := os.ReadFile(p); err != nil || !strings.HasPrefix(string(b), "go test fuzz v1") {
			t.Errorf("%s: not a fuzz corpus file", p)
		}
	}
}

// TestMatchParts: the head, parts and end of a streamed response carry the
// type, process, host and ports a whole response does, so every filter
// treats them alike.
func TestMatchParts(t *testing.T) {
	var evs []*eventpb.Event
	for i, k := range []eventpb.PartKind{eventpb.PartKind_PART_KIND_HEAD, eventpb.PartKind_PART_KIND_PART, eventpb.PartKind_PART_KIND_PART, eventpb.PartKind_PART_KIND_END} {
		evs = append(evs, &eventpb.Event{Seq: uint64(10 + i), Pid: 42, Pname: "curl", Type: 4, Host: "ai.example.com", SrcPort: 443, DstPort: 51000,
			Part: k, MessageSeq: 10, RequestSeq: 9})
	}
	for _, tt := range []struct {
		query string
		want  bool
	}{
		{"type=http2-response&host=*.example.com&pid=42&pname=curl&port=443", true},
		{"type=response", true},
		{"type=request", false},
		{"host=other.test", false},
	} {
		v, _ := url.ParseQuery(tt.query)
		q, err := ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if got := q.Match(entry(ev)); got != tt.want {
				t.Errorf("%q: %v #%d: Match = %v, want %v", tt.query, ev.GetPart(), ev.GetSeq(), got, tt.want)
			}
		}
	}
}

// BenchmarkQueryMatch: the stream filter on the publishing goroutine, per
// event and client, with the older parameters (the same code before and
// after they became internal/filter terms).
func BenchmarkQueryMatch(b *testing.B) {
	v, _ := url.ParseQuery("pid=41,42&type=request&host=*.example.com&port=8443&pname=curl")
	q, err := ParseQuery(v)
	if err != nil {
		b.Fatal(err)
	}
	e := entry(&eventpb.Event{Seq: 1, Pid: 42, Pname: "curl", Type: 1, Host: "api.example.com:8443", SrcPort: 51000, DstPort: 8443})
	b.ReportAllocs()
	for b.Loop() {
		if !q.Match(e) {
			b.Fatal("no match")
		}
	}
}
