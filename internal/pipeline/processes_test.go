package pipeline

import (
	"reflect"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

type discard struct{}

func (discard) Publish(*eventpb.LogEntry) {}

func TestProcesses(t *testing.T) {
	p := New(Options{VirtualClock: true}, discard{})
	data := func(pid uint32, conn uint64, comm string) *capture.Chunk {
		return &capture.Chunk{Time: 1, PID: pid, Conn: conn, Comm: comm, FD: -1, Data: []byte("x")}
	}
	p.Handle(data(20, 1, "curl"))
	p.Handle(data(10, 1, "nginx"))
	p.Handle(data(10, 2, "nginx"))
	want := []Process{{PID: 10, Comm: "nginx", Connections: 2}, {PID: 20, Comm: "curl", Connections: 1}}
	if got := p.Processes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Processes() = %+v, want %+v", got, want)
	}
	p.Handle(&capture.Chunk{Time: 2, PID: 20, Conn: 1, Kind: capture.Close})
	p.Handle(&capture.Chunk{Time: 2, PID: 10, Conn: 1, Kind: capture.Close})
	want = []Process{{PID: 10, Comm: "nginx", Connections: 1}}
	if got := p.Processes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after closes Processes() = %+v, want %+v", got, want)
	}
	p.Close()
	if got := p.Processes(); len(got) != 0 {
		t.Fatalf("after Close Processes() = %+v, want none", got)
	}
}
