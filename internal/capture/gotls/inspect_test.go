package gotls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// build compiles testdata/<prog> with gocmd and flags into a temporary
// directory. Each program is its own module, so Debian's Go 1.19 builds it
// as well as the current toolchain.
func build(t *testing.T, prog, gocmd string, env []string, flags ...string) string {
	t.Helper()
	if _, err := exec.LookPath(gocmd); err != nil {
		t.Fatalf("%s not installed (scripts/install-deps.sh installs it): %v", gocmd, err)
	}
	src, err := filepath.Abs(filepath.Join("testdata", prog))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), prog)
	cmd := exec.Command(gocmd, append(append([]string{"build", "-o", out}, flags...), ".")...)
	cmd.Dir = src
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOROOT=") || strings.HasPrefix(kv, "GOFLAGS=")
	}), append([]string{"GOWORK=off", "GOTOOLCHAIN=local"}, env...)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s build %v: %v\n%s", gocmd, flags, err, msg)
	}
	return out
}

// TestStrippedMatchesSymbols builds each variant with and without its
// symbol table (-s -w only drops tables, the code does not move): what
// .gopclntab and the moduledata give for the stripped file must be exactly
// what the symbol table says for the other. Every RET offset must hold a
// RET opcode.
func TestStrippedMatchesSymbols(t *testing.T) {
	for _, v := range []struct {
		name  string
		gocmd string
		env   []string
		flags []string
	}{
		{"go1.26", "go", nil, nil},
		{"go1.26 pie", "go", nil, []string{"-buildmode=pie"}},
		{"go1.26 external", "go", []string{"CGO_ENABLED=1"}, []string{"-linkmode=external"}},
		{"go1.19 pie", "/usr/lib/go-1.19/bin/go", nil, []string{"-buildmode=pie"}},
	} {
		t.Run(v.name, func(t *testing.T) {
			var ldflags []string
			for _, f := range v.flags {
				if strings.HasPrefix(f, "-linkmode") {
					ldflags = append(ldflags, f)
				}
			}
			flags := slices.DeleteFunc(slices.Clone(v.flags), func(f string) bool { return strings.HasPrefix(f, "-linkmode") })
			full := build(t, "tlsprog", v.gocmd, v.env, append(flags, "-ldflags="+strings.Join(ldflags, " "))...)
			stripped := build(t, "tlsprog", v.gocmd, v.env, append(flags, "-ldflags="+strings.Join(append(ldflags, "-s", "-w"), " "))...)

			want, err := Inspect(full)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Inspect(stripped)
			if err != nil {
				t.Fatal(err)
			}
			if want.Stripped || !got.Stripped {
				t.Fatalf("Stripped: %v for the full build, %v for the stripped one", want.Stripped, got.Stripped)
			}
			if !got.GAtFSMinus8 {
				t.Errorf("GAtFSMinus8 not set for a plain Go build")
			}
			for _, fn := range []struct {
				name      string
				want, got Func
			}{{"Write", want.Write, got.Write}, {"Read", want.Read, got.Read},
				{"clientHandshake", want.ClientHandshake, got.ClientHandshake}, {"serverHandshake", want.ServerHandshake, got.ServerHandshake}} {
				if fn.got.Entry == 0 || fn.got.Entry != fn.want.Entry || fn.got.Body != fn.want.Body || !slices.Equal(fn.got.Rets, fn.want.Rets) {
					t.Errorf("%s: stripped %+v, symbols %+v", fn.name, fn.got, fn.want)
				}
			}
			raw, err := os.ReadFile(stripped)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got.Read.Rets {
				if raw[r] != 0xc3 {
					t.Errorf("Read RET at %#x is %#x", r, raw[r])
				}
			}
		})
	}
}

func TestNotCapturable(t *testing.T) {
	notls := build(t, "notls", "go", nil)
	for _, tc := range []struct {
		path string
		want error
	}{
		{"/bin/sh", ErrNotGo},
		{notls, ErrNoTLS},
	} {
		if _, err := Inspect(tc.path); !errors.Is(err, tc.want) {
			t.Errorf("Inspect(%s) = %v, want %v", tc.path, err, tc.want)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"go1.17", true}, {"go1.19.8", true}, {"go1.26.8", true}, {"go1.26rc1", true},
		{"go1.16.15", false}, {"go1.27", false}, {"go1.99", false}, {"devel go1.27-abc", false},
		{"go2.0", false}, {"go1.", false}, {"", false},
	} {
		err := checkVersion(tc.v)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrUnsupported) {
			t.Errorf("checkVersion(%q) = %v", tc.v, err)
		}
	}
}

func TestRetOffsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want []uint64
		err  bool
	}{
		// MOVQ $0xc3c3, AX hides C3 bytes inside an instruction.
		{"ret inside immediate", []byte{0x48, 0xc7, 0xc0, 0xc3, 0xc3, 0, 0, 0xc3}, []uint64{7}, false},
		{"two rets", []byte{0xc3, 0x90, 0xc3}, []uint64{0, 2}, false},
		{"none", []byte{0x90, 0x90}, nil, false},
		{"invalid in 64-bit mode", []byte{0x90, 0x06}, nil, true},
	} {
		got, err := retOffsets(tc.code)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("%s: retOffsets = %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// FuzzRead feeds Read arbitrary files: it must return an error or a
// result, never panic or hang.
func FuzzRead(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	var b bytes.Buffer
	if h, err := os.ReadFile("/bin/true"); err == nil && len(h) > 4096 {
		b.Write(h[:4096])
	}
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		bin, err := Read(bytes.NewReader(data))
		if err == nil && (bin.Write.Entry == 0 || len(bin.Read.Rets) == 0) {
			t.Fatalf("accepted without functions: %+v", bin)
		}
	})
}

// FuzzPclnTable feeds the .gopclntab and moduledata readers arbitrary
// tables and data: an error or a result, never a panic.
func FuzzPclnTable(f *testing.F) {
	f.Add([]byte{0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8}, []byte{}, []byte{})
	f.Add([]byte{0xfa, 0xff, 0xff, 0xff, 0, 0, 1, 8, 1, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 0x20, 0, 0, 0, 0, 0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, pcln, data, relas []byte) {
		funcsIn(pcln, 0x1000)
		m := &image{secs: []imageSec{{addr: 0x3000, data: data}}, relas: map[uint64]uint64{}}
		for ; len(relas) >= 16; relas = relas[16:] {
			m.relas[binary.LittleEndian.Uint64(relas)] = binary.LittleEndian.Uint64(relas[8:])
		}
		if text, err := m.textStart(0x2000, span{0x1000, 0x2000}); err == nil && (text < 0x1000 || text >= 0x2000) {
			t.Fatalf("text start %#x outside .text", text)
		}
	})
}
