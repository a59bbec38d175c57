package openssl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

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
//
// The figures are the calling thread's CPU time per call (the goroutine is
// locked to its thread, and a uprobe's trap and BPF program run on it), with
// wall time reported beside them, and the median of the calls' own wall
// times (med-ns, ratios med-*): the cost of a call that nothing
// interrupted, which the rare calls a preemption or the host's own
// scheduling fell into (counted as the thread's CPU: this guest reports no
// steal time) do not move. TLSTAP_BENCH_CAPS="name=path ..." adds a
// mode per benchcap binary (internal/benchcap, -go and -comm), e.g. another
// commit's build, interleaved with the others. TLSTAP_BENCH_DIAG adds
// diagnostic modes (diagMode; tlstap-quiet: runTlstapQuiet), and
// TLSTAP_BENCH_STATS=1 reports tlstap's programs' own run time per run
// (prog-ns/MODE-PROGRAM) as the kernel's BPF statistics count it.
func BenchmarkGoCalls(b *testing.B) {
	const calls = 5000
	bin := buildGoProg(b, b.TempDir(), goBuild{name: "gt-bench", gocmd: "go"})
	fns, err := gotls.Inspect(bin)
	if err != nil {
		b.Fatal(err)
	}
	modes := []string{"none", "bare-entry", "bare", "tlstap"}
	caps := map[string]string{}
	for _, f := range strings.Fields(os.Getenv("TLSTAP_BENCH_CAPS")) {
		name, path, ok := strings.Cut(f, "=")
		if !ok {
			b.Fatalf("TLSTAP_BENCH_CAPS: %q is not name=path", f)
		}
		caps[name] = path
		modes = append(modes, name)
	}
	// Diagnostic modes: the bare trap plus empty programs on the
	// tracepoints tlstap (or its watcher) attaches, to tell what their mere
	// attachment costs a Write from what tlstap's programs do.
	modes = append(modes, strings.Fields(os.Getenv("TLSTAP_BENCH_DIAG"))...)
	if os.Getenv("TLSTAP_BENCH_STATS") != "" {
		// Diagnostic: the run time of tlstap's programs per run, as the
		// kernel counts it (it adds two clock reads to every run).
		st, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		progNs = map[string][]float64{}
		defer func() {
			for name, v := range progNs {
				b.ReportMetric(median(v), "prog-ns/"+name)
			}
		}()
	}
	var w, r, ww, rw = map[string][]float64{}, map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	var wm, rm = map[string][]float64{}, map[string][]float64{}
	ratios := map[string][]float64{}
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
			case "tlstap-quiet":
				stop = runTlstapQuiet(b, bin)
			default:
				if _, ok := caps[mode]; ok {
					stop = runBenchcap(b, caps[mode], bin)
					break
				}
				stop = diagMode(b, mode, bin, slices.Concat([]uint64{fns.Write.Body, fns.Read.Body}, fns.Read.Rets))
			}
			res := runGoBench(b, bin, calls)
			stop()
			w[mode], r[mode] = append(w[mode], res.writeCPU), append(r[mode], res.readCPU)
			ww[mode], rw[mode] = append(ww[mode], res.write), append(rw[mode], res.read)
			wm[mode], rm[mode] = append(wm[mode], res.writeMed), append(rm[mode], res.readMed)
		}
		ratios["write-tlstap/bare-entry"] = append(ratios["write-tlstap/bare-entry"], last(w["tlstap"])/last(w["bare-entry"]))
		for _, mode := range modes[3:] {
			ratios["write-"+mode+"/bare"] = append(ratios["write-"+mode+"/bare"], last(w[mode])/last(w["bare"]))
			ratios["read-"+mode+"/bare"] = append(ratios["read-"+mode+"/bare"], last(r[mode])/last(r["bare"]))
			ratios["med-write-"+mode+"/bare"] = append(ratios["med-write-"+mode+"/bare"], last(wm[mode])/last(wm["bare"]))
			ratios["med-read-"+mode+"/bare"] = append(ratios["med-read-"+mode+"/bare"], last(rm[mode])/last(rm["bare"]))
		}
	}
	for _, mode := range modes {
		b.ReportMetric(median(w[mode]), "cpu-ns/write-"+mode)
		b.ReportMetric(median(r[mode]), "cpu-ns/read-"+mode)
		b.ReportMetric(median(ww[mode]), "wall-ns/write-"+mode)
		b.ReportMetric(median(rw[mode]), "wall-ns/read-"+mode)
		b.ReportMetric(median(wm[mode]), "med-ns/write-"+mode)
		b.ReportMetric(median(rm[mode]), "med-ns/read-"+mode)
	}
	for name, v := range ratios {
		b.ReportMetric(median(v), name)
	}
	b.ReportMetric(0, "ns/op")
}

func last(v []float64) float64 { return v[len(v)-1] }

type goBenchResult struct{ write, read, writeCPU, readCPU, writeMed, readMed float64 }

// runGoBench runs `goprog bench calls` and returns its wall and thread CPU
// ns per Write and per Read.
func runGoBench(b *testing.B, bin string, calls int) goBenchResult {
	out, err := exec.Command(bin, "bench", fmt.Sprint(calls)).Output()
	if err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	var g goBenchResult
	if _, err := fmt.Sscanf(string(out), "write_ns=%g read_ns=%g write_cpu_ns=%g read_cpu_ns=%g write_med_ns=%g read_med_ns=%g",
		&g.write, &g.read, &g.writeCPU, &g.readCPU, &g.writeMed, &g.readMed); err != nil {
		b.Fatalf("%q: %v", out, err)
	}
	return g
}

