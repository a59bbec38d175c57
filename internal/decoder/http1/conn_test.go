package http1

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/golden"
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

// TestBounds feeds hostile streams of a few MiB in random pieces and checks
// after every Feed that the decoder's memory stays within the limits.
func TestBounds(t *testing.T) {
	const size = 4 << 20
	repeat := func(prefix, unit string) string {
		return prefix + strings.Repeat(unit, (size-len(prefix))/len(unit))
	}
	bomb := gz(strings.Repeat("\x00", size))
	tests := []struct {
		name string
		dir  int
		data string
	}{
		{"endless start line", 0, repeat("GET /", "a")},
		{"endless header section", 0, repeat("GET / HTTP/1.1\r\n", "X-A: b\r\n")},
		{"endless field", 1, repeat("HTTP/1.1 200 OK\r\nX: ", "b")},
		{"endless chunk size", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "0")},
		{"endless chunk extension", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", "x")},
		{"endless trailer", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "X-T: v\r\n")},
		{"endless chunks", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk("0123456789"))},
		{"endless body", 1, repeat("HTTP/1.0 200 OK\r\n\r\n", "z")},
		{"endless garbage", 0, repeat("", "\x16\x03\x01")},
		{"endless lines", 1, repeat("", "HTTP/1.1 20\n")},
		{"endless pipelining", 0, repeat("", "HEAD / HTTP/1.1\r\n\r\n")},
		{"endless wait for upgrade", 0, repeat("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "\x81\x85abcdhello")},
		{"bomb", 1, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n", chunk(bomb))},
	}
	limits := []decoder.Limits{
		{MaxHeaderBytes: 1024, MaxBodyBytes: 4096, MaxBufferBytes: 2048, RawFlushBytes: 512},
		{MaxHeaderBytes: 8192, MaxBodyBytes: 1024, MaxBufferBytes: 4096, RawFlushBytes: 8192},
	}
	for _, tt := range tests {
		for li, l := range limits {
			t.Run(fmt.Sprintf("%s/%d", tt.name, li), func(t *testing.T) {
				lim := normalize(l)
				c := NewConn(l)
				s := [2]*stream{&c.req, &c.resp}[tt.dir]
				rng := rand.New(rand.NewPCG(uint64(li), uint64(len(tt.name))))
				msgs := 0
				emit := func(m *decoder.Message) {
					msgs++
					checkMessage(t, tt.dir, m, lim)
				}
				for p := []byte(tt.data); len(p) > 0; {
					n := min(len(p), 1+rng.IntN(64<<10))
					s.Feed(1, p[:n], emit)
					checkBounds(t, s, lim)
					p = p[n:]
				}
				s.Flush(2, decoder.Close, emit)
				if msgs == 0 {
					t.Errorf("no message")
				}
			})
		}
	}
}

// feedPlan says where each direction's bytes are cut into Feed calls and
// which timestamp each piece carries.
type feedPlan struct {
	cuts [2][]int
	ts   [2]func(off int) int64
	// flushTS is the timestamp of the final Flush(Close).
	flushTS int64
}

// result is what decoding a recording produced.
type result struct {
	msgs     [2][]*decoder.Message
	detached [2][]byte
}

// decodeRecording feeds the requests, then the responses (as a server sees
// them: a response never precedes its request), detaches both directions
// after a protocol switch, and closes.
func decodeRecording(rec recording, plan feedPlan, lim decoder.Limits) result {
	var res result
	c := NewConn(lim)
	decs := [2]decoder.Decoder{c.Requests(), c.Responses()}
	switched := false
	for dir, data := range [2][]byte{rec.req, rec.resp} {
		emit := func(m *decoder.Message) {
			res.msgs[dir] = append(res.msgs[dir], m)
			if m.Upgrade != nil {
				switched = true
			}
		}
		prev := 0
		for _, cut := range append(plan.cuts[dir], len(data)) {
			if cut > prev {
				decs[dir].Feed(plan.ts[dir](prev), data[prev:cut], emit)
			}
			prev = cut
		}
	}
	if switched {
		res.detached = [2][]byte{c.Detach(0), c.Detach(1)}
	}
	for dir := range 2 {
		decs[dir].Flush(plan.flushTS, decoder.Close, func(m *decoder.Message) {
			res.msgs[dir] = append(res.msgs[dir], m)
		})
	}
	return res
}

// byteFeed feeds one byte at a time, each stamped with its offset.
func byteFeed(rec recording) feedPlan {
	var p feedPlan
	for dir, data := range [2][]byte{rec.req, rec.resp} {
		for i := 1; i < len(data); i++ {
			p.cuts[dir] = append(p.cuts[dir], i)
		}
		p.ts[dir] = func(off int) int64 { return int64(off) }
	}
	p.flushTS = int64(max(len(rec.req), len(rec.resp)))
	return p
}

// wholeFeed feeds each direction in one call at time 0.
func wholeFeed(rec recording) feedPlan {
	zero := func(int) int64 { return 0 }
	return feedPlan{ts: [2]func(int) int64{zero, zero}, flushTS: 2}
}

// splitFeed cuts direction dir in two at k: bytes before k at time 0,
// the rest at time 1.
func splitFeed(dir, k int) feedPlan {
	p := feedPlan{flushTS: 2}
	p.cuts[dir] = []int{k}
	p.ts[dir] = func(off int) int64 {
		if off < k {
			return 0
		}
		return 1
	}
	p.ts[1-dir] = func(int) int64 { return 0 }
	return p
}

// expectTS maps the timestamps of a byte-fed result (offsets) to those a
// plan gives the same bytes.
func expectTS(golden result, flushByte int64, plan feedPlan) result {
	var out result
	out.detached = golden.detached
	for dir := range 2 {
		for _, m := range golden.msgs[dir] {
			c := *m
			conv := func(v int64) int64 {
				if v >= flushByte {
					return plan.flushTS
				}
				return plan.ts[dir](int(v))
			}
			c.Start, c.End = conv(m.Start), conv(m.End)
			out.msgs[dir] = append(out.msgs[dir], &c)
		}
	}
	return out
}

// TestGolden decodes the checked-in recordings byte by byte, compares
// every message with its testdata/NAME.golden, then checks that every way of cutting
// the input (whole, and in two at every offset; sampled for big
// recordings) yields the same messages.
func TestGolden(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := loadRecording(t, sc)
			bf := byteFeed(rec)
			whole := decodeRecording(rec, bf, decoder.Limits{})
			checkWant(t, sc, whole)
			golden.Check(t, filepath.Join("testdata", sc.name+".golden"), renderResult(whole))

			check := func(name string, plan feedPlan) {
				t.Helper()
				got := decodeRecording(rec, plan, decoder.Limits{})
				want := expectTS(whole, bf.flushTS, plan)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: decoded differently:\n%s\nwant:\n%s", name, renderResult(got), renderResult(want))
				}
			}
			check("whole", wholeFeed(rec))
			for dir, data := range [2][]byte{rec.req, rec.resp} {
				for _, k := range splitPoints(data, whole.msgs[dir]) {
					check(fmt.Sprintf("dir %d split at %d", dir, k), splitFeed(dir, k))
				}
			}
		})
	}
}

