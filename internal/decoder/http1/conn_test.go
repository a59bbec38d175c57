package http1

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
)

// step is one call on a Conn: feed data to dir, report a gap of n bytes,
// flush both directions, or detach both.
type step struct {
	dir    int
	data   string
	gap    uint64
	flush  bool
	reason decoder.FlushReason
	detach bool
}

func feed(dir int, data string) step { return step{dir: dir, data: data} }
func gap(dir int, n uint64) step     { return step{dir: dir, gap: n} }

var (
	closeAll  = step{flush: true, reason: decoder.Close}
	idleAll   = step{flush: true, reason: decoder.Idle}
	detachAll = step{detach: true}
)

// out is an expected message (or, with detached set, the bytes Detach
// returned). Start and end are step indexes, the timestamp of each step.
type out struct {
	dir        int
	typ        decoder.Type
	start, end int64
	payload    string
	trunc, inc bool
	orig       uint64
	method     string
	host       string
	status     uint32
	te, ce     string
	upgrade    string
	detached   bool
}

func (o out) String() string {
	if o.detached {
		return fmt.Sprintf("dir %d detached %q", o.dir, o.payload)
	}
	return fmt.Sprintf("dir %d %v [%d,%d] trunc=%v inc=%v orig=%d method=%q host=%q status=%d te=%q ce=%q upgrade=%q\n%q",
		o.dir, o.typ, o.start, o.end, o.trunc, o.inc, o.orig, o.method, o.host, o.status, o.te, o.ce, o.upgrade, o.payload)
}

