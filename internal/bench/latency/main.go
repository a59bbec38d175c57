package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/tlstap/tlstap/client"
)

// blockingReader: see startTool; -poller-reader turns it off.
var blockingReader = true

// rtObservers: see observe.go; -observer normal turns them off.
var rtObservers = true

// nobody runs the traffic; tlstap captures only this uid.
const nobody = 65534

func main() {
	var (
		bin      = flag.String("tlstap", "", "tlstap binary under test")
		baseline = flag.String("baseline", "", "baseline tlstap binary, measured in the same run")
		runs     = flag.Int("runs", 3, "runs per tool; figures are medians over runs")
		single   = flag.Int("single", 20, "single requests per protocol")
		load     = flag.Int("load", 20000, "h2load requests per protocol; 0 skips the load phase")
		idle     = flag.Duration("idle", 60*time.Second, "idle time whose CPU is measured (once per tool)")
		poller   = flag.Bool("poller-reader", false, "read tlstap's standard output through Go's poller, as before session 6, rather than with blocking reads")
		observer = flag.String("observer", "rt", "how the bench reads both outputs: rt (real-time threads, blocking reads, timed by the read) or normal (as before session 7)")
		also     = flag.String("also", "", "also measure the -tlstap binary with these extra flags (space-separated, e.g. --realtime), as a third tool in the same runs")
		raw      = flag.String("raw", "", "also write every single-request sample to this file, one per line: tool run protocol output request pname type ms timestamp")
	)
	flag.Parse()
	runtime.GOMAXPROCS(runtime.NumCPU() + spareProcs)
	blockingReader = !*poller
	switch *observer {
	case "rt":
		if *poller {
			log.Fatal("-poller-reader needs -observer normal")
		}
	case "normal":
		rtObservers = false
	default:
		log.Fatalf("-observer %q: want rt or normal", *observer)
	}
	if *bin == "" || *baseline == "" {
		log.Fatal("need -tlstap and -baseline")
	}
	dir, err := os.MkdirTemp("", "tlstap-bench-latency-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // nginx runs as nobody
		log.Fatal(err)
	}
	ngx, err := startNginx(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer ngx.stop()

	type tool struct {
		bin   string
		flags []string
	}
	tools := []tool{{bin: *baseline}, {bin: *bin}}
	names := []string{"baseline", "tlstap"}
	if *also != "" {
		tools = append(tools, tool{bin: *bin, flags: strings.Fields(*also)})
		names = append(names, "tlstap_"+strings.Join(strings.Fields(strings.ReplaceAll(*also, "-", "")), "_"))
	}
	res := make([]*results, len(tools))
	for i := range res {
		res[i] = &results{}
	}
	for r := range *runs {
		for i, t := range tools {
			log.Printf("run %d/%d: %s", r+1, *runs, names[i])
			idleFor := time.Duration(0)
			if r == 0 {
				idleFor = *idle
			}
			if err := measure(t.bin, t.flags, dir, ngx, r, *single, *load, idleFor, res[i]); err != nil {
				log.Fatalf("%s: %v", names[i], err)
			}
		}
	}
	report(os.Stdout, names, res, *runs, *single, *load, *idle)
	if *raw != "" {
		if err := writeRaw(*raw, names, res); err != nil {
			log.Fatal(err)
		}
	}
}

// writeRaw writes every single-request sample, to see which events make
// the tail.
func writeRaw(path string, names []string, res []*results) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i, n := range names {
		for _, p := range protocols {
			for _, s := range res[i].single[p.name].samples {
				fmt.Fprintf(w, "%s %d %s %s %d %s %d %s %d\n", n, s.run, strings.ReplaceAll(p.name, " ", "_"), s.output, s.request, s.pname, s.typ, ms(s.d), s.ts)
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// results accumulate one tool's figures over runs.
type results struct {
	single map[string]*latencies // by protocol
	load   map[string][]loadRun  // by protocol, one per run
	idle   time.Duration
}

type latencies struct {
	stdout, stream []time.Duration
	samples        []sample
	switches       int // the tool's context switches, all threads
	requests       int
}

// sample is one event's latency, for -raw.
type sample struct {
	run, request int
	output       string // stdout or stream
	pname        string
	typ          int
	ts           int64 // the event's capture timestamp, Unix ns
	d            time.Duration
}

type loadRun struct {
	reqPerSec    float64
	cpu          time.Duration
	events       int
	stdout       []time.Duration
	stream       []time.Duration
	streamEvents int
}

var protocols = []struct{ name, curl, h2load string }{
	{"HTTP/1.1", "--http1.1", "--h1"},
	{"HTTP/2", "--http2", ""},
}

// measure runs one tool through every phase.
func measure(bin string, flags []string, dir string, ngx *nginx, run, single, load int, idle time.Duration, res *results) error {
	tl, err := startTool(bin, flags, dir)
	if err != nil {
		return err
	}
	defer tl.stop()
	if res.single == nil {
		res.single, res.load = map[string]*latencies{}, map[string][]loadRun{}
	}

	for _, p := range protocols {
		tl.reset()
		sw0 := tl.switches()
		l := res.single[p.name]
		if l == nil {
			l = &latencies{}
			res.single[p.name] = l
		}
		for req := range single {
			// Four events per request: both ends' request and response.
			want := tl.count() + 4
			cmd := exec.Command("curl", "-sS", "-k", p.curl, "-o", "/dev/null", ngx.url)
			asNobody(cmd)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("curl: %v: %s", err, out)
			}
			tl.waitCount(want, 5*time.Second)
			time.Sleep(50 * time.Millisecond) // each request on its own
			for _, s := range tl.takeSamples() {
				s.run, s.request = run, req
				l.samples = append(l.samples, s)
			}
		}
		out, st := tl.take()
		l.stdout, l.stream = append(l.stdout, out...), append(l.stream, st...)
		l.switches += tl.switches() - sw0
		l.requests += single
	}

	for _, p := range protocols {
		if load == 0 {
			break
		}
		tl.reset()
		cpu0 := tl.cpu()
		args := []string{"-n", strconv.Itoa(load), "-c", "10", "-t", "1"}
		if p.h2load != "" {
			args = append(args, p.h2load)
		}
		cmd := exec.Command("h2load", append(args, ngx.url)...)
		asNobody(cmd)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("h2load: %v: %s", err, out)
		}
		rps, err := reqPerSec(out)
		if err != nil {
			return err
		}
		tl.waitQuiet(time.Second)
		cpu := tl.cpu() - cpu0
		o, s := tl.take()
		res.load[p.name] = append(res.load[p.name], loadRun{reqPerSec: rps, cpu: cpu, events: len(o), stdout: o, stream: s, streamEvents: len(s)})
	}

	if idle > 0 {
		// Start-up and the load phases' after-effects (GC, the scavenger
		// returning memory) are not idleness: let them settle first.
		time.Sleep(5 * time.Second)
		cpu0 := tl.cpu()
		time.Sleep(idle)
		res.idle = tl.cpu() - cpu0
	}
	return nil
}

var finished = regexp.MustCompile(`finished in [^,]+, ([0-9.]+) req/s`)

func reqPerSec(out []byte) (float64, error) {
	m := finished.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no throughput in h2load's output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func asNobody(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
}

// tool is a running tlstap with its stdout and one stream client read.
type tool struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu             sync.Mutex
	stdout, stream []time.Duration
	samples        []sample
	lines          int
	pending        []arrival
}

func startTool(bin string, flags []string, dir string) (*tool, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "state")
	cmd := exec.Command(bin, append([]string{"tls", "--uid", strconv.Itoa(nobody), "-o", "json", "--listen", addr,
		"--tls=false", "--auth", "none", "--state-dir", state, "--log-level", "warn", "--client-queue", "1000000"}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if blockingReader {
		// Fd puts the pipe in blocking mode: each read blocks its thread
		// in the kernel, which the pipe write wakes directly, instead of
		// parking in Go's poller, whose wake-up is a chain of thread
		// hand-offs of its own (the same as tlstap's, issue 19).
		stdout.(*os.File).Fd()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &tool{cmd: cmd, cancel: cancel}
	if rtObservers {
		t.wg.Go(func() { t.readStdoutRT(stdout) })
	} else {
		t.wg.Go(func() { t.readStdout(stdout) })
	}

	// The listener answers once capture is attached (the API and stream
	// start after the probes).
	url := "ws://" + addr + "/ws"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if rtObservers {
			var ws *websocket.Conn
			var bc *blockingConn
			ws, bc, err = dialStreamRT(ctx, url)
			if err == nil {
				t.wg.Go(func() { t.readStreamRT(ctx, ws, bc) })
				return t, nil
			}
		} else {
			var c *client.Client
			c, err = client.Dial(ctx, client.Options{URL: url, NoReconnect: true, Buffer: 1 << 16})
			if err == nil {
				t.wg.Go(func() { t.readStream(ctx, c) })
				return t, nil
			}
		}
		if time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("stream client: %w", err)
		}
	}
}

func (t *tool) readStdout(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		t.arrived(bytes.Clone(sc.Bytes()), time.Now().UnixNano(), false)
	}
}

