package e2e

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/stats"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// watcher keeps every event's metadata (payloads of parts larger than 256
// bytes are dropped so a 100 MB download costs no memory here) and lets a
// server handler wait until an event it caused was emitted.
type watcher struct {
	mu   sync.Mutex
	evs  []*eventpb.Event
	cond *sync.Cond
	done chan struct{}
}

func watch(e *engine.Engine) *watcher {
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "test", Policy: broker.Block, Queue: 1 << 16,
		Filter: func(en *broker.Entry) bool { return en.Seq != 0 }})
	w := &watcher{done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go func() {
		defer close(w.done)
		for {
			en, err := sub.Next(context.Background())
			if err != nil {
				return
			}
			ev := proto.Clone(en.Event()).(*eventpb.Event)
			if len(ev.Payload) > 256 {
				ev.Payload = nil
			}
			w.mu.Lock()
			w.evs = append(w.evs, ev)
			w.cond.Broadcast()
			w.mu.Unlock()
		}
	}()
	return w
}

// waitFor blocks until an event matches, or fails after timeout. It is
// called from server handlers: behaviour, not timing, is checked, since
// the stream stays open until the event shows up.
func (w *watcher) waitFor(timeout time.Duration, match func(*eventpb.Event) bool) bool {
	deadline := time.Now().Add(timeout)
	stop := time.AfterFunc(timeout, func() { w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() })
	defer stop.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for _, ev := range w.evs {
			if match(ev) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		w.cond.Wait()
	}
}

func (w *watcher) all() []*eventpb.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*eventpb.Event(nil), w.evs...)
}

