package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/tlstap/tlstap/internal/broker"
)

func BenchmarkFilterMatch(b *testing.B) {
	f, err := ParseFilter("content-type=application/json|text/*,host=*.example.test,path=/api/*,method!=DELETE")
	if err != nil {
		b.Fatal(err)
	}
	ev := httpRequest(1, "POST", "api.example.test:8443", "/api/v1/items?id=7", "application/json; charset=utf-8", nil, "{}")
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(ev) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkParseReplay(b *testing.B) {
	ev := httpRequest(1, "POST", "api.example.test", "/api/login", "application/json",
		map[string]string{"Accept": "*/*", "Cookie": "session=abc", "User-Agent": "curl/8.5.0"}, `{"user":"alice","pass":"x"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseReplay(ev, "https"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWebhookJSON(b *testing.B) {
	ev := fullEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WebhookJSON(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebhook is publish → forwarder (4 workers) → loopback HTTP
// server, per event, at the rate the forwarder sustains.
func BenchmarkWebhook(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	bk := broker.New(broker.Options{RetainEvents: 1}, nil)
	f, err := New(Options{URLs: []string{srv.URL}}, bk, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	m := entry(httpRequest(1, "GET", "a.example.test", "/api/x", "", nil, ""))
	b.ReportAllocs()
	n := int64(0)
	for b.Loop() {
		for f.dests[0].sub.Len() > 100 {
			runtime.Gosched()
		}
		bk.Publish(m)
		n++
	}
	for got.Load() < n-int64(f.Dropped()) {
		runtime.Gosched()
	}
	cancel()
	<-done
	b.ReportMetric(float64(f.Dropped()), "dropped")
}
