package har

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Options configure a Writer. Zero values take the defaults.
type Options struct {
	// Creator names the program in log.creator (default "tlstap").
	Creator, Version string
	// MaxPending bounds requests waiting for their response (default
	// 4,096); the oldest beyond it is written without a response.
	MaxPending int
	// MaxWebSockets bounds open WebSocket sessions (default 256); the
	// oldest beyond it is written with the messages it has.
	MaxWebSockets int
	// MaxMessages bounds the messages kept per session (default 10,000);
	// later ones are counted in _tlstap.webSocketDropped.
	MaxMessages int
}

func (o *Options) defaults() {
	if o.Creator == "" {
		o.Creator = "tlstap"
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 4096
	}
	if o.MaxWebSockets <= 0 {
		o.MaxWebSockets = 256
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = 10000
	}
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("har: writer closed")

// Writer builds HAR entries from events and writes them as they complete.
// It is not safe for concurrent use.
type Writer struct {
	opts    Options
	w       *bufio.Writer
	scratch bytes.Buffer
	enc     *json.Encoder

	started, closed bool
	entries         int

	// pending requests by event seq, in arrival order for eviction.
	pending map[uint64]*entry
	order   []uint64
	// ws holds open WebSocket sessions by connection id, in arrival order.
	ws      map[uint64]*entry
	wsOrder []uint64
	// streamed holds messages being put together from parts, by head seq
	// (parts.go).
	streamed    map[uint64]*streamed
	streamOrder []uint64
}

// NewWriter returns a Writer to w. Nothing is written before the first
// Add or Close.
func NewWriter(w io.Writer, opts Options) *Writer {
	opts.defaults()
	hw := &Writer{opts: opts, w: bufio.NewWriterSize(w, 32<<10), pending: map[uint64]*entry{}, ws: map[uint64]*entry{}, streamed: map[uint64]*streamed{}}
	hw.enc = json.NewEncoder(&hw.scratch)
	hw.enc.SetEscapeHTML(false)
	return hw
}

// Entries returns the number of entries written.
func (w *Writer) Entries() int { return w.entries }

// Flush writes buffered output to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// Add takes the next event of the stream. Events other than HTTP and
// WebSocket are ignored, as are payloads that are not HTTP messages.
func (w *Writer) Add(ev *eventpb.Event) error {
	if w.closed {
		return ErrClosed
	}
	if ev.GetPart() != eventpb.PartKind_PART_KIND_WHOLE {
		for _, whole := range w.assemble(ev) {
			if err := w.Add(whole); err != nil {
				return err
			}
		}
		return nil
	}
	switch decoder.Type(ev.GetType()) {
	case decoder.HTTP1Request, decoder.HTTP2Request:
		return w.request(ev)
	case decoder.HTTP1Response, decoder.HTTP2Response:
		return w.response(ev)
	case decoder.WebSocket:
		w.wsMessage(ev)
	}
	return nil
}

// Close writes what is still open (unanswered requests, WebSocket
// sessions) and ends the document. It does not close the underlying
// writer.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	// Messages still streaming when the export ends are written as far as
	// they got.
	for _, seq := range w.streamOrder {
		if s := w.streamed[seq]; s != nil {
			if err := w.Add(s.whole(nil)); err != nil {
				return err
			}
		}
	}
	w.streamed, w.streamOrder = nil, nil
	for _, seq := range w.order {
		if e := w.pending[seq]; e != nil {
			if err := w.write(e); err != nil {
				return err
			}
		}
	}
	for _, id := range w.wsOrder {
		if e := w.ws[id]; e != nil {
			if err := w.write(e); err != nil {
				return err
			}
		}
	}
	w.pending, w.order, w.ws, w.wsOrder = nil, nil, nil, nil
	w.closed = true
	if err := w.begin(); err != nil {
		return err
	}
	if _, err := w.w.WriteString("\n]}}\n"); err != nil {
		return err
	}
	return w.w.Flush()
}

func (w *Writer) begin() error {
	if w.started {
		return nil
	}
	w.started = true
	creator, _ := json.Marshal(map[string]string{"name": w.opts.Creator, "version": w.opts.Version})
	_, err := fmt.Fprintf(w.w, "{\"log\":{\"version\":\"1.2\",\"creator\":%s,\"pages\":[],\"entries\":[", creator)
	return err
}

