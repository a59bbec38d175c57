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
// one Read (64 bytes) in a Go program (testdata/goprog bench) in four
// modes: no probes; a bare trap (a BPF program that returns at once) on
// Write's and Read's first instructions, the usual entry uprobe; the bare
// trap at every place tlstap probes (Write's and Read's bodies after the
// stack check, and Read's RETs); and tlstap's capture. Each iteration runs
// the program once in every mode, starting with a different mode each
// time, so the modes share the machine's load; the metrics are medians over
// the iterations, and the ratios medians of each iteration's ratio. Use
// -benchtime=Nx.
func BenchmarkGoCalls(b *testing.B) {
	const calls = 5000
	bin := buildGoProg(b, b.TempDir(), goBuild{name: "gt-bench", gocmd: "go"})
	fns, err := gotls.Inspect(bin)
	if err != nil {
		b.Fatal(err)
	}
	modes := []string{"none", "bare-entry", "bare", "tlstap"}
	w, r := map[string][]float64{}, map[string][]float64{}
	var vsEntry, vsBare, readVsBare []float64
	for i := 0; b.Loop(); i++ {
		for k := range modes {
			mode := modes[(i+k)%len(modes)]
			var stop func()
			switch mode {
			case "none":
				stop = func() {}
			case "bare-entry":
				stop = bareTrap(b, bin, fns.Write.Entry, fns.Read.Entry)
			case "bare":
				stop = bareTrap(b, bin, slices.Concat([]uint64{fns.Write.Body, fns.Read.Body}, fns.Read.Rets)...)
			case "tlstap":
				stop = runTlstap(b, bin)
			}
			wn, rn := runGoBench(b, bin, calls)
			stop()
			w[mode], r[mode] = append(w[mode], wn), append(r[mode], rn)
		}
		vsEntry = append(vsEntry, last(w["tlstap"])/last(w["bare-entry"]))
		vsBare = append(vsBare, last(w["tlstap"])/last(w["bare"]))
		readVsBare = append(readVsBare, last(r["tlstap"])/last(r["bare"]))
	}
	for _, mode := range modes {
		b.ReportMetric(median(w[mode]), "ns/write-"+mode)
		b.ReportMetric(median(r[mode]), "ns/read-"+mode)
	}
	b.ReportMetric(median(vsEntry), "write-tlstap/bare-entry")
	b.ReportMetric(median(vsBare), "write-tlstap/bare")
	b.ReportMetric(median(readVsBare), "read-tlstap/bare")
	b.ReportMetric(0, "ns/op")
}

func last(v []float64) float64 { return v[len(v)-1] }

// runGoBench runs `goprog bench calls` and returns its ns per Write and per
// Read.
func runGoBench(b *testing.B, bin string, calls int) (write, read float64) {
	out, err := exec.Command(bin, "bench", fmt.Sprint(calls)).Output()
	if err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	if _, err := fmt.Sscanf(string(out), "write_ns=%g read_ns=%g", &write, &read); err != nil {
		b.Fatalf("%q: %v", out, err)
	}
	return write, read
}

// runTlstap starts tlstap's capture of bin and returns what stops it.
func runTlstap(b *testing.B, bin string) (stop func()) {
	src, err := New(Options{GoPrograms: []string{bin}, Filter: Filter{Comms: []string{"gt-bench"}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan capture.Chunk, 4096)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-out:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { cancel(); <-done; <-drained }
}

// bareTrap attaches a program that does nothing at the offsets and returns
// what detaches it.
func bareTrap(b *testing.B, bin string, offsets ...uint64) (stop func()) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Kprobe,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "Dual BSD/GPL",
	})
	if err != nil {
		b.Fatal(err)
	}
	ex, err := link.OpenExecutable(bin)
	if err != nil {
		b.Fatal(err)
	}
	var links []link.Link
	stop = func() {
		for _, l := range links {
			l.Close()
		}
		prog.Close()
	}
	for _, off := range offsets {
		l, err := ex.Uprobe("", prog, &link.UprobeOptions{Address: off})
		if err != nil {
			stop()
			b.Fatal(err)
		}
		links = append(links, l)
	}
	return stop
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