// runBenchcap starts a benchcap binary attached to the Go program bin and
// returns what stops it.
func runBenchcap(b *testing.B, benchcap, bin string) (stop func()) {
	cmd := exec.Command(benchcap, "-go", bin, "-comm", "gt-bench")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("%s: %q, %v", benchcap, line, err)
	}
	return func() {
		cmd.Process.Signal(os.Interrupt)
		io.Copy(io.Discard, stdout) // its counters, up to EOF at its exit
		cmd.Wait()
	}
}

// benchSource returns tlstap's capture of the bench program bin, its
// probes attached, not running yet.
func benchSource(b *testing.B, bin string) *Source {
	src, err := New(Options{GoPrograms: []string{bin}, Filter: Filter{Comms: []string{"gt-bench"}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// runTlstap starts tlstap's capture of bin and returns what stops it.
func runTlstap(b *testing.B, bin string) (stop func()) {
	src := benchSource(b, bin)
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
	return func() { progStats(b, "tlstap", src); cancel(); <-done; <-drained }
}

// progNs holds, with TLSTAP_BENCH_STATS, each of tlstap's programs' ns per
// run, one entry per tlstap mode's run.
var progNs map[string][]float64

// progStats adds src's programs' run times to progNs, if it is collecting.
func progStats(b *testing.B, mode string, src *Source) {
	if progNs == nil {
		return
	}
	for name, p := range map[string]*ebpf.Program{
		"go_write_enter": src.objs.TlstapGoWriteEnter, "go_read_enter": src.objs.TlstapGoReadEnter,
		"go_read_return": src.objs.TlstapGoReadReturn, "sock_send": src.objs.TlstapSockSendLength,
		"sock_recv": src.objs.TlstapSockRecvLength,
	} {
		st, err := p.Stats()
		if err != nil {
			b.Fatal(err)
		}
		if st.RunCount > 0 {
			progNs[mode+"-"+name] = append(progNs[mode+"-"+name], float64(st.Runtime.Nanoseconds())/float64(st.RunCount))
			progNs[mode+"-"+name+"-runs"] = append(progNs[mode+"-"+name+"-runs"], float64(st.RunCount))
		}
	}
}

// runTlstapQuiet attaches tlstap's probes to bin but reads nothing until
// stop, with the reader marked awake so that no record wakes anyone: a
// diagnostic mode (TLSTAP_BENCH_DIAG=tlstap-quiet) telling what the probes
// cost a call from what the concurrent reader's work adds to it.
func runTlstapQuiet(b *testing.B, bin string) (stop func()) {
	src := benchSource(b, bin)
	var st [16]byte
	st[0] = 1
	if err := src.objs.TlstapReader.Put(uint32(0), st[:]); err != nil {
		b.Fatal(err)
	}
	return func() {
		progStats(b, "tlstap-quiet", src)
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan capture.Chunk, 4096)
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, out) }()
		for quiet := false; !quiet; {
			select {
			case <-out:
			case <-time.After(100 * time.Millisecond):
				quiet = true
			}
		}
		cancel()
		<-done
	}
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

// diagMode attaches, for a TLSTAP_BENCH_DIAG mode, the bare trap at the
// offsets and, for each +name in the mode, empty programs on: close, the
// syscalls:sys_enter_close tracepoint; sock, the tp_btf sock_send_length and
// sock_recv_length tracepoints; mmap, syscalls:sys_enter_mmap and
// sys_exit_mmap (the watcher's); exit, sched:sched_process_exit.
func diagMode(b *testing.B, mode, bin string, offsets []uint64) (stop func()) {
	parts := strings.Split(mode, "+")
	if parts[0] != "bare" {
		b.Fatalf("TLSTAP_BENCH_DIAG: %q: want bare+...", mode)
	}
	stops := []func(){bareTrap(b, bin, offsets...)}
	stop = func() {
		for _, s := range slices.Backward(stops) {
			s()
		}
	}
	empty := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	attach := func(spec *ebpf.ProgramSpec, do func(*ebpf.Program) (link.Link, error)) {
		spec.Instructions, spec.License = empty, "Dual BSD/GPL"
		prog, err := ebpf.NewProgram(spec)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		l, err := do(prog)
		if err != nil {
			prog.Close()
			stop()
			b.Fatal(err)
		}
		stops = append(stops, func() { l.Close(); prog.Close() })
	}
	tp := func(group, name string) {
		attach(&ebpf.ProgramSpec{Type: ebpf.TracePoint}, func(p *ebpf.Program) (link.Link, error) {
			return link.Tracepoint(group, name, p, nil)
		})
	}
	for _, part := range parts[1:] {
		switch part {
		case "close":
			tp("syscalls", "sys_enter_close")
		case "mmap":
			tp("syscalls", "sys_enter_mmap")
			tp("syscalls", "sys_exit_mmap")
		case "exit":
			tp("sched", "sched_process_exit")
		case "sock":
			for _, name := range []string{"sock_send_length", "sock_recv_length"} {
				attach(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: name},
					func(p *ebpf.Program) (link.Link, error) {
						return link.AttachTracing(link.TracingOptions{Program: p})
					})
			}
		default:
			stop()
			b.Fatalf("TLSTAP_BENCH_DIAG: %q: unknown part %q", mode, part)
		}
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
