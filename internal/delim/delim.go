package delim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Append appends msg to dst, preceded by its length.
func Append(dst, msg []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(msg)))
	return append(dst, msg...)
}

// Write writes msg to w, preceded by its length, without copying msg. It
// returns the number of bytes written.
func Write(w io.Writer, msg []byte) (int, error) {
	var prefix [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(prefix[:], uint64(len(msg)))
	n, err := w.Write(prefix[:k])
	if err != nil {
		return n, err
	}
	m, err := w.Write(msg)
	return n + m, err
}

// ErrTooLarge is the Err of a FrameError whose length prefix is above the
// Reader's limit.
var ErrTooLarge = errors.New("frame exceeds the size limit")

// ErrBadLength is the Err of a FrameError whose length prefix is not a
// valid varint (it overflows 64 bits).
var ErrBadLength = errors.New("invalid length prefix")

// FrameError says why the frame at Offset could not be read. Err is
// io.ErrUnexpectedEOF when the stream ends inside the frame (Torn),
// ErrTooLarge, ErrBadLength, or the underlying reader's error.
type FrameError struct {
	// Offset is the byte offset of the frame's length prefix.
	Offset int64
	// Len is the frame's length from its prefix, when the prefix was read.
	Len uint64
	// Read is how many bytes of the frame's body were read.
	Read int
	Err  error
}

// Torn reports whether the stream ends inside the frame: every frame
// before it is complete.
func (e *FrameError) Torn() bool { return errors.Is(e.Err, io.ErrUnexpectedEOF) }

func (e *FrameError) Error() string {
	switch {
	case errors.Is(e.Err, ErrTooLarge):
		return fmt.Sprintf("frame at byte offset %d: length %d exceeds the size limit", e.Offset, e.Len)
	case e.Torn() && e.Len > 0:
		return fmt.Sprintf("frame at byte offset %d: stream ends after %d of its %d bytes", e.Offset, e.Read, e.Len)
	case e.Torn():
		return fmt.Sprintf("frame at byte offset %d: stream ends inside its length prefix", e.Offset)
	}
	return fmt.Sprintf("frame at byte offset %d: %v", e.Offset, e.Err)
}

func (e *FrameError) Unwrap() error { return e.Err }

// Reader reads frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	max uint64
	off int64
	buf []byte
}

// NewReader returns a Reader of frames of at most max bytes.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: uint64(max)}
}

// SetMax changes the frame size limit.
func (r *Reader) SetMax(max int) { r.max = uint64(max) }

// Offset returns how many bytes the Reader has consumed: after a frame,
// the offset of the next one.
func (r *Reader) Offset() int64 { return r.off }

// counter reads a length prefix for binary.ReadUvarint, counting bytes.
type counter struct{ r *Reader }

func (c counter) ReadByte() (byte, error) {
	b, err := c.r.r.ReadByte()
	if err == nil {
		c.r.off++
	}
	return b, err
}

// Next returns the next frame's body, valid until the next call. It
// returns io.EOF when the stream ends cleanly between frames, and a
// *FrameError otherwise.
func (r *Reader) Next() ([]byte, error) {
	start := r.off
	n, err := binary.ReadUvarint(counter{r})
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, &FrameError{Offset: start, Err: io.ErrUnexpectedEOF}
	case err != nil && r.off-start >= binary.MaxVarintLen64:
		return nil, &FrameError{Offset: start, Err: ErrBadLength}
	case err != nil:
		return nil, &FrameError{Offset: start, Err: err}
	case n > r.max:
		return nil, &FrameError{Offset: start, Len: n, Err: ErrTooLarge}
	}
	if uint64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	got, err := io.ReadFull(r.r, r.buf)
	r.off += int64(got)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &FrameError{Offset: start, Len: n, Read: got, Err: err}
	}
	return r.buf, nil
}
