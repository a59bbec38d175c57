package ringpoll_test

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/capture/ringpoll"
	"github.com/tlstap/tlstap/internal/testenv"
)

// The linger bounds the live capture uses (internal/capture/openssl).
const (
	linger     = 250 * time.Microsecond
	lingerMost = 2 * time.Millisecond
)

// ring returns a ring buffer and a program that writes one 8-byte record
// (a counter's next value) to it each time it is run (BPF_PROG_TEST_RUN
// of an XDP program). With state nil the record is committed with default
// flags, the kernel's own wake-up rule; otherwise the program follows
// bpf/tlstap.bpf.c's protocol: reserve, a locked add as a full barrier,
// read awake, submit with BPF_RB_NO_WAKEUP if it is set and
// BPF_RB_FORCE_WAKEUP if not.
func ring(t *testing.T, state *ebpf.Map) (*ebpf.Map, *ebpf.Program) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "ringpoll_test", Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counter.Close() })

	insns := asm.Instructions{
		// r6 = ++counter[0]
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, counter.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R6, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R6, 1),
		asm.StoreMem(asm.R0, 0, asm.R6, asm.DWord),
	}
	if state == nil {
		insns = append(insns,
			asm.StoreMem(asm.RFP, -16, asm.R6, asm.DWord),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -16),
			asm.Mov.Imm(asm.R3, 8),
			asm.Mov.Imm(asm.R4, 0), // default flags: wake a reader that caught up
			asm.FnRingbufOutput.Call(),
		)
	} else {
		insns = append(insns,
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R2, 8),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnRingbufReserve.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Reg(asm.R7, asm.R0),
			asm.StoreMem(asm.R7, 0, asm.R6, asm.DWord),
			asm.Mov.Imm(asm.R8, unix.BPF_RB_FORCE_WAKEUP),
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, state.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "submit"),
			asm.Mov.Imm(asm.R1, 1),
			asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 8), // the fence
			asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),        // awake
			asm.JEq.Imm(asm.R1, 0, "submit"),
			asm.Mov.Imm(asm.R8, unix.BPF_RB_NO_WAKEUP),
			asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("submit"),
			asm.Mov.Reg(asm.R2, asm.R8),
			asm.FnRingbufSubmit.Call(),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 2).WithSymbol("out"), // XDP_PASS
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: insns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return m, prog
}

// readerState is the reader state map of bpf/tlstap.bpf.c: awake, padding,
// the fence word.
func readerState(t *testing.T) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1,
		Flags: unix.BPF_F_MMAPABLE})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func produce(t *testing.T, prog *ebpf.Program) {
	t.Helper()
	if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		t.Error(err)
	}
}

// setup returns a waiter on a fresh ring and the program that feeds it:
// the kernel's wake-up rule (first 0), or the lingering protocol with
// lingers from first up to most.
func setup(t *testing.T, first, most time.Duration) (*ringbuf.Reader, *ringpoll.Waiter, *ebpf.Program) {
	t.Helper()
	lingering := first > 0
	var state *ebpf.Map
	if lingering {
		state = readerState(t)
	}
	m, prog := ring(t, state)
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	rd.SetDeadline(time.Unix(1, 0))
	w, err := ringpoll.New(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if lingering {
		if err := w.Linger(state, first, most); err != nil {
			t.Fatal(err)
		}
	}
	return rd, w, prog
}

// reader reads rd in a goroutine, waiting with w whenever the ring is
// empty and calling afterWait (if set) after each wait: it sends each
// record's number (its first two bytes) on got, then, once Wait or a read
// fails, the error on done and closes got.
func reader(rd *ringbuf.Reader, w *ringpoll.Waiter, afterWait func()) (got <-chan uint64, done <-chan error) {
	g, d := make(chan uint64, 1), make(chan error, 1)
	go func() {
		defer close(g)
		var rec ringbuf.Record
		for {
			err := rd.ReadInto(&rec)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if err := w.Wait(rd, time.Time{}); err != nil {
					d <- err
					return
				}
				if afterWait != nil {
					afterWait()
				}
				continue
			}
			if err != nil {
				d <- err
				return
			}
			g <- uint64(rec.RawSample[0]) | uint64(rec.RawSample[1])<<8
		}
	}()
	return g, d
}

