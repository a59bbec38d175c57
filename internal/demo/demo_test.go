package demo_test

import (
	"io"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/demo"
	"github.com/tlstap/tlstap/internal/recording"
)

// TestRecording checks the embedded recording is what the demo promises:
// readable to the end, in time order, IPv4 and IPv6 connections, both
// directions, and every connection closed.
func TestRecording(t *testing.T) {
	for pass := range 2 { // Open hands out a fresh reader each time
		rc, err := demo.Open()
		if err != nil {
			t.Fatal(err)
		}
		r, err := recording.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		type key struct {
			pid  uint32
			conn uint64
		}
		open := map[key]bool{}
		closed := map[key]bool{}
		var v4, v6 bool
		var dirs [2]int
		last := int64(0)
		n := 0
		for {
			c, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("pass %d chunk %d: %v", pass, n, err)
			}
			n++
			if c.Time < last {
				t.Errorf("chunk %d at %d is before the previous one at %d", n, c.Time, last)
			}
			last = c.Time
			k := key{c.PID, c.Conn}
			switch c.Kind {
			case capture.Data:
				open[k] = true
				dirs[c.Dir]++
				if c.Remote.Addr().Is4() {
					v4 = true
				} else if c.Remote.Addr().Is6() {
					v6 = true
				}
			case capture.Close:
				closed[k] = true
			}
		}
		rc.Close()
		if n < 20 || !v4 || !v6 || dirs[0] == 0 || dirs[1] == 0 {
			t.Errorf("pass %d: %d chunks, ipv4 %v, ipv6 %v, reads %d, writes %d", pass, n, v4, v6, dirs[0], dirs[1])
		}
		for k := range open {
			if !closed[k] {
				t.Errorf("connection %v is never closed", k)
			}
		}
	}
}
