package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
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
// retained 100,000, so the heap and the collector work the same in both.
// heap-peak-MB is the largest live heap (as marked by the garbage
// collector, so garbage awaiting collection does not count) seen while
// the answer streams, less the live heap before (the retained events):
// flat means it does not grow with the number of exchanges exported.
func BenchmarkHARExport(b *testing.B) {
	const retained = 100_000
	// Frequent collections keep the live-heap figure close to the truth
	// while the answer streams.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	ts := start(b, server.Options{}, broker.Options{RetainEvents: 2 * retained, RetainBytes: 1 << 30})
	publishExchanges(ts.b, retained)
	hc := ts.httpClient()
	defer hc.CloseIdleConnections()
	for _, n := range []int{10_000, retained} {
		b.Run(fmt.Sprintf("exchanges=%d", n), func(b *testing.B) {
			query := fmt.Sprintf("since=%d", 2*(retained-n))
			var peak uint64
			for b.Loop() {
				runtime.GC()
				before := liveHeap()
				var max atomic.Uint64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					t := time.NewTicker(time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							if h := liveHeap(); h > max.Load() {
								max.Store(h)
							}
						}
					}
				})
				req, _ := http.NewRequest("GET", "https://"+ts.Addr().String()+"/api/v1/har?"+query, nil)
				req.Header.Set("Authorization", "Bearer "+ts.token)
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				written, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				close(stop)
				wg.Wait()
				if err != nil || written == 0 {
					b.Fatalf("read %d bytes: %v", written, err)
				}
				if m := max.Load(); m > before && m-before > peak {
					peak = m - before
				}
				b.SetBytes(written)
			}
			b.ReportMetric(float64(peak)/(1<<20), "heap-peak-MB")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
		})
	}
}

// liveHeap returns the heap marked live by the last garbage collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
