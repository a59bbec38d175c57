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
		name    string
		failAt  uint64 // Direct fails from this seq on (0: never)
		batched bool   // publish in batches of 5 (PublishBatched, Flush)
	}{
		{"mixed", 0, false},
		{"direct fails", 50, false},
		{"batched", 0, true},
		{"batched direct fails", 50, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 400
			var (
				mu             sync.Mutex
				got            []uint64
				direct, served int
				failing        bool
				held           int // entries Direct left buffered
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
				Direct: func(e *broker.Entry, more bool) bool {
					mu.Lock()
					failing = failing || (tc.failAt != 0 && e.Seq >= tc.failAt)
					f := failing
					if !f && more {
						held++
					} else if !f {
						held = 0
					}
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
				Flush: func() {
					mu.Lock()
					held = 0
					mu.Unlock()
				},
			})
			var wg sync.WaitGroup
			var serveErr error
			wg.Go(func() {
				serveErr = sub.Serve(context.Background(), func(e *broker.Entry) error {
					mu.Lock()
					held = 0 // output.Writer flushes once its queue is dry; this flushes always
					mu.Unlock()
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
						if !tc.batched {
							b.Publish(event(i, "x"))
						} else if b.PublishBatched(event(i, "x")); i%5 == 0 {
							b.Flush()
						}
						if i%13 == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				})
			}
			pubs.Wait()
			mu.Lock()
			if held != 0 {
				t.Errorf("%d entries left buffered after every batch was flushed", held)
			}
			mu.Unlock()
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

// TestDirectBatched: entries published with PublishBatched stay in the
// Direct subscriber's buffer until Flush, which writes each batch once;
// Publish, and a batch of one entry, still reach the output by the time
// the call that ends them returns, with no later traffic to push them out.
func TestDirectBatched(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches []int // entries per batch; 0: one unbatched Publish
		flushes int   // flushes expected from Flush
	}{
		{"one entry", []int{1}, 1},
		{"one batch", []int{50}, 1},
		{"batches", []int{3, 1, 7, 1}, 4},
		{"unbatched between", []int{2, 0, 0, 4}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buffered, out []uint64
			flushes := 0
			b := broker.New(broker.Options{}, nil)
			defer b.Close()
			// No Serve: the queue stays empty, so every entry goes Direct.
			b.Subscribe(broker.SubOptions{
				Name:   "batched",
				Policy: broker.Block,
				Direct: func(e *broker.Entry, more bool) bool {
					buffered = append(buffered, e.Seq)
					if !more {
						out, buffered = append(out, buffered...), nil
					}
					return true
				},
				Flush: func() {
					flushes++
					out, buffered = append(out, buffered...), nil
				},
			})
			seq := uint64(0)
			for _, n := range tc.batches {
				if n == 0 {
					seq++
					b.Publish(event(seq, "x"))
					if len(out) != int(seq) {
						t.Fatalf("after Publish of %d: %d entries out, want all", seq, len(out))
					}
					continue
				}
				before := len(out)
				for range n {
					seq++
					b.PublishBatched(event(seq, "x"))
				}
				if len(out) != before {
					t.Fatalf("batch of %d: %d entries out before Flush, want them held", n, len(out)-before)
				}
				b.Flush()
				if len(out) != int(seq) || len(buffered) != 0 {
					t.Fatalf("after Flush: %d entries out, %d buffered; want %d out", len(out), len(buffered), seq)
				}
			}
			for i, s := range out {
				if s != uint64(i+1) {
					t.Fatalf("entry %d is seq %d: out of order", i, s)
				}
			}
			if flushes != tc.flushes {
				t.Errorf("%d flushes, want %d (one per batch)", flushes, tc.flushes)
			}
			b.Flush() // nothing held: no flush
			if flushes != tc.flushes {
				t.Errorf("Flush with nothing held flushed")
			}
		})
	}
}
