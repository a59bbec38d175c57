package pipeline

import (
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// partKey identifies a streamed message of a connection: its direction and
// HTTP/2 stream (0 for HTTP/1, which streams one message per direction at a
// time).
type partKey struct {
	dir    capture.Direction
	stream uint32
}

// streamed is what the parts and the end of a streamed message repeat from
// its head: the head's seq and the pairing the head received.
type streamed struct {
	headSeq            uint64
	requestSeq         uint64
	latency            int64
	host, method, path string
}

// streamParts links the parts of a streamed message: a head opens it, its
// parts and end carry the head's seq and pairing, and the end of a request
// updates the time its response's latency is measured from.
func (p *Pipeline) streamParts(cn *conn, dir capture.Direction, m *decoder.Message, ev *eventpb.Event) {
	ev.Part = eventpb.PartKind(m.Part)
	key := partKey{dir, m.StreamID}
	if m.Part == decoder.Head {
		p.pair(cn, m, ev)
		ev.MessageSeq = ev.Seq
		if cn.parts == nil {
			cn.parts = make(map[partKey]streamed)
		}
		if len(cn.parts) >= maxPending {
			// Ends lost with their streams; forget any one.
			for k := range cn.parts {
				delete(cn.parts, k)
				break
			}
		}
		cn.parts[key] = streamed{headSeq: ev.Seq, requestSeq: ev.RequestSeq, latency: ev.LatencyNs, host: ev.Host, method: ev.Method, path: ev.Path}
		return
	}
	info := &m.PartInfo
	if m.Part == decoder.Body {
		ev.PartIndex, ev.BodyOffset, ev.PartContinued = info.Index, info.Offset, info.Continued
		if e := info.SSE; e != nil {
			ev.SseEvent, ev.SseId, ev.SseData = clean(e.Event), clean(e.ID), clean(e.Data)
		}
		if g := info.GRPC; g != nil {
			ev.GrpcCompressed, ev.GrpcLength = g.Compressed, g.Length
		}
	}
	if g := m.GRPCStatus; g != nil {
		ev.GrpcStatus, ev.GrpcMessage = &g.Code, clean(g.Message)
	}
	s, ok := cn.parts[key]
	if !ok {
		return
	}
	ev.MessageSeq, ev.RequestSeq, ev.LatencyNs = s.headSeq, s.requestSeq, s.latency
	if ev.Host == "" {
		ev.Host = s.host
	}
	if ev.Method == "" {
		ev.Method = s.method
	}
	if ev.Path == "" {
		ev.Path = s.path
	}
	if m.Part != decoder.End {
		return
	}
	delete(cn.parts, key)
	// A response's latency runs from the end of its request.
	switch m.Type {
	case decoder.HTTP1Request:
		for i := range cn.h1 {
			if cn.h1[i].seq == s.headSeq {
				cn.h1[i].end = m.End
			}
		}
	case decoder.HTTP2Request:
		if r, ok := cn.h2[m.StreamID]; ok && r.seq == s.headSeq {
			r.end = m.End
			cn.h2[m.StreamID] = r
		}
	}
}
