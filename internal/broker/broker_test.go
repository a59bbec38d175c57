package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func event(seq uint64, payload string) *eventpb.LogEntry {
	return &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: seq, Payload: []byte(payload), Length: uint32(len(payload))}},
	}
}

func processLog(msg string) *eventpb.LogEntry {
	return &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: msg}}
}

// drain reads entries until the subscription is closed and returns them
// as "#seq" for events and "log:text" for process logs.
func drain(t *testing.T, s *broker.Subscription) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for {
		e, err := s.Next(ctx)
		if errors.Is(err, broker.ErrClosed) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v (got so far %v)", err, out)
		}
		out = append(out, describe(t, e))
	}
}

// take reads exactly n entries.
func take(t *testing.T, s *broker.Subscription, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for range n {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v (got so far %v)", err, out)
		}
		out = append(out, describe(t, e))
	}
	return out
}

func describe(t *testing.T, e *broker.Entry) string {
	t.Helper()
	// Bytes must be Msg marshaled, for every kind of entry.
	var m eventpb.LogEntry
	if err := proto.Unmarshal(e.Bytes, &m); err != nil || !proto.Equal(&m, e.Msg) {
		t.Errorf("entry bytes do not decode to its message (err %v)", err)
	}
	if ev := e.Event(); ev != nil {
		if e.Seq != ev.GetSeq() {
			t.Errorf("entry seq %d, event seq %d", e.Seq, ev.GetSeq())
		}
		return "#" + strconv.FormatUint(e.Seq, 10)
	}
	return "log:" + e.Msg.GetRunLog()
}

func seqs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, "#"+strconv.Itoa(i))
	}
	return out
}

func TestFanOut(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	subs := []*broker.Subscription{
		b.Subscribe(broker.SubOptions{Name: "a"}),
		b.Subscribe(broker.SubOptions{Name: "b", Policy: broker.Block}),
		b.Subscribe(broker.SubOptions{Name: "odd", Filter: func(e *broker.Entry) bool { return e.Seq%2 == 1 }}),
	}
	for i := 1; i <= 5; i++ {
		b.Publish(event(uint64(i), "x"))
	}
	b.Publish(processLog("hello"))
	if b.LastSeq() != 5 {
		t.Errorf("LastSeq = %d, want 5", b.LastSeq())
	}
	b.Close()
	want := [][]string{
		append(seqs(1, 5), "log:hello"),
		append(seqs(1, 5), "log:hello"),
		{"#1", "#3", "#5"},
	}
	for i, s := range subs {
		if got := drain(t, s); fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("subscriber %d got %v, want %v", i, got, want[i])
		}
	}
	// Publishing after Close is ignored, subscribing gets a closed one.
	b.Publish(event(6, "late"))
	if got := drain(t, b.Subscribe(broker.SubOptions{})); len(got) != 0 {
		t.Errorf("subscription after Close got %v", got)
	}
}

var missedRE = regexp.MustCompile(`^log:slow client: (\d+) entries were dropped`)

func TestDropPolicyNotice(t *testing.T) {
	tests := []struct {
		name    string
		queue   int
		publish int
		// read after the first burst, before publishing more
		after int
		want  []string
	}{
		{
			name: "notice at the end when nothing follows", queue: 3, publish: 10,
			want: append(seqs(1, 3), "log:slow client: 7 entries were dropped because this client's queue was full"),
		},
		{
			name: "notice in stream order before newer entries", queue: 3, publish: 10, after: 3,
			want: append(append(seqs(1, 3), "log:slow client: 7 entries were dropped because this client's queue was full"), "#11"),
		},
		{
			name: "queue of one keeps the notice in order", queue: 1, publish: 3, after: 1,
			want: []string{"#1", "log:slow client: 2 entries were dropped because this client's queue was full", "#4"},
		},
		{
			name: "no drops, no notice", queue: 16, publish: 10,
			want: seqs(1, 10),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stats.NewSet()
			b := broker.New(broker.Options{}, st)
			s := b.Subscribe(broker.SubOptions{Name: "slow", Queue: tt.queue})
			for i := 1; i <= tt.publish; i++ {
				b.Publish(event(uint64(i), "x"))
			}
			var got []string
			if tt.after > 0 {
				got = take(t, s, tt.after)
				b.Publish(event(uint64(tt.publish+1), "x"))
			}
			b.Close()
			got = append(got, drain(t, s)...)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			dropped := uint64(0)
			for _, g := range got {
				if m := missedRE.FindStringSubmatch(g); m != nil {
					n, _ := strconv.ParseUint(m[1], 10, 64)
					dropped += n
				}
			}
			if s.Dropped() != dropped {
				t.Errorf("Dropped() = %d, notices said %d", s.Dropped(), dropped)
			}
			if c := st.Counter(stats.DropsTotal, "", "reason", "queue_full_slow").Load(); c != dropped {
				t.Errorf("drop counter %d, want %d", c, dropped)
			}
		})
	}
}