// splitPoints is every offset for small inputs; for big ones, offsets near
// message boundaries and a seeded sample of the rest.
func splitPoints(data []byte, msgs []*decoder.Message) []int {
	const small = 4096
	if len(data) <= small {
		pts := make([]int, 0, len(data))
		for k := 1; k < len(data); k++ {
			pts = append(pts, k)
		}
		return pts
	}
	set := map[int]bool{}
	for _, m := range msgs {
		for _, edge := range []int64{m.Start, m.End} {
			for d := int64(-64); d <= 64; d++ {
				if k := int(edge + d); k > 0 && k < len(data) {
					set[k] = true
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(data))))
	for range 256 {
		set[1+rng.IntN(len(data)-1)] = true
	}
	pts := make([]int, 0, len(set))
	for k := range set {
		pts = append(pts, k)
	}
	return pts
}

// recorded keeps -update's recordings so that every test in the run
// (goldens, fuzz seeds) uses the same bytes.
var recorded = map[string]recording{}

func loadRecording(t *testing.T, sc scenario) recording {
	t.Helper()
	base := filepath.Join("testdata", sc.name)
	if rec, ok := recorded[sc.name]; ok {
		return rec
	}
	if *golden.Update {
		rec := record(t, sc.drive)
		recorded[sc.name] = rec
		if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
			t.Fatal(err)
		}
		for ext, b := range map[string][]byte{".req": rec.req, ".resp": rec.resp} {
			if err := os.WriteFile(base+ext, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return rec
	}
	var rec recording
	var err error
	if rec.req, err = os.ReadFile(base + ".req"); err != nil {
		t.Fatal(err)
	}
	if rec.resp, err = os.ReadFile(base + ".resp"); err != nil {
		t.Fatal(err)
	}
	return rec
}

func renderResult(r result) []byte {
	var b bytes.Buffer
	for dir, name := range []string{"requests", "responses"} {
		fmt.Fprintf(&b, "=== %s: %d messages\n", name, len(r.msgs[dir]))
		b.Write(renderMessages(r.msgs[dir]))
		if r.detached[dir] != nil {
			fmt.Fprintf(&b, "--- detached %d bytes: %s\n", len(r.detached[dir]), quote(r.detached[dir]))
		}
	}
	return b.Bytes()
}

func renderMessages(msgs []*decoder.Message) []byte {
	var b bytes.Buffer
	for i, m := range msgs {
		fmt.Fprintf(&b, "--- message %d: %v start=%d end=%d truncated=%v incomplete=%v original-length=%d\n",
			i, m.Type, m.Start, m.End, m.Truncated, m.Incomplete, m.OriginalLength)
		fmt.Fprintf(&b, "method=%q path=%q host=%q status=%d content-type=%q transfer-encoding=%q content-encoding=%q",
			m.Method, m.Path, m.Host, m.Status, m.ContentType, m.TransferEncoding, m.ContentEncoding)
		if m.Upgrade != nil {
			fmt.Fprintf(&b, " upgrade=%q extensions=%q", m.Upgrade.Protocol, m.Upgrade.Extensions)
		}
		fmt.Fprintf(&b, "\npayload %d bytes:\n%s\n", len(m.Payload), quote(m.Payload))
	}
	return b.Bytes()
}

// quote keeps text readable and escapes anything else.
func quote(p []byte) string {
	if utf8.Valid(p) && bytes.IndexFunc(p, func(r rune) bool { return r < ' ' && r != '\n' && r != '\r' && r != '\t' }) < 0 {
		return string(p)
	}
	return strconv.Quote(string(p))
}

// fuzzLimits are small so that every limit is reached often.
var fuzzLimits = decoder.Limits{MaxHeaderBytes: 256, MaxBodyBytes: 512, MaxBufferBytes: 1024, RawFlushBytes: 300}

func FuzzRequests(f *testing.F)  { fuzzDirection(f, 0) }
func FuzzResponses(f *testing.F) { fuzzDirection(f, 1) }

// fuzzDirection checks one direction against arbitrary input. Odd seeds
// feed it in random pieces with random gaps, idle flushes and answers from
// the other direction; even seeds feed it in random pieces only, and the
// messages must then be the same as when the input comes in one piece.
// Either way memory must stay within the limits after every call, and
// nothing but a valid message start may be emitted as HTTP.
func fuzzDirection(f *testing.F, dir int) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint64(1))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) { fuzzOne(t, dir, data, seed) })
}