func (t *tool) readStream(ctx context.Context, c *client.Client) {
	defer c.Close()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		t.mu.Lock()
		t.message(m, now)
		t.mu.Unlock()
	}
}

func (t *tool) reset() { t.take() }

func (t *tool) take() (stdout, stream []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parse()
	stdout, stream = t.stdout, t.stream
	t.stdout, t.stream, t.samples = nil, nil, nil
	return stdout, stream
}

func (t *tool) takeSamples() []sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parse()
	s := t.samples
	t.samples = nil
	return s
}

func (t *tool) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parse()
	return t.lines
}

// waitCount waits until n lines have arrived on stdout, or d passed.
func (t *tool) waitCount(n int, d time.Duration) {
	for end := time.Now().Add(d); t.count() < n && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
}

// waitQuiet waits until no line arrived for d.
func (t *tool) waitQuiet(d time.Duration) {
	last, since := t.count(), time.Now()
	for time.Since(since) < d {
		time.Sleep(50 * time.Millisecond)
		if n := t.count(); n != last {
			last, since = n, time.Now()
		}
	}
}

// cpu is the process's user plus system time so far.
func (t *tool) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", t.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 12th and 13th, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// switches is the number of context switches, voluntary and not, of the
// tool's threads so far (those that exited are not counted; Go's rarely do).
func (t *tool) switches() int {
	dir := fmt.Sprintf("/proc/%d/task", t.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.Atoi(strings.TrimSpace(v))
				n += c
			}
		}
	}
	return n
}

