package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runServer starts a server; it stops at cleanup.
func runServer(t *testing.T, o server.Options) (*server.Server, *broker.Broker) {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	b := broker.New(broker.Options{}, nil)
	s, err := server.New(o, b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		b.Close()
	})
	return s, b
}

func urlOf(s *server.Server, scheme string) string { return scheme + "://" + s.Addr().String() + "/ws" }

func TestFiltersQuery(t *testing.T) {
	s, b := runServer(t, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The query the client builds is one the server accepts and applies.
	c, err := client.Dial(ctx, client.Options{
		URL:         urlOf(s, "wss") + "?token=" + s.Token(), // a pasted URL keeps its token
		Fingerprint: s.Fingerprint().String(),
		Filters: client.Filters{PIDs: []int64{7, 8}, Pnames: []string{"curl"}, Types: []string{"raw", "3"},
			Hosts: []string{"example.com"}, Ports: []uint16{443}, NoLogs: true},
		NoReconnect: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, err := c.Next(ctx); err != nil || m.GetHeartbeatPayload() == nil {
		t.Fatalf("first entry %v, %v", m, err)
	}
	match := &eventpb.Event{Seq: 2, Pid: 8, Pname: "curl", Type: 3, Host: "example.com", DstPort: 443}
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: 1, Pid: 9}}})
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "x"}})
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: match}})
	m, err := c.Next(ctx)
	if err != nil || m.GetEventPayload().GetSeq() != 2 {
		t.Fatalf("got %v, %v; want only event 2", m, err)
	}
}

func TestDialErrors(t *testing.T) {
	s, _ := runServer(t, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fp := s.Fingerprint().String()
	tests := []struct {
		name string
		opts client.Options
		want func(error) bool
	}{
		{"wrong token", client.Options{URL: urlOf(s, "wss"), Token: "wrong-wrong-wrong-wrong", Fingerprint: fp},
			func(err error) bool { var se *client.StatusError; return errors.As(err, &se) && se.Code == 401 }},
		{"bad filter", client.Options{URL: urlOf(s, "wss"), Token: s.Token(), Fingerprint: fp, Filters: client.Filters{Types: []string{"gopher"}}},
			func(err error) bool { var se *client.StatusError; return errors.As(err, &se) && se.Code == 400 }},
		{"plain ws to tls", client.Options{URL: urlOf(s, "ws"), Token: s.Token(), NoReconnect: true},
			func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Dial(ctx, tt.opts)
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !tt.want(err) {
				t.Fatalf("unexpected error %v", err)
			}
		})
	}
	for _, o := range []client.Options{{URL: "ftp://x/"}, {URL: "ws://\x00"}, {Fingerprint: "abc"}, {CACert: "/nonexistent"}} {
		if _, err := client.New(ctx, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

// TestBackgroundConnect: New keeps trying until the server appears;
// permanent errors end it.
func TestBackgroundConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Options{URL: "ws://" + addr + "/ws", ReconnectMin: time.Millisecond, ReconnectMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // some attempts fail first
	s, b := runServer(t, server.Options{Listen: addr, NoTLS: true, Auth: server.AuthNone})
	if m, err := c.Next(ctx); err != nil || m.GetHeartbeatPayload().GetCount() != 1 {
		t.Fatalf("first entry %v, %v", m, err)
	}
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: 1}}})
	if m, err := c.Next(ctx); err != nil || m.GetEventPayload().GetSeq() != 1 {
		t.Fatalf("got %v, %v", m, err)
	}
	_ = s

	// With a token the server requires and the client lacks: permanent.
	s2, _ := runServer(t, server.Options{})
	c2, err := client.New(ctx, client.Options{URL: urlOf(s2, "wss"), Fingerprint: s2.Fingerprint().String()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Next(ctx); err == nil {
		t.Fatal("Next succeeded without a token")
	}
	<-c2.Done()
	var se *client.StatusError
	if !errors.As(c2.Err(), &se) || se.Code != 401 {
		t.Fatalf("Err() = %v, want 401", c2.Err())
	}
}

// TestIdleReconnect: a server that goes silent is left for a new
// connection, which resumes.
func TestIdleReconnect(t *testing.T) {
	s, b := runServer(t, server.Options{NoTLS: true, Auth: server.AuthNone, Heartbeat: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: urlOf(s, "ws"), IdleTimeout: 100 * time.Millisecond, ReconnectMin: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for c.Reconnects() < 2 {
		if _, err := c.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: 1}}})
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.GetEventPayload().GetSeq() == 1 {
			break
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
}

// TestReplay: Replay asks for everything retained, Since for what follows.
func TestReplay(t *testing.T) {
	s, b := runServer(t, server.Options{NoTLS: true, Auth: server.AuthNone})
	for seq := uint64(1); seq <= 10; seq++ {
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: seq}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range []struct {
		opts  client.Options
		first uint64
	}{
		{client.Options{Replay: true}, 1},
		{client.Options{Since: 6}, 7},
	} {
		o := tt.opts
		o.URL, o.NoReconnect = urlOf(s, "ws"), true
		o.Filters.NoLogs = true
		c, err := client.Dial(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for want := tt.first; want <= 10; {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev := m.GetEventPayload(); ev != nil {
				if ev.GetSeq() != want {
					t.Fatalf("%+v: seq %d, want %d", tt.opts, ev.GetSeq(), want)
				}
				want++
			}
		}
		c.Close()
	}
}

// TestMutualTLS: with ClientCA the server wants a client certificate.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeClientCert(t, dir)
	s, _ := runServer(t, server.Options{ClientCA: certFile})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := client.Options{URL: urlOf(s, "wss"), Token: s.Token(), Fingerprint: s.Fingerprint().String(), NoReconnect: true}
	if c, err := client.Dial(ctx, o); err == nil {
		c.Close()
		t.Fatal("connected without a client certificate")
	}
	o.ClientCert, o.ClientKey = certFile, keyFile
	c, err := client.Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func writeClientCert(t *testing.T, dir string) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "watcher"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	cf, kf := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
	return cf, kf
}
