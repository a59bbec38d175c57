package recording

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/capture"
	recordingpb "github.com/tlstap/tlstap/proto/gen/go/recording"
)

// CorruptError reports where and why a recording could not be read.
type CorruptError struct {
	// Offset is the byte offset of the record (or magic) that is bad.
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("recording: corrupt at byte offset %d: %s", e.Offset, e.Reason)
}

// Reader reads chunks from a recording.
type Reader struct {
	r      *bufio.Reader
	off    int64
	header *recordingpb.Header
	buf    []byte
	rec    recordingpb.Record
}

// NewReader checks the magic and reads the header.
func NewReader(r io.Reader) (*Reader, error) {
	rr := &Reader{r: bufio.NewReaderSize(r, 64<<10)}
	magic := make([]byte, len(Magic))
	if n, err := io.ReadFull(rr.r, magic); err != nil {
		return nil, &CorruptError{Offset: int64(n), Reason: "file too short for the recording magic (not a tlstap recording?)"}
	}
	if string(magic) != Magic {
		return nil, &CorruptError{Offset: 0, Reason: fmt.Sprintf("bad magic %q, want %q (not a tlstap recording)", magic, Magic)}
	}
	rr.off = int64(len(Magic))
	start := rr.off
	rec, err := rr.next()
	if err == io.EOF {
		return nil, &CorruptError{Offset: start, Reason: "missing header record"}
	}
	if err != nil {
		return nil, err
	}
	h := rec.GetHeader()
	if h == nil {
		return nil, &CorruptError{Offset: start, Reason: "first record is not a header"}
	}
	if h.GetVersion() != Version {
		return nil, &CorruptError{Offset: start, Reason: fmt.Sprintf("unsupported format version %d (this tlstap reads version %d)", h.GetVersion(), Version)}
	}
	rr.header = proto.CloneOf(h)
	return rr, nil
}

// Producer returns what wrote the recording.
func (r *Reader) Producer() string { return r.header.GetProducer() }

// Created returns when the recording started, in Unix ns.
func (r *Reader) Created() int64 { return r.header.GetCreated() }

// Offset returns the byte offset of the next record.
func (r *Reader) Offset() int64 { return r.off }

// next reads one record. The returned record is reused by the next call.
func (r *Reader) next() (*recordingpb.Record, error) {
	start := r.off
	n, err := binary.ReadUvarint(r.r)
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err != nil:
		return nil, &CorruptError{Offset: start, Reason: "truncated or invalid record length"}
	case n == 0:
		return nil, &CorruptError{Offset: start, Reason: "empty record"}
	case n > MaxRecord:
		return nil, &CorruptError{Offset: start, Reason: fmt.Sprintf("record length %d exceeds the %d-byte limit", n, MaxRecord)}
	}
	hdr := int64(uvarintLen(n))
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if got, err := io.ReadFull(r.r, r.buf); err != nil {
		return nil, &CorruptError{Offset: start, Reason: fmt.Sprintf("truncated record: want %d bytes, file ends after %d", n, got)}
	}
	r.rec.Reset()
	if err := (proto.UnmarshalOptions{}).Unmarshal(r.buf, &r.rec); err != nil {
		return nil, &CorruptError{Offset: start, Reason: "record is not valid protobuf: " + err.Error()}
	}
	r.off += hdr + int64(n)
	return &r.rec, nil
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// Next returns the next chunk, or io.EOF at a clean end. Chunk.Data is
// owned by the caller.
func (r *Reader) Next() (capture.Chunk, error) {
	start := r.off
	rec, err := r.next()
	if err != nil {
		return capture.Chunk{}, err
	}
	pc := rec.GetChunk()
	if pc == nil {
		return capture.Chunk{}, &CorruptError{Offset: start, Reason: "record is not a chunk"}
	}
	c, err := fromPB(pc)
	if err != nil {
		return capture.Chunk{}, &CorruptError{Offset: start, Reason: err.Error()}
	}
	return c, nil
}

func fromPB(pc *recordingpb.Chunk) (capture.Chunk, error) {
	local, ok := addrPort(pc.GetLocalIp(), pc.GetLocalPort())
	if !ok {
		return capture.Chunk{}, errors.New("invalid local address")
	}
	remote, ok := addrPort(pc.GetRemoteIp(), pc.GetRemotePort())
	if !ok {
		return capture.Chunk{}, errors.New("invalid remote address")
	}
	if pc.GetDir() > recordingpb.Direction_DIRECTION_WRITE {
		return capture.Chunk{}, fmt.Errorf("invalid direction %d", pc.GetDir())
	}
	if pc.GetKind() > recordingpb.Kind_KIND_LOST {
		return capture.Chunk{}, fmt.Errorf("invalid chunk kind %d", pc.GetKind())
	}
	if pc.GetTlsVersion() > 0xffff {
		return capture.Chunk{}, fmt.Errorf("invalid TLS version %#x", pc.GetTlsVersion())
	}
	return capture.Chunk{
		Time:       pc.GetTime(),
		PID:        pc.GetPid(),
		TID:        pc.GetTid(),
		UID:        pc.GetUid(),
		Comm:       pc.GetComm(),
		FD:         pc.GetFd(),
		Conn:       pc.GetConn(),
		Local:      local,
		Remote:     remote,
		Dir:        capture.Direction(pc.GetDir()),
		Kind:       capture.Kind(pc.GetKind()),
		TLSVersion: uint16(pc.GetTlsVersion()),
		LostBytes:  pc.GetLostBytes(),
		Data:       append([]byte(nil), pc.GetData()...),
		Library:    pc.GetTlsLibrary(),
	}, nil
}
