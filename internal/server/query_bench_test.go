package server

import (
	"net/url"
	"testing"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// BenchmarkQueryMatch: the stream filter on the publishing goroutine, per
// event and client, with the older parameters (the same code before and
// after they became internal/filter terms).
func BenchmarkQueryMatch(b *testing.B) {
	v, _ := url.ParseQuery("pid=41,42&type=request&host=*.example.com&port=8443&pname=curl")
	q, err := ParseQuery(v)
	if err != nil {
		b.Fatal(err)
	}
	e := entry(&eventpb.Event{Seq: 1, Pid: 42, Pname: "curl", Type: 1, Host: "api.example.com:8443", SrcPort: 51000, DstPort: 8443})
	b.ReportAllocs()
	for b.Loop() {
		if !q.Match(e) {
			b.Fatal("no match")
		}
	}
}
