package broker_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// pipelineEvent is shaped like the pipeline's events: the strings every
// event carries, and a payload of n bytes copied out of a decoder.
func pipelineEvent(seq uint64, n int) *eventpb.LogEntry {
	p := bytes.Repeat([]byte{byte(seq)}, n)
	return &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Timestamp: time.Now().UnixNano(), Uuid: "12345_67890_curl_3_0_127.0.0.1:443-127.0.0.1:51234",
			Pid: 12345, Pname: "curl", Type: 4, Tid: 12345, Fd: 3, DataType: 0, Seq: seq,
			SrcIp: "127.0.0.1", SrcPort: 443, DstIp: "127.0.0.1", DstPort: 51234,
			Host: "example.test", Method: "GET", Path: "/big.bin", Status: 200,
			ContentType: "application/octet-stream", TlsLibrary: "openssl",
			ContainerId: "", Payload: p, Length: uint32(n), OriginalLength: uint64(n),
		}},
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int(ms.HeapAlloc)
}

// TestRetentionBound publishes four times the resume window and checks
// that the window holds at most its bound, counted (RetainedBytes) and
// measured (the heap the broker keeps alive): a download's parts must not
// grow the heap past the retention, whatever their number and size.
func TestRetentionBound(t *testing.T) {
	const retain = 8 << 20
	tests := []struct {
		name    string
		payload int
	}{
		{"download parts of 64 KiB", 64 << 10},
		{"raw events of 64 KiB minus one", 64<<10 - 1},
		{"small events of 2 KiB", 2 << 10},
		{"tiny events of 100 bytes", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := liveHeap()
			b := broker.New(broker.Options{RetainEvents: 1 << 30, RetainBytes: retain}, nil)
			n := 4 * retain / tt.payload
			for i := 1; i <= n; i++ {
				b.Publish(pipelineEvent(uint64(i), tt.payload))
			}
			held := liveHeap() - before
			counted := b.RetainedBytes()
			last := b.Retained(uint64(n-1), uint64(n), make([]*broker.Entry, 0, 1))
			runtime.KeepAlive(b)
			t.Logf("counted %d, heap held %d, bound %d", counted, held, retain)
			if counted > retain {
				t.Errorf("RetainedBytes %d > bound %d", counted, retain)
			}
			if counted < retain/2 {
				t.Errorf("RetainedBytes %d: the window should be nearly full (bound %d)", counted, retain)
			}
			// The counted size must not underestimate what the entries
			// hold: the measured heap stays within the bound, plus the
			// ring's slice of pointers and the stats.
			if slack := 512 << 10; held > retain+slack {
				t.Errorf("the broker keeps %d bytes of heap alive for a window of %d (counted %d)", held, retain, counted)
			}
			if len(last) != 1 || !bytes.Equal(last[0].Event().GetPayload(), bytes.Repeat([]byte{byte(n)}, tt.payload)) {
				t.Errorf("the newest retained event's payload is wrong")
			}
		})
	}
}

// TestQueueBytesBound: a subscriber that does not read holds at most
// QueueBytes of entries, whether its policy drops (counted) or blocks the
// publisher; what it then reads is complete and in order.
func TestQueueBytesBound(t *testing.T) {
	const payload = 64 << 10
	const bound = 1 << 20
	const n = 100
	for _, policy := range []broker.Policy{broker.Drop, broker.Block} {
		t.Run(map[broker.Policy]string{broker.Drop: "drop", broker.Block: "block"}[policy], func(t *testing.T) {
			b := broker.New(broker.Options{}, nil)
			s := b.Subscribe(broker.SubOptions{Name: "test", Queue: 8192, QueueBytes: bound, Policy: policy})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 1; i <= n; i++ {
					b.Publish(pipelineEvent(uint64(i), payload))
				}
			}()
			if policy == broker.Drop {
				<-done
				if q := s.QueuedBytes(); q > bound || q == 0 {
					t.Errorf("queued %d bytes, bound %d", q, bound)
				}
				b.Close()
				var events, notices int
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for {
					e, err := s.Next(ctx)
					if err != nil {
						break
					}
					if e.Seq != 0 {
						events++
					} else {
						notices++
					}
				}
				if s.Dropped() == 0 || s.Dropped()+uint64(events) != n || notices != 1 {
					t.Errorf("dropped %d, delivered %d events and %d notices, published %d", s.Dropped(), events, notices, n)
				}
			} else {
				// The publisher must stop once the bound is reached and
				// wait for the reader.
				deadline := time.Now().Add(30 * time.Second)
				for prev := -1; ; {
					l := s.Len()
					if l == prev && l > 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("queue did not settle (%d entries)", l)
					}
					prev = l
					time.Sleep(50 * time.Millisecond)
				}
				select {
				case <-done:
					t.Fatalf("the publisher published all %d entries into a queue bounded to %d bytes", n, bound)
				default:
				}
				if q := s.QueuedBytes(); q > bound {
					t.Errorf("queued %d bytes, bound %d", q, bound)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for i := 1; i <= n; i++ {
					e, err := s.Next(ctx)
					if err != nil || e.Seq != uint64(i) {
						t.Fatalf("entry %d: seq %d, err %v", i, seqOf(e), err)
					}
					if q := s.QueuedBytes(); q > bound {
						t.Fatalf("queued %d bytes, bound %d", q, bound)
					}
				}
				<-done
			}
			b.Close()
		})
	}
}

func seqOf(e *broker.Entry) uint64 {
	if e == nil {
		return 0
	}
	return e.Seq
}