func fuzzOne(t *testing.T, dir int, data []byte, seed uint64) {
	chaos := seed&1 == 1
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var whole []*decoder.Message
	if !chaos {
		whole = fuzzFeed(t, dir, data, nil)
	}
	pieces := fuzzFeed(t, dir, data, func(s, other *stream, ts int64, emit, otherEmit decoder.Emit) int {
		if chaos {
			switch rng.IntN(16) {
			case 0:
				s.Gap(uint64(1 + rng.IntN(64)))
			case 1:
				s.Flush(ts, decoder.Idle, emit)
			case 2:
				// Answer an Upgrade or CONNECT either way.
				answers := []string{
					"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
					"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
					"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
					"HEAD / HTTP/1.1\r\n\r\n",
				}
				other.Feed(ts, []byte(answers[rng.IntN(len(answers))]), otherEmit)
			}
		}
		return 1 + rng.IntN(300)
	})
	if chaos {
		return
	}
	if len(whole) != len(pieces) {
		t.Fatalf("%d messages in one piece, %d in pieces", len(whole), len(pieces))
	}
	for i := range whole {
		a, b := *whole[i], *pieces[i]
		a.Start, a.End, b.Start, b.End = 0, 0, 0, 0
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("message %d differs:\none piece: %+v\n%q\npieces: %+v\n%q", i, a, a.Payload, b, b.Payload)
		}
	}
}

