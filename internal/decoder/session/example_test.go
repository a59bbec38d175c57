package session_test

import (
	"fmt"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/session"
)

func Example() {
	show := func(dir capture.Direction, m *decoder.Message) {
		switch m.Type {
		case decoder.WebSocket:
			fmt.Printf("%-5s %s opcode=%d %q\n", dir, m.Type, m.WSOpcode, m.Payload)
		default:
			fmt.Printf("%-5s %s %s %s %d\n", dir, m.Type, m.Method, m.Path, m.Status)
		}
	}
	s := session.New(session.Options{})
	// The traced process is a WebSocket client: it writes the upgrade
	// request and masked frames, and reads the 101 and plain frames.
	s.Feed(capture.Write, 1, []byte("GET /chat HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"), show)
	s.Feed(capture.Read, 2, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), show)
	s.Feed(capture.Write, 3, []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}, show)
	s.Feed(capture.Read, 4, []byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, show)
	s.Flush(5, decoder.Close, show)
	fmt.Println(s.Protocol(capture.Write), s.Protocol(capture.Read))
	// Output:
	// write http1-request GET /chat 0
	// read  http1-response   101
	// write websocket opcode=1 "hi"
	// read  websocket opcode=1 "hello"
	// websocket websocket
}