func (t *tool) stop() {
	t.cancel()
	t.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.cmd.Process.Kill()
		<-done
	}
	t.wg.Wait()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// nginx is a private nginx serving one small file over TLS, HTTP/1.1 and
// HTTP/2, as nobody.
type nginx struct {
	cmd *exec.Cmd
	url string
}

func startNginx(dir string) (*nginx, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "www")
	for _, d := range []string{root, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			return nil, err
		}
		os.Chmod(d, 0o777)
	}
	if err := os.WriteFile(filepath.Join(root, "f.txt"), []byte(strings.Repeat("latency\n", 32)), 0o644); err != nil {
		return nil, err
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("openssl req: %v: %s", err, out)
	}
	os.Chmod(key, 0o644)
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	sendfile off;
	keepalive_requests 1000000;
	server {
		listen %[2]s ssl http2;
		ssl_certificate %[3]s;
		ssl_certificate_key %[4]s;
		root %[5]s;
	}
}
`, dir, addr, cert, key, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", confPath, "-e", "stderr")
	asNobody(cmd)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for end := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(end) {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, errors.New("nginx did not start listening")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &nginx{cmd: cmd, url: "https://" + addr + "/f.txt"}, nil
}

func (n *nginx) stop() {
	n.cmd.Process.Signal(syscall.SIGQUIT)
	n.cmd.Wait()
}

// percentile returns the q-quantile (nearest rank) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median[T int | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func report(w io.Writer, names []string, res []*results, runs, single, load int, idle time.Duration) {
	fmt.Fprintf(w, "Single requests (%d curls per protocol and run, %d runs, 4 events each), ms from capture timestamp:\n\n", single, runs)
	fmt.Fprintln(w, "| tool | protocol | stdout p50 | stdout p99 | stream p50 | stream p99 | events stdout/stream | tool context switches per request |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, p := range protocols {
		for i, n := range names {
			l := res[i].single[p.name]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d/%d | %.1f |\n", n, p.name,
				ms(percentile(l.stdout, 0.5)), ms(percentile(l.stdout, 0.99)),
				ms(percentile(l.stream, 0.5)), ms(percentile(l.stream, 0.99)), len(l.stdout), len(l.stream),
				float64(l.switches)/float64(max(l.requests, 1)))
		}
	}
	if load > 0 {
		reportLoad(w, names, res, runs, load)
	}
	if idle <= 0 {
		return
	}
	fmt.Fprintf(w, "\nIdle for %s (no captured traffic): tool CPU time\n\n", idle)
	for i, n := range names {
		fmt.Fprintf(w, "- %s: %.2f s (%.3f %% of one core)\n", n, res[i].idle.Seconds(), 100*res[i].idle.Seconds()/idle.Seconds())
	}
}

func reportLoad(w io.Writer, names []string, res []*results, runs, load int) {
	fmt.Fprintf(w, "\nUnder load (h2load -n %d -c 10 -t 1), medians of %d runs; latency in ms from capture timestamp:\n\n", load, runs)
	fmt.Fprintln(w, "| tool | protocol | req/s | tool CPU s | events stdout | stdout p50 | stdout p99 | stream p50 | stream p99 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, p := range protocols {
		for i, n := range names {
			var rps []float64
			var cpu, o50, o99, s50, s99 []time.Duration
			var evs []int
			for _, r := range res[i].load[p.name] {
				rps = append(rps, r.reqPerSec)
				cpu = append(cpu, r.cpu)
				evs = append(evs, r.events)
				o50, o99 = append(o50, percentile(r.stdout, 0.5)), append(o99, percentile(r.stdout, 0.99))
				s50, s99 = append(s50, percentile(r.stream, 0.5)), append(s99, percentile(r.stream, 0.99))
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %.2f | %d | %s | %s | %s | %s |\n", n, p.name, median(rps), median(cpu).Seconds(),
				median(evs), ms(median(o50)), ms(median(o99)), ms(median(s50)), ms(median(s99)))
		}
	}
}
