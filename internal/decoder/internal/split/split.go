package split

import (
	"bytes"
	"encoding/binary"
	"mime"
	"strings"

	"github.com/tlstap/tlstap/internal/decoder"
)

// Framing is how a body is cut into parts.
type Framing uint8

const (
	// Window: no boundaries; a part is what arrived until the next idle
	// flush, at most the maximum part size.
	Window Framing = iota
	// SSE: one text/event-stream event per part.
	SSE
	// GRPC: one gRPC length-prefixed message per part.
	GRPC
	// Lines: one line per part (NDJSON, JSON-seq).
	Lines
)

var framingNames = [...]string{"window", "sse", "grpc", "lines"}

func (f Framing) String() string {
	if int(f) < len(framingNames) {
		return framingNames[f]
	}
	return "unknown"
}

// For picks the framing of a body from its Content-Type. A body with a
// content coding has no visible boundaries until it is decoded, which a
// stream's parts are not.
func For(contentType, contentEncoding string) Framing {
	if ce := strings.TrimSpace(contentEncoding); ce != "" && !strings.EqualFold(ce, "identity") {
		return Window
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	switch {
	case mt == "text/event-stream":
		return SSE
	case mt == "application/grpc" || strings.HasPrefix(mt, "application/grpc+"):
		return GRPC
	case mt == "application/x-ndjson", mt == "application/ndjson", mt == "application/jsonl",
		mt == "application/x-jsonlines", mt == "application/json-seq", mt == "application/stream+json":
		return Lines
	}
	return Window
}

// Emit receives one part. data belongs to the receiver.
type Emit func(info decoder.PartInfo, data []byte)

// Splitter cuts one body. The zero value is not usable; call New.
type Splitter struct {
	framing Framing
	max     int
	// buf holds the part being built; off is its offset in the body.
	buf []byte
	off uint64
	// scan is where the search for the next boundary resumes in buf.
	scan  int
	index uint32
	// cont: buf continues a unit already partly emitted.
	cont bool
	// left is what remains of a gRPC message whose start was emitted.
	left uint64
}

// grpcPrefix is the length prefix of a gRPC message: a compressed flag and
// a big-endian length.
const grpcPrefix = 5

// New returns a splitter whose parts are at most maxPart bytes (and never
// less than a gRPC prefix).
func New(f Framing, maxPart int) *Splitter {
	return &Splitter{framing: f, max: max(maxPart, grpcPrefix)}
}

// Framing returns the splitter's framing.
func (s *Splitter) Framing() Framing { return s.framing }

// Buffered returns how many bytes wait for a boundary.
func (s *Splitter) Buffered() int { return len(s.buf) }

// Write consumes the next body bytes and emits every part they complete.
func (s *Splitter) Write(p []byte, emit Emit) {
	for len(p) > 0 {
		n := min(len(p), s.max-len(s.buf))
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
		s.cut(emit)
	}
}

// Flush emits whatever is buffered as a part: at an idle flush for Window
// framing, and at the end of the body for every framing.
func (s *Splitter) Flush(emit Emit) {
	if len(s.buf) == 0 {
		return
	}
	// What is left of a unit is whole but for its terminator (a last line,
	// a last SSE event), or a gRPC message cut short.
	s.emit(len(s.buf), false, emit)
}

// cut emits the parts buf holds.
func (s *Splitter) cut(emit Emit) {
	for len(s.buf) > 0 {
		n := s.boundary()
		if n == 0 {
			if len(s.buf) < s.max {
				return
			}
			// A unit longer than a part: emit what there is.
			s.emit(len(s.buf), true, emit)
			continue
		}
		s.emit(n, false, emit)
	}
}

// boundary returns the length of the first complete part in buf, 0 if
// none is complete yet.
func (s *Splitter) boundary() int {
	switch s.framing {
	case Lines:
		if k := bytes.IndexByte(s.buf[s.scan:], '\n'); k >= 0 {
			return s.scan + k + 1
		}
		s.scan = len(s.buf)
	case SSE:
		return s.sseBoundary()
	case GRPC:
		if s.left > 0 {
			// The rest of a long message, in parts as large as allowed.
			if need := int(min(s.left, uint64(s.max))); len(s.buf) >= need {
				return need
			}
			return 0
		}
		if len(s.buf) < grpcPrefix {
			return 0
		}
		n := uint64(binary.BigEndian.Uint32(s.buf[1:grpcPrefix])) + grpcPrefix
		if n <= uint64(len(s.buf)) {
			return int(n)
		}
	}
	return 0
}

// sseBoundary finds the empty line that ends an event. Lines end with CRLF,
// LF or CR; a CR at the end of buf waits for the next byte.
func (s *Splitter) sseBoundary() int {
	b := s.buf
	i := s.scan
	for i < len(b) {
		k := bytes.IndexAny(b[i:], "\r\n")
		if k < 0 {
			s.scan = i
			return 0
		}
		end := i + k
		next := end + 1
		if b[end] == '\r' {
			if next == len(b) {
				s.scan = i
				return 0
			}
			if b[next] == '\n' {
				next++
			}
		}
		if end == i && i > 0 {
			// An empty line after at least one line: the event ends.
			return next
		}
		i = next
	}
	s.scan = i
	return 0
}

// emit hands out the first n bytes of buf as a part.
func (s *Splitter) emit(n int, cont bool, emit Emit) {
	data := bytes.Clone(s.buf[:n])
	info := decoder.PartInfo{Index: s.index, Offset: s.off, Continued: s.cont || cont}
	switch s.framing {
	case SSE:
		if !info.Continued {
			info.SSE = ParseSSE(data)
		}
	case GRPC:
		switch {
		case s.left > 0:
			s.left -= uint64(n)
			info.Continued = true
		case n >= grpcPrefix:
			l := binary.BigEndian.Uint32(data[1:grpcPrefix])
			info.GRPC = &decoder.GRPCMessage{Compressed: data[0]&1 != 0, Length: l}
			s.left = uint64(l) + grpcPrefix - uint64(n)
		}
	}
	s.cont = cont
	if s.framing == GRPC {
		s.cont = s.left > 0
	}
	s.index++
	s.off += uint64(n)
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	s.scan = 0
	emit(info, data)
}

// ParseSSE parses one event as an EventSource would: "event", "id" and
// "data" fields (data lines joined with "\n"); comments and other fields
// are skipped. It returns nil for an event with no such field.
func ParseSSE(b []byte) *decoder.SSEEvent {
	var ev decoder.SSEEvent
	var data []string
	seen := false
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			name, value = line[:c], bytes.TrimPrefix(line[c+1:], []byte(" "))
		}
		switch string(name) {
		case "event":
			ev.Event, seen = string(value), true
		case "id":
			ev.ID, seen = string(value), true
		case "data":
			data, seen = append(data, string(value)), true
		}
	}
	if !seen {
		return nil
	}
	ev.Data = strings.Join(data, "\n")
	return &ev
}

// nextLine splits the first line, ended by CRLF, LF or CR, from b.
func nextLine(b []byte) (line, rest []byte) {
	k := bytes.IndexAny(b, "\r\n")
	if k < 0 {
		return b, nil
	}
	rest = b[k+1:]
	if b[k] == '\r' && len(rest) > 0 && rest[0] == '\n' {
		rest = rest[1:]
	}
	return b[:k], rest
}