func (w *Writer) write(e *entry) error {
	if err := w.begin(); err != nil {
		return err
	}
	sep := "\n"
	if w.entries > 0 {
		sep = ",\n"
	}
	if _, err := w.w.WriteString(sep); err != nil {
		return err
	}
	w.entries++
	w.scratch.Reset()
	if err := w.enc.Encode(e); err != nil {
		return err
	}
	// Encode ends the entry with a newline; the separator brings its own.
	_, err := w.w.Write(bytes.TrimSuffix(w.scratch.Bytes(), []byte("\n")))
	return err
}

func (w *Writer) request(ev *eventpb.Event) error {
	m, err := parseMessage(ev.GetPayload())
	if err != nil {
		return nil // not an HTTP rendering; nothing to export
	}
	e := &entry{
		StartedDateTime: isoTime(ev.GetTimestamp()),
		Request:         buildRequest(ev, &m),
		Response:        response{Status: 0, HTTPVersion: httpVersion(ev, m.start[2]), Cookies: []cookie{}, Headers: []header{}, HeadersSize: -1, BodySize: -1, Content: content{MimeType: "x-unknown"}},
		Timings:         timings{Blocked: -1, DNS: -1, Connect: -1, SSL: -1},
		ServerIPAddress: ev.GetDstIp(),
		Connection:      strconv.FormatUint(ev.GetConnId(), 10),
		TLSTap:          metaOf(ev),
	}
	e.TLSTap.Src, e.TLSTap.Dst = hostPort(ev.GetSrcIp(), ev.GetSrcPort()), hostPort(ev.GetDstIp(), ev.GetDstPort())
	e.TLSTap.RequestSeq = ev.GetSeq()
	e.TLSTap.Truncated, e.TLSTap.Incomplete = ev.GetTruncated(), ev.GetIncomplete()
	if len(w.order) >= w.opts.MaxPending {
		if err := w.evictPending(); err != nil {
			return err
		}
	}
	w.pending[ev.GetSeq()] = e
	w.order = append(w.order, ev.GetSeq())
	return nil
}

// evictPending writes the oldest unanswered request.
func (w *Writer) evictPending() error {
	for len(w.order) > 0 {
		seq := w.order[0]
		w.order = w.order[1:]
		if e := w.pending[seq]; e != nil {
			delete(w.pending, seq)
			return w.write(e)
		}
	}
	return nil
}

func (w *Writer) response(ev *eventpb.Event) error {
	m, err := parseMessage(ev.GetPayload())
	if err != nil {
		return nil
	}
	status := int(ev.GetStatus())
	if status >= 100 && status < 200 && status != 101 {
		return nil // interim: the final response completes the entry
	}
	e := w.pending[ev.GetRequestSeq()]
	if e != nil {
		delete(w.pending, ev.GetRequestSeq())
		w.compactOrder()
	} else {
		e = w.orphan(ev)
	}
	e.Response = buildResponse(ev, &m)
	if e.Response.HTTPVersion == "" {
		e.Response.HTTPVersion = e.Request.HTTPVersion
	}
	wait := float64(ev.GetLatencyNs()) / 1e6
	e.Timings.Wait = wait
	e.Time = wait
	e.TLSTap.ResponseSeq = ev.GetSeq()
	e.TLSTap.ContentEncoding = ev.GetContentEncoding()
	e.TLSTap.TransferEncoding = ev.GetTransferEncoding()
	e.TLSTap.Truncated = e.TLSTap.Truncated || ev.GetTruncated()
	e.TLSTap.Incomplete = e.TLSTap.Incomplete || ev.GetIncomplete()
	if status == 101 && decoder.Type(ev.GetType()) == decoder.HTTP1Response {
		return w.openWebSocket(ev.GetConnId(), e)
	}
	return w.write(e)
}

// compactOrder drops answered seqs from the front of the eviction order,
// so it stays as long as what is pending.
func (w *Writer) compactOrder() {
	for len(w.order) > 0 && w.pending[w.order[0]] == nil {
		w.order = w.order[1:]
	}
	if len(w.order) > 2*len(w.pending)+64 {
		kept := w.order[:0]
		for _, s := range w.order {
			if w.pending[s] != nil {
				kept = append(kept, s)
			}
		}
		w.order = kept
	}
}

