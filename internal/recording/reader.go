package recording

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/delim"
	recordingpb "github.com/tlstap/tlstap/proto/gen/go/recording"
)

// CorruptError reports where and why a recording could not be read.
type CorruptError struct {
	// Offset is the byte offset of the record (or magic) that is bad.
	Offset int64
	Reason string
	// Torn says the file ends inside this record: its writer stopped
	// mid-write (a kill, a crash, a full disk). Every record before
	// Offset is complete and was returned.
	Torn bool
}

func (e *CorruptError) Error() string {
	if e.Torn {
		return fmt.Sprintf("recording: tail cut at byte offset %d: %s (the writer stopped mid-record; every record before it is complete)", e.Offset, e.Reason)
	}
	return fmt.Sprintf("recording: corrupt at byte offset %d: %s", e.Offset, e.Reason)
}

// Reader reads chunks from a recording.
type Reader struct {
	r      *bufio.Reader
	frames *delim.Reader
	off    int64
	header *recordingpb.Header
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
	// The frames come from the same buffered reader, past the magic; the
	// frame reader's offsets count from there.
	rr.frames = delim.NewReader(rr.r, MaxRecord)
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
	b, err := r.frames.Next()
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err != nil:
		return nil, frameError(start, err)
	case len(b) == 0:
		return nil, &CorruptError{Offset: start, Reason: "empty record"}
	}
	r.rec.Reset()
	if err := (proto.UnmarshalOptions{}).Unmarshal(b, &r.rec); err != nil {
		return nil, &CorruptError{Offset: start, Reason: "record is not valid protobuf: " + err.Error()}
	}
	r.off = int64(len(Magic)) + r.frames.Offset()
	return &r.rec, nil
}

// frameError names what is wrong with the record at start in the terms
// of a recording. (Apart from next, so the error's variable is allocated
// only when there is an error.)
func frameError(start int64, err error) error {
	var fe *delim.FrameError
	if !errors.As(err, &fe) {
		return fmt.Errorf("recording: reading the record at byte offset %d: %w", start, err)
	}
	switch {
	case fe.Torn() && fe.Len == 0:
		return &CorruptError{Offset: start, Reason: "truncated record length", Torn: true}
	case fe.Torn():
		return &CorruptError{Offset: start, Reason: fmt.Sprintf("truncated record: want %d bytes, file ends after %d", fe.Len, fe.Read), Torn: true}
	case errors.Is(fe.Err, delim.ErrTooLarge):
		return &CorruptError{Offset: start, Reason: fmt.Sprintf("record length %d exceeds the %d-byte limit", fe.Len, MaxRecord)}
	case fe.Len == 0:
		return &CorruptError{Offset: start, Reason: "truncated or invalid record length"}
	}
	return fmt.Errorf("recording: reading the record at byte offset %d: %w", start, fe.Err)
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
		Library:    pc.GetTlsLibrary(),
		LostBytes:  pc.GetLostBytes(),
		Data:       append([]byte(nil), pc.GetData()...),
		Cgroup:     pc.GetCgroupId(),
	}, nil
}
