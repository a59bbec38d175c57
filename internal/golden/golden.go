// Package golden compares test output with golden files and rewrites them
// when tests run with -update. It is for tests only.
//
// Every package's tests use this package's one -update flag, whatever they
// keep in testdata: rendered output, recordings made from live traffic,
// and fuzz seed corpora (FuzzSeed), so `go test ./... -update` refreshes
// all of them and a plain run fails, naming the file, when one is stale.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Update is the -update flag of every test binary that imports golden:
// rewrite golden files (and whatever else a package's tests record)
// instead of comparing with them.
var Update = flag.Bool("update", false, "rewrite golden files and recorded test data instead of comparing with them")

// Check compares got with the file at path, or writes it with -update.
// A mismatch names the file and shows the first line that differs.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update if intended):\n%s", path, FirstDiff(want, got))
	}
}

// FirstDiff describes the first line where want and got differ.
func FirstDiff(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := range max(len(wl), len(gl)) {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return fmt.Sprintf("line %d:\n want %q\n  got %q", i+1, w, g)
		}
	}
	return "(no line differs)"
}

// FuzzSeed encodes one input of a fuzz target as a seed corpus file
// (testdata/fuzz/FuzzXxx/NAME), in the "go test fuzz v1" format the fuzzing
// engine reads, so a seed can be kept in step with the code that makes it
// through Check. It supports the argument types tlstap's fuzz targets take:
// []byte, string, bool and the integer types; any other type panics, as
// a test's programming error.
func FuzzSeed(args ...any) []byte {
	b := []byte("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			b = fmt.Appendf(b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			b = fmt.Appendf(b, "string(%s)\n", strconv.Quote(v))
		case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
			b = fmt.Appendf(b, "%T(%v)\n", v, v)
		default:
			panic(fmt.Sprintf("golden.FuzzSeed: unsupported argument type %T", a))
		}
	}
	return b
}