// orphan builds the entry of a response whose request was not seen, from
// what the response event repeats of it.
func (w *Writer) orphan(ev *eventpb.Event) *entry {
	started := ev.GetTimestamp() - ev.GetLatencyNs()
	e := &entry{
		StartedDateTime: isoTime(started),
		Request: request{
			Method:      ev.GetMethod(),
			URL:         buildURL(ev.GetHost(), ev.GetPath(), ev.GetSrcIp(), ev.GetSrcPort()),
			HTTPVersion: httpVersion(ev, ""),
			Cookies:     []cookie{}, Headers: []header{}, QueryString: queryOf(ev.GetPath()),
			HeadersSize: -1, BodySize: -1,
		},
		Timings:         timings{Blocked: -1, DNS: -1, Connect: -1, SSL: -1},
		ServerIPAddress: ev.GetSrcIp(),
		Connection:      strconv.FormatUint(ev.GetConnId(), 10),
		TLSTap:          metaOf(ev),
	}
	if e.Request.Method == "" {
		e.Request.Method = "GET"
	}
	e.TLSTap.Src, e.TLSTap.Dst = hostPort(ev.GetDstIp(), ev.GetDstPort()), hostPort(ev.GetSrcIp(), ev.GetSrcPort())
	e.TLSTap.RequestSeq = ev.GetRequestSeq()
	e.TLSTap.RequestMissing = true
	return e
}

func (w *Writer) openWebSocket(conn uint64, e *entry) error {
	e.ResourceType = "websocket"
	e.WebSocket = []wsMessage{}
	if old := w.ws[conn]; old != nil {
		// A new upgrade on the same connection id ends the old session.
		delete(w.ws, conn)
		if err := w.write(old); err != nil {
			return err
		}
	}
	if len(w.ws) >= w.opts.MaxWebSockets {
		for len(w.wsOrder) > 0 {
			id := w.wsOrder[0]
			w.wsOrder = w.wsOrder[1:]
			if old := w.ws[id]; old != nil {
				delete(w.ws, id)
				if err := w.write(old); err != nil {
					return err
				}
				break
			}
		}
	}
	w.ws[conn] = e
	w.wsOrder = append(w.wsOrder, conn)
	return nil
}

func (w *Writer) wsMessage(ev *eventpb.Event) {
	e := w.ws[ev.GetConnId()]
	if e == nil {
		return // the session's upgrade was not seen
	}
	if len(e.WebSocket) >= w.opts.MaxMessages {
		e.TLSTap.WebSocketDropped++
		return
	}
	// The client is the sender of the upgrade request.
	typ := "receive"
	if hostPort(ev.GetSrcIp(), ev.GetSrcPort()) == e.TLSTap.Src {
		typ = "send"
	}
	op := int(ev.GetWsOpcode())
	data := ev.GetPayload()
	var text string
	switch {
	case op == 2 || !utf8.Valid(data):
		text = base64.StdEncoding.EncodeToString(data)
	default:
		text = string(data)
	}
	e.WebSocket = append(e.WebSocket, wsMessage{Type: typ, Time: float64(ev.GetTimestamp()) / 1e9, Opcode: op, Data: text})
}

func buildRequest(ev *eventpb.Event, m *message) request {
	r := request{
		Method:      m.start[0],
		HTTPVersion: httpVersion(ev, m.start[2]),
		Cookies:     cookiesOf(m, "Cookie"),
		Headers:     m.headers,
		HeadersSize: m.headersSize,
		BodySize:    len(m.body),
	}
	if r.Headers == nil {
		r.Headers = []header{}
	}
	host := m.header("Host")
	if host == "" {
		host = ev.GetHost()
	}
	r.URL = buildURL(host, m.start[1], ev.GetDstIp(), ev.GetDstPort())
	r.QueryString = queryOf(m.start[1])
	if len(m.body) > 0 {
		pd := &postData{MimeType: m.header("Content-Type"), Params: []header{}}
		pd.Text, pd.Encoding = bodyText(m.body)
		r.PostData = pd
	}
	if ev.GetTruncated() {
		r.BodySize = -1
	}
	return r
}

