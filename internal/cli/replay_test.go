package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/recording"
)

func TestReplayCorruptRecording(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "http1.rec"))
	if err != nil {
		t.Fatal(err)
	}
	hdrEnd := len(recording.Magic) + 1 + int(good[len(recording.Magic)])
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"bad magic", append([]byte("NOTAREC!"), good[8:]...), "corrupt at byte offset 0: bad magic"},
		{"empty", nil, "corrupt at byte offset 0"},
		{"corrupt length", append(slices.Clone(good[:hdrEnd]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), fmt.Sprintf("corrupt at byte offset %d: truncated or invalid record length", hdrEnd)},
		{"garbage record", append(slices.Clone(good[:hdrEnd]), 4, 0xff, 0xff, 0xff, 0xff), fmt.Sprintf("corrupt at byte offset %d: record is not valid protobuf", hdrEnd)},
		{"bad version", append([]byte(recording.Magic), 2, 0x0a, 0x00), "corrupt at byte offset 8: unsupported format version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "x.rec", tt.data)
			code, _, stderr := runMain(t, append([]string{"replay", path, "--exit", "--speed", "0", "-o", "none"}, noListen...)...)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.want)
			}
			if strings.Contains(stderr, "panic") {
				t.Errorf("panic: %s", stderr)
			}
		})
	}
}

// TestReplayMatchesEngineGolden: 'tlstap replay' prints exactly what the
// engine's golden test recorded for the same recording.
func TestReplayMatchesEngineGolden(t *testing.T) {
	for _, c := range []struct{ format, ext string }{{"text", "txt"}, {"json", "jsonl"}} {
		for _, name := range []string{"http1", "http2", "raw"} {
			t.Run(name+"."+c.ext, func(t *testing.T) {
				dir := filepath.Join("..", "engine", "testdata")
				code, stdout, stderr := runMain(t, append([]string{"replay", filepath.Join(dir, name+".rec"), "--exit", "--speed", "0", "-o", c.format, "--node="}, noListen...)...)
				if code != 0 {
					t.Fatalf("exit code %d: %s", code, stderr)
				}
				want, err := os.ReadFile(filepath.Join(dir, name+"."+c.ext))
				if err != nil {
					t.Fatal(err)
				}
				if stdout != string(want) {
					t.Errorf("replay output differs from the engine golden %s.%s", name, c.ext)
				}
			})
		}
	}
}

// TestReplayTornTail: a recording cut mid-record (what kill -9 of the
// recorder leaves) replays every complete record and says its tail was
// cut.
func TestReplayTornTail(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "http1.rec"))
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "cut.rec", good[:len(good)-4])
	code, stdout, stderr := runMain(t, append([]string{"replay", path, "--exit", "--speed", "0", "-o", "text"}, noListen...)...)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "tail was cut") || strings.Contains(stderr, "not a tlstap recording") {
		t.Errorf("stderr %q, want a word about the cut tail", stderr)
	}
	if !strings.Contains(stdout, "GET /api/items") {
		t.Errorf("complete records were not replayed:\n%s", stdout)
	}
}
