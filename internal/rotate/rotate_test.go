package rotate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMoveAway(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 30, 20, 1, 2, 0, time.FixedZone("CET", 3600))
	n := &Namer{now: func() time.Time { return at }}
	live := filepath.Join(dir, "out.jsonl")
	// Something else already holds the first name: it is skipped, not
	// replaced.
	squatter := filepath.Join(dir, "out-20261130T190102Z-0001.jsonl")
	os.WriteFile(squatter, []byte("not ours"), 0o600)

	var got []string
	for i := range 3 {
		os.WriteFile(live, []byte{byte('a' + i)}, 0o600)
		name, err := n.MoveAway(live)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, filepath.Base(name))
		if b, _ := os.ReadFile(name); string(b) != string(rune('a'+i)) {
			t.Errorf("%s holds %q, want the file moved away", name, b)
		}
	}
	want := "out-20261130T190102Z-0002.jsonl out-20261130T190102Z-0003.jsonl out-20261130T190102Z-0004.jsonl"
	if strings.Join(got, " ") != want {
		t.Errorf("names %v, want %s", got, want)
	}
	if b, _ := os.ReadFile(squatter); string(b) != "not ours" {
		t.Errorf("the file at a taken name was replaced: %q", b)
	}
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("the live file is still there: %v", err)
	}
}

func TestMoveAwayErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, path, want string
	}{
		{"no file", filepath.Join(dir, "missing.pcapng"), "no such file"},
		{"no directory", filepath.Join(dir, "nodir", "x.pcapng"), "no such file"},
	} {
		var n Namer
		if _, err := n.MoveAway(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: MoveAway(%s) = %v, want an error with %q", tt.name, tt.path, err, tt.want)
		}
	}
}
