package server

import (
	"bytes"
	"net"
	"testing"
)

// countConn records each write it gets.
type countConn struct {
	net.Conn
	writes [][]byte
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// TestCorkConn: uncorked, every write goes through as it comes; corked,
// writes are held and go out in one write at uncork, in order, or in
// writes of at most corkMax when they hold more.
func TestCorkConn(t *testing.T) {
	big := bytes.Repeat([]byte("b"), corkMax/2+1)
	for _, tc := range []struct {
		name   string
		corked bool
		parts  [][]byte
		writes int // writes the underlying connection sees, uncork included
	}{
		{"uncorked", false, [][]byte{[]byte("a"), []byte("bc"), []byte("d")}, 3},
		{"corked", true, [][]byte{[]byte("a"), []byte("bc"), []byte("d")}, 1},
		{"corked, nothing", true, nil, 0},
		{"corked, over the bound", true, [][]byte{big, big, []byte("z")}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			under := &countConn{}
			c := &corkConn{Conn: under}
			if tc.corked {
				c.cork()
			}
			var want []byte
			for _, p := range tc.parts {
				if n, err := c.Write(p); n != len(p) || err != nil {
					t.Fatalf("Write: %d, %v", n, err)
				}
				want = append(want, p...)
			}
			if err := c.uncork(); err != nil {
				t.Fatal(err)
			}
			if len(under.writes) != tc.writes {
				t.Errorf("%d writes, want %d", len(under.writes), tc.writes)
			}
			if got := bytes.Join(under.writes, nil); !bytes.Equal(got, want) {
				t.Errorf("wrote %q, want %q", got, want)
			}
			for _, w := range under.writes {
				if len(w) > corkMax {
					t.Errorf("a write of %d bytes, over corkMax", len(w))
				}
			}
		})
	}
}
