package exporttest

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// PcapngWant says what a pcapng file must show beyond what the events
// imply.
type PcapngWant struct {
	// Gaps is the number of "previous segment not captured" the file must
	// show: one per capture loss followed by more data.
	Gaps int
	// GapComments is the number of packets whose comment reports a loss.
	GapComments int
	// SkipWebSocketCount skips comparing WebSocket message counts, for
	// files where a loss cut a frame.
	SkipWebSocketCount bool
}

// tshark runs tshark on path with decodeAs options and returns, per
// frame, the values of fields (each a list, since a frame may hold
// several).
func tshark(t testing.TB, path string, decodeAs []string, fields ...string) [][][]string {
	t.Helper()
	args := append([]string{"-n", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=\x1f"}, decodeAs...)
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	var frames [][][]string
	for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		row := make([][]string, len(fields))
		for i := range row {
			if i < len(cols) && cols[i] != "" {
				row[i] = strings.Split(cols[i], "\x1f")
			}
		}
		frames = append(frames, row)
	}
	return frames
}

// DecodeAs returns the -d options tshark needs for the HTTP/2 in evs:
// Wireshark recognises HTTP/2 on TCP only on ports it is told about. A
// server port that carries only HTTP/2 is decoded as http2; one that also
// carries HTTP/1 (nginx negotiating either by ALPN) as http, whose
// dissector hands connections that open with the HTTP/2 preface to http2.
func DecodeAs(evs []*eventpb.Event) []string {
	h1, h2 := map[uint32]bool{}, map[uint32]bool{}
	var ports []uint32
	for _, ev := range evs {
		switch decoder.Type(ev.GetType()) {
		case decoder.HTTP1Request:
			h1[ev.GetDstPort()] = true
		case decoder.HTTP2Request:
			if !h2[ev.GetDstPort()] {
				ports = append(ports, ev.GetDstPort())
			}
			h2[ev.GetDstPort()] = true
		}
	}
	var args []string
	for _, p := range ports {
		proto := "http2"
		if h1[p] {
			proto = "http"
		}
		args = append(args, "-d", "tcp.port=="+strconv.Itoa(int(p))+","+proto)
	}
	return args
}

// CheckPcapng dissects the pcapng at path with tshark and compares it with
// the events of the same run: every HTTP/1 request and response, every
// HTTP/2 HEADERS frame and every WebSocket message dissected, nothing
// malformed, gaps only where want says, every packet commented with its
// process, and wall-clock timestamps spanning the events'.
func CheckPcapng(t testing.TB, path string, evs []*eventpb.Event, want PcapngWant) {
	t.Helper()
	evs = Whole(evs) // a streamed message is still one HTTP message on the wire
	var h1Req, h1Resp, h2Headers, ws int
	var first, last int64
	for _, ev := range evs {
		switch decoder.Type(ev.GetType()) {
		case decoder.HTTP1Request:
			h1Req++
		case decoder.HTTP1Response:
			h1Resp++
		case decoder.HTTP2Request, decoder.HTTP2Response:
			h2Headers++
		case decoder.WebSocket:
			ws++
		}
		if first == 0 || ev.GetTimestamp() < first {
			first = ev.GetTimestamp()
		}
		last = max(last, ev.GetTimestamp())
	}
	fields := []string{"frame.number", "http.request", "http.response.code", "http2.type", "websocket.opcode",
		"_ws.malformed", "tcp.analysis.lost_segment", "frame.comment", "_ws.expert.severity"}
	frames := tshark(t, path, DecodeAs(evs), fields...)
	if len(frames) == 0 {
		t.Fatalf("%s: no packets", path)
	}
	var gotReq, gotResp, gotH2, gotWS, gaps, gapComments int
	for _, f := range frames {
		gotReq += len(f[1])
		gotResp += len(f[2])
		for _, typ := range f[3] {
			if typ == "1" {
				gotH2++
			}
		}
		gotWS += len(f[4])
		if len(f[5]) > 0 {
			t.Errorf("frame %v: malformed packet", f[0])
		}
		for _, sev := range f[8] {
			// 0x00800000 is Wireshark's PI_ERROR.
			if n, err := strconv.ParseUint(sev, 0, 32); err == nil && n >= 0x00800000 {
				t.Errorf("frame %v: expert info of error severity", f[0])
			}
		}
		gaps += len(f[6])
		comment := strings.Join(f[7], " ")
		if !strings.Contains(comment, "pid=") || !strings.Contains(comment, "comm=") {
			t.Errorf("frame %v: comment %q lacks pid and comm", f[0], comment)
		}
		if strings.Contains(comment, "capture lost") {
			gapComments++
		}
	}
	if gotReq != h1Req || gotResp != h1Resp {
		t.Errorf("tshark dissected %d HTTP/1 requests and %d responses; the run had %d and %d", gotReq, gotResp, h1Req, h1Resp)
	}
	if gotH2 != h2Headers {
		t.Errorf("tshark dissected %d HTTP/2 HEADERS frames; the run had %d HTTP/2 requests and responses", gotH2, h2Headers)
	}
	if gotWS != ws && !want.SkipWebSocketCount {
		t.Errorf("tshark dissected %d WebSocket messages; the run had %d", gotWS, ws)
	}
	if gaps != want.Gaps || gapComments != want.GapComments {
		t.Errorf("%d \"previous segment not captured\" and %d loss comments, want %d and %d", gaps, gapComments, want.Gaps, want.GapComments)
	}

	// capinfos must show wall-clock times: the file spans the events.
	out, err := exec.Command("capinfos", "-T", "-r", "-a", "-e", "-S", path).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, out)
	}
	cols := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(cols) < 3 {
		t.Fatalf("capinfos output %q", out)
	}
	start, err1 := strconv.ParseFloat(cols[1], 64)
	end, err2 := strconv.ParseFloat(cols[2], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("capinfos times %q", out)
	}
	ns := func(s float64) time.Time { return time.Unix(0, int64(s*1e9)) }
	// The handshake is stamped with the connection's first chunk, which
	// is before or at its first event; a millisecond covers float rounding.
	if ns(start).After(time.Unix(0, first).Add(time.Millisecond)) || ns(end).Before(time.Unix(0, last).Add(-time.Millisecond)) {
		t.Errorf("capinfos: packets from %v to %v, events from %v to %v", ns(start), ns(end), time.Unix(0, first), time.Unix(0, last))
	}
}