func grpcMessage(payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// TestStreamParts captures curl (OpenSSL) talking to a Go TLS server that
// streams: Server-Sent Events over HTTP/1.1 chunked and HTTP/2, a gRPC
// server stream, NDJSON, a 100 MB download and a chunked upload. Each
// handler holds its stream open until the part it just sent was emitted,
// so a part emitted only at the message's end fails the test.
func TestStreamParts(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	src, err := openssl.New(openssl.Options{Filter: openssl.Filter{Comms: []string{"curl"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rec := filepath.Join(t.TempDir(), "streams.rec")
	e := newEngine(t, rec, false)
	w := watch(e)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx, src) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
		<-w.done
	}
	defer stop()

	const wait = 10 * time.Second
	fail := func(format string, args ...any) { t.Errorf(format, args...) }
	mux := http.NewServeMux()
	mux.HandleFunc("/sse/{tag}", func(rw http.ResponseWriter, r *http.Request) {
		tag := r.PathValue("tag")
		rw.Header().Set("Content-Type", "text/event-stream")
		for i := range 4 {
			data := fmt.Sprintf("%s-%d", tag, i)
			fmt.Fprintf(rw, "event: tick\nid: %d\ndata: %s\n\n", i, data)
			rw.(http.Flusher).Flush()
			if !w.waitFor(wait, func(ev *eventpb.Event) bool {
				return ev.GetPart() == eventpb.PartKind_PART_KIND_PART && ev.GetSseData() == data && ev.GetSseEvent() == "tick"
			}) {
				fail("%s: SSE event %q not emitted while the stream was open", tag, data)
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
	mux.HandleFunc("/grpc", func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.Header().Set("Content-Type", "application/grpc")
		rw.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		for i := range 3 {
			// Field 1, varint i+100: a message protowire can dump.
			rw.Write(grpcMessage([]byte{0x08, byte(100 + i)}))
			rw.(http.Flusher).Flush()
			if !w.waitFor(wait, func(ev *eventpb.Event) bool {
				return ev.GetPart() == eventpb.PartKind_PART_KIND_PART && ev.GetGrpcLength() == 2 && len(ev.GetPayload()) == 7 && ev.GetPayload()[6] == byte(100+i)
			}) {
				fail("gRPC message %d not emitted while the stream was open", i)
				return
			}
		}
		rw.Header().Set("Grpc-Status", "5")
		rw.Header().Set("Grpc-Message", "not found")
	})
	mux.HandleFunc("/ndjson", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/x-ndjson")
		for i := range 3 {
			line := fmt.Sprintf("{\"n\":%d}\n", i)
			io.WriteString(rw, line)
			rw.(http.Flusher).Flush()
			if !w.waitFor(wait, func(ev *eventpb.Event) bool {
				return ev.GetPart() == eventpb.PartKind_PART_KIND_PART && string(ev.GetPayload()) == line
			}) {
				fail("NDJSON line %d not emitted while the stream was open", i)
				return
			}
		}
	})
	const big = 100 << 20
	mux.HandleFunc("/big", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/octet-stream")
		rw.Header().Set("Content-Length", fmt.Sprint(big))
		buf := make([]byte, 1<<20)
		for i := range 100 {
			rw.Write(buf)
			// Paced (at most 50 MiB/s) so that a pipeline slowed down by
			// the race detector keeps up with the ring.
			time.Sleep(20 * time.Millisecond)
			if i == 0 {
				rw.(http.Flusher).Flush()
				if !w.waitFor(wait, func(ev *eventpb.Event) bool {
					return ev.GetPart() == eventpb.PartKind_PART_KIND_HEAD && ev.GetPath() == "/big" && ev.GetStatus() == 200
				}) {
					fail("download: head not emitted after the first MiB")
					return
				}
			}
		}
	})
	upHead := make(chan struct{})
	mux.HandleFunc("/upload", func(rw http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(rw, "%d\n", n)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	defer srv.Close()
	srv.TLS.MinVersion = tls.VersionTLS12

	curl := func(args ...string) *exec.Cmd {
		cmd := exec.Command("curl", append([]string{"-sS", "-k", "-N", "-o", "/dev/null"}, args...)...)
		return cmd
	}
	run := func(name string, cmd *exec.Cmd) int {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: curl: %v\n%s", name, err, out)
			return 0
		}
		return cmd.Process.Pid
	}
	grpcReq := filepath.Join(t.TempDir(), "req.bin")
	if err := os.WriteFile(grpcReq, grpcMessage([]byte{0x08, 0x01}), 0o600); err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, args := range map[string][]string{
		"sse-h1": {"--http1.1", srv.URL + "/sse/h1"},
		"sse-h2": {"--http2", srv.URL + "/sse/h2"},
		"grpc":   {"--http2", "-X", "POST", "-H", "Content-Type: application/grpc", "-H", "TE: trailers", "--data-binary", "@" + grpcReq, srv.URL + "/grpc"},
		"ndjson": {"--http1.1", srv.URL + "/ndjson"},
	} {
		wg.Go(func() {
			pid := run(name, curl(args...))
			mu.Lock()
			pids[name] = pid
			mu.Unlock()
		})
	}
	// The upload: curl reads the body from a pipe we fill in two steps,
	// the second only once the request head was emitted.
	up := curl("--http1.1", "-T", "-", srv.URL+"/upload")
	stdin, err := up.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, strings.Repeat("a", 1000))
	go func() {
		defer close(upHead)
		if !w.waitFor(wait, func(ev *eventpb.Event) bool {
			return ev.GetPart() == eventpb.PartKind_PART_KIND_HEAD && ev.GetPath() == "/upload" && ev.GetDataType() == 1
		}) {
			fail("upload: request head not emitted before the body completed")
		}
		io.WriteString(stdin, strings.Repeat("b", 1000))
		stdin.Close()
	}()
	<-upHead
	if err := up.Wait(); err != nil {
		t.Fatalf("upload curl: %v", err)
	}
	wg.Wait()
	pids["upload"] = up.Process.Pid
	// The download runs alone: if the ring overflows, it loses only its
	// own bytes.
	pids["big"] = run("big", curl("--http1.1", srv.URL+"/big"))

	// Every stream ended: wait for the end events, then check them.
	for name, pid := range pids {
		if name == "upload" {
			// Its response is short and whole.
			continue
		}
		// The pipeline may still be working through the download (the
		// race detector slows it down to about 10 MB/s).
		if !w.waitFor(3*time.Minute, func(ev *eventpb.Event) bool {
			return ev.GetPid() == int64(pid) && ev.GetPart() == eventpb.PartKind_PART_KIND_END && (ev.GetType() == 3 || ev.GetType() == 4)
		}) {
			t.Errorf("%s: no end event for the response", name)
		}
	}
	lost := e.Stats.Value(stats.DropsTotal, "reason", "capture_lost_bytes")
	byPid := func(pid int) []*eventpb.Event {
		var out []*eventpb.Event
		for _, ev := range w.all() {
			if ev.GetPid() == int64(pid) {
				out = append(out, ev)
			}
		}
		return out
	}
	for name, pid := range pids {
		var head *eventpb.Event
		var parts int
		var body uint64
		for _, ev := range byPid(pid) {
			if ev.GetType() != 3 && ev.GetType() != 4 {
				continue
			}
			switch ev.GetPart() {
			case eventpb.PartKind_PART_KIND_HEAD:
				head = ev
			case eventpb.PartKind_PART_KIND_PART:
				if head == nil || ev.GetMessageSeq() != head.GetSeq() || ev.GetRequestSeq() != head.GetRequestSeq() || ev.GetRequestSeq() == 0 {
					t.Errorf("%s: part %d not linked to its head and request: message_seq %d request_seq %d", name, ev.GetPartIndex(), ev.GetMessageSeq(), ev.GetRequestSeq())
				}
				if (ev.GetBodyOffset() != body && lost == 0) || ev.GetLength() > 64<<10 {
					t.Errorf("%s: part %d at offset %d (want %d), %d bytes", name, ev.GetPartIndex(), ev.GetBodyOffset(), body, ev.GetLength())
				}
				parts++
				body += uint64(ev.GetLength())
			case eventpb.PartKind_PART_KIND_END:
				if head == nil || ev.GetMessageSeq() != head.GetSeq() || (ev.GetIncomplete() && lost == 0) {
					t.Errorf("%s: end not linked to its head, or incomplete with no capture loss: %v", name, ev)
				}
				if name == "grpc" && (ev.GrpcStatus == nil || ev.GetGrpcStatus() != 5 || ev.GetGrpcMessage() != "not found") {
					t.Errorf("grpc: end carries grpc-status %v %q, want 5 \"not found\"", ev.GrpcStatus, ev.GetGrpcMessage())
				}
			}
		}
		t.Logf("%s: %d parts, %d body bytes", name, parts, body)
		switch name {
		case "big":
			// Bytes the capture lost (counted) are skipped in the body.
			if body+uint64(lost) < big || body > big {
				t.Errorf("download: parts carry %d bytes, capture lost %v, want %d", body, lost, big)
			}
		case "upload":
			// The response is short and whole.
		default:
			if head == nil || parts == 0 {
				t.Errorf("%s: head %v, %d parts", name, head != nil, parts)
			}
		}
	}
	var upParts int
	for _, ev := range byPid(pids["upload"]) {
		if ev.GetType() == 1 && ev.GetPart() == eventpb.PartKind_PART_KIND_PART {
			upParts++
		}
	}
	if upParts == 0 {
		t.Errorf("upload: no request body parts")
	}

	// The recording replays to the same parts, connection by connection.
	stop()
	e2 := newEngine(t, "", true)
	w2 := watch(e2)
	rsrc, err := replay.New(replay.Options{Name: rec, Speed: 0, Open: func() (io.ReadCloser, error) { return os.Open(rec) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Run(context.Background(), rsrc); err != nil {
		t.Fatal(err)
	}
	<-w2.done
	live, again := partsByConn(w.all()), partsByConn(w2.all())
	for conn, want := range live {
		if got := again[conn]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("connection %d direction %d replays differently:\nlive\n%s\nreplay\n%s", conn>>1, conn&1, strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	}
	if len(again) != len(live) {
		t.Errorf("replay has %d connections, live %d", len(again), len(live))
	}
}

// partsByConn describes each connection's events without their sequence
// numbers, which depend on how connections interleave. Bodies without
// protocol boundaries are cut at idle flushes, which replay takes from the
// recording's clock (as for raw data): their parts are compared by the
// bytes they carry, not where they were cut.
func partsByConn(evs []*eventpb.Event) map[uint64][]string {
	out := map[uint64][]string{}
	window := map[uint64]uint64{}
	for _, ev := range evs {
		if ev.GetPart() == eventpb.PartKind_PART_KIND_WHOLE && ev.GetType() != 1 && ev.GetType() != 3 {
			continue
		}
		// By direction: when a head is emitted depends on idle time,
		// which live capture measures as the pipeline sees the data and
		// replay from the capture's timestamps, so the two directions
		// may interleave differently.
		c := ev.GetConnId()<<1 | uint64(ev.GetDataType())
		if ev.GetPart() == eventpb.PartKind_PART_KIND_PART && (ev.GetContentType() == "" || ev.GetContentType() == "application/octet-stream") {
			window[c] += uint64(ev.GetLength())
			continue
		}
		if ev.GetPart() == eventpb.PartKind_PART_KIND_END && window[c] > 0 {
			out[c] = append(out[c], fmt.Sprintf("parts carried %d bytes", window[c]))
			window[c] = 0
		}
		out[c] = append(out[c], fmt.Sprintf("%d %s #%d+%d len=%d sse=%q grpc=%d",
			ev.GetType(), ev.GetPart(), ev.GetPartIndex(), ev.GetBodyOffset(), ev.GetLength(), ev.GetSseData(), ev.GetGrpcLength()))
	}
	return out
}
