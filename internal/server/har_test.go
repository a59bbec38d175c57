package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// publishExchanges publishes n HTTP/1 request/response pairs; even ones
// go to a.example.com, odd ones to b.example.com.
func publishExchanges(b *broker.Broker, n int) {
	for i := range n {
		host := []string{"a.example.com", "b.example.com"}[i%2]
		path := fmt.Sprintf("/item/%d", i)
		req := &eventpb.Event{Seq: uint64(2*i + 1), Type: 1, Timestamp: 1_800_000_000_000_000_000 + int64(i)*1e6, ConnId: uint64(i%50 + 1),
			Pid: 100, Pname: "curl", Host: host, Method: "GET", Path: path, SrcIp: "127.0.0.1", SrcPort: 40000, DstIp: "127.0.0.1", DstPort: 443,
			Payload: []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: */*\r\n\r\n")}
		body := fmt.Sprintf(`{"item":%d}`, i)
		resp := &eventpb.Event{Seq: uint64(2*i + 2), Type: 3, Timestamp: req.Timestamp + 5e5, ConnId: req.ConnId, RequestSeq: req.Seq,
			LatencyNs: 5e5, Status: 200 + uint32(i%3), Pid: 100, Pname: "curl", Host: host, Method: "GET", Path: path,
			SrcIp: "127.0.0.1", SrcPort: 443, DstIp: "127.0.0.1", DstPort: 40000,
			Payload: fmt.Appendf(nil, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", 200+i%3, len(body), body)}
		for _, ev := range []*eventpb.Event{req, resp} {
			b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}})
		}
	}
}

type harAnswer struct {
	Log struct {
		Entries []struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
			Response struct {
				Status  int `json:"status"`
				Content struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"response"`
		} `json:"entries"`
	} `json:"log"`
}

func (ts *testServer) getHAR(t testing.TB, query, token string) (*http.Response, []byte) {
	t.Helper()
	hc := ts.httpClient()
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "https://"+ts.Addr().String()+"/api/v1/har?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHARExport(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	publishExchanges(ts.b, 40)
	tests := []struct {
		query   string
		entries int
		host    string
		minItem int
	}{
		{"", 40, "", 0},
		{"host=a.example.com", 20, "a.example.com", 0},
		{"host=b.example.com&since=40", 10, "b.example.com", 20},
		{"pid=999", 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := ts.getHAR(t, tt.query, ts.token)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var h harAnswer
			if err := json.Unmarshal(body, &h); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(h.Log.Entries) != tt.entries {
				t.Fatalf("%d entries, want %d", len(h.Log.Entries), tt.entries)
			}
			for _, e := range h.Log.Entries {
				var item int
				if _, err := fmt.Sscanf(e.Request.URL[strings.LastIndex(e.Request.URL, "/")+1:], "%d", &item); err != nil {
					t.Fatalf("url %q", e.Request.URL)
				}
				if tt.host != "" && !strings.HasPrefix(e.Request.URL, "https://"+tt.host+"/") {
					t.Errorf("entry %q does not match host=%s", e.Request.URL, tt.host)
				}
				if item < tt.minItem {
					t.Errorf("entry %q is not after since", e.Request.URL)
				}
				if e.Response.Status != 200+item%3 || e.Response.Content.Text != fmt.Sprintf(`{"item":%d}`, item) {
					t.Errorf("entry %q: status %d body %q", e.Request.URL, e.Response.Status, e.Response.Content.Text)
				}
			}
		})
	}

	// Same auth and parameter checks as the stream.
	if resp, _ := ts.getHAR(t, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
	if resp, body := ts.getHAR(t, "bogus=1", ts.token); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "bogus") {
		t.Errorf("unknown parameter: %d %s", resp.StatusCode, body)
	}
}

// BenchmarkHARExport exports retained exchanges through GET
// /api/v1/har: the newest 10,000 (since=) or all 100,000 of the same
// retained 100,000, so the retained heap is the same in both.
//
// The live heap is measured at checkpoints, not sampled from whatever
// collection happens to finish: after every harCheckpoint bytes of the
// answer the client stops reading, waits for the handler to block on the
// full connection, forces two full collections and reads /gc/heap/live.
// The runtime's figure only changes when a cycle ends, and a cycle's
// concurrent mark counts everything allocated meanwhile as live; the
// second collection runs while nothing allocates, so it counts only what
// is reachable. A sampler's peak instead depends on how many cycles an
// export spans and what was allocated during them. heap-peak-MB is the largest checkpoint less
// the live heap before the request; heap-growth-MB is the last checkpoint
// less the first (0 when it shrank): memory that grows with the export shows in both, and in
// the 100,000 run ten times as much as in the 10,000 one.
func BenchmarkHARExport(b *testing.B) {
	const retained = 100_000
	ts := start(b, server.Options{}, broker.Options{RetainEvents: 2 * retained, RetainBytes: 1 << 30})
	publishExchanges(ts.b, retained)
	hc := ts.httpClient()
	defer hc.CloseIdleConnections()
	for _, n := range []int{10_000, retained} {
		b.Run(fmt.Sprintf("exchanges=%d", n), func(b *testing.B) {
			query := fmt.Sprintf("since=%d", 2*(retained-n))
			var peak, growth int64
			var checkpoints int
			var answer int64
			for b.Loop() {
				runtime.GC()
				runtime.GC()
				before := int64(liveHeap())
				req, _ := http.NewRequest("GET", "https://"+ts.Addr().String()+"/api/v1/har?"+query, nil)
				req.Header.Set("Authorization", "Bearer "+ts.token)
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var samples []int64
				var written int64
				for {
					m, err := io.CopyN(io.Discard, resp.Body, harCheckpoint)
					written += m
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatalf("read after %d bytes: %v", written, err)
					}
					time.Sleep(harSettle)
					runtime.GC()
					runtime.GC()
					samples = append(samples, int64(liveHeap()))
				}
				resp.Body.Close()
				if written == 0 || len(samples) < 2 {
					b.Fatalf("read %d bytes, %d checkpoints", written, len(samples))
				}
				peak = max(peak, slices.Max(samples)-before)
				growth = max(growth, samples[len(samples)-1]-samples[0])
				checkpoints = len(samples)
				answer = written
			}
			b.ReportMetric(float64(peak)/(1<<20), "heap-peak-MB")
			b.ReportMetric(float64(growth)/(1<<20), "heap-growth-MB")
			b.ReportMetric(float64(checkpoints), "checkpoints")
			b.ReportMetric(float64(answer)/1e6, "answer-MB")
			// No throughput: the checkpoints' pauses and collections take
			// most of the time.
		})
	}
}

// harCheckpoint is how much of the answer BenchmarkHARExport reads between
// live-heap measurements, and harSettle how long it then leaves the
// handler to fill the connection's buffers and block.
const (
	harCheckpoint = 2 << 20
	harSettle     = 100 * time.Millisecond
)

// liveHeap returns the heap marked live by the last garbage collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
