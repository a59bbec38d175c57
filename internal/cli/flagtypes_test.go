package cli

import "testing"

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"65536", 65536}, {"64KiB", 64 << 10}, {"16MiB", 16 << 20}, {"64 MiB", 64 << 20}, {"1G", 1 << 30},
		{"1g", 1 << 30}, {"2GB", 2 << 30}, {"4k", 4096}, {"512B", 512}, {" 8 M ", 8 << 20},
		{"", -1}, {"MiB", -1}, {"1.5G", -1}, {"-1", -1}, {"16 furlongs", -1}, {"99999999999999G", -1},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("%q accepted as %d", tt.in, b)
			}
			continue
		}
		if err != nil || int(b) != tt.want {
			t.Errorf("%q = %d, %v; want %d", tt.in, b, err, tt.want)
		}
	}
	// What --help prints parses back.
	for _, n := range []byteSize{4096, 64 << 20, 1 << 30, 12345} {
		var b byteSize
		if err := b.Set(n.String()); err != nil || b != n {
			t.Errorf("%d prints as %q, which parses as %d, %v", n, n.String(), b, err)
		}
	}
}
