package ringpoll_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/tlstap/tlstap/internal/capture/ringpoll"
	"github.com/tlstap/tlstap/internal/testenv"
)

// ring returns a ring buffer and a program that writes one 8-byte record
// to it each time it is run (BPF_PROG_TEST_RUN of an XDP program).
func ring(t *testing.T) (*ebpf.Map, *ebpf.Program) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "ringpoll_test", Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 42),
			asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.Mov.Imm(asm.R3, 8),
			asm.Mov.Imm(asm.R4, 0), // default flags: wake a reader that caught up
			asm.FnRingbufOutput.Call(),
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return m, prog
}

func produce(t *testing.T, prog *ebpf.Program) {
	t.Helper()
	if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		t.Error(err)
	}
}

// A parked Wait returns when a record is committed, gives up at its
// deadline on an empty ring, and ends with os.ErrClosed on Close.
func TestWait(t *testing.T) {
	testenv.RequireRoot(t, "a BPF ring buffer and program")
	m, prog := ring(t)
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rd.SetDeadline(time.Unix(1, 0))
	w, err := ringpoll.New(m)
	if err != nil {
		t.Fatal(err)
	}

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
		if err := rd.ReadInto(&rec); err != nil || len(rec.RawSample) != 8 || rec.RawSample[0] != 42 {
			t.Fatalf("record %d: read %v, %x", i, err, rec.RawSample)
		}
		if err := rd.ReadInto(&rec); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("record %d: ring not empty after one record: %v", i, err)
		}
	}

	done := make(chan error, 1)
	go func() { done <- w.Wait(rd, time.Time{}) }()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Wait after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not end Wait")
	}
	w.Close() // twice is fine
}
