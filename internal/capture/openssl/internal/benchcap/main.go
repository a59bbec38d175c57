// Command benchcap runs the openssl capture source and throws the chunks
// away, for scripts/bench-capture.sh. It prints "ready" once attached and,
// on SIGINT or SIGTERM, one line of counters.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/openssl"
)

func main() {
	ring := flag.Int("ring", 0, "ring buffer bytes (0: default)")
	lib := flag.String("lib", "", "library to attach (default: discover)")
	goProg := flag.String("go", "", "Go executable to attach to (for a Go benchmark)")
	comm := flag.String("comm", "", "capture only processes of this name")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := openssl.Options{RingBytes: *ring}
	if *lib != "" {
		opts.Libs = []string{*lib}
	}
	if *goProg != "" {
		opts.GoPrograms = []string{*goProg}
	}
	if *comm != "" {
		opts.Filter = openssl.Filter{Comms: []string{*comm}}
	}
	src, err := openssl.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	out := make(chan capture.Chunk, 4096)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()

	var chunks, bytes, lost uint64
	var first, last time.Time
	fmt.Println("ready")
	for {
		select {
		case c := <-out:
			if c.Kind == capture.Data {
				if chunks == 0 {
					first = time.Now()
				}
				chunks++
				bytes += uint64(len(c.Data))
				last = time.Now()
			}
			lost += c.LostBytes
		case err := <-done:
			if err != nil {
				log.Fatal(err)
			}
			st := src.Stats()
			rate := 0.0
			if d := last.Sub(first).Seconds(); d > 0 {
				rate = float64(chunks) / d
			}
			fmt.Printf("chunks=%d bytes=%d lost_chunks_bytes=%d events_per_s=%.0f calls=%d ring_records=%d lost_ring_bytes=%d lost_ring_records=%d lost_cap=%d lost_fault=%d lost_notices=%d\n",
				chunks, bytes, lost, rate, st.Calls, st.Records, st.LostRingBytes, st.LostRingRecords, st.LostCapBytes, st.LostFaultBytes, st.LostNotices)
			return
		}
	}
}
