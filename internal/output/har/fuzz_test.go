package har

import (
	"bytes"
	"encoding/json"
	"testing"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Any sequence of events, whatever their payloads, gives valid JSON.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\nbody"), uint8(1), uint32(200), []byte("ws"))
	f.Add([]byte("POST / HTTP/2\r\nHost: x\r\n\r\n\xff"), []byte("HTTP/2 101\r\n\r\n"), uint8(2), uint32(101), []byte{0xff})
	f.Add([]byte("\r\n\r\n"), []byte(" : \r\n"), uint8(9), uint32(0), []byte(nil))
	f.Fuzz(func(t *testing.T, req, resp []byte, typ uint8, status uint32, ws []byte) {
		var b bytes.Buffer
		w := NewWriter(&b, Options{MaxPending: 2, MaxWebSockets: 1, MaxMessages: 2})
		reqType := uint32(typ%2) + 1
		evs := []*eventpb.Event{
			{Seq: 1, Type: reqType, Payload: req, ConnId: 1},
			{Seq: 2, Type: reqType + 2, Payload: resp, Status: status, RequestSeq: 1, ConnId: 1},
			{Seq: 3, Type: 5, Payload: ws, WsOpcode: uint32(typ), ConnId: 1},
			{Seq: 4, Type: uint32(typ), Payload: req, RequestSeq: uint64(typ), ConnId: 2},
			{Seq: 5, Type: 3, Payload: resp, RequestSeq: 4, Status: 101, ConnId: 2},
			{Seq: 6, Type: 5, Payload: ws, ConnId: 2},
		}
		for _, ev := range evs {
			if err := w.Add(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b.Bytes()) {
			t.Fatalf("not JSON: %q", b.Bytes())
		}
	})
}
