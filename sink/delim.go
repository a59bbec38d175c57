package sink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// DefaultMaxFrame bounds one frame read by Reader. Payloads are capped well
// below it by the decoders' body limit (16 MiB by default).
const DefaultMaxFrame = 64 << 20

// ErrFrameTooLarge is returned for a length prefix above the reader's limit.
var ErrFrameTooLarge = errors.New("sink: frame exceeds size limit")

// AppendFrame appends msg preceded by its length as a varint.
func AppendFrame(dst, msg []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(msg)))
	return append(dst, msg...)
}

// Reader reads varint-length-delimited LogEntry messages, the framing of the
// TCP and file sinks.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
	// Offset is the number of bytes consumed so far, for error messages.
	Offset int64
}

// NewReader returns a reader of frames of at most DefaultMaxFrame bytes.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: DefaultMaxFrame}
}

// SetMaxFrame changes the frame size limit.
func (r *Reader) SetMaxFrame(n int) { r.max = n }

// NextFrame returns the next frame's message bytes, valid until the next
// call. It returns io.EOF at a clean end of stream and
// io.ErrUnexpectedEOF when the stream ends inside a frame.
func (r *Reader) NextFrame() ([]byte, error) {
	n, err := binary.ReadUvarint(countingByteReader{r})
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return nil, fmt.Errorf("sink: bad length prefix at offset %d: %w", r.Offset, err)
	}
	if n > uint64(r.max) {
		return nil, fmt.Errorf("%w: %d bytes at offset %d (limit %d)", ErrFrameTooLarge, n, r.Offset, r.max)
	}
	if uint64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	m, err := io.ReadFull(r.r, r.buf)
	r.Offset += int64(m)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return r.buf, nil
}

// Next returns the next LogEntry.
func (r *Reader) Next() (*eventpb.LogEntry, error) {
	start := r.Offset
	b, err := r.NextFrame()
	if err != nil {
		return nil, err
	}
	m := new(eventpb.LogEntry)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("sink: bad LogEntry at offset %d: %w", start, err)
	}
	return m, nil
}

type countingByteReader struct{ r *Reader }

func (c countingByteReader) ReadByte() (byte, error) {
	b, err := c.r.r.ReadByte()
	if err == nil {
		c.r.Offset++
	}
	return b, err
}
