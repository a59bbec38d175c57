package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/pipeline"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// streamChunks: an HTTP/1.1 SSE response whose events arrive 500 ms apart
// on connection 1, and on connection 2 an HTTP/2 upload streamed in two
// DATA frames answered by a gRPC server stream with trailers.
func streamChunks() []capture.Chunk {
	cl, sv := newH2(), newH2()
	cl.preface().headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "g.test", ":path", "/svc/Watch", "content-type", "application/grpc")
	c2req := cl.take()
	cl.data(1, false, "\x00\x00\x00\x00\x02\x08\x01")
	c2req2 := cl.take()
	cl.data(1, true, "")
	c2reqEnd := cl.take()
	sv.settings().headers(1, false, ":status", "200", "content-type", "application/grpc").data(1, false, "\x00\x00\x00\x00\x02\x08\x07")
	c2resp := sv.take()
	sv.data(1, false, "\x00\x00\x00\x00\x02\x08\x08").headers(1, true, "grpc-status", "0")
	c2respEnd := sv.take()
	return []capture.Chunk{
		chunk(0, 1, capture.Write, "GET /events HTTP/1.1\r\nHost: s.test\r\n\r\n"),
		chunk(10*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n"),
		chunk(510*ms, 1, capture.Read, "9\r\ndata: 1\n\n\r\n"),
		chunk(1010*ms, 1, capture.Read, "9\r\ndata: 2\n\n\r\n0\r\n\r\n"),
		chunk(1100*ms, 2, capture.Write, c2req),
		chunk(1600*ms, 2, capture.Write, c2req2),
		chunk(2100*ms, 2, capture.Write, c2reqEnd),
		chunk(2150*ms, 2, capture.Read, c2resp),
		chunk(2650*ms, 2, capture.Read, c2respEnd),
		closeChunk(3000*ms, 1),
		closeChunk(3000*ms, 2),
	}
}

func summarize(ev *eventpb.Event) string {
	s := fmt.Sprintf("#%d t%d %s", ev.GetSeq(), ev.GetType(), strings.TrimPrefix(ev.GetPart().String(), "PART_KIND_"))
	if ev.GetMessageSeq() != 0 {
		s += fmt.Sprintf(" of#%d", ev.GetMessageSeq())
	}
	if ev.GetRequestSeq() != 0 {
		s += fmt.Sprintf(" req#%d lat=%dms", ev.GetRequestSeq(), ev.GetLatencyNs()/ms)
	}
	if ev.GetSseData() != "" {
		s += " sse=" + ev.GetSseData()
	}
	if ev.GetGrpcLength() != 0 {
		s += fmt.Sprintf(" grpc=%d", ev.GetGrpcLength())
	}
	if ev.GrpcStatus != nil {
		s += fmt.Sprintf(" status=%d", ev.GetGrpcStatus())
	}
	return s
}

