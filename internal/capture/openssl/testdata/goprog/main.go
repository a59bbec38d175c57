// Command goprog is the Go HTTPS server and client that tlstap's Go capture
// tests build with several toolchains and flags. It uses only the standard
// library of Go 1.17 and later.
//
//	goprog serve              listen on 127.0.0.1, print "listening ADDR", serve until stdin closes
//	goprog get URL N h1|h2    N sequential GETs of URL/req/I, printing "conn LOCAL" per new connection
//	goprog stress ADDR G N    G goroutines share N HTTP/1.1 requests on their own connections,
//	                          reading each response a few bytes at a time from deep recursion
//	goprog bench N            time N 64-byte Writes and N 64-byte Reads of one loopback
//	                          connection, printing ns per call: wall and thread CPU
//	                          means, and the median of each call's own time
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: goprog serve|get|stress ..."))
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve()
	case "get":
		err = get(os.Args[2], atoi(os.Args[3]), os.Args[4] == "h2")
	case "stress":
		err = stress(os.Args[2], atoi(os.Args[3]), atoi(os.Args[4]))
	case "bench":
		err = bench(atoi(os.Args[2]))
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "goprog:", err)
	os.Exit(1)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

func serve() error {
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body := "pong " + r.URL.Path
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			io.WriteString(w, body)
		}),
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	return srv.ServeTLS(ln, "", "")
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func get(base string, n int, h2 bool) error {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	client := &http.Client{Transport: tr}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			fmt.Printf("conn %s\n", info.Conn.LocalAddr())
		}
	}}
	for i := 0; i < n; i++ {
		req, err := http.NewRequest("GET", fmt.Sprintf("%s/req/%d", base, i), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("pong /req/%d", i); string(b) != want || resp.ProtoMajor != map[bool]int{true: 2, false: 1}[h2] {
			return fmt.Errorf("got %s %q, want %q", resp.Proto, b, want)
		}
	}
	tr.CloseIdleConnections()
	fmt.Println("done")
	return nil
}

// stress runs g goroutines that together make n requests, each goroutine
// on its own connection. Between reads a goroutine recurses deeply, so its
// stack grows (and is copied) while its buffer lives on that stack. Each
// request is written by a fresh goroutine at a depth that sweeps, one small
// frame at a time, across the first stack sizes, so for some requests it
// is Write's own prologue that finds the stack too small and starts Write
// over after growing it.
func stress(addr string, g, n int) error {
	var next int64 = -1
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(n) {
					return
				}
				req := fmt.Appendf(nil, "GET /s/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
				wrote := make(chan error)
				go func() { wrote <- deepWrite(c, req, int(i%1024)) }()
				if err := <-wrote; err != nil {
					errs <- err
					return
				}
				want := fmt.Sprintf("pong /s/%d", i)
				if err := readResponse(c, want, 64+int(i%512)); err != nil {
					errs <- fmt.Errorf("request %d: %v", i, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Println("done")
	return nil
}

// readResponse reads one response whose body must be want, a few bytes
// per Read, recursing depth frames deep before each Read.
func readResponse(c *tls.Conn, want string, depth int) error {
	var got []byte
	for {
		if i := strings.Index(string(got), "\r\n\r\n"); i >= 0 {
			hdr := string(got[:i])
			j := strings.Index(strings.ToLower(hdr), "content-length: ")
			if j < 0 {
				return fmt.Errorf("no content-length in %q", hdr)
			}
			line := hdr[j+len("content-length: "):]
			if k := strings.Index(line, "\r\n"); k >= 0 {
				line = line[:k]
			}
			cl, err := strconv.Atoi(line)
			if err != nil {
				return err
			}
			if len(got) >= i+4+cl {
				if body := string(got[i+4 : i+4+cl]); body != want {
					return fmt.Errorf("body %q, want %q", body, want)
				}
				return nil
			}
		}
		b, err := deepRead(c, depth)
		if err != nil {
			return err
		}
		got = append(got, b...)
	}
}

// deepWrite recurses depth times in small frames, then writes b.
//
//go:noinline
func deepWrite(c *tls.Conn, b []byte, depth int) error {
	if depth > 0 {
		return deepWrite(c, b, depth-1)
	}
	_, err := c.Write(b)
	return err
}

// deepRead recurses depth times, then reads into a buffer on its stack.
//
//go:noinline
func deepRead(c *tls.Conn, depth int) ([]byte, error) {
	if depth > 0 {
		var pad [128]byte
		b, err := deepRead(c, depth-1)
		pad[depth%128] = byte(len(b))
		return b, err
	}
	var buf [16]byte
	n, err := c.Read(buf[:])
	out := make([]byte, n)
	copy(out, buf[:n])
	return out, err
}

// bench times tls.Conn.Write and Read on the client side of a loopback
// connection to a server in this process. Reads are timed on records the
// server sent beforehand, so they measure decryption and probes, not waiting.
func bench(n int) error {
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return err
	}
	defer ln.Close()
	msg := make([]byte, 64)
	sent := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer s.Close()
		buf := make([]byte, 64)
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(s, buf); err != nil {
				sent <- err
				return
			}
		}
		for i := 0; i < n; i++ {
			if _, err := s.Write(msg); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
		io.Copy(io.Discard, s)
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	defer c.Close()
	// The calls run on one locked thread, whose CPU time holds the traps
	// and the BPF programs they run, and little of other processes' load.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Each call is also timed on its own: the median call is what a call
	// costs when nothing else happens in it. A mean over the calls also
	// holds the rare ones into which an interrupt, a preemption or the
	// host (this guest reports no steal time, so it counts as the
	// thread's CPU) fell.
	calls := make([]int64, n)
	start, cpu := time.Now(), threadCPU()
	for i := 0; i < n; i++ {
		t := time.Now()
		if _, err := c.Write(msg); err != nil {
			return err
		}
		calls[i] = int64(time.Since(t))
	}
	write, writeCPU := time.Since(start), threadCPU()-cpu
	writeMed := median(calls)
	if err := <-sent; err != nil {
		return err
	}
	buf := make([]byte, 64)
	start, cpu = time.Now(), threadCPU()
	for i := 0; i < n; i++ {
		t := time.Now()
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		calls[i] = int64(time.Since(t))
	}
	read, readCPU := time.Since(start), threadCPU()-cpu
	readMed := median(calls)
	// What timing a call adds, taken off both medians.
	for i := range calls {
		t := time.Now()
		calls[i] = int64(time.Since(t))
	}
	clock := median(calls)
	fmt.Printf("write_ns=%d read_ns=%d write_cpu_ns=%d read_cpu_ns=%d write_med_ns=%d read_med_ns=%d\n", write.Nanoseconds()/int64(n),
		read.Nanoseconds()/int64(n), writeCPU/int64(n), readCPU/int64(n), writeMed-clock, readMed-clock)
	return nil
}

// median sorts v and returns its middle value.
func median(v []int64) int64 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

// threadCPU returns the calling thread's CPU time in ns
// (CLOCK_THREAD_CPUTIME_ID).
func threadCPU() int64 {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		fail(e)
	}
	return ts.Nano()
}
