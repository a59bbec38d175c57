package sink_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/sink"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// A TCP or file sink writes what this loop reads: in a real receiver r is
// the accepted net.Conn of a listener given to --eventaddr tcp://…, or an
// os.File the file sink wrote.
func ExampleReader() {
	var stream bytes.Buffer
	for seq, path := range []string{"/", "/api/products"} {
		b, _ := proto.Marshal(&eventpb.LogEntry{
			LogType: eventpb.LogType_LOG_TYPE_EVENT,
			Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
				Seq: uint64(seq + 1), Type: 1, Method: "GET", Host: "shop.example.com", Path: path,
			}},
		})
		stream.Write(sink.AppendFrame(nil, b))
	}

	r := sink.NewReader(&stream)
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println("bad stream:", err)
			return
		}
		if ev := m.GetEventPayload(); ev != nil {
			fmt.Println(ev.GetSeq(), ev.GetMethod(), ev.GetHost()+ev.GetPath())
		}
	}
	// Output:
	// 1 GET shop.example.com/
	// 2 GET shop.example.com/api/products
}
