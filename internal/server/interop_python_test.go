package server_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
)

// pyClient connects with Debian 12's websocket-client and its default
// options, which send "Origin: http://HOST:PORT" even for wss://. It
// prints the first message's length, or the handshake error.
const pyClient = `
import sys, websocket
url, ca, token = sys.argv[1:4]
ws = websocket.create_connection(url, header=["Authorization: Bearer " + token],
                                 sslopt={"ca_certs": ca}, timeout=10)
print(len(ws.recv()))
ws.close()
`

func TestPythonWebsocketClientDefaults(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import websocket").Run(); err != nil {
		t.Fatalf("%s has no websocket-client (apt-get install python3-websocket): %v", py, err)
	}
	dir := t.TempDir()
	ts := start(t, server.Options{StateDir: dir}, broker.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", pyClient, "wss://"+ts.Addr().String()+"/ws",
		filepath.Join(dir, tlsauth.CertFile), ts.token).CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	if n := strings.TrimSpace(string(out)); n == "" || n == "0" {
		t.Fatalf("python client received nothing: %q", out)
	}
}
