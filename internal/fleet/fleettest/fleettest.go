// Package fleettest runs a real NATS JetStream server in-process for tests
// of fleet mode: loopback only, storing into a directory the test owns.
package fleettest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server runs a JetStream server on 127.0.0.1:port (0: any free port)
// storing into dir, until the test ends or it is shut down. Starting one
// again on the same port and dir restarts it with its streams.
func Server(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Port is the server's client port.
func Port(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }

// URL is the server's nats:// address, with query parameters if not empty.
func URL(s *server.Server, query string) string {
	u := fmt.Sprintf("nats://%s", s.Addr().(*net.TCPAddr).String())
	if query != "" {
		u += "?" + query
	}
	return u
}
