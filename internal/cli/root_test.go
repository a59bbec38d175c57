package cli

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

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

// stamp matches the two time fields of a JSON event line.
var stamp = regexp.MustCompile(`"timestamp":(\d+),"time":"[^"]*"`)
