package openssl

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/gotls"
)

// BenchmarkGoCalls measures the cost of one crypto/tls.(*Conn).Write and
// one Read (64 bytes) in a Go program (testdata/goprog bench) with no
// probes, with a bare trap (a BPF program that returns at once) at the
// functions' first instructions only, with the bare trap at every place
// tlstap probes (Write's and Read's bodies after the stack check, and
// Read's RETs), and with tlstap's capture. Each iteration runs the program once; the
// metrics are medians over the iterations. Use -benchtime=Nx.
func BenchmarkGoCalls(b *testing.B) {
	const calls = 5000
	bin := buildGoProg(b, b.TempDir(), goBuild{name: "gt-bench", gocmd: "go"})
	fns, err := gotls.Inspect(bin)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"none", "bare-entry", "bare", "tlstap"} {
		b.Run(mode, func(b *testing.B) {
			switch mode {
			case "bare-entry":
				bareTrap(b, bin, fns.Write.Entry, fns.Read.Entry)
			case "bare":
				bareTrap(b, bin, slices.Concat([]uint64{fns.Write.Body, fns.Read.Body}, fns.Read.Rets)...)
			case "tlstap":
				src, err := New(Options{GoPrograms: []string{bin}, Filter: Filter{Comms: []string{"gt-bench"}},
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				out := make(chan capture.Chunk, 4096)
				done := make(chan error, 1)
				go func() { done <- src.Run(ctx, out) }()
				go func() {
					for {
						select {
						case <-out:
						case <-ctx.Done():
							return
						}
					}
				}()
				b.Cleanup(func() { cancel(); <-done })
			}
			var w, r []float64
			for b.Loop() {
				out, err := exec.Command(bin, "bench", fmt.Sprint(calls)).Output()
				if err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				var wn, rn float64
				if _, err := fmt.Sscanf(string(out), "write_ns=%g read_ns=%g", &wn, &rn); err != nil {
					b.Fatalf("%q: %v", out, err)
				}
				w, r = append(w, wn), append(r, rn)
			}
			b.ReportMetric(median(w), "ns/write")
			b.ReportMetric(median(r), "ns/read")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// bareTrap attaches a program that does nothing where tlstap's Go probes go.
func bareTrap(b *testing.B, bin string, offsets ...uint64) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Kprobe,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "Dual BSD/GPL",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { prog.Close() })
	ex, err := link.OpenExecutable(bin)
	if err != nil {
		b.Fatal(err)
	}
	for _, off := range offsets {
		l, err := ex.Uprobe("", prog, &link.UprobeOptions{Address: off})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