func TestBlockPolicy(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	s := b.Subscribe(broker.SubOptions{Name: "stdout", Queue: 2, Policy: broker.Block})
	const n = 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			b.Publish(event(uint64(i), "x"))
		}
	}()
	got := take(t, s, n)
	<-done
	b.Close()
	got = append(got, drain(t, s)...)
	if fmt.Sprint(got) != fmt.Sprint(seqs(1, n)) {
		t.Errorf("Block subscriber got %v, want every entry in order", got)
	}
	if s.Dropped() != 0 {
		t.Errorf("Block subscriber dropped %d", s.Dropped())
	}
}

func TestBlockedPublisherReleasedByClose(t *testing.T) {
	for _, stop := range []string{"broker", "subscription"} {
		t.Run(stop, func(t *testing.T) {
			b := broker.New(broker.Options{}, nil)
			s := b.Subscribe(broker.SubOptions{Queue: 1, Policy: broker.Block})
			b.Publish(event(1, "x"))
			done := make(chan struct{})
			go func() {
				defer close(done)
				b.Publish(event(2, "x")) // blocks: the queue is full
			}()
			if stop == "broker" {
				b.Close()
			} else {
				s.Close()
				b.Close()
			}
			<-done // a publisher left blocked fails goleak
		})
	}
}

