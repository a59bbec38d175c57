package pipeline

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// emit turns one decoded message into a wire event and publishes it.
func (p *Pipeline) emit(cn *conn, dir capture.Direction, m *decoder.Message) {
	p.seq++
	src, dst := cn.ends(dir)
	ev := &eventpb.Event{
		Timestamp:        m.Start,
		Uuid:             cn.uuid[dir&1],
		Pid:              int64(cn.key.pid),
		Pname:            cn.comm,
		Type:             uint32(m.Type),
		Tid:              int64(cn.tid),
		Fd:               uint32(cn.fd),
		Version:          uint32(cn.version),
		DataType:         uint32(dir),
		Seq:              p.seq,
		ConnId:           cn.id,
		StreamId:         m.StreamID,
		Truncated:        m.Truncated,
		TransferEncoding: clean(m.TransferEncoding),
		ContentEncoding:  clean(m.ContentEncoding),
		Uid:              cn.uid,
		Incomplete:       m.Incomplete,
		WsOpcode:         uint32(m.WSOpcode),
		WsCloseCode:      uint32(m.WSCloseCode),
		Host:             clean(m.Host),
		Method:           clean(m.Method),
		Path:             clean(m.Path),
		Status:           m.Status,
		ContentType:      clean(m.ContentType),
		TlsLibrary:       cn.library,
		OriginalLength:   uint64(len(m.Payload)),
		Node:             p.opts.Node,
		CgroupId:         cn.cgroup,
		ContainerId:      p.container(cn),
	}
	ev.PodNamespace, ev.PodName = p.pod(cn)
	if src.IsValid() {
		ev.SrcIp, ev.SrcPort = src.Addr().Unmap().String(), uint32(src.Port())
	}
	if dst.IsValid() {
		ev.DstIp, ev.DstPort = dst.Addr().Unmap().String(), uint32(dst.Port())
	}
	if m.OriginalLength != 0 {
		ev.OriginalLength = m.OriginalLength
	}
	if m.Truncated {
		p.c.decoderTrunc.Inc()
	}
	if m.Incomplete {
		p.c.incomplete.Inc()
	}
	if m.Part == decoder.Whole {
		p.pair(cn, m, ev)
	} else {
		p.streamParts(cn, dir, m, ev)
	}

	payload := m.Payload
	if ts := p.runtime.Load().TSize; ts > 0 && len(payload) > ts {
		payload = payload[:ts]
		ev.Truncated = true
		p.c.tsize.Inc()
	}
	ev.Payload = payload
	ev.Length = uint32(len(payload))
	if int(m.Type) < len(p.c.events) {
		p.c.events[m.Type].Inc()
	}
	le := &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev},
	}
	if p.batch {
		p.batcher.PublishBatched(le)
	} else {
		p.broker.Publish(le)
	}
	if p.opts.Latency != nil {
		p.opts.Latency.Observe(time.Duration(time.Now().UnixNano() - m.End))
	}
}

// container returns the connection's container id, asking the resolver
// until it gives a final answer (once per connection in the common case).
func (p *Pipeline) container(cn *conn) string {
	if cn.resolved || cn.cgroup == 0 || p.opts.Containers == nil {
		return cn.container
	}
	cn.container, cn.resolved = p.opts.Containers.Lookup(cn.cgroup)
	return cn.container
}

// pod returns the connection's pod, asking Options.Pods (a map lookup)
// until it knows it.
func (p *Pipeline) pod(cn *conn) (namespace, name string) {
	if !cn.podKnown && cn.container != "" && p.opts.Pods != nil {
		cn.podNamespace, cn.podName, cn.podKnown = p.opts.Pods.Pod(cn.container)
	}
	return cn.podNamespace, cn.podName
}

// pair links a response to its request: HTTP/1 by order on the connection,
// HTTP/2 by stream id. Interim 1xx responses (other than 101) report the
// request without consuming it, so the final response pairs too.
func (p *Pipeline) pair(cn *conn, m *decoder.Message, ev *eventpb.Event) {
	switch {
	case m.Type == decoder.HTTP1Request:
		cn.pushH1(pending{seq: ev.Seq, end: m.End, host: m.Host, method: m.Method, path: m.Path})
	case m.Type == decoder.HTTP2Request:
		cn.pushH2(m.StreamID, pending{seq: ev.Seq, end: m.End, host: m.Host, method: m.Method, path: m.Path})
	case m.Type == decoder.HTTP1Response:
		if len(cn.h1) == 0 {
			return
		}
		req := cn.h1[0]
		if interim := m.Status >= 100 && m.Status < 200 && m.Status != 101; !interim {
			cn.h1 = cn.h1[1:]
		}
		fill(ev, req, m)
	case m.Type == decoder.HTTP2Response:
		req, ok := cn.h2[m.StreamID]
		if !ok {
			return
		}
		if interim := m.Status >= 100 && m.Status < 200; !interim {
			delete(cn.h2, m.StreamID)
		}
		fill(ev, req, m)
	}
}

func fill(ev *eventpb.Event, req pending, m *decoder.Message) {
	ev.RequestSeq = req.seq
	ev.LatencyNs = max(0, m.Start-req.end)
	if ev.Host == "" {
		ev.Host = req.host
	}
	if ev.Method == "" {
		ev.Method = req.method
	}
	if ev.Path == "" {
		ev.Path = req.path
	}
}

// clean makes s valid UTF-8: protobuf refuses to marshal a string field
// that is not, and header bytes from the wire can be anything.
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
