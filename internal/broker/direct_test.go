package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
)

// TestDirect: a subscription with Direct gets every entry exactly once and
// in each publisher's order, whether a publisher delivered it (subscriber
// idle, queue empty) or Serve did (another delivery under way); a Direct
// that fails leaves the entry to Serve. Two publishers and a Direct that is
// slow at times make both paths happen; the test checks that both did.
func TestDirect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		failAt uint64 // Direct fails from this seq on (0: never)
	}{
		{"mixed", 0},
		{"direct fails", 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 400
			var (
				mu             sync.Mutex
				got            []uint64
				direct, served int
				failing        bool
			)
			record := func(e *broker.Entry, byDirect bool) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, e.Seq)
				if byDirect {
					direct++
				} else {
					served++
				}
			}
			b := broker.New(broker.Options{}, nil)
			sub := b.Subscribe(broker.SubOptions{
				Name:   "direct",
				Policy: broker.Block,
				Queue:  8,
				Direct: func(e *broker.Entry) bool {
					mu.Lock()
					failing = failing || (tc.failAt != 0 && e.Seq >= tc.failAt)
					f := failing
					mu.Unlock()
					if f {
						return false
					}
					record(e, true)
					if e.Seq%7 == 0 {
						time.Sleep(time.Millisecond) // the other publisher queues meanwhile
					}
					return true
				},
			})
			var wg sync.WaitGroup
			var serveErr error
			wg.Go(func() {
				serveErr = sub.Serve(context.Background(), func(e *broker.Entry) error {
					record(e, false)
					if e.Seq%7 == 0 {
						time.Sleep(time.Millisecond) // busy: later entries queue
					}
					return nil
				})
			})
			// Publisher p publishes seqs p*n+1 .. p*n+n.
			var pubs sync.WaitGroup
			for p := range uint64(2) {
				pubs.Go(func() {
					for i := p*n + 1; i <= p*n+n; i++ {
						b.Publish(event(i, "x"))
						if i%13 == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				})
			}
			pubs.Wait()
			b.Close()
			wg.Wait()
			if !errors.Is(serveErr, broker.ErrClosed) {
				t.Errorf("Serve returned %v, want ErrClosed", serveErr)
			}
			if len(got) != 2*n {
				t.Fatalf("got %d entries, want %d", len(got), 2*n)
			}
			var last [2]uint64
			for i, seq := range got {
				p := (seq - 1) / n
				if seq != last[p]+1 && !(last[p] == 0 && seq == p*n+1) {
					t.Fatalf("entry %d is seq %d after %d: out of order", i, seq, last[p])
				}
				last[p] = seq
			}
			if served == 0 {
				t.Error("no entry went through Serve")
			}
			if tc.failAt == 0 && direct == 0 {
				t.Error("no entry was delivered directly")
			}
			if tc.failAt != 0 && direct >= int(tc.failAt) {
				t.Errorf("%d entries delivered directly, want fewer than %d (Direct fails from then on)", direct, tc.failAt)
			}
		})
	}
}
