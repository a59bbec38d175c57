package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestActionableMessages: each input of the bad-input table in issue 10
// gets a message that says what to do, with the right exit code.
func TestActionableMessages(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	notDir := writeFile(t, "file", []byte("x"))
	sinkFile := filepath.Join(dir, "events.pb")
	if code, _, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "none", "--listen", "", "--eventaddr", sinkFile); code != 0 {
		t.Fatalf("making a sink file: %s", stderr)
	}
	badConfig := writeFile(t, "bad.json", []byte(`{"capture":{"pid":[1]},"pipeline":{"tsize":"big","idle_timeout":5}}`))
	existing := writeFile(t, "old.rec", []byte("x"))
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"forward url without scheme", []string{"demo", "--listen", "", "--forward-url", "127.0.0.1:8080"}, 2,
			[]string{`forward[0].url: "127.0.0.1:8080" has no scheme: did you mean http://127.0.0.1:8080 ?`}},
		{"forward url port out of range", []string{"demo", "--listen", "", "--forward-url", "http://127.0.0.1:99999"}, 2,
			[]string{"port 99999 is out of range (1-65535)"}},
		{"libssl not ELF", []string{"tls", "--listen", "", "--libssl", "/etc/passwd"}, 2,
			[]string{`capture.libs[0]: "/etc/passwd" is not an ELF file: want a libssl.so`}},
		// Accepted as printed by --help: the run gets as far as the
		// recording check, which refuses the existing file.
		{"ring size with unit", []string{"tls", "--listen", "", "--ring-size", "16MiB", "--record", existing}, 1,
			[]string{"already exists"}},
		{"ring size as help prints it", []string{"tls", "--listen", "", "--ring-size", "64 MiB", "--record", existing}, 1,
			[]string{"already exists"}},
		{"ring size not a size", []string{"tls", "--ring-size", "16 furlongs"}, 2,
			[]string{`invalid argument "16 furlongs" for "--ring-size" flag: not a size: want bytes, or a number with a unit`}},
		{"pid not a number", []string{"tls", "--pid", "abc"}, 2,
			[]string{`invalid argument "abc" for "--pid" flag: "abc" is not a process id: want a number`}},
		{"log level", []string{"demo", "--listen", "", "--log-level", "verbose"}, 2,
			[]string{`--log-level "verbose": want debug, info, warn or error`}},
		{"replay a directory", []string{"replay", dir, "--listen", ""}, 1,
			[]string{"is a directory: 'tlstap replay' plays one recording file"}},
		{"replay a sink file", []string{"replay", sinkFile, "--listen", ""}, 1,
			[]string{"is not a recording but a push-sink stream", "read_stream.py " + sinkFile}},
		{"main port in use", []string{"demo", "--listen", busy.Addr().String(), "--tls=false", "--state-dir", dir}, 1,
			[]string{"address already in use", "pass --listen HOST:PORT"}},
		{"ecaptureq port in use", []string{"demo", "--listen", "", "--ecaptureq", "ws://" + busy.Addr().String()}, 1,
			[]string{"address already in use", "--ecaptureq"}},
		{"state dir not writable", []string{"demo", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(notDir, "state")}, 1,
			[]string{"not a directory", "pass --state-dir DIR"}},
		{"config errors", []string{"demo", "--listen", "", "--config", badConfig}, 1,
			[]string{"capture.pid: unknown field", `pipeline.tsize: want a number, got JSON string "big"`, "pipeline.idle_timeout: duration must be a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "x" {
		t.Error("the existing recording was changed")
	}
}

// FuzzIsSinkStream: any file start is judged without a panic.
func FuzzIsSinkStream(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 8, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) { isSinkStream(data) })
}