// A parked Wait returns when a record is committed, gives up at its
// deadline on an empty ring, and ends with os.ErrClosed on Close, with the
// kernel's wake-up rule and with the lingering protocol.
func TestWait(t *testing.T) {
	testenv.RequireRoot(t, "a BPF ring buffer and program")
	for _, tc := range []struct {
		name  string
		first time.Duration // 0: the kernel's rule
	}{{"kernel rule", 0}, {"linger", linger}} {
		t.Run(tc.name, func(t *testing.T) {
			rd, w, prog := setup(t, tc.first, lingerMost)
			if err := w.Wait(rd, time.Now().Add(50*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Wait on an empty ring: %v, want a deadline error", err)
			}
			for i := range 3 {
				done := make(chan error, 1)
				go func() { done <- w.Wait(rd, time.Time{}) }()
				time.Sleep(20 * time.Millisecond) // most often parked by now; either way it must return
				produce(t, prog)
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("record %d: Wait: %v", i, err)
					}
				case <-time.After(time.Minute):
					t.Fatalf("record %d: Wait did not return after a record was committed", i)
				}
				var rec ringbuf.Record
				if err := rd.ReadInto(&rec); err != nil || len(rec.RawSample) != 8 || rec.RawSample[0] != byte(i+1) {
					t.Fatalf("record %d: read %v, %x", i, err, rec.RawSample)
				}
				if err := rd.ReadInto(&rec); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("record %d: ring not empty after one record: %v", i, err)
				}
			}
			for _, during := range []time.Duration{0, 20 * time.Millisecond} {
				done := make(chan error, 1)
				go func() { done <- w.Wait(rd, time.Time{}) }()
				time.Sleep(during) // 0: most often still lingering
				w.Close()
				select {
				case err := <-done:
					if !errors.Is(err, os.ErrClosed) {
						t.Fatalf("Wait after Close: %v, want os.ErrClosed", err)
					}
				case <-time.After(time.Minute):
					t.Fatal("Close did not end Wait")
				}
			}
		})
	}
}

