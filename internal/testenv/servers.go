package testenv

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Server is a TLS server listening on Addr.
type Server struct {
	*Proc
	Addr netip.AddrPort
	// Dir holds the server's configuration, certificate and files.
	Dir  string
	Cert Cert
}

// URL is the https URL of path on the server.
func (s *Server) URL(path string) string { return URL(s.Addr, path) }

func newServer(t testing.TB, ip netip.Addr) *Server {
	t.Helper()
	dir := t.TempDir()
	return &Server{Addr: FreePort(t, ip), Dir: dir, Cert: NewCert(t, dir)}
}

func writeFiles(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *Server) waitListening(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := WaitListening(ctx, s.Addr); err != nil {
		t.Fatalf("testenv: server on %s did not come up: %v\n%s", s.Addr, err, s.Output())
	}
}

// NginxConfig describes an nginx server.
type NginxConfig struct {
	// IP to listen on, a loopback address; zero means 127.0.0.1.
	IP netip.Addr
	// HTTP2 enables HTTP/2 (negotiated with ALPN) besides HTTP/1.1.
	HTTP2 bool
	// Files are served from the document root, by slash-separated path.
	Files map[string][]byte
	// AccessLog, if set, is where nginx logs every request (default: off).
	AccessLog string
}

// StartNginx runs Debian's nginx in the foreground as one process (no
// master, so Server.PID is the process serving TLS), with its own prefix,
// pid, log and temp files.
func StartNginx(t testing.TB, cfg NginxConfig) *Server {
	t.Helper()
	bin := lookPath(t, "nginx")
	s := newServer(t, cfg.IP)
	root := filepath.Join(s.Dir, "www")
	writeFiles(t, root, cfg.Files)
	if err := os.MkdirAll(filepath.Join(s.Dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	accessLog := "off"
	if cfg.AccessLog != "" {
		accessLog = cfg.AccessLog
	}
	listen := s.Addr.String() + " ssl"
	if cfg.HTTP2 {
		listen += " http2"
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[6]s;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	# Plaintext must go through SSL_write, not sendfile.
	sendfile off;
	server {
		listen %[2]s;
		ssl_certificate %[3]s;
		ssl_certificate_key %[4]s;
		ssl_protocols TLSv1.2 TLSv1.3;
		root %[5]s;
		default_type application/octet-stream;
	}
}
`, s.Dir, listen, s.Cert.CertFile, s.Cert.KeyFile, root, accessLog)
	confPath := filepath.Join(s.Dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Proc = Start(t, bin, "-p", s.Dir, "-c", confPath, "-e", filepath.Join(s.Dir, "error.log"))
	s.waitListening(t)
	return s
}

// StartPythonHTTPS runs Python's http.server wrapped in ssl, serving files.
func StartPythonHTTPS(t testing.TB, ip netip.Addr, files map[string][]byte) *Server {
	t.Helper()
	s := newServer(t, ip)
	root := filepath.Join(s.Dir, "www")
	writeFiles(t, root, files)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	const script = `
import http.server, socket, ssl, sys
host, port, root, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=root, **kw)
httpd = Server((host, port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
`
	s.Proc = Start(t, Python(t), "-c", script, s.Addr.Addr().String(), fmt.Sprint(s.Addr.Port()), root, s.Cert.CertFile, s.Cert.KeyFile)
	s.waitListening(t)
	return s
}

// StartOpenSSLServer runs `openssl s_server` in its interactive mode (no
// -www): what a client sends appears in Output, what is written to Stdin
// goes to the client. It serves one connection at a time.
func StartOpenSSLServer(t testing.TB, ip netip.Addr) *Server {
	t.Helper()
	s := newServer(t, ip)
	s.Proc = Start(t, lookPath(t, "openssl"), "s_server",
		"-accept", s.Addr.String(), "-cert", s.Cert.CertFile, "-key", s.Cert.KeyFile)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	// Waiting for the banner rather than dialing: a probe connection would
	// be the one s_server serves.
	if err := s.WaitOutput(ctx, "ACCEPT"); err != nil {
		t.Fatalf("testenv: openssl s_server: %v", err)
	}
	return s
}

// StartOpenSSLClient connects `openssl s_client -quiet` to addr: Stdin goes
// to the server, the server's data appears in Output.
func StartOpenSSLClient(t testing.TB, addr netip.AddrPort) *Proc {
	t.Helper()
	return Start(t, lookPath(t, "openssl"), "s_client", "-quiet", "-connect", addr.String())
}

var python struct {
	once sync.Once
	path string
	err  error
}

// Python is the real python3 interpreter, resolved once past any shim
// (pyenv) so the process tests see is python itself.
func Python(t testing.TB) string {
	t.Helper()
	python.once.Do(func() {
		var out []byte
		out, python.err = exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		python.path = strings.TrimSpace(string(out))
	})
	if python.err != nil || python.path == "" {
		t.Fatalf("testenv: python3 not usable: %v", python.err)
	}
	return python.path
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testenv: %s is needed (apt-get install %s): %v", name, name, err)
	}
	return p
}
