package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/recording"
)

// runMain runs Main as the binary would, with stdout and stderr captured.
// Main writes to the process's files, so tests that use it do not run in
// parallel.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	defer func() {
		os.Stdout, os.Stderr = oldOut, oldErr
		outF.Close()
		errF.Close()
	}()
	code = Main(args)
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return code, string(o), string(e)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// noListen keeps every test off the network: no server, no state dir.
var noListen = []string{"--listen", ""}

func TestUsageErrors(t *testing.T) {
	rec := filepath.Join("..", "engine", "testdata", "raw.rec")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"demo", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"demo", "--speed", "-1"}, 2, "--speed must be >= 0, got -1"},
		{[]string{"replay", rec, "--speed", "-1"}, 2, "--speed must be >= 0"},
		{[]string{"demo", "--tsize", "-1"}, 2, "--tsize must be >= 0, got -1"},
		{[]string{"demo", "-o", "bogus"}, 2, `unknown output format "bogus"`},
		{[]string{"demo", "--output=xml"}, 2, `unknown output format "xml"`},
		{[]string{"demo", "--loop", "--exit"}, 2, "--loop and --exit contradict each other"},
		{[]string{"demo", "--idle-timeout", "0s"}, 2, "--idle-timeout must be > 0"},
		{[]string{"demo", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"demo", "--speed", "fast"}, 2, `invalid argument "fast"`},
		{[]string{"demo", "extra"}, 2, `unknown command "extra"`},
		{[]string{"replay"}, 2, "accepts 1 arg(s), received 0"},
		{[]string{"replay", "a.rec", "b.rec"}, 2, "accepts 1 arg(s), received 2"},
		{[]string{"version", "extra"}, 2, `unknown command "extra"`},
		{[]string{"tls", "--ring-size", "1000"}, 2, "--ring-size must be a power of two"},
		{[]string{"replay", filepath.Join(t.TempDir(), "missing.rec")}, 1, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := tt.args
			if args[0] == "demo" || args[0] == "replay" {
				args = append(slices.Clone(args), noListen...)
			}
			code, stdout, stderr := runMain(t, args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.want) || !strings.HasPrefix(stderr, "tlstap: ") {
				t.Errorf("stderr %q, want a 'tlstap: ' message containing %q", stderr, tt.want)
			}
			if tt.code == 2 && !strings.Contains(stderr, "--help' for usage") {
				t.Errorf("usage error without a pointer to --help: %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

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

func TestVersion(t *testing.T) {
	code, stdout, _ := runMain(t, "version")
	want := regexp.MustCompile(`^tlstap \S+ ` + regexp.QuoteMeta(runtime.Version()) + ` ` + runtime.GOOS + `/` + runtime.GOARCH + "\n$")
	if code != 0 || !want.MatchString(stdout) {
		t.Errorf("version: code %d, output %q", code, stdout)
	}
}

// TestHelpMentionsEveryFlag: each command's --help lists each of its flags.
func TestHelpMentionsEveryFlag(t *testing.T) {
	root := newRoot()
	cmds := append(root.Commands(), root)
	for _, cmd := range cmds {
		if cmd.Hidden || cmd.Name() == "help" || cmd.Name() == "completion" {
			continue
		}
		t.Run(cmd.Name(), func(t *testing.T) {
			args := []string{"--help"}
			if cmd != root {
				args = []string{cmd.Name(), "--help"}
			}
			code, stdout, stderr := runMain(t, args...)
			if code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr)
			}
			n := 0
			cmd.Flags().VisitAll(func(f *pflag.Flag) {
				n++
				if f.Hidden {
					return
				}
				if !strings.Contains(stdout, "--"+f.Name+" ") && !strings.Contains(stdout, "--"+f.Name+"\n") {
					t.Errorf("%s --help does not mention --%s", cmd.Name(), f.Name)
				}
				if f.Shorthand != "" && !strings.Contains(stdout, "-"+f.Shorthand+", --"+f.Name) {
					t.Errorf("%s --help does not mention -%s", cmd.Name(), f.Shorthand)
				}
			})
			if n == 0 && cmd.HasParent() && cmd.Name() != "version" {
				t.Errorf("%s has no flags", cmd.Name())
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

// TestDemoGolden plays the embedded demo through the whole command line.
// The demo shifts timestamps to now, so they are replaced by their offset
// from the earliest event before comparing.
func TestDemoGolden(t *testing.T) {
	code, stdout, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "json", "--listen", "", "--node=")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	got := normaliseDemo(t, stdout)
	golden.Check(t, filepath.Join("testdata", "demo.jsonl"), []byte(got))
}

// stamp matches the two time fields of a JSON event line.
var stamp = regexp.MustCompile(`"timestamp":(\d+),"time":"[^"]*"`)

// normaliseDemo replaces each event's time by its offset from the earliest
// event, leaving every other byte of the output as it was.
func normaliseDemo(t *testing.T, out string) string {
	t.Helper()
	first := int64(-1)
	for _, m := range stamp.FindAllStringSubmatch(out, -1) {
		ts, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if first < 0 || ts < first {
			first = ts
		}
	}
	if n, lines := len(stamp.FindAllString(out, -1)), strings.Count(out, "\n"); n != lines || n == 0 {
		t.Fatalf("%d time fields in %d lines", n, lines)
	}
	return stamp.ReplaceAllStringFunc(out, func(s string) string {
		ts, _ := strconv.ParseInt(stamp.FindStringSubmatch(s)[1], 10, 64)
		return fmt.Sprintf(`"timestamp":%d,"time":"+%s"`, ts-first, time.Duration(ts-first))
	})
}

// TestStreamPartsFlag: with an idle timeout short enough for the demo's
// event stream not to complete at once, it is streamed in parts, unless
// --stream-parts=false.
func TestStreamPartsFlag(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		parts bool
	}{{"--stream-parts=true", true}, {"--stream-parts=false", false}} {
		args := append([]string{"demo", "--exit", "--speed", "0", "-o", "json", "--idle-timeout", "1us", tc.flag}, noListen...)
		code, stdout, stderr := runMain(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if got := strings.Contains(stdout, `"part":"head"`) && strings.Contains(stdout, `"sse_data":`); got != tc.parts {
			t.Errorf("%s: streamed parts in the output: %v, want %v", tc.flag, got, tc.parts)
		}
	}
}