func run(lim decoder.Limits, steps []step) []out {
	c := NewConn(lim)
	decs := [2]decoder.Decoder{c.Requests(), c.Responses()}
	var got []out
	emitter := func(dir int) decoder.Emit {
		return func(m *decoder.Message) {
			o := out{dir: dir, typ: m.Type, start: m.Start, end: m.End, payload: string(m.Payload),
				trunc: m.Truncated, inc: m.Incomplete, orig: m.OriginalLength, method: m.Method, host: m.Host,
				status: m.Status, te: m.TransferEncoding, ce: m.ContentEncoding}
			if m.Upgrade != nil {
				o.upgrade = m.Upgrade.Protocol + "|" + m.Upgrade.Extensions
			}
			got = append(got, o)
		}
	}
	for i, s := range steps {
		ts := int64(i)
		switch {
		case s.flush:
			for dir := range 2 {
				decs[dir].Flush(ts, s.reason, emitter(dir))
			}
		case s.detach:
			for dir := range 2 {
				got = append(got, out{dir: dir, detached: true, payload: string(c.Detach(dir))})
			}
		case s.gap > 0:
			decs[s.dir].Gap(s.gap)
		default:
			decs[s.dir].Feed(ts, []byte(s.data), emitter(s.dir))
		}
	}
	return got
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

const (
	ok204 = "HTTP/1.1 204 No Content\r\n\r\n"
	reqT  = decoder.HTTP1Request
	rspT  = decoder.HTTP1Response
	rawT  = decoder.Raw
)

func TestDecoder(t *testing.T) {
	bomb := gz(strings.Repeat("\x00", 1<<20))
	small := gz(strings.Repeat("z", 4096))
	tests := []struct {
		name  string
		lim   decoder.Limits
		steps []step
		want  []out
	}{{
		name:  "bare LF, obs-fold and spacing",
		steps: []step{feed(0, "GET /x HTTP/1.1\nHost: h\nX-Long: a\n  b\n\tc \nX:y\n\n")},
		want:  []out{{typ: reqT, method: "GET", host: "h", payload: "GET /x HTTP/1.1\r\nHost: h\r\nX-Long: a b c\r\nX: y\r\n\r\n"}},
	}, {
		name:  "blank lines between messages",
		steps: []step{feed(0, "GET /1 HTTP/1.1\r\n\r\n\r\n\nGET /2 HTTP/1.1\r\n\r\n")},
		want: []out{
			{typ: reqT, method: "GET", payload: "GET /1 HTTP/1.1\r\n\r\n"},
			{typ: reqT, method: "GET", payload: "GET /2 HTTP/1.1\r\n\r\n"},
		},
	}, {
		name:  "capture starts mid-request",
		steps: []step{feed(0, "ue\r\nAccept: */*\r\n\r\nGET / HTTP/1.1\r\n\r\n")},
		want: []out{
			{typ: rawT, payload: "ue\r\nAccept: */*\r\n\r\n"},
			{typ: reqT, method: "GET", payload: "GET / HTTP/1.1\r\n\r\n"},
		},
	}, {
		name:  "capture starts mid-body, status line mid-line",
		steps: []step{feed(1, "tail of a body}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")},
		want: []out{
			{dir: 1, typ: rawT, payload: "tail of a body}"},
			{dir: 1, typ: rspT, status: 200, payload: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		},
	}, {
		name:  "status line split after garbage",
		steps: []step{feed(1, "xx}HTT"), feed(1, "P/1.1 204 No Content\r\n\r\n")},
		want: []out{
			{dir: 1, typ: rawT, payload: "xx}"},
			{dir: 1, typ: rspT, status: 204, start: 0, end: 1, payload: ok204},
		},
	}, {
		name: "gap inside a body is skipped",
		steps: []step{
			feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"), gap(1, 3), feed(1, "cdefg"+ok204),
		},
		want: []out{
			{dir: 1, typ: rspT, status: 200, end: 2, inc: true, payload: "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nabcdefg"},
			{dir: 1, typ: rspT, status: 204, start: 2, end: 2, payload: ok204},
		},
	}, {
		name: "gap past the end of a body",
		steps: []step{
			feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"), gap(1, 10), feed(1, "xx\r\n"+ok204),
		},
		want: []out{
			{dir: 1, typ: rspT, status: 200, inc: true, payload: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"},
			{dir: 1, typ: rawT, start: 2, end: 2, payload: "xx\r\n"},
			{dir: 1, typ: rspT, status: 204, start: 2, end: 2, payload: ok204},
		},
	}, {
		name: "gap exactly to the end of a body",
		steps: []step{
			feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"), gap(1, 2), feed(1, ok204),
		},
		want: []out{
			{dir: 1, typ: rspT, status: 200, inc: true, payload: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"},
			{dir: 1, typ: rspT, status: 204, start: 2, end: 2, payload: ok204},
		},
	}, {
		name: "gap inside chunk data",
		steps: []step{
			feed(1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nab"), gap(1, 2), feed(1, "ef\r\n0\r\n\r\n"),
		},
		want: []out{
			{dir: 1, typ: rspT, status: 200, end: 2, inc: true, te: "chunked", payload: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabef"},
		},
	}, {
		name: "gap inside a header section",
		steps: []step{
			feed(0, "GET / HTTP/1.1\r\nHo"), gap(0, 5), feed(0, "st: x\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
		},
		want: []out{
			{typ: reqT, method: "GET", inc: true, payload: "GET / HTTP/1.1\r\nHo"},
			{typ: rawT, start: 2, end: 2, payload: "st: x\r\n\r\n"},
			{typ: reqT, method: "GET", start: 2, end: 2, payload: "GET /2 HTTP/1.1\r\n\r\n"},
		},
	}, {
		name:  "close in the middle of a body",
		steps: []step{feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), closeAll},
		want:  []out{{dir: 1, typ: rspT, status: 200, inc: true, payload: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"}},
	}, {
		name:  "close ends a body without length",
		steps: []step{feed(1, "HTTP/1.0 200 OK\r\n\r\nall "), feed(1, "of it"), closeAll},
		want:  []out{{dir: 1, typ: rspT, status: 200, end: 1, payload: "HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nall of it"}},
	}, {
		name:  "close in the middle of a header section",
		steps: []step{feed(1, "HTTP/1.1 200 OK\r\nServer: x"), closeAll},
		want:  []out{{dir: 1, typ: rspT, status: 200, inc: true, payload: "HTTP/1.1 200 OK\r\nServer: x"}},
	}, {
		name:  "close with an unfinished start line",
		steps: []step{feed(0, "GET /inde"), closeAll},
		want:  []out{{typ: rawT, payload: "GET /inde"}},
	}, {
		name: "HEAD response has no body",
		steps: []step{
			feed(0, "HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
			feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
		},
		want: []out{
			{typ: reqT, method: "HEAD", payload: "HEAD / HTTP/1.1\r\n\r\n"},
			{typ: reqT, method: "GET", payload: "GET / HTTP/1.1\r\n\r\n"},
			{dir: 1, typ: rspT, status: 200, start: 1, end: 1, payload: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"},
			{dir: 1, typ: rspT, status: 200, start: 1, end: 1, payload: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
		},
	}, {
		name: "interim responses precede the final one",
		steps: []step{
			feed(1, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
		},
		want: []out{
			{dir: 1, typ: rspT, status: 100, payload: "HTTP/1.1 100 Continue\r\n\r\n"},
			{dir: 1, typ: rspT, status: 103, payload: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"},
			{dir: 1, typ: rspT, status: 200, payload: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"},
		},
	}, {
		name: "header section over the limit",
		lim:  decoder.Limits{MaxHeaderBytes: 32},
		steps: []step{
			feed(0, "GET / HTTP/1.1\r\nX: "+strings.Repeat("a", 40)+"\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
		},
		want: []out{
			{typ: reqT, method: "GET", trunc: true, payload: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 13)},
			{typ: rawT, payload: strings.Repeat("a", 27) + "\r\n\r\n"},
			{typ: reqT, method: "GET", payload: "GET /next HTTP/1.1\r\n\r\n"},
		},
	}, {
		name:  "body over the limit",
		lim:   decoder.Limits{MaxBodyBytes: 4},
		steps: []step{feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")},
		want:  []out{{dir: 1, typ: rspT, status: 200, trunc: true, orig: 48, payload: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0123"}},
	}, {
		name:  "chunked body over the limit",
		lim:   decoder.Limits{MaxBodyBytes: 4},
		steps: []step{feed(1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk("hello")+chunk("world")+"0\r\n\r\n")},
		want:  []out{{dir: 1, typ: rspT, status: 200, trunc: true, orig: 48, te: "chunked", payload: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell"}},
	}, {
		name:  "decompressed body over the limit",
		lim:   decoder.Limits{MaxBodyBytes: 1024},
		steps: []step{feed(1, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(small), small))},
		want: []out{{dir: 1, typ: rspT, status: 200, trunc: true, orig: 41 + 4096, ce: "gzip",
			payload: "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("z", 1024)}},
	}, {
		name:  "decompression bomb",
		lim:   decoder.Limits{MaxBodyBytes: 1024},
		steps: []step{feed(1, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(bomb), bomb))},
		want: []out{{dir: 1, typ: rspT, status: 200, trunc: true, ce: "gzip",
			payload: "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("\x00", 1024)}},
	}, {
		name:  "corrupt gzip is kept as sent",
		steps: []step{feed(1, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde")},
		want:  []out{{dir: 1, typ: rspT, status: 200, ce: "gzip", payload: "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde"}},
	}, {
		name:  "transfer coding under chunked",
		steps: []step{feed(1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"+chunk(gz("hello"))+"0\r\nX-Sum: 1\r\n\r\n")},
		want:  []out{{dir: 1, typ: rspT, status: 200, te: "gzip, chunked", payload: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Sum: 1\r\n\r\nhello"}},
	}, {
		name:  "chunk extensions and bare LF framing",
		steps: []step{feed(0, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;name=\"v\"\nabc\n0\n\n")},
		want:  []out{{typ: reqT, method: "POST", te: "chunked", payload: "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"}},
	}, {
		name: "endless chunk extension",
		lim:  decoder.Limits{MaxHeaderBytes: 64},
		steps: []step{
			feed(1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;"), feed(1, strings.Repeat("x", 100)), closeAll,
		},
		want: []out{
			{dir: 1, typ: rspT, status: 200, end: 1, inc: true, te: "chunked", payload: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
			{dir: 1, typ: rawT, start: 1, end: 1, payload: strings.Repeat("x", 100)},
		},
	}, {
		name:  "invalid Content-Length is not HTTP",
		steps: []step{feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"+ok204)},
		want: []out{
			{dir: 1, typ: rawT, payload: "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"},
			{dir: 1, typ: rspT, status: 204, payload: ok204},
		},
	}, {
		name:  "malformed field is not HTTP",
		steps: []step{feed(0, "GET / HTTP/1.1\r\nno colon here\r\n\r\nGET /ok HTTP/1.1\r\n\r\n")},
		want: []out{
			{typ: rawT, payload: "GET / HTTP/1.1\r\nno colon here\r\n\r\n"},
			{typ: reqT, method: "GET", payload: "GET /ok HTTP/1.1\r\n\r\n"},
		},
	}, {
		name: "h2c upgrade switches both directions",
		steps: []step{
			feed(0, "GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
			feed(1, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: H2C\r\n\r\n\x00\x00\x00\x04"),
			detachAll,
		},
		want: []out{
			{typ: reqT, method: "GET", payload: "GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"},
			{dir: 1, typ: rspT, status: 101, start: 1, end: 1, upgrade: "h2c|", payload: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: H2C\r\n\r\n"},
			{dir: 0, detached: true, payload: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
			{dir: 1, detached: true, payload: "\x00\x00\x00\x04"},
		},
	}, {
		name: "refused CONNECT resumes requests",
		steps: []step{
			feed(0, "CONNECT x:443 HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\n"),
			feed(1, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
			feed(0, "GET /b HTTP/1.1\r\n\r\n"),
		},
		want: []out{
			{typ: reqT, method: "CONNECT", host: "x:443", payload: "CONNECT x:443 HTTP/1.1\r\n\r\n"},
			{dir: 1, typ: rspT, status: 407, start: 1, end: 1, payload: "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"},
			{typ: reqT, method: "GET", start: 2, end: 2, payload: "GET /a HTTP/1.1\r\n\r\n"},
			{typ: reqT, method: "GET", start: 2, end: 2, payload: "GET /b HTTP/1.1\r\n\r\n"},
		},
	}, {
		name: "input beyond the buffer while waiting for an upgrade answer",
		lim:  decoder.Limits{MaxBufferBytes: 64},
		steps: []step{
			feed(0, "GET / HTTP/1.1\r\nUpgrade: x\r\n\r\n"+strings.Repeat("a", 100)),
			feed(1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			feed(0, "\nGET /x HTTP/1.1\r\n\r\n"),
		},
		want: []out{
			{typ: reqT, method: "GET", payload: "GET / HTTP/1.1\r\nUpgrade: x\r\n\r\n"},
			{dir: 1, typ: rspT, status: 200, start: 1, end: 1, payload: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
			{typ: rawT, start: 2, end: 2, payload: strings.Repeat("a", 64) + "\n"},
			{typ: reqT, method: "GET", start: 2, end: 2, payload: "GET /x HTTP/1.1\r\n\r\n"},
		},
	}, {
		name: "websocket upgrade with extensions",
		steps: []step{
			feed(0, "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x80"),
			feed(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n\x81\x00"),
			feed(1, "\x88\x00"),
			feed(0, "\x88\x80"),
			detachAll,
			feed(0, "ignored"),
			closeAll,
		},
		want: []out{
			{typ: reqT, method: "GET", payload: "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
			{dir: 1, typ: rspT, status: 101, start: 1, end: 1, upgrade: "websocket|permessage-deflate",
				payload: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"},
			{dir: 0, detached: true, payload: "\x81\x80\x88\x80"},
			{dir: 1, detached: true, payload: "\x81\x00\x88\x00"},
		},
	}, {
		name:  "host from an absolute-form target",
		steps: []step{feed(0, "GET http://example.com:8080/x?y HTTP/1.1\r\n\r\nOPTIONS * HTTP/1.1\r\n\r\n")},
		want: []out{
			{typ: reqT, method: "GET", host: "example.com:8080", payload: "GET http://example.com:8080/x?y HTTP/1.1\r\n\r\n"},
			{typ: reqT, method: "OPTIONS", payload: "OPTIONS * HTTP/1.1\r\n\r\n"},
		},
	}, {
		name: "upgrade refused before the request body is complete",
		steps: []step{
			feed(0, "POST /up HTTP/1.1\r\nUpgrade: x\r\nContent-Length: 4\r\n\r\nab"),
			feed(1, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
			feed(0, "cdGET /next HTTP/1.1\r\n\r\n"),
		},
		want: []out{
			{dir: 1, typ: rspT, status: 400, start: 1, end: 1, payload: "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"},
			{typ: reqT, method: "POST", end: 2, payload: "POST /up HTTP/1.1\r\nUpgrade: x\r\nContent-Length: 4\r\n\r\nabcd"},
			{typ: reqT, method: "GET", start: 2, end: 2, payload: "GET /next HTTP/1.1\r\n\r\n"},
		},
	}, {
		name: "switch while a request body is in flight",
		steps: []step{
			feed(0, "POST / HTTP/1.1\r\nUpgrade: h2c\r\nContent-Length: 10\r\n\r\nabc"),
			feed(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"),
			feed(0, "more"),
			detachAll,
		},
		want: []out{
			{dir: 1, typ: rspT, status: 101, start: 1, end: 1, upgrade: "h2c|", payload: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"},
			{typ: reqT, method: "POST", inc: true, payload: "POST / HTTP/1.1\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc"},
			{dir: 0, detached: true, payload: "more"},
			{dir: 1, detached: true, payload: ""},
		},
	}, {
		name:  "idle flushes garbage only",
		steps: []step{feed(0, "not http\n"), feed(1, "HTTP/1.0 200 OK\r\n\r\npartial"), idleAll, feed(1, " body"), closeAll},
		want: []out{
			{typ: rawT, payload: "not http\n"},
			{dir: 1, typ: rspT, status: 200, start: 1, end: 3, payload: "HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\npartial body"},
		},
	}, {
		name:  "garbage is emitted in RawFlushBytes pieces",
		lim:   decoder.Limits{RawFlushBytes: 4},
		steps: []step{feed(0, "0123456789"), closeAll},
		want: []out{
			{typ: rawT, payload: "0123"},
			{typ: rawT, payload: "4567"},
			{typ: rawT, start: 0, end: 0, payload: "89"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(tt.lim, tt.steps)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d messages, want %d:\n%v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("message %d:\n got %v\nwant %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestFailureReasons: malformed HTTP/1 is counted under the reason that
// names what is wrong with it, once, whatever else the decoder does with
// the bytes (TestDecoder checks that).
func TestFailureReasons(t *testing.T) {
	const req = "GET / HTTP/1.1\r\n\r\n"
	long := strings.Repeat("a", 40) // past the quick check of a start line
	tests := []struct {
		name string
		dir  int
		in   string
		want decoder.Reason
	}{
		{"request with a bad version", 0, "GET /x HTTQ/1.1\r\n\r\n", decoder.HTTP1StartLineInvalid},
		{"bad version past the quick check", 0, req + "GET /" + long + " HTTQ/1.1\r\n\r\n", decoder.HTTP1StartLineInvalid},
		{"status code of four digits", 1, "HTTP/1.1 2000 OK\r\n\r\n", decoder.HTTP1StartLineInvalid},
		{"NUL in a reason phrase", 1, "HTTP/1.1 200 " + long + "\x00\r\n\r\n", decoder.HTTP1StartLineInvalid},
		{"endless request line", 0, "GET /" + strings.Repeat("a", 5000), decoder.HTTP1StartLineTooLong},
		{"space in a field name", 0, "GET / HTTP/1.1\r\nBad Field: x\r\n\r\n", decoder.HTTP1HeaderFieldInvalid},
		{"fold before any field", 0, "GET / HTTP/1.1\r\n folded\r\n\r\n", decoder.HTTP1HeaderFieldInvalid},
		{"content-length not a number", 0, "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", decoder.HTTP1ContentLengthInvalid},
		{"content-lengths differ", 1, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", decoder.HTTP1ContentLengthInvalid},
		{"header section too large", 0, "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", decoder.HTTP1HeaderTooLarge},
		{"chunk size not hex", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", decoder.HTTP1ChunkSizeInvalid},
		{"chunk size of 17 digits", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 17) + "1\r\n", decoder.HTTP1ChunkSizeInvalid},
		{"chunk size CR without LF", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\rx", decoder.HTTP1ChunkSizeInvalid},
		{"endless chunk extension", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("e", 5000) + "\r\n", decoder.HTTP1ChunkLineTooLong},
		{"chunk longer than its size", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n", decoder.HTTP1ChunkDataNoCRLF},
		{"gzip body that is not gzip", 1, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", decoder.ContentCorrupt},
		{"unknown content coding", 1, "HTTP/1.1 200 OK\r\nContent-Encoding: compress\r\nContent-Length: 3\r\n\r\nabc", decoder.ContentCodingUnknown},
		{"unknown transfer coding", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: foo\r\n\r\nabc", decoder.ContentCodingUnknown},
		{"five codings stacked", 1, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip, gzip, gzip, gzip\r\nContent-Length: 3\r\n\r\nabc", decoder.ContentTooManyCodings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var counts decoder.Counts
			var steps []step
			if tt.dir == 1 {
				steps = append(steps, feed(0, req))
			}
			steps = append(steps, feed(tt.dir, tt.in), closeAll)
			got := run(decoder.Limits{MaxHeaderBytes: 4096, Errors: &counts}, steps)
			if c := counts.Counted(); len(c) != 1 || c[0] != tt.want || counts.Get(tt.want) != 1 {
				t.Errorf("counted %v, want %s once; messages: %v", c, tt.want, got)
			}
		})
	}
	// Well-formed traffic counts nothing.
	var counts decoder.Counts
	run(decoder.Limits{Errors: &counts}, []step{
		feed(0, "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		feed(1, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "+fmt.Sprint(len(gz("hello")))+"\r\n\r\n"+gz("hello")),
		closeAll,
	})
	if c := counts.Counted(); len(c) != 0 {
		t.Errorf("well-formed traffic counted %v", c)
	}
}
