package engine_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/redact"
)

type chunkSource []capture.Chunk

func (s chunkSource) Run(ctx context.Context, out chan<- capture.Chunk) error {
	for _, c := range s {
		select {
		case out <- c:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// TestSecretsNeverLeave: a captured request carrying tlstap's token (as
// if self-exclusion had missed it) reaches no output with the token in
// it: not the events, not the recording, not the log.
func TestSecretsNeverLeave(t *testing.T) {
	const token = "tok3n-0f-tlstap_abcdefghijklmnop"
	req := "GET /ws?token=" + token + " HTTP/1.1\r\nHost: 127.0.0.1:28256\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	now := time.Now().UnixNano()
	meta := capture.Chunk{PID: 42, TID: 42, Comm: "python3", Conn: 7, FD: 3,
		Local: netip.MustParseAddrPort("127.0.0.1:50000"), Remote: netip.MustParseAddrPort("127.0.0.1:28256")}
	write, closed := meta, meta
	write.Time, write.Dir, write.Kind, write.Data = now, capture.Write, capture.Data, []byte(req)
	closed.Time, closed.Kind = now+1, capture.Close

	rec := filepath.Join(t.TempDir(), "out.rec")
	var stdout, stderr bytes.Buffer
	cfg := config.Default()
	cfg.Output.Format = "json"
	e := engine.New(engine.Options{Config: cfg, Exit: true, Record: rec, Stdout: &stdout, Stderr: &stderr})
	e.Secrets.Add(token)
	e.Log.Info("a log line that quotes a URL", "url", "wss://127.0.0.1:28256/ws?token="+token)
	if err := e.Run(context.Background(), chunkSource{write, closed}); err != nil {
		t.Fatal(err)
	}
	recorded, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(stdout.Bytes(), []byte(`"pid":42`)) {
		t.Fatalf("the request's event is missing from standard output:\n%s", stdout.String())
	}
	for name, out := range map[string][]byte{"standard output": stdout.Bytes(), "log": stderr.Bytes(), "recording": recorded} {
		if bytes.Contains(out, []byte(token)) {
			t.Errorf("%s holds the token", name)
		}
	}
	if n := e.Stats.Value(redact.RedactedTotal); n < 3 {
		t.Errorf("%s = %v, want at least 3 (two in the request, one in the log)", redact.RedactedTotal, n)
	}
}
