package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff hands out the waits between the retries of one operation. Its
// zero delay state is the first retry's; Reset returns to it after a
// success. A Backoff is not safe for concurrent use: each loop owns one.
type Backoff struct {
	// Min is the first retry's nominal delay and Max the cap it doubles
	// up to. Min <= 0 means Max; Max < Min means Min.
	Min, Max time.Duration

	next time.Duration // nominal delay of the next wait; 0: Min
}

// Next returns how long to wait before the next retry, and doubles the
// nominal delay for the one after.
func (b *Backoff) Next() time.Duration {
	hi := max(b.Max, b.Min)
	d := b.next
	if d <= 0 {
		d = b.Min
	}
	if d <= 0 || d > hi {
		d = hi
	}
	if d > hi/2 {
		b.next = hi
	} else {
		b.next = 2 * d
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d-d/2+1)
}

// Reset makes the next wait the first retry's again.
func (b *Backoff) Reset() { b.next = 0 }

// Sleep waits d, or less if ctx ends first; it reports whether the whole
// wait passed, so a retry loop can write `if !backoff.Sleep(ctx, bo.Next())
// { return }`. A d of zero or less returns at once (true unless ctx ended).
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
