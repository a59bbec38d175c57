package recording_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/recording"
	recordingpb "github.com/tlstap/tlstap/proto/gen/go/recording"
)

func sampleChunks() []capture.Chunk {
	return []capture.Chunk{
		{
			Time: 1_700_000_000_000_000_000, PID: 10, TID: 11, UID: 1000, Comm: "curl", FD: 3, Conn: 0xdead,
			Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: netip.MustParseAddrPort("127.0.0.1:443"),
			Dir: capture.Write, TLSVersion: 0x0304, Library: "gotls", Cgroup: 4242, Data: []byte("GET / HTTP/1.1\r\n\r\n"),
		},
		{
			Time: 1_700_000_000_001_000_000, PID: 10, TID: 12, Comm: "curl", FD: -1, Conn: 0xdead,
			Local: netip.MustParseAddrPort("[::1]:40001"), Remote: netip.MustParseAddrPort("[::1]:8443"),
			Dir: capture.Read, Data: []byte{0, 1, 2, 0xff},
		},
		{Time: 1_700_000_000_002_000_000, PID: 10, TID: 11, FD: 3, Conn: 0xdead, Kind: capture.Lost, LostBytes: 4096},
		{Time: 1_700_000_000_003_000_000, PID: 10, TID: 11, FD: 3, Conn: 0xdead, Kind: capture.Close},
	}
}