// fuzzFeed feeds data to direction dir of a new Conn in pieces whose
// length step returns after doing whatever else it wants, or in one piece
// when step is nil, then closes. It returns dir's messages.
func fuzzFeed(t *testing.T, dir int, data []byte, step func(s, other *stream, ts int64, emit, otherEmit decoder.Emit) int) []*decoder.Message {
	lim := normalize(fuzzLimits)
	c := NewConn(fuzzLimits)
	streams := [2]*stream{&c.req, &c.resp}
	s, other := streams[dir], streams[1-dir]
	var msgs []*decoder.Message
	emit := func(m *decoder.Message) {
		checkMessage(t, dir, m, lim)
		msgs = append(msgs, m)
	}
	otherEmit := func(m *decoder.Message) { checkMessage(t, 1-dir, m, lim) }
	ts := int64(0)
	for len(data) > 0 {
		ts++
		n := len(data)
		if step != nil {
			n = min(n, step(s, other, ts, emit, otherEmit))
		}
		s.Feed(ts, data[:n], emit)
		data = data[n:]
		checkBounds(t, s, lim)
		checkBounds(t, other, lim)
	}
	s.Flush(ts+1, decoder.Close, emit)
	other.Flush(ts+1, decoder.Close, otherEmit)
	checkBounds(t, s, lim)
	return msgs
}

func checkBounds(t *testing.T, s *stream, lim limits) {
	t.Helper()
	switch {
	case cap(s.buf) > lim.buffer:
		t.Fatalf("input buffer capacity %d > %d", cap(s.buf), lim.buffer)
	case cap(s.m.body) > lim.body:
		t.Fatalf("body capacity %d > %d", cap(s.m.body), lim.body)
	case cap(s.dec) > lim.body:
		t.Fatalf("decode buffer capacity %d > %d", cap(s.dec), lim.body)
	case cap(s.garbage) > lim.raw:
		t.Fatalf("garbage capacity %d > %d", cap(s.garbage), lim.raw)
	case len(s.hdr)+len(s.m.trailer) > 2*lim.header:
		t.Fatalf("header %d and trailer %d bytes", len(s.hdr), len(s.m.trailer))
	case len(s.pending) > 4:
		t.Fatalf("%d pending messages", len(s.pending))
	}
}