func buildResponse(ev *eventpb.Event, m *message) response {
	r := response{
		Status:      int(ev.GetStatus()),
		HTTPVersion: httpVersion(ev, m.start[0]),
		Cookies:     cookiesOf(m, "Set-Cookie"),
		Headers:     m.headers,
		RedirectURL: m.header("Location"),
		HeadersSize: m.headersSize,
		BodySize:    len(m.body),
	}
	if r.Status == 0 {
		r.Status, _ = strconv.Atoi(m.start[1])
	}
	if decoder.Type(ev.GetType()) == decoder.HTTP1Response {
		r.StatusText = m.start[2]
	}
	if r.Headers == nil {
		r.Headers = []header{}
	}
	mime := m.header("Content-Type")
	if mime == "" {
		mime = "x-unknown"
	}
	r.Content = content{Size: len(m.body), MimeType: mime}
	r.Content.Text, r.Content.Encoding = bodyText(m.body)
	if ce := ev.GetContentEncoding(); ce != "" {
		// The payload holds the decoded body and no longer says how it was
		// encoded on the wire; HAR readers expect the header.
		if m.header("Content-Encoding") == "" {
			r.Headers = append(r.Headers, header{Name: "Content-Encoding", Value: ce})
		}
		r.BodySize = -1 // the compressed size was not measured
	}
	if ev.GetTruncated() {
		r.BodySize = -1
	}
	return r
}

// httpVersion writes the version as Chrome does: the request line's
// token for HTTP/1, "http/2.0" for HTTP/2.
func httpVersion(ev *eventpb.Event, token string) string {
	switch decoder.Type(ev.GetType()) {
	case decoder.HTTP2Request, decoder.HTTP2Response:
		return "http/2.0"
	}
	if strings.HasPrefix(token, "HTTP/1.") {
		return token
	}
	return "HTTP/1.1"
}

// buildURL makes an absolute https URL: the traffic was TLS.
func buildURL(host, target, ip string, port uint32) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target // absolute-form (proxies)
	}
	if host == "" {
		host = hostPort(ip, port)
		if port == 443 {
			host = ip
			if strings.Contains(ip, ":") {
				host = "[" + ip + "]"
			}
		}
	}
	if host == "" {
		host = "unknown"
	}
	if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	return "https://" + host + target
}

func hostPort(ip string, port uint32) string {
	if ip == "" {
		return ""
	}
	return net.JoinHostPort(ip, strconv.FormatUint(uint64(port), 10))
}

func queryOf(target string) []header {
	out := []header{}
	_, q, ok := strings.Cut(target, "?")
	if !ok {
		return out
	}
	for part := range strings.SplitSeq(q, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		out = append(out, header{Name: k, Value: v})
	}
	return out
}

func cookiesOf(m *message, name string) []cookie {
	out := []cookie{}
	for _, h := range m.headers {
		if !strings.EqualFold(h.Name, name) {
			continue
		}
		if strings.EqualFold(name, "Cookie") {
			for part := range strings.SplitSeq(h.Value, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
				if k != "" {
					out = append(out, cookie{Name: k, Value: v})
				}
			}
			continue
		}
		first, _, _ := strings.Cut(h.Value, ";")
		if k, v, ok := strings.Cut(strings.TrimSpace(first), "="); ok {
			out = append(out, cookie{Name: k, Value: v})
		}
	}
	return out
}

// bodyText returns b as text, or base64 with its encoding name when it is
// not UTF-8.
func bodyText(b []byte) (text, encoding string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

func isoTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

var tlsVersions = map[uint32]string{0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}

func metaOf(ev *eventpb.Event) meta {
	return meta{
		PID:        ev.GetPid(),
		TID:        ev.GetTid(),
		UID:        ev.GetUid(),
		Comm:       ev.GetPname(),
		FD:         ev.GetFd(),
		UUID:       ev.GetUuid(),
		ConnID:     ev.GetConnId(),
		StreamID:   ev.GetStreamId(),
		TLSVersion: tlsVersions[ev.GetVersion()],
	}
}
