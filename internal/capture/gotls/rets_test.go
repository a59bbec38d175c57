package gotls

import (
	"os"
	"testing"
)

// TestBodyOffset checks the prologue reader on hand-assembled code.
func TestBodyOffset(t *testing.T) {
	// more: MOVQ AX, 8(SP); CALL rel32; MOVQ 8(SP), AX; JMP back to 0.
	more := func(end int) []byte {
		b := []byte{0x48, 0x89, 0x44, 0x24, 0x08, 0xe8, 0, 0, 0, 0, 0x48, 0x8b, 0x44, 0x24, 0x08, 0xe9}
		rel := int32(-(end + len(b) + 4))
		return append(b, byte(rel), byte(rel>>8), byte(rel>>16), byte(rel>>24))
	}
	small := []byte{
		0x49, 0x3b, 0x66, 0x10, // CMPQ SP, 16(R14)
		0x76, 0x02, // JBE +2
		0x55, // PUSHQ BP
		0xc3, // RET
	}
	large := []byte{
		0x4c, 0x8d, 0x64, 0x24, 0xb8, // LEAQ -0x48(SP), R12
		0x4d, 0x3b, 0x66, 0x10, // CMPQ R12, 16(R14)
		0x0f, 0x86, 0x02, 0, 0, 0, // JBE +2
		0x55, // PUSHQ BP
		0xc3, // RET
	}
	huge := []byte{
		0x49, 0x89, 0xe4, // MOVQ SP, R12
		0x49, 0x81, 0xec, 0, 0, 1, 0, // SUBQ $0x10000, R12
		0x72, 0x0b, // JB +11 (to more)
		0x4d, 0x3b, 0x66, 0x10, // CMPQ R12, 16(R14)
		0x76, 0x05, // JBE +5
		0x55,             // PUSHQ BP
		0x90, 0x90, 0x90, // NOPs
		0xc3, // RET
	}
	// A loop back to the body: a probe there would fire on every turn.
	loop := []byte{
		0x49, 0x3b, 0x66, 0x10, // CMPQ SP, 16(R14)
		0x76, 0x03, // JBE +3
		0x55,       // PUSHQ BP
		0xeb, 0xfd, // JMP -3 (to PUSHQ)
	}
	// The branch goes to a block that returns instead of jumping back.
	noBack := []byte{0x49, 0x3b, 0x66, 0x10, 0x76, 0x01, 0x55, 0xc3}
	// Something else writes an argument register before the check.
	clobber := []byte{0x48, 0x89, 0xe0, 0x49, 0x3b, 0x66, 0x10, 0x76, 0x02, 0x55, 0xc3}

	for _, tc := range []struct {
		name string
		code []byte
		body uint64
		ok   bool
	}{
		{"small frame", append(small, more(len(small))...), 6, true},
		{"large frame", append(large, more(len(large))...), 15, true},
		{"huge frame", append(huge, more(len(huge))...), 18, true},
		{"no stack check", []byte{0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3}, 0, false},
		{"loop to body", append(loop, more(len(loop))...), 0, false},
		{"branch not to morestack", noBack, 0, false},
		{"argument register written", append(clobber, more(len(clobber))...), 0, false},
		{"truncated", small[:5], 0, false},
		{"empty", nil, 0, false},
	} {
		body, ok := bodyOffset(tc.code)
		if body != tc.body || ok != tc.ok {
			t.Errorf("%s: bodyOffset = %d, %v; want %d, %v", tc.name, body, ok, tc.body, tc.ok)
		}
	}
}

// TestBodyInBuilds checks that every probed function of real builds, by
// each toolchain tested, has its stack check recognised, and that the body
// offset is the instruction right after a JBE.
func TestBodyInBuilds(t *testing.T) {
	for _, v := range []struct{ name, gocmd string }{
		{"go1.26", "go"},
		{"go1.19", "/usr/lib/go-1.19/bin/go"},
	} {
		t.Run(v.name, func(t *testing.T) {
			bin := build(t, "tlsprog", v.gocmd, nil)
			b, err := Inspect(bin)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			for name, fn := range map[string]Func{"Write": b.Write, "Read": b.Read,
				"clientHandshake": b.ClientHandshake, "serverHandshake": b.ServerHandshake} {
				if fn.Body <= fn.Entry {
					t.Errorf("%s: body %#x not after entry %#x: stack check not recognised", name, fn.Body, fn.Entry)
					continue
				}
				// JBE rel8 (76 xx) or rel32 (0f 86 xx xx xx xx) ends there.
				if raw[fn.Body-2] != 0x76 && (raw[fn.Body-6] != 0x0f || raw[fn.Body-5] != 0x86) {
					t.Errorf("%s: no JBE right before the body at %#x: % x", name, fn.Body, raw[fn.Entry:fn.Body])
				}
			}
		})
	}
}
