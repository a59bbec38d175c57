package openssl

import (
	"debug/elf"
	"testing"
)

func TestGnuTLSCookieFromCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		code []byte
		want uint64
	}{
		{
			// GnuTLS 3.7.9, Debian 12.
			name: "3.7.9",
			code: []byte{0x48, 0x8b, 0x87, 0xf8, 0x00, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x74, 0x04, 0x8b, 0x40, 0x08, 0xc3,
				0xb8, 0xff, 0x00, 0x00, 0x00, 0xc3},
			want: cookieGnuTLS | 8<<16 | 0xf8,
		},
		{
			name: "one-byte displacements",
			code: []byte{0x48, 0x8b, 0x47, 0x10, 0x48, 0x85, 0xc0, 0x74, 0x04, 0x8b, 0x40, 0x0c, 0xc3},
			want: cookieGnuTLS | 0x0c<<16 | 0x10,
		},
		{
			// An instrumented build starting with endbr64: not the
			// pattern, so no version rather than a guess.
			name: "other prologue",
			code: []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x8b, 0x87, 0xf8, 0x00, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x74, 0x04, 0x8b, 0x40, 0x08, 0xc3},
		},
		{
			name: "64-bit second load",
			code: []byte{0x48, 0x8b, 0x87, 0xf8, 0x00, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x74, 0x04, 0x48, 0x8b, 0x40, 0x08, 0xc3},
		},
		{
			name: "base not the session",
			code: []byte{0x48, 0x8b, 0x86, 0xf8, 0x00, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x74, 0x04, 0x8b, 0x40, 0x08, 0xc3},
		},
		{name: "truncated", code: []byte{0x48, 0x8b, 0x87, 0xf8, 0x00}},
		{name: "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := gnutlsCookieFromCode(tt.code); got != tt.want {
				t.Errorf("cookie %#x, want %#x", got, tt.want)
			}
		})
	}
}

// TestGnuTLSCookieSystem reads the offsets from the system's libgnutls
// (scripts/install-deps.sh installs it): the shape must be recognised.
func TestGnuTLSCookieSystem(t *testing.T) {
	path := "/usr/lib/x86_64-linux-gnu/libgnutls.so.30"
	lib, cookie, err := inspect(path)
	if err != nil {
		t.Fatalf("system GnuTLS (install gnutls-bin): %v", err)
	}
	if lib.Kind != KindGnuTLS || cookie&cookieGnuTLS == 0 || cookie&0xffff == 0 {
		t.Errorf("%s: kind %s, cookie %#x; want GnuTLS with a version cookie", path, lib.Kind, cookie)
	}
}

func FuzzGnuTLSCookie(f *testing.F) {
	f.Add([]byte{0x48, 0x8b, 0x87, 0xf8, 0x00, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x74, 0x04, 0x8b, 0x40, 0x08, 0xc3})
	f.Add([]byte{0x48, 0x8b, 0x47, 0x10})
	f.Fuzz(func(t *testing.T, code []byte) {
		c := gnutlsCookieFromCode(code)
		if c != 0 && (c&cookieGnuTLS == 0 || c&^(cookieGnuTLS|0xffffffff) != 0) {
			t.Fatalf("cookie %#x outside its layout", c)
		}
	})
}

// TestGnuTLSCookieNotX86: another architecture's file yields no cookie.
func TestGnuTLSCookieNotX86(t *testing.T) {
	if c := gnutlsCookie(&elf.File{FileHeader: elf.FileHeader{Machine: elf.EM_AARCH64}}, 0x1000); c != 0 {
		t.Errorf("cookie %#x for an arm64 file, want 0", c)
	}
}
