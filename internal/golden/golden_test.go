package golden

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestFirstDiff(t *testing.T) {
	for _, tt := range []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", "(no line differs)"},
		{"a\nb\n", "a\nc\n", "line 2:\n want \"b\"\n  got \"c\""},
		{"a\n", "a\nextra", "line 2:\n want \"\"\n  got \"extra\""},
	} {
		if d := FirstDiff([]byte(tt.want), []byte(tt.got)); d != tt.diff {
			t.Errorf("FirstDiff(%q, %q) = %q, want %q", tt.want, tt.got, d, tt.diff)
		}
	}
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	*Update = true
	Check(t, path, []byte("one\n"))
	*Update = false
	if b, err := os.ReadFile(path); err != nil || string(b) != "one\n" {
		t.Fatalf("-update wrote %q, %v", b, err)
	}
	Check(t, path, []byte("one\n"))
	ft := &fakeT{TB: t}
	Check(ft, path, []byte("two\n"))
	if !strings.Contains(ft.msg, "line 1") {
		t.Errorf("mismatch reported as %q", ft.msg)
	}
}

type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.msg = format
	if len(args) > 1 {
		f.msg = args[1].(string)
	}
}

func TestFuzzSeed(t *testing.T) {
	for _, tt := range []struct {
		args []any
		want string
	}{
		{[]any{[]byte("a\x00\"")}, "go test fuzz v1\n[]byte(\"a\\x00\\\"\")\n"},
		{[]any{"GET", uint64(7), true, int(-3), uint8(9)}, "go test fuzz v1\nstring(\"GET\")\nuint64(7)\nbool(true)\nint(-3)\nuint8(9)\n"},
		{nil, "go test fuzz v1\n"},
	} {
		if got := string(FuzzSeed(tt.args...)); got != tt.want {
			t.Errorf("FuzzSeed(%v) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestOneUpdateFlag: no other package defines its own -update flag (every
// test binary that imports golden would then fail with "flag redefined",
// and one that does not would ignore `go test ./... -update`).
func TestOneUpdateFlag(t *testing.T) {
	def := regexp.MustCompile(`flag\.[A-Za-z]+\(\s*"update"`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || filepath.Base(path) == "golden.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if def.Match(b) {
			t.Errorf("%s defines its own -update flag; use golden.Update", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