// write returns a recording of chunks.
func write(t testing.TB, chunks []capture.Chunk) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := recording.NewWriter(&buf, "test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range chunks {
		if err := w.Write(&chunks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(buf.Len()) {
		t.Errorf("Size() = %d, wrote %d bytes", w.Size(), buf.Len())
	}
	return buf.Bytes()
}

// readAll reads every chunk, returning the error that stopped it (nil at
// a clean end).
func readAll(data []byte) ([]capture.Chunk, error) {
	r, err := recording.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []capture.Chunk
	for {
		c, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

func TestRoundTrip(t *testing.T) {
	in := sampleChunks()
	data := write(t, in)
	r, err := recording.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.Producer() != "test" || r.Created() == 0 {
		t.Errorf("header producer %q created %d", r.Producer(), r.Created())
	}
	out, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i].Data == nil {
			in[i].Data = []byte{}
		}
	}
	for i := range out {
		if out[i].Data == nil {
			out[i].Data = []byte{}
		}
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestCommMadeValidUTF8(t *testing.T) {
	out, err := readAll(write(t, []capture.Chunk{{Comm: "a\xffb", FD: -1}}))
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Comm != "a\uFFFDb" {
		t.Errorf("comm %q", out[0].Comm)
	}
}

// record frames one marshaled Record.
func record(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

func header(version uint32) []byte {
	return record(&recordingpb.Record{Body: &recordingpb.Record_Header{Header: &recordingpb.Header{Version: version, Producer: "test"}}})
}

func chunkRecord(c *recordingpb.Chunk) []byte {
	return record(&recordingpb.Record{Body: &recordingpb.Record_Chunk{Chunk: c}})
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestCorrupt(t *testing.T) {
	good := write(t, sampleChunks())
	magic := []byte(recording.Magic)
	hdr := header(recording.Version)
	first := int64(len(magic) + len(hdr)) // offset of the first chunk
	okChunk := chunkRecord(&recordingpb.Chunk{Fd: -1, Data: []byte("x")})
	tests := []struct {
		name    string
		data    []byte
		offset  int64
		reason  string
		atChunk int // chunks read before the error
	}{
		{"empty file", nil, 0, "too short for the recording magic", 0},
		{"short magic", magic[:5], 5, "too short for the recording magic", 0},
		{"bad magic", cat([]byte("NOTTLSTP"), hdr), 0, "bad magic", 0},
		{"missing header", magic, 8, "missing header record", 0},
		{"bad version", cat(magic, header(99)), 8, "unsupported format version 99", 0},
		{"version zero", cat(magic, header(0)), 8, "unsupported format version 0", 0},
		{"first record not a header", cat(magic, okChunk), 8, "first record is not a header", 0},
		{"header record truncated", good[:len(magic)+3], 8, "truncated record", 0},
		{"truncated in a record", good[:len(good)-3], -1, "truncated record", 3},
		{"truncated in a length", cat(magic, hdr, []byte{0x80}), first, "truncated record length", 0},
		{"length overflows varint", cat(magic, hdr, bytes.Repeat([]byte{0xff}, 11)), first, "truncated or invalid record length", 0},
		{"length beyond the limit", cat(magic, hdr, binary.AppendUvarint(nil, recording.MaxRecord+1)), first, "exceeds the", 0},
		{"empty record", cat(magic, hdr, []byte{0}), first, "empty record", 0},
		{"garbage record", cat(magic, hdr, []byte{3, 0xff, 0xff, 0xff}), first, "not valid protobuf", 0},
		{"second header", cat(magic, hdr, okChunk, hdr), first + int64(len(okChunk)), "record is not a chunk", 1},
		{"bad direction", cat(magic, hdr, chunkRecord(&recordingpb.Chunk{Dir: 7})), first, "invalid direction 7", 0},
		{"bad kind", cat(magic, hdr, chunkRecord(&recordingpb.Chunk{Kind: 9})), first, "invalid chunk kind 9", 0},
		{"bad local address", cat(magic, hdr, chunkRecord(&recordingpb.Chunk{LocalIp: []byte{1, 2, 3}})), first, "invalid local address", 0},
		{"port without address", cat(magic, hdr, chunkRecord(&recordingpb.Chunk{RemotePort: 80})), first, "invalid remote address", 0},
		{"port out of range", cat(magic, hdr, chunkRecord(&recordingpb.Chunk{RemoteIp: []byte{127, 0, 0, 1}, RemotePort: 70000})), first, "invalid remote address", 0},
		{"bad TLS version", cat(magic, hdr, chunkRecord(&recordingpb.Chunk{TlsVersion: 0x10000})), first, "invalid TLS version", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := readAll(tt.data)
			var ce *recording.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *CorruptError", err, err)
			}
			want := tt.offset
			if want < 0 { // the last record's offset
				want = lastRecordOffset(t, good)
			}
			if ce.Offset != want {
				t.Errorf("offset %d, want %d (%v)", ce.Offset, want, err)
			}
			if !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("reason %q, want it to mention %q", ce.Reason, tt.reason)
			}
			if msg := err.Error(); !strings.Contains(msg, "byte offset") {
				t.Errorf("message %q does not name the byte offset", msg)
			}
			if len(out) != tt.atChunk {
				t.Errorf("read %d chunks before the error, want %d", len(out), tt.atChunk)
			}
		})
	}
}

// lastRecordOffset walks a good recording's framing.
func lastRecordOffset(t *testing.T, data []byte) int64 {
	off, last := len(recording.Magic), 0
	for off < len(data) {
		n, k := binary.Uvarint(data[off:])
		if k <= 0 {
			t.Fatal("bad framing in a good recording")
		}
		last = off
		off += k + int(n)
	}
	return int64(last)
}

func TestOffsetAdvances(t *testing.T) {
	data := write(t, sampleChunks())
	r, err := recording.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	prev := r.Offset()
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Offset() <= prev {
			t.Fatalf("offset %d after %d", r.Offset(), prev)
		}
		prev = r.Offset()
	}
	if prev != int64(len(data)) {
		t.Errorf("final offset %d, file is %d bytes", prev, len(data))
	}
}

// TestTornTail: a recording cut anywhere after its header — what kill -9
// of the writer leaves — yields every record that is wholly before the
// cut, then a CorruptError marked Torn at the cut record's offset.
func TestTornTail(t *testing.T) {
	good := write(t, sampleChunks())
	// Record boundaries after the magic: the header's end, then each chunk's.
	var ends []int
	for off := len(recording.Magic); off < len(good); {
		n, k := binary.Uvarint(good[off:])
		off += k + int(n)
		ends = append(ends, off)
	}
	for cut := ends[0] + 1; cut < len(good); cut++ {
		complete := 0
		for _, e := range ends[1:] {
			if e <= cut {
				complete++
			}
		}
		out, err := readAll(good[:cut])
		var ce *recording.CorruptError
		switch {
		case slices.Contains(ends, cut):
			if err != nil {
				t.Errorf("cut at a record boundary %d: %v", cut, err)
			}
		case !errors.As(err, &ce) || !ce.Torn:
			t.Errorf("cut at %d: error %v, want a torn tail", cut, err)
		case ce.Offset != int64(ends[complete]):
			t.Errorf("cut at %d: offset %d, want %d", cut, ce.Offset, ends[complete])
		case !strings.Contains(err.Error(), "tail cut at byte offset"):
			t.Errorf("cut at %d: message %q does not say the tail was cut", cut, err)
		}
		if len(out) != complete {
			t.Errorf("cut at %d: %d chunks, want the %d complete ones", cut, len(out), complete)
		}
	}
}

// TestCorruptIsNotTorn: garbage inside the file is corruption, not a cut.
func TestCorruptIsNotTorn(t *testing.T) {
	good := write(t, sampleChunks())
	hdrEnd := len(recording.Magic) + 1 + int(good[len(recording.Magic)])
	bad := cat(good[:hdrEnd], []byte{3, 0xff, 0xff, 0xff}, good[hdrEnd:])
	_, err := readAll(bad)
	var ce *recording.CorruptError
	if !errors.As(err, &ce) || ce.Torn {
		t.Fatalf("error %v, want corruption that is not a torn tail", err)
	}
}

// TestWriteFuzzSeeds keeps the checked-in seed corpus in step with the
// writer: with -update it rewrites the seeds from real recordings.
func TestWriteFuzzSeeds(t *testing.T) {
	good := write(t, sampleChunks())
	seeds := map[string][]byte{
		"good":           good,
		"truncated":      good[:len(good)-5],
		"bad-magic":      append([]byte("TLSTAPR0"), good[8:]...),
		"bad-version":    cat([]byte(recording.Magic), header(2)),
		"corrupt-length": cat(good[:len(recording.Magic)], []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, good[len(recording.Magic)+1:]),
		"magic-only":     []byte(recording.Magic),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	for name, data := range seeds {
		// The header holds the time the recording was made, so a seed is
		// only rewritten with -update, never compared.
		path := filepath.Join(dir, name)
		if *golden.Update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, golden.FuzzSeed(data), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("seed %s missing (run go test -run TestWriteFuzzSeeds -update): %v", name, err)
		}
	}
}

// FuzzReader: no input may panic or hang the reader; every failure is a
// CorruptError naming an offset inside the file.
func FuzzReader(f *testing.F) {
	f.Add(write(f, sampleChunks()))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := recording.NewReader(bytes.NewReader(data))
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF {
			return
		}
		var ce *recording.CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T) is not a CorruptError", err, err)
		}
		if ce.Offset < 0 || ce.Offset > int64(len(data)) {
			t.Fatalf("offset %d outside a %d-byte file", ce.Offset, len(data))
		}
	})
}