func checkMessage(t *testing.T, dir int, m *decoder.Message, lim limits) {
	t.Helper()
	if m.Start > m.End {
		t.Fatalf("start %d after end %d", m.Start, m.End)
	}
	if len(m.Payload) > 2*lim.header+lim.body+64 {
		t.Fatalf("payload of %d bytes", len(m.Payload))
	}
	switch m.Type {
	case decoder.Raw:
		if len(m.Payload) == 0 {
			t.Fatalf("empty raw message")
		}
	case decoder.HTTP1Request, decoder.HTTP1Response:
		if want := []decoder.Type{decoder.HTTP1Request, decoder.HTTP1Response}[dir]; m.Type != want {
			t.Fatalf("type %v in direction %d", m.Type, dir)
		}
		if ok, _ := isStart(dir == 1, m.Payload); !ok {
			t.Fatalf("%v payload does not start with a valid start line: %q", m.Type, m.Payload)
		}
	default:
		t.Fatalf("type %v", m.Type)
	}
}

// TestFuzzSeeds checks that the recordings are in the seed corpus, so that
// fuzzing starts from real traffic; -update writes them.
func TestFuzzSeeds(t *testing.T) {
	for _, sc := range scenarios {
		rec := loadRecording(t, sc)
		for i, p := range [][]byte{rec.req, rec.resp} {
			dir := filepath.Join("testdata", "fuzz", []string{"FuzzRequests", "FuzzResponses"}[i])
			golden.Check(t, filepath.Join(dir, sc.name), golden.FuzzSeed(p, uint64(len(p))))
		}
	}
}

// scenario is a recorded conversation and what decoding it must yield.
type scenario struct {
	name  string
	drive func(t testing.TB, addr string)
	// want lists the messages of each direction (0 requests, 1 responses).
	want [2][]want
	// detach: both directions switch protocol; the bytes each keeps for
	// the next decoder must start with these.
	detach *[2]string
}

// want is what a live recording must decode to. Fields left zero are not
// checked; body is the decoded body.
type want struct {
	method, path string
	status       uint32
	body         string
	te, ce       string
	upgrade      string
	rawBody      bool // body is still encoded: it must not equal bodyText
}

func req(method, path, body string) want { return want{method: method, path: path, body: body} }
func resp(status uint32, body string) want {
	return want{status: status, body: body}
}

