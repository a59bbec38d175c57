package sink

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/delim"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// DefaultMaxFrame bounds one frame read by Reader. Payloads are capped well
// below it by the decoders' body limit (16 MiB by default).
const DefaultMaxFrame = 64 << 20

// ErrFrameTooLarge is returned for a length prefix above the reader's limit.
var ErrFrameTooLarge = errors.New("sink: frame exceeds size limit")

// AppendFrame appends msg preceded by its length as a varint.
func AppendFrame(dst, msg []byte) []byte { return delim.Append(dst, msg) }

// Reader reads varint-length-delimited LogEntry messages, the framing of the
// TCP and file sinks (package internal/delim).
type Reader struct {
	d   *delim.Reader
	max int
	// Offset is the number of bytes consumed so far, for error messages.
	Offset int64
}

// NewReader returns a reader of frames of at most DefaultMaxFrame bytes.
func NewReader(r io.Reader) *Reader {
	return &Reader{d: delim.NewReader(r, DefaultMaxFrame), max: DefaultMaxFrame}
}

// SetMaxFrame changes the frame size limit.
func (r *Reader) SetMaxFrame(n int) { r.max = n; r.d.SetMax(n) }

// NextFrame returns the next frame's message bytes, valid until the next
// call. It returns io.EOF at a clean end of stream and
// io.ErrUnexpectedEOF when the stream ends inside a frame.
func (r *Reader) NextFrame() ([]byte, error) {
	b, err := r.d.Next()
	r.Offset = r.d.Offset()
	if err != nil {
		return nil, r.frameError(err)
	}
	return b, nil
}

// frameError keeps the errors NextFrame returned before it used package
// delim. (Apart from NextFrame, so the error's variable is allocated only
// when there is an error.)
func (r *Reader) frameError(err error) error {
	var fe *delim.FrameError
	if !errors.As(err, &fe) {
		return err
	}
	switch {
	case fe.Torn():
		return io.ErrUnexpectedEOF
	case errors.Is(fe.Err, delim.ErrTooLarge):
		return fmt.Errorf("%w: %d bytes at offset %d (limit %d)", ErrFrameTooLarge, fe.Len, r.Offset, r.max)
	case fe.Len == 0: // the length prefix itself is bad
		return fmt.Errorf("sink: bad length prefix at offset %d: %w", r.Offset, fe.Err)
	}
	return fe.Err
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
