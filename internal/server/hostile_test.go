package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
)

// TestClientMessagesDiscarded: what a client writes is read and dropped;
// its stream carries on.
func TestClientMessagesDiscarded(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	c := ts.mustDial(t, "logs=0")
	readEntry(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 200 {
		typ := websocket.MessageText
		if i%2 == 1 {
			typ = websocket.MessageBinary
		}
		if err := c.Write(ctx, typ, []byte(strings.Repeat("hello server ", 300))); err != nil {
			t.Fatal(err)
		}
	}
	ts.b.Publish(event(1))
	if ev := nextNonHeartbeat(t, c).GetEventPayload(); ev.GetSeq() != 1 {
		t.Fatalf("got %v, want event 1", ev)
	}
}

// TestOversizedClientMessage: a message over ReadLimit closes the
// connection with 1009.
func TestOversizedClientMessage(t *testing.T) {
	ts := start(t, server.Options{ReadLimit: 1024}, broker.Options{})
	c := ts.mustDial(t, "")
	readEntry(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageBinary, make([]byte, 1<<20))
	for {
		_, err := tryRead(c, 10*time.Second)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
			t.Fatalf("read: %v (close status %d), want %d", err, got, websocket.StatusMessageTooBig)
		}
		break
	}
	waitFor(t, "client gone", func() bool { return ts.ClientCount() == 0 })
}

// TestGarbageFrames: broken WebSocket framing after a valid handshake ends
// the connection without harming the server.
func TestGarbageFrames(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	frame := func(b0, b1 byte, ext ...byte) []byte { return append([]byte{b0, b1}, ext...) }
	huge := make([]byte, 8)
	binary.BigEndian.PutUint64(huge, 1<<63-1)
	tests := []struct {
		name string
		data []byte
	}{
		{"unmasked", frame(0x82, 0x05, 'h', 'e', 'l', 'l', 'o')},
		{"reserved opcode", frame(0x83, 0x80, 0, 0, 0, 0)},
		{"rsv bits", frame(0xf2, 0x80, 0, 0, 0, 0)},
		{"fragmented ping", frame(0x09, 0x80, 0, 0, 0, 0)},
		{"oversized control", frame(0x89, 0xfe, append([]byte{0x01, 0x00}, 0, 0, 0, 0)...)},
		// The frame header is accepted; the read limit trips once more
		// than ReadLimit bytes of it arrived.
		{"huge length", append(frame(0x82, 0xff, append(huge, 1, 2, 3, 4)...), make([]byte, 8<<10)...)},
		{"continuation first", frame(0x80, 0x80, 0, 0, 0, 0)},
		{"bad close payload", frame(0x88, 0x81, 0, 0, 0, 0, 0x01)},
		{"random", []byte("\x00\xff\x13\x37 not websocket at all \r\n\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", ts.Addr().String(), tlsauth.PinnedConfig(ts.Fingerprint()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			req := "GET /ws HTTP/1.1\r\nHost: " + ts.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer " + ts.token + "\r\n\r\n"
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %s", resp.Status)
			}
			if _, err := conn.Write(tt.data); err != nil {
				t.Fatal(err)
			}
			// The server must hang up: read until EOF or reset.
			if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("waiting for the server to close: %v", err)
			}
			waitFor(t, "client gone", func() bool { return ts.ClientCount() == 0 })
		})
	}
	// Garbage instead of a handshake.
	conn, err := tls.Dial("tcp", ts.Addr().String(), tlsauth.PinnedConfig(ts.Fingerprint()))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "\x16\x03\x01 nonsense\r\n\r\n")
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage request: %v %v, want 400", resp, err)
	}
	conn.Close()
}

// TestShutdown: every client gets a going-away close frame, Run returns
// and nothing is left running.
func TestShutdown(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ts := start(t, server.Options{}, broker.Options{})
	var raws []*websocket.Conn
	for range 3 {
		c := ts.mustDial(t, "pid=1001")
		readEntry(t, c)
		raws = append(raws, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	gc, err := client.Dial(ctx, client.Options{URL: ts.wsURL(""), Token: ts.token, Fingerprint: ts.Fingerprint().String(), NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "clients", func() bool { return ts.ClientCount() == 4 })
	// A client that stopped reading must not hold up shutdown for long.
	stuck := ts.mustDial(t, "pid=4242")
	big := event(1)
	big.GetEventPayload().Pid = 4242
	big.GetEventPayload().Payload = make([]byte, 1<<20)
	for range 40 {
		ts.b.Publish(big)
	}

	if err := ts.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, c := range raws {
		for {
			_, err := tryRead(c, 10*time.Second)
			if err == nil {
				continue
			}
			if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
				t.Errorf("client %d: %v, want close status %d", i, err, websocket.StatusGoingAway)
			}
			break
		}
	}
	for {
		if _, err := gc.Next(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Errorf("Go client ended with %v, want going away", err)
			}
			break
		}
	}
	stuck.CloseNow()
	if err := goleak.Find(ignore); err != nil {
		t.Fatal(err)
	}
}