var scenarios = []scenario{
	{
		name: "keepalive",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "GET", "/hello", "")
			do(t, c, "POST", "/echo", "ping-pong body")
			do(t, c, "HEAD", "/hello", "")
			do(t, c, "GET", "/nocontent", "")
			do(t, c, "GET", "/notmodified", "", "If-None-Match", `"v1"`)
		},
		want: [2][]want{
			{req("GET", "/hello", ""), req("POST", "/echo", "ping-pong body"), req("HEAD", "/hello", ""), req("GET", "/nocontent", ""), req("GET", "/notmodified", "")},
			{resp(200, "hello, world\n"), resp(200, "ping-pong body"), resp(200, ""), resp(204, ""), resp(304, "")},
		},
	},
	{
		name: "encodings",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			for _, e := range []string{"gzip", "x-gzip", "deflate", "rawdeflate", "br", "zstd", "gzip-br", "unknown"} {
				do(t, c, "GET", "/enc/"+e, "", "Accept-Encoding", "gzip, deflate, br, zstd")
			}
		},
		want: [2][]want{
			{req("GET", "/enc/gzip", ""), req("GET", "/enc/x-gzip", ""), req("GET", "/enc/deflate", ""), req("GET", "/enc/rawdeflate", ""), req("GET", "/enc/br", ""), req("GET", "/enc/zstd", ""), req("GET", "/enc/gzip-br", ""), req("GET", "/enc/unknown", "")},
			{
				{status: 200, body: bodyText, ce: "gzip"},
				{status: 200, body: bodyText, ce: "x-gzip"},
				{status: 200, body: bodyText, ce: "deflate"},
				{status: 200, body: bodyText, ce: "deflate"},
				{status: 200, body: bodyText, ce: "br"},
				{status: 200, body: bodyText, ce: "zstd"},
				{status: 200, body: bodyText, ce: "gzip, br"},
				{status: 200, rawBody: true, ce: "x-unknown"},
			},
		},
	},
	{
		name: "chunked",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "GET", "/stream", "")
			do(t, c, "GET", "/stream?gzip=1", "", "Accept-Encoding", "gzip")
			do(t, c, "PUT", "/echo", "chunked-request-body", "Transfer-Encoding", "chunked")
		},
		want: [2][]want{
			{req("GET", "/stream", ""), req("GET", "/stream?gzip=1", ""), {method: "PUT", path: "/echo", body: "chunked-request-body", te: "chunked"}},
			{{status: 200, body: bodyText, te: "chunked"}, {status: 200, body: bodyText, te: "chunked", ce: "gzip"}, resp(200, "chunked-request-body")},
		},
	},
	{
		name: "continue",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "POST", "/echo", "continue-body", "Expect", "100-continue")
		},
		want: [2][]want{
			{req("POST", "/echo", "continue-body")},
			{resp(100, ""), resp(200, "continue-body")},
		},
	},
	{
		name: "pipelined",
		drive: func(t testing.TB, addr string) {
			raw(t, addr, "GET /hello HTTP/1.1\r\nHost: example.test\r\n\r\n"+
				"POST /echo HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello"+
				"GET /stream HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
		},
		want: [2][]want{
			{req("GET", "/hello", ""), req("POST", "/echo", "hello"), req("GET", "/stream", "")},
			{resp(200, "hello, world\n"), resp(200, "hello"), {status: 200, body: bodyText, te: "chunked"}},
		},
	},
	{
		name: "upgrade-refused",
		drive: func(t testing.TB, addr string) {
			raw(t, addr, "GET /hello HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"+
				"GET /hello HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
		},
		want: [2][]want{
			{req("GET", "/hello", ""), req("GET", "/hello", "")},
			{resp(200, "hello, world\n"), resp(200, "hello, world\n")},
		},
	},
	{
		name: "http10",
		drive: func(t testing.TB, addr string) {
			raw(t, addr, "GET /stream HTTP/1.0\r\nHost: example.test\r\n\r\n")
		},
		want: [2][]want{
			{req("GET", "/stream", "")},
			{resp(200, bodyText)},
		},
	},
	{
		name: "websocket",
		drive: func(t testing.TB, addr string) {
			d := websocket.Dialer{EnableCompression: true, NetDial: func(_, _ string) (net.Conn, error) {
				return net.Dial("tcp", addr)
			}}
			c, _, err := d.Dial("ws://example.test/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.WriteMessage(websocket.TextMessage, []byte("hello websocket")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		},
		want: [2][]want{
			{req("GET", "/ws", "")},
			{{status: 101, upgrade: "websocket"}},
		},
		// A client frame is masked, FIN+text with RSV1 (compressed); the
		// server's is unmasked.
		detach: &[2]string{"\xc1", "\xc1"},
	},
	{
		name: "connect",
		drive: func(t testing.TB, addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
			br := bufio.NewReader(c)
			r, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
			if err != nil || r.StatusCode != 200 {
				t.Fatalf("CONNECT: %v %v", r, err)
			}
			const hello = "\x16\x03\x01\x00\x05hello"
			io.WriteString(c, hello)
			if _, err := io.ReadFull(br, make([]byte, len(hello))); err != nil {
				t.Fatal(err)
			}
		},
		want: [2][]want{
			{req("CONNECT", "example.test:443", "")},
			{{status: 200, upgrade: "tunnel"}},
		},
		detach: &[2]string{"\x16\x03\x01\x00\x05hello", "\x16\x03\x01\x00\x05hello"},
	},
	{
		name: "curl-compressed",
		drive: func(t testing.TB, addr string) {
			u := "http://" + addr
			curl(t, "--compressed", u+"/enc/gzip", u+"/enc/br", u+"/enc/zstd")
		},
		want: [2][]want{
			{req("GET", "/enc/gzip", ""), req("GET", "/enc/br", ""), req("GET", "/enc/zstd", "")},
			{{status: 200, body: bodyText, ce: "gzip"}, {status: 200, body: bodyText, ce: "br"}, {status: 200, body: bodyText, ce: "zstd"}},
		},
	},
	{
		name: "curl-continue",
		drive: func(t testing.TB, addr string) {
			curl(t, "-H", "Expect: 100-continue", "-H", "Content-Type: text/plain", "--data-binary", strings.Repeat("0123456789", 30), "http://"+addr+"/echo")
		},
		want: [2][]want{
			{req("POST", "/echo", strings.Repeat("0123456789", 30))},
			{resp(100, ""), resp(200, strings.Repeat("0123456789", 30))},
		},
	},
	{
		name: "big",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "GET", "/noise?n=32768", "", "Accept-Encoding", "gzip")
			do(t, c, "GET", "/hello", "")
		},
		want: [2][]want{
			{req("GET", "/noise?n=32768", ""), req("GET", "/hello", "")},
			{{status: 200, body: string(noise(32768)), te: "chunked", ce: "gzip"}, resp(200, "hello, world\n")},
		},
	},
}

// TestLive records every scenario afresh and checks what the decoder makes
// of it against what the client sent and the handler answered.
func TestLive(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := record(t, sc.drive)
			res := decodeRecording(rec, wholeFeed(rec), decoder.Limits{})
			checkWant(t, sc, res)
		})
	}
}

