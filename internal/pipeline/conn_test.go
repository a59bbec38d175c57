package pipeline_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestConnectionKeyedByPIDAndConn(t *testing.T) {
	req := chunk(1*ms, 7, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n")
	resp := chunk(3*ms, 7, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	resp.TID = 202 // another thread of the same process serves the read
	other := chunk(4*ms, 8, capture.Write, "GET /o HTTP/1.1\r\nHost: x.test\r\n\r\n")
	otherPID := chunk(5*ms, 7, capture.Write, "GET /p HTTP/1.1\r\nHost: x.test\r\n\r\n")
	otherPID.PID = 200

	evs, _ := run(t, pipeline.Options{}, req, resp, other, otherPID)
	if len(evs) != 4 {
		t.Fatalf("got %d events, want 4: %v", len(evs), summaries(evs))
	}
	if evs[0].GetConnId() != evs[1].GetConnId() {
		t.Errorf("request and response on two threads got conn ids %d and %d, want one connection", evs[0].GetConnId(), evs[1].GetConnId())
	}
	if evs[1].GetRequestSeq() != evs[0].GetSeq() {
		t.Errorf("response across threads not paired: request_seq %d, want %d", evs[1].GetRequestSeq(), evs[0].GetSeq())
	}
	if evs[1].GetTid() != 101 {
		t.Errorf("tid = %d, want the thread that first carried the connection (101)", evs[1].GetTid())
	}
	ids := map[uint64]bool{}
	for _, ev := range evs[1:] {
		ids[ev.GetConnId()] = true
	}
	if len(ids) != 3 {
		t.Errorf("conn ids %v: (pid, conn) pairs (100,7), (100,8), (200,7) must be three connections", ids)
	}
}

func TestSequenceGrowsByOne(t *testing.T) {
	var chunks []capture.Chunk
	for i := range 20 {
		// Alternate connections and directions; each request is one event.
		c := chunk(int64(i)*ms, uint64(i%3), capture.Write, fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x.test\r\n\r\n", i))
		chunks = append(chunks, c)
	}
	evs, _ := run(t, pipeline.Options{}, chunks...)
	if len(evs) != 20 {
		t.Fatalf("got %d events, want 20", len(evs))
	}
	for i, ev := range evs {
		if ev.GetSeq() != uint64(i+1) {
			t.Errorf("event %d has seq %d, want %d", i, ev.GetSeq(), i+1)
		}
	}
}

func TestAddressesAndUUID(t *testing.T) {
	v6l := netip.MustParseAddrPort("[::1]:50000")
	v6r := netip.MustParseAddrPort("[::1]:8443")
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.9"), 9000)
	tests := []struct {
		name            string
		local, remote   netip.AddrPort
		dir             capture.Direction
		fd              int32
		srcIP, dstIP    string
		srcPort, dstPor uint32
		uuid            string
	}{
		{"write goes local to remote", local, remote, capture.Write, 5, "127.0.0.1", "127.0.0.2", 40000, 443, "100_101_curl_5_1_1"},
		{"read goes remote to local", local, remote, capture.Read, 5, "127.0.0.2", "127.0.0.1", 443, 40000, "100_101_curl_5_0_1"},
		{"ipv6", v6l, v6r, capture.Write, 9, "::1", "::1", 50000, 8443, "100_101_curl_9_1_1"},
		{"ipv4-mapped is shown as ipv4", mapped, remote, capture.Write, 5, "127.0.0.9", "127.0.0.2", 9000, 443, "100_101_curl_5_1_1"},
		{"unknown addresses stay empty", netip.AddrPort{}, netip.AddrPort{}, capture.Read, -1, "", "", 0, 0, "100_101_curl_-1_0_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := chunk(1*ms, 1, tt.dir, "\x00\x01binary")
			c.Local, c.Remote, c.FD = tt.local, tt.remote, tt.fd
			evs, _ := run(t, pipeline.Options{}, c)
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.GetSrcIp() != tt.srcIP || ev.GetSrcPort() != tt.srcPort || ev.GetDstIp() != tt.dstIP || ev.GetDstPort() != tt.dstPor {
				t.Errorf("src %s:%d dst %s:%d, want %s:%d -> %s:%d", ev.GetSrcIp(), ev.GetSrcPort(), ev.GetDstIp(), ev.GetDstPort(), tt.srcIP, tt.srcPort, tt.dstIP, tt.dstPor)
			}
			if ev.GetUuid() != tt.uuid {
				t.Errorf("uuid %q, want %q", ev.GetUuid(), tt.uuid)
			}
			if ev.GetDataType() != uint32(tt.dir) {
				t.Errorf("data_type %d, want %d", ev.GetDataType(), tt.dir)
			}
			if ev.GetFd() != uint32(tt.fd) || ev.GetVersion() != 0x0304 || ev.GetUid() != 1000 || ev.GetPid() != 100 || ev.GetPname() != "curl" {
				t.Errorf("metadata fd=%d version=%#x uid=%d pid=%d pname=%q", int32(ev.GetFd()), ev.GetVersion(), ev.GetUid(), ev.GetPid(), ev.GetPname())
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^(\d+)_(\d+)_([^_]*)_(-?\d+)_([01])_(\d+)$`)

func TestUUIDFormat(t *testing.T) {
	a := chunk(1*ms, 1, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n")
	b := chunk(2*ms, 2, capture.Read, "\x00raw")
	b.PID, b.TID, b.Comm, b.FD = 4242, 4243, "python3", 17
	evs, _ := run(t, pipeline.Options{}, a, b)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	for _, ev := range evs {
		m := uuidRE.FindStringSubmatch(ev.GetUuid())
		if m == nil {
			t.Fatalf("uuid %q is not <pid>_<tid>_<comm>_<fd>_<data_type>_<conn_id>", ev.GetUuid())
		}
		want := []string{fmt.Sprint(ev.GetPid()), fmt.Sprint(ev.GetTid()), ev.GetPname(), fmt.Sprint(int32(ev.GetFd())), fmt.Sprint(ev.GetDataType()), fmt.Sprint(ev.GetConnId())}
		for i, w := range want {
			if m[i+1] != w {
				t.Errorf("uuid %q part %d = %q, want %q", ev.GetUuid(), i, m[i+1], w)
			}
		}
	}
}

func TestTSize(t *testing.T) {
	tests := []struct {
		name      string
		tsize     int
		data      string
		wantLen   uint32
		truncated bool
		counted   uint64
	}{
		{"no limit", 0, "0123456789", 10, false, 0},
		{"under the limit", 20, "0123456789", 10, false, 0},
		{"exactly the limit", 10, "0123456789", 10, false, 0},
		{"cut", 4, "0123456789", 4, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, st := run(t, pipeline.Options{TSize: tt.tsize}, chunk(ms, 1, capture.Read, "\x00"+tt.data[1:]))
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.GetLength() != tt.wantLen || uint32(len(ev.GetPayload())) != tt.wantLen {
				t.Errorf("length %d, payload %d bytes, want %d", ev.GetLength(), len(ev.GetPayload()), tt.wantLen)
			}
			if ev.GetTruncated() != tt.truncated {
				t.Errorf("truncated = %v, want %v", ev.GetTruncated(), tt.truncated)
			}
			if ev.GetOriginalLength() != uint64(len(tt.data)) {
				t.Errorf("original_length = %d, want %d", ev.GetOriginalLength(), len(tt.data))
			}
			if got := st.Counter(stats.TruncationsTotal, "", "reason", "tsize").Load(); got != tt.counted {
				t.Errorf("tsize truncations counted %d, want %d", got, tt.counted)
			}
		})
	}
}

func TestTSizeAtRuntime(t *testing.T) {
	sink := &collect{t: t}
	p := pipeline.New(pipeline.Options{VirtualClock: true}, sink)
	c := chunk(ms, 1, capture.Read, "\x00123456789")
	p.Handle(&c)
	p.SetRuntime(pipeline.Runtime{TSize: 3})
	if got := p.Runtime(); got.TSize != 3 || got.IdleFlush != 100*time.Millisecond {
		t.Errorf("Runtime() = %+v, want TSize 3 and the default idle flush", got)
	}
	p.Close()
	evs := sink.all()
	if len(evs) != 1 || evs[0].GetLength() != 3 || !evs[0].GetTruncated() {
		t.Fatalf("events %v, want one cut to 3 bytes", evs)
	}
}

func TestIdleFlushVirtualClock(t *testing.T) {
	idle := 100 * time.Millisecond
	tests := []struct {
		name string
		// at is when another connection's chunk moves the clock.
		at   time.Duration
		want int // raw events of connection 1 before Close
	}{
		{"before the idle timeout", 50 * time.Millisecond, 0},
		{"just before", 99 * time.Millisecond, 0},
		{"at the idle timeout", 100 * time.Millisecond, 1},
		{"long after", 10 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &collect{t: t}
			p := pipeline.New(pipeline.Options{VirtualClock: true, IdleFlush: idle}, sink)
			a := chunk(0, 1, capture.Read, "\x00\x01\x02")
			p.Handle(&a)
			// Still-unrelated connection whose data advances the clock.
			b := chunk(int64(tt.at), 2, capture.Write, "\x00\x09")
			p.Handle(&b)
			got := 0
			for _, ev := range sink.all() {
				if ev.GetConnId() == 1 {
					got++
					if ev.GetType() != uint32(decoder.Raw) || string(ev.GetPayload()) != "\x00\x01\x02" {
						t.Errorf("idle event type %d payload %q", ev.GetType(), ev.GetPayload())
					}
				}
			}
			if got != tt.want {
				t.Errorf("connection 1 emitted %d events before close, want %d", got, tt.want)
			}
			p.Close()
		})
	}
}

func TestIdleFlushSplitsRawData(t *testing.T) {
	evs, _ := run(t, pipeline.Options{IdleFlush: 100 * time.Millisecond},
		chunk(0, 1, capture.Read, "\x00a"),
		chunk(10*ms, 1, capture.Read, "\x00b"),
		chunk(500*ms, 1, capture.Read, "\x00c"),
	)
	var got []string
	for _, ev := range evs {
		got = append(got, string(ev.GetPayload()))
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"\x00a\x00b", "\x00c"}) {
		t.Errorf("raw events %q, want the pause to split them", got)
	}
}

func TestConnectionCapEvicts(t *testing.T) {
	st := stats.NewSet()
	sink := &collect{t: t}
	p := pipeline.New(pipeline.Options{VirtualClock: true, MaxConns: 2, Stats: st}, sink)
	for i := range 3 {
		c := chunk(int64(i)*ms, uint64(i+1), capture.Read, "\x00data")
		p.Handle(&c)
	}
	if n := p.Connections(); n != 2 {
		t.Errorf("Connections() = %d, want the cap 2", n)
	}
	if got := st.Counter(stats.DropsTotal, "", "reason", "conn_evicted").Load(); got != 1 {
		t.Errorf("evictions counted %d, want 1", got)
	}
	if got := st.Gauge(stats.Connections, "").Load(); got != 2 {
		t.Errorf("connections gauge %d, want 2", got)
	}
	// The least recently active connection went, and what it held was
	// emitted rather than lost.
	evs := sink.all()
	if len(evs) != 1 || evs[0].GetConnId() != 1 {
		t.Fatalf("events at eviction %v, want connection 1's data", summaries(evs))
	}
	p.Close()
}

func TestConnIdleExpiry(t *testing.T) {
	sink := &collect{t: t}
	p := pipeline.New(pipeline.Options{VirtualClock: true, ConnIdle: time.Second}, sink)
	a := chunk(0, 1, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n")
	p.Handle(&a)
	b := chunk(1500*ms, 2, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n")
	p.Handle(&b)
	if n := p.Connections(); n != 1 {
		t.Errorf("Connections() = %d after connection 1 idled 1.5 s, want 1", n)
	}
	// The same (pid, conn) coming back is a new connection.
	p.Handle(&a)
	p.Close()
	evs := sink.all()
	if len(evs) != 3 || evs[2].GetConnId() == evs[0].GetConnId() {
		t.Errorf("events %v: an expired connection must get a new id", summaries(evs))
	}
}

func TestLostCounted(t *testing.T) {
	lost := chunk(2*ms, 1, capture.Read, "")
	lost.Kind, lost.LostBytes = capture.Lost, 4096
	evs, st := run(t, pipeline.Options{},
		chunk(1*ms, 1, capture.Read, "\x00before"),
		lost,
		chunk(3*ms, 1, capture.Read, "\x00after"),
	)
	if got := st.Counter(stats.DropsTotal, "", "reason", "capture_lost_bytes").Load(); got != 4096 {
		t.Errorf("lost bytes counted %d, want 4096", got)
	}
	var all []byte
	for _, ev := range evs {
		all = append(all, ev.GetPayload()...)
	}
	if string(all) != "\x00before\x00after" {
		t.Errorf("payloads %q: the data around the gap must be kept", all)
	}
}

func TestCloseFreesState(t *testing.T) {
	st := stats.NewSet()
	sink := &collect{t: t}
	p := pipeline.New(pipeline.Options{VirtualClock: true, Stats: st}, sink)
	for _, c := range []capture.Chunk{
		chunk(1*ms, 1, capture.Write, "\x00partial"),
		closeChunk(2*ms, 1),
		closeChunk(3*ms, 99), // unknown: ignored, no state created
	} {
		p.Handle(&c)
	}
	if n := p.Connections(); n != 0 {
		t.Errorf("Connections() = %d after close, want 0", n)
	}
	if got := st.Gauge(stats.Connections, "").Load(); got != 0 {
		t.Errorf("connections gauge %d, want 0", got)
	}
	evs := sink.all()
	if len(evs) != 1 || string(evs[0].GetPayload()) != "\x00partial" || evs[0].GetTimestamp() != 1*ms {
		t.Fatalf("events %v, want the buffered data flushed on close", evs)
	}
	p.Close()
}

func TestIncompleteOnClose(t *testing.T) {
	evs, st := run(t, pipeline.Options{},
		chunk(1*ms, 1, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"),
		chunk(2*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"),
		closeChunk(3*ms, 1),
	)
	if len(evs) != 2 || !evs[1].GetIncomplete() {
		t.Fatalf("events %v, want an incomplete response", summaries(evs))
	}
	if got := st.Counter("tlstap_events_incomplete_total", "").Load(); got != 1 {
		t.Errorf("incomplete counted %d, want 1", got)
	}
}

func TestInvalidUTF8(t *testing.T) {
	c := chunk(1*ms, 1, capture.Write, "GET /\xff\xfe HTTP/1.1\r\nHost: bad\xc3\x28.test\r\nContent-Type: text/\xff\r\n\r\n")
	c.Comm = "cu\xffrl"
	evs, _ := run(t, pipeline.Options{}, c) // collect fails the test if marshaling fails
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	ev := evs[0]
	for _, s := range []string{ev.GetPname(), ev.GetHost(), ev.GetPath(), ev.GetUuid(), ev.GetContentType()} {
		if !utf8.ValidString(s) {
			t.Errorf("field %q is not valid UTF-8", s)
		}
	}
	if _, err := proto.Marshal(&eventpb.LogEntry{Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}}); err != nil {
		t.Fatal(err)
	}
}

func TestCounters(t *testing.T) {
	_, st := run(t, pipeline.Options{},
		chunk(1*ms, 1, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"),
		chunk(2*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
		chunk(3*ms, 2, capture.Read, "\x00\x01"),
		closeChunk(4*ms, 1),
	)
	want := map[string]uint64{
		"chunks":         4,
		"bytes":          uint64(len("GET / HTTP/1.1\r\nHost: x.test\r\n\r\n") + len("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") + 2),
		"raw":            1,
		"http1-request":  1,
		"http1-response": 1,
		"http2-request":  0,
		"websocket":      0,
		"evicted":        0,
	}
	got := map[string]uint64{
		"chunks":  st.Counter(stats.ChunksTotal, "").Load(),
		"bytes":   st.Counter(stats.BytesTotal, "").Load(),
		"evicted": st.Counter(stats.DropsTotal, "", "reason", "conn_evicted").Load(),
	}
	for _, ty := range []decoder.Type{decoder.Raw, decoder.HTTP1Request, decoder.HTTP1Response, decoder.HTTP2Request, decoder.WebSocket} {
		got[ty.String()] = st.Counter(stats.EventsTotal, "", "type", ty.String()).Load()
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %d, want %d", k, got[k], w)
		}
	}
}

func TestRunDrainsOnCancel(t *testing.T) {
	sink := &collect{t: t}
	p := pipeline.New(pipeline.Options{}, sink)
	in := make(chan capture.Chunk, 4)
	for i := range 3 {
		in <- chunk(int64(i)*ms, uint64(i), capture.Read, "\x00x")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx, in); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.all()); n != 3 {
		t.Errorf("Run after cancel emitted %d events, want the 3 already queued", n)
	}
}

func TestDecoderLimitTruncation(t *testing.T) {
	lim := decoder.DefaultLimits()
	lim.MaxBodyBytes = 10
	body := strings.Repeat("x", 100)
	resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	evs, st := run(t, pipeline.Options{Limits: lim},
		chunk(1*ms, 1, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"),
		chunk(2*ms, 1, capture.Read, resp),
	)
	if len(evs) != 2 {
		t.Fatalf("events %v", summaries(evs))
	}
	ev := evs[1]
	if !ev.GetTruncated() || ev.GetIncomplete() {
		t.Errorf("truncated %v incomplete %v, want a truncated complete response", ev.GetTruncated(), ev.GetIncomplete())
	}
	// The original length counts the whole message, beyond what was kept.
	if ev.GetOriginalLength() <= uint64(len(ev.GetPayload())) || ev.GetOriginalLength() < uint64(len(body)) {
		t.Errorf("original_length %d for a %d-byte payload of a %d-byte body", ev.GetOriginalLength(), len(ev.GetPayload()), len(body))
	}
	if got := st.Counter(stats.TruncationsTotal, "", "reason", "decoder_limit").Load(); got != 1 {
		t.Errorf("decoder_limit truncations %d, want 1", got)
	}
}
