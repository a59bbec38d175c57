package delim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	msgs := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{0xab}, 300), []byte("last")}
	var appended, written bytes.Buffer
	for _, m := range msgs {
		appended.Write(Append(nil, m))
		n, err := Write(&written, m)
		if err != nil || n != len(Append(nil, m)) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(m), n, err)
		}
	}
	if !bytes.Equal(appended.Bytes(), written.Bytes()) {
		t.Fatal("Append and Write frame differently")
	}
	// A reader that returns one byte at a time exercises every boundary.
	r := NewReader(iotest.OneByteReader(&written), 1<<10)
	var off int64
	for i, want := range msgs {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d = %q, want %q", i, got, want)
		}
		off += int64(len(Append(nil, want)))
		if r.Offset() != off {
			t.Fatalf("after frame %d: offset %d, want %d", i, r.Offset(), off)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

func TestErrors(t *testing.T) {
	good := Append(nil, []byte("hello"))
	for _, tt := range []struct {
		name   string
		in     []byte
		max    int
		offset int64 // of the bad frame
		err    error
		torn   bool
		len    uint64
		read   int
		msg    string
	}{
		{"cut in the prefix", slices.Concat(good, []byte{0x80}), 100, 6, io.ErrUnexpectedEOF, true, 0, 0, "inside its length prefix"},
		{"cut in the body", slices.Concat(good, []byte{5, 'a', 'b'}), 100, 6, io.ErrUnexpectedEOF, true, 5, 2, "ends after 2 of its 5 bytes"},
		{"above the limit", slices.Concat(good, binary.AppendUvarint(nil, 101)), 100, 6, ErrTooLarge, false, 101, 0, "length 101 exceeds"},
		{"overflowing prefix", slices.Concat(good, bytes.Repeat([]byte{0xff}, 10)), 100, 6, ErrBadLength, false, 0, 0, "invalid length prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.in), tt.max)
			if _, err := r.Next(); err != nil {
				t.Fatalf("first frame: %v", err)
			}
			_, err := r.Next()
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FrameError", err)
			}
			if fe.Offset != tt.offset || !errors.Is(err, tt.err) || fe.Torn() != tt.torn || fe.Len != tt.len || fe.Read != tt.read {
				t.Errorf("got %+v (torn %v), want offset %d err %v torn %v len %d read %d", fe, fe.Torn(), tt.offset, tt.err, tt.torn, tt.len, tt.read)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "offset 6") {
				t.Errorf("message %q lacks %q or the offset", err, tt.msg)
			}
		})
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(iotest.ErrReader(boom), 10)
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	r = NewReader(io.MultiReader(bytes.NewReader([]byte{4, 'a'}), iotest.ErrReader(boom)), 10)
	_, err := r.Next()
	var fe *FrameError
	if !errors.As(err, &fe) || !errors.Is(err, boom) || fe.Torn() || fe.Len != 4 || fe.Read != 1 {
		t.Fatalf("err = %#v", err)
	}
}

func TestSetMax(t *testing.T) {
	in := Append(nil, make([]byte, 50))
	r := NewReader(bytes.NewReader(in), 100)
	r.SetMax(10)
	if _, err := r.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// FuzzReader: no input may panic the reader or make it return a frame
// above its limit; every error is io.EOF at the very end or a FrameError
// inside the input, and each frame consumes its body and at least one
// prefix byte (non-minimal prefixes such as 0x80 0x00 are accepted, as
// encoding/binary reads them).
func FuzzReader(f *testing.F) {
	f.Add(Append(Append(nil, []byte("a")), []byte("bc")))
	f.Add([]byte{0x80})
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	f.Add([]byte{3, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 12
		r := NewReader(bytes.NewReader(data), max)
		for {
			start := r.Offset()
			b, err := r.Next()
			if err == io.EOF {
				if r.Offset() != int64(len(data)) {
					t.Fatalf("EOF at offset %d of %d", r.Offset(), len(data))
				}
				return
			}
			if err != nil {
				var fe *FrameError
				if !errors.As(err, &fe) || fe.Offset != start || fe.Offset >= int64(len(data)) {
					t.Fatalf("error %v at offset %d of the %d-byte input", err, start, len(data))
				}
				return
			}
			if len(b) > max {
				t.Fatalf("frame of %d bytes above the %d limit", len(b), max)
			}
			if n := r.Offset() - start; n < int64(len(b))+1 || !bytes.Equal(b, data[r.Offset()-int64(len(b)):r.Offset()]) {
				t.Fatalf("frame at %d: %d bytes consumed for a %d-byte body that is not the input's", start, n, len(b))
			}
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var stream []byte
	msg := bytes.Repeat([]byte("x"), 512)
	for range 1000 {
		stream = Append(stream, msg)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(stream), 1<<20)
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