func TestResume(t *testing.T) {
	tests := []struct {
		name     string
		opts     broker.Options
		publish  int
		since    uint64
		want     []string
		wantNote string
	}{
		{name: "from the start", publish: 5, since: 0, want: seqs(1, 5)},
		{name: "from the middle", publish: 5, since: 3, want: seqs(4, 5)},
		{name: "up to date", publish: 5, since: 5},
		{name: "ahead of the broker", publish: 5, since: 9},
		{
			name: "older than the count-bounded ring", opts: broker.Options{RetainEvents: 3}, publish: 10, since: 2,
			wantNote: "resume: 5 events after seq 2 are older than the retained window and were missed",
			want:     seqs(8, 10),
		},
		{
			// Every event is the same size, so the byte bound keeps a
			// fixed number of them.
			name: "older than the byte-bounded ring", opts: broker.Options{RetainBytes: 3 * entrySize}, publish: 10, since: 0,
			wantNote: "resume: 7 events after seq 0 are older than the retained window and were missed",
			want:     seqs(8, 10),
		},
		{
			name: "one event older than the ring", opts: broker.Options{RetainEvents: 3}, publish: 10, since: 6,
			wantNote: "resume: 1 events after seq 6 are older than the retained window and were missed",
			want:     seqs(8, 10),
		},
		{name: "just inside the ring", opts: broker.Options{RetainEvents: 3}, publish: 10, since: 7, want: seqs(8, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := broker.New(tt.opts, nil)
			for i := 1; i <= tt.publish; i++ {
				b.Publish(event(uint64(i), "0123456789"))
			}
			s := b.Subscribe(broker.SubOptions{Resume: true, Since: tt.since})
			b.Close()
			got := drain(t, s)
			want := tt.want
			if tt.wantNote != "" {
				want = append([]string{"log:" + tt.wantNote}, want...)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
}

// entrySize is what the retention counts for event(n, "0123456789") with
// a one-byte n (Entry.Size).
var entrySize = func() int {
	b := broker.New(broker.Options{}, nil)
	b.Publish(event(1, "0123456789"))
	return b.RetainedBytes()
}()

// TestResumeWhilePublishing checks that a subscriber joining during a
// stream of publishes sees every event after Since exactly once.
func TestResumeWhilePublishing(t *testing.T) {
	b := broker.New(broker.Options{RetainEvents: 100000}, nil)
	const n = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			b.Publish(event(uint64(i), "x"))
		}
	}()
	var subs []*broker.Subscription
	for range 20 {
		subs = append(subs, b.Subscribe(broker.SubOptions{Resume: true, Since: 0, Queue: n, Policy: broker.Block}))
	}
	<-done
	b.Close()
	for i, s := range subs {
		if got := drain(t, s); fmt.Sprint(got) != fmt.Sprint(seqs(1, n)) {
			t.Errorf("subscriber %d: %d entries, not exactly 1..%d in order", i, len(got), n)
		}
	}
}

func TestLogBacklog(t *testing.T) {
	b := broker.New(broker.Options{LogBacklog: 2}, nil)
	log := slog.New(slog.NewTextHandler(broker.LogWriter{B: b}, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	log.Info("one")
	b.Publish(event(1, "x"))
	log.Info("two")
	log.Info("three", "n", 3)
	with := b.Subscribe(broker.SubOptions{Backlog: true})
	without := b.Subscribe(broker.SubOptions{})
	log.Info("four")
	b.Close()
	want := []string{"log:level=INFO msg=two", "log:level=INFO msg=three n=3", "log:level=INFO msg=four"}
	if got := drain(t, with); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with backlog got %q, want %q", got, want)
	}
	if got := drain(t, without); fmt.Sprint(got) != fmt.Sprint(want[2:]) {
		t.Errorf("without backlog got %q, want %q", got, want[2:])
	}
}

func TestCloseDrains(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	s := b.Subscribe(broker.SubOptions{})
	for i := 1; i <= 3; i++ {
		b.Publish(event(uint64(i), "x"))
	}
	b.Close()
	if s.Len() != 3 {
		t.Errorf("Len after Close = %d, want 3 still queued", s.Len())
	}
	if got := drain(t, s); fmt.Sprint(got) != fmt.Sprint(seqs(1, 3)) {
		t.Errorf("after Close got %v, want the queued entries", got)
	}
	// Next keeps returning ErrClosed.
	if _, err := s.Next(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Next after drain: %v, want ErrClosed", err)
	}
}

func TestSubscriptionCloseDiscards(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	defer b.Close()
	s := b.Subscribe(broker.SubOptions{})
	b.Publish(event(1, "x"))
	s.Close()
	b.Publish(event(2, "x"))
	if s.Len() != 0 {
		t.Errorf("Len after Close = %d, want 0", s.Len())
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Next: %v, want ErrClosed", err)
	}
}

func TestNextHonoursContext(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	defer b.Close()
	s := b.Subscribe(broker.SubOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context: %v", err)
	}
}

func TestMarshalFailureCounted(t *testing.T) {
	st := stats.NewSet()
	b := broker.New(broker.Options{}, st)
	s := b.Subscribe(broker.SubOptions{})
	bad := event(1, "x")
	bad.GetEventPayload().Host = "\xff" // proto3 strings must be UTF-8
	b.Publish(bad)
	b.Publish(event(2, "x"))
	b.Close()
	if got := drain(t, s); fmt.Sprint(got) != "[#2]" {
		t.Errorf("got %v, want only the valid entry", got)
	}
	if c := st.Counter(stats.DropsTotal, "", "reason", "marshal").Load(); c != 1 {
		t.Errorf("marshal drops %d, want 1", c)
	}
}

// TestConcurrentPublishers runs under -race: several publishers, Drop and
// Block subscribers, subscribers coming and going.
func TestConcurrentPublishers(t *testing.T) {
	b := broker.New(broker.Options{RetainEvents: 64}, nil)
	const pubs, each = 4, 500
	all := b.Subscribe(broker.SubOptions{Policy: broker.Block, Queue: 16})
	slow := b.Subscribe(broker.SubOptions{Queue: 4})
	var wg sync.WaitGroup
	var seq sync.Mutex
	next := uint64(0)
	for range pubs {
		wg.Go(func() {
			for range each {
				seq.Lock()
				next++
				n := next
				b.Publish(event(n, "x"))
				seq.Unlock()
				if n%50 == 0 {
					s := b.Subscribe(broker.SubOptions{Resume: true, Since: n - 10})
					s.Close()
				}
			}
		})
	}
	var got []string
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			e, err := all.Next(context.Background())
			if err != nil {
				return
			}
			got = append(got, describe(t, e))
		}
	}()
	wg.Wait()
	b.Close()
	<-readDone
	slowGot := drain(t, slow)
	if fmt.Sprint(got) != fmt.Sprint(seqs(1, pubs*each)) {
		t.Errorf("Block subscriber got %d entries, want 1..%d in order", len(got), pubs*each)
	}
	events := 0
	for _, g := range slowGot {
		if g[0] == '#' {
			events++
		}
	}
	if uint64(events)+slow.Dropped() != pubs*each {
		t.Errorf("Drop subscriber: %d delivered + %d dropped != %d published", events, slow.Dropped(), pubs*each)
	}
}

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
