package recording_test

import (
	"bytes"
	"io"
	"net/netip"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/recording"
)

// benchChunks are 1000 chunks of 1 KiB, the size of a typical HTTP
// message's chunk.
func benchChunks() []capture.Chunk {
	cs := make([]capture.Chunk, 1000)
	for i := range cs {
		cs[i] = capture.Chunk{
			Time: int64(i) * 1000, PID: 42, TID: 43, Comm: "curl", FD: 5, Conn: 0xabc,
			Local:  netip.MustParseAddrPort("127.0.0.1:40000"),
			Remote: netip.MustParseAddrPort("127.0.0.1:443"),
			Dir:    capture.Direction(i & 1), Data: bytes.Repeat([]byte{'x'}, 1024),
		}
	}
	return cs
}

func BenchmarkWriter(b *testing.B) {
	cs := benchChunks()
	b.SetBytes(int64(len(cs)) * 1024)
	b.ReportAllocs()
	for b.Loop() {
		w, err := recording.NewWriter(io.Discard, "bench")
		if err != nil {
			b.Fatal(err)
		}
		for i := range cs {
			if err := w.Write(&cs[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	cs := benchChunks()
	var file bytes.Buffer
	w, err := recording.NewWriter(&file, "bench")
	if err != nil {
		b.Fatal(err)
	}
	for i := range cs {
		if err := w.Write(&cs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(cs)) * 1024)
	b.ReportAllocs()
	for b.Loop() {
		r, err := recording.NewReader(bytes.NewReader(file.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(cs) {
			b.Fatalf("read %d chunks, want %d", n, len(cs))
		}
	}
}