// No record is stranded: a reader that drains the ring and waits, and a
// producer that commits one record at a time, each only once the previous
// one arrived and after a gap that sweeps from none to twice the longest
// linger (so records land while the reader lingers, short or long, as it
// parks, and while it is parked, after short parks that make wake-ups
// dense and long ones that reset that). Every record must arrive with no
// later record to push it out.
//
// With the live capture's lingers the regimes the reader goes through
// depend on how fast this machine hands a record over; "regimes" scales
// every duration up (lingers of 2 to 8 ms, a dense gap of 20 ms) so that
// even a loaded machine takes the reader through each of them: parking at
// once, the shortest linger and the longest. It sweeps again, at most
// three times, until it has seen them all.
func TestNoStranding(t *testing.T) {
	testenv.RequireRoot(t, "a BPF ring buffer and program")
	for _, tc := range []struct {
		name        string
		lingering   bool
		first, most time.Duration // lingers; 0: the live capture's
		denseGap    time.Duration // 0: DenseGap
		regimes     bool          // require every regime
	}{
		{name: "kernel rule"},
		{name: "linger", lingering: true},
		{name: "regimes", lingering: true, first: 2 * time.Millisecond, most: 8 * time.Millisecond,
			denseGap: 20 * time.Millisecond, regimes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, most, denseGap := linger, lingerMost, ringpoll.DenseGap
			if tc.first != 0 {
				first, most, denseGap = tc.first, tc.most, tc.denseGap
			}
			if !tc.lingering {
				first, most = 0, 0
			}
			rd, w, prog := setup(t, first, most)
			if tc.lingering {
				ringpoll.SetDense(w, ringpoll.DenseWakes, denseGap)
			}

			var mu sync.Mutex
			seen := map[time.Duration]bool{} // NextLinger after each wait
			got, done := reader(rd, w, func() {
				mu.Lock()
				seen[ringpoll.NextLinger(w)] = true
				mu.Unlock()
			})
			allSeen := func() bool {
				mu.Lock()
				defer mu.Unlock()
				return seen[0] && seen[first] && seen[most]
			}
			const records = 800
			step := 4 * most / 100 // gaps of 0 to 2 longest lingers
			i := 0
			for sweep := 0; sweep < 3 && (sweep == 0 || tc.regimes && !allSeen()); sweep++ {
				for j := 1; j <= records; j++ {
					i++
					gap := time.Duration(j%100) * step
					switch {
					case j%100 == 99:
						gap = denseGap + 5*time.Millisecond // long parked
					case j%200 < 40:
						gap = time.Duration(j%5) * step / 8 // dense: the linger grows
					}
					for start := time.Now(); time.Since(start) < gap; {
						// A spin: Go's sleeps last at least about a millisecond.
					}
					produce(t, prog)
					select {
					case n := <-got:
						if n != uint64(i)&0xffff {
							t.Fatalf("got record %d, want %d", n, i)
						}
					case <-time.After(30 * time.Second):
						t.Fatalf("record %d (after a gap of %v) stranded: not delivered without further traffic", i, gap)
					}
				}
			}
			w.Close()
			if err := <-done; !errors.Is(err, os.ErrClosed) {
				t.Fatalf("reader ended with %v, want os.ErrClosed", err)
			}
			mu.Lock()
			t.Logf("next lingers seen: %v", seen)
			mu.Unlock()
			if tc.regimes && !allSeen() {
				t.Errorf("the reader did not go through every regime (park at once, %v, %v) in three sweeps", first, most)
			}
		})
	}
}

// OnBusy is told true once wake-ups are dense enough for the waiter to
// linger, and false only after it then stayed parked for Quiet, with no
// record to wake it; a lone record after that does not make it busy again.
func TestOnBusy(t *testing.T) {
	testenv.RequireRoot(t, "a BPF ring buffer and program")
	rd, w, prog := setup(t, linger, lingerMost)
	const quiet = 200 * time.Millisecond
	ringpoll.SetDense(w, 4, 50*time.Millisecond)
	ringpoll.SetQuiet(w, quiet)
	type call struct {
		busy bool
		at   time.Time
	}
	calls := make(chan call, 16)
	w.OnBusy(func(busy bool) { calls <- call{busy, time.Now()} })

	got, done := reader(rd, w, nil)
	deliver := func(what string) time.Time {
		t.Helper()
		produce(t, prog)
		select {
		case <-got:
			return time.Now()
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: record not delivered", what)
		}
		return time.Time{}
	}
	expect := func(busy bool, what string) call {
		t.Helper()
		select {
		case c := <-calls:
			if c.busy != busy {
				t.Fatalf("%s: OnBusy(%v), want OnBusy(%v)", what, c.busy, busy)
			}
			return c
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no OnBusy(%v)", what, busy)
		}
		return call{}
	}

	// Dense: each record after a short park (5 ms, under the 50 ms gap).
	var last time.Time
	for range 12 {
		time.Sleep(5 * time.Millisecond)
		last = deliver("dense")
	}
	expect(true, "after 12 dense wake-ups")
	// Quiet: no record at all; the waiter says so by itself, not sooner
	// than quiet after the last record.
	c := expect(false, "parked with no record")
	if c.at.Sub(last) < quiet {
		t.Errorf("OnBusy(false) %v after the last record, before the %v quiet", c.at.Sub(last), quiet)
	}
	// A lone record later wakes it and leaves it not busy.
	time.Sleep(100 * time.Millisecond)
	deliver("lone")
	time.Sleep(2 * quiet)
	select {
	case c := <-calls:
		t.Errorf("OnBusy(%v) after a lone record", c.busy)
	default:
	}
	w.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("reader ended with %v, want os.ErrClosed", err)
	}
}
