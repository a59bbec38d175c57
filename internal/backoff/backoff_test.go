package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	const ms = time.Millisecond
	for _, tt := range []struct {
		name     string
		min, max time.Duration
		nominal  []time.Duration // nominal delay of each successive wait
	}{
		{"doubles to the cap", 100 * ms, 1000 * ms, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms}},
		{"cap below min", 300 * ms, 10 * ms, []time.Duration{300 * ms, 300 * ms}},
		{"no min", 0, 50 * ms, []time.Duration{50 * ms, 50 * ms}},
		{"odd", 3, 7, []time.Duration{3, 6, 7, 7}},
		{"huge cap", time.Second, 1<<63 - 1, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"zero", 0, 0, []time.Duration{0, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := Backoff{Min: tt.min, Max: tt.max}
			for i, d := range tt.nominal {
				got := b.Next()
				if got < d/2 || got > d {
					t.Fatalf("wait %d = %v, want within [%v, %v]", i, got, d/2, d)
				}
			}
			b.Reset()
			if got := b.Next(); got < tt.nominal[0]/2 || got > tt.nominal[0] {
				t.Errorf("after Reset: %v, want within [%v, %v]", got, tt.nominal[0]/2, tt.nominal[0])
			}
		})
	}
}

// TestJitter checks that waits are spread over [d/2, d], not fixed: peers
// that fail together must not retry together.
func TestJitter(t *testing.T) {
	const d = time.Second
	seen := map[bool]int{} // lower or upper half of the range
	for range 1000 {
		b := Backoff{Min: d, Max: d}
		w := b.Next()
		if w < d/2 || w > d {
			t.Fatalf("wait %v outside [%v, %v]", w, d/2, d)
		}
		seen[w > 3*d/4]++
	}
	if seen[false] < 100 || seen[true] < 100 {
		t.Errorf("waits not spread over the range: %v", seen)
	}
}

func TestSleep(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"whole wait", context.Background(), time.Millisecond, true},
		{"no wait", context.Background(), 0, true},
		{"negative", context.Background(), -time.Second, true},
		{"ended before", done, time.Hour, false},
		{"ended, no wait", done, 0, false},
	} {
		if got := Sleep(tt.ctx, tt.d); got != tt.want {
			t.Errorf("%s: Sleep(%v) = %v, want %v", tt.name, tt.d, got, tt.want)
		}
	}
}