func checkWant(t *testing.T, sc scenario, res result) {
	t.Helper()
	for dir := range 2 {
		got := res.msgs[dir]
		if len(got) != len(sc.want[dir]) {
			t.Errorf("dir %d: %d messages, want %d:\n%s", dir, len(got), len(sc.want[dir]), renderMessages(got))
			continue
		}
		for i, w := range sc.want[dir] {
			m := got[i]
			wantType := decoder.HTTP1Request
			if dir == 1 {
				wantType = decoder.HTTP1Response
			}
			_, body, _ := strings.Cut(string(m.Payload), "\r\n\r\n")
			switch {
			case m.Type != wantType || m.Truncated || m.Incomplete:
				t.Errorf("dir %d msg %d: type %v truncated %v incomplete %v", dir, i, m.Type, m.Truncated, m.Incomplete)
			case m.Method != w.method || m.Path != w.path || m.Status != w.status:
				t.Errorf("dir %d msg %d: %q %q %d, want %q %q %d", dir, i, m.Method, m.Path, m.Status, w.method, w.path, w.status)
			case w.rawBody && body == bodyText:
				t.Errorf("dir %d msg %d: body of unknown coding was decoded", dir, i)
			case !w.rawBody && body != w.body:
				t.Errorf("dir %d msg %d: body %q, want %q", dir, i, trunc(body), trunc(w.body))
			case w.te != m.TransferEncoding || w.ce != m.ContentEncoding:
				t.Errorf("dir %d msg %d: encodings %q %q, want %q %q", dir, i, m.TransferEncoding, m.ContentEncoding, w.te, w.ce)
			case (m.Upgrade == nil) != (w.upgrade == "") || (m.Upgrade != nil && m.Upgrade.Protocol != w.upgrade):
				t.Errorf("dir %d msg %d: upgrade %+v, want %q", dir, i, m.Upgrade, w.upgrade)
			}
			if dir == 0 && m.Host == "" {
				t.Errorf("dir %d msg %d: no host", dir, i)
			}
		}
	}
	if sc.detach != nil {
		for dir := range 2 {
			if !strings.HasPrefix(string(res.detached[dir]), sc.detach[dir]) {
				t.Errorf("dir %d: detached %q, want prefix %q", dir, trunc(string(res.detached[dir])), sc.detach[dir])
			}
		}
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