func TestStreamParts(t *testing.T) {
	for _, tc := range []struct {
		parts bool
		want  []string
	}{
		{true, []string{
			"#1 t1 WHOLE",
			"#2 t3 HEAD of#2 req#1 lat=10ms",
			"#3 t3 PART of#2 req#1 lat=10ms sse=0",
			"#4 t3 PART of#2 req#1 lat=10ms sse=1",
			"#5 t3 PART of#2 req#1 lat=10ms sse=2",
			"#6 t3 END of#2 req#1 lat=10ms",
			"#7 t2 HEAD of#7",
			"#8 t2 PART of#7 grpc=2",
			"#9 t2 END of#7",
			"#10 t4 HEAD of#10 req#7 lat=50ms",
			"#11 t4 PART of#10 req#7 lat=50ms grpc=2",
			"#12 t4 PART of#10 req#7 lat=50ms grpc=2",
			"#13 t4 END of#10 req#7 lat=50ms status=0",
		}},
		{false, []string{
			"#1 t1 WHOLE",
			"#2 t3 WHOLE req#1 lat=10ms",
			"#3 t2 WHOLE",
			"#4 t4 WHOLE req#3 lat=50ms",
		}},
	} {
		t.Run(fmt.Sprint(tc.parts), func(t *testing.T) {
			sink := &collect{t: t}
			p := pipeline.New(pipeline.Options{VirtualClock: true, StreamParts: tc.parts}, sink)
			for _, c := range streamChunks() {
				p.Handle(&c)
			}
			p.Close()
			var got []string
			for _, ev := range sink.all() {
				got = append(got, summarize(ev))
				checkUpstream(t, ev)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// checkUpstream decodes ev's wire bytes as a client that knows only
// ecapture's fields 1-11 would: a part is an ordinary event of its
// message's type whose length matches its payload.
func checkUpstream(t *testing.T, ev *eventpb.Event) {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var typ, length uint64
	var payload []byte
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag in %v", ev)
		}
		b = b[n:]
		switch {
		case num == 9 && wt == protowire.VarintType:
			typ, n = protowire.ConsumeVarint(b)
		case num == 10 && wt == protowire.VarintType:
			length, n = protowire.ConsumeVarint(b)
		case num == 11 && wt == protowire.BytesType:
			payload, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, wt, b)
		}
		if n < 0 {
			t.Fatalf("field %d does not decode in %v", num, ev)
		}
		b = b[n:]
	}
	if typ != uint64(ev.GetType()) || typ < 1 || typ > 4 || length != uint64(len(payload)) || string(payload) != string(ev.GetPayload()) {
		t.Errorf("upstream view of #%d: type %d length %d payload %q", ev.GetSeq(), typ, length, payload)
	}
}

// TestHeadAtOnce: a message whose body is a stream by its content type
// (SSE, gRPC, NDJSON) has its head, and the parts already complete,
// emitted by the chunk that completed its head, with no flush, idle
// window or further traffic (issue 18); a message whose body completes in
// the same chunk stays one whole event, and a plain body that is still
// arriving keeps waiting for the idle window.
func TestHeadAtOnce(t *testing.T) {
	h1 := []capture.Chunk{
		chunk(0, 1, capture.Write, "GET /whole HTTP/1.1\r\nHost: s.test\r\n\r\n"),
		chunk(1*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 9\r\n\r\ndata: 0\n\n"),
		chunk(2*ms, 1, capture.Write, "GET /events HTTP/1.1\r\nHost: s.test\r\n\r\n"),
		chunk(3*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"),
		chunk(4*ms, 2, capture.Write, "GET /plain HTTP/1.1\r\nHost: s.test\r\n\r\n"),
		chunk(5*ms, 2, capture.Read, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello"),
	}
	cl, sv := newH2(), newH2()
	cl.preface().headers(1, true, ":method", "POST", ":scheme", "https", ":authority", "g.test", ":path", "/svc/Watch", "content-type", "application/grpc")
	h2req := cl.take()
	sv.settings().headers(1, false, ":status", "200", "content-type", "application/grpc").data(1, false, "\x00\x00\x00\x00\x02\x08\x07")
	h2resp := sv.take()
	for _, tc := range []struct {
		name   string
		chunks []capture.Chunk
		want   []string
	}{
		{"http1", h1, []string{"#1 t1 WHOLE", "#2 t3 WHOLE req#1 lat=1ms", "#3 t1 WHOLE",
			"#4 t3 HEAD of#4 req#3 lat=1ms", "#5 t3 PART of#4 req#3 lat=1ms sse=1", "#6 t1 WHOLE"}},
		{"http2", []capture.Chunk{chunk(0, 3, capture.Write, h2req), chunk(1*ms, 3, capture.Read, h2resp)},
			[]string{"#1 t2 WHOLE", "#2 t4 HEAD of#2 req#1 lat=1ms", "#3 t4 PART of#2 req#1 lat=1ms grpc=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &collect{t: t}
			// Virtual clock, chunks handed over directly, never flushed:
			// nothing but the chunks themselves can emit a head.
			p := pipeline.New(pipeline.Options{StreamParts: true, VirtualClock: true}, sink)
			for _, c := range tc.chunks {
				p.Handle(&c)
			}
			var got []string
			for _, ev := range sink.all() {
				got = append(got, summarize(ev))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
