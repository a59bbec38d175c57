package pcapng

import (
	"fmt"
	"os"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/rotate"
)

// File is a pcapng file that can rotate by size. Each file starts a new
// section with fresh connection state, so every rotated file opens in
// Wireshark on its own: connections still open start there with a new
// handshake.
type File struct {
	path   string
	rotate int64
	opts   Options

	f     *os.File
	cw    countWriter
	w     *Writer
	names rotate.Namer
	// Rotations counts files started after the first.
	Rotations int
}

// Create opens path (moving a non-empty file already there aside, as
// rotation would) and writes a section header. rotateBytes > 0 starts a
// new file once one exceeds it.
func Create(path string, rotateBytes int64, opts Options) (*File, error) {
	f := &File{path: path, rotate: rotateBytes, opts: opts}
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if _, err := f.names.MoveAway(f.path); err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
	}
	if err := f.create(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) create() error {
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("pcapng: %w", err)
	}
	f.f = fh
	f.cw = countWriter{w: fh}
	if f.w, err = NewWriter(&f.cw, f.opts); err != nil {
		fh.Close()
		return err
	}
	return nil
}

// Write adds a chunk, rotating first if the file is over its size (the
// writer buffers a few kilobytes, so a file may exceed it by that much).
func (f *File) Write(c *capture.Chunk) error {
	if f.f == nil {
		return errClosed
	}
	if f.rotate > 0 && f.cw.n > f.rotate {
		if err := f.closeFile(); err != nil {
			return err
		}
		if _, err := f.names.MoveAway(f.path); err != nil {
			return fmt.Errorf("pcapng: %w", err)
		}
		f.Rotations++
		if err := f.create(); err != nil {
			return err
		}
	}
	return f.w.Write(c)
}

// Packets returns the packets written to the current file.
func (f *File) Packets() uint64 { return f.w.Packets() }

// Flush makes everything written so far readable in the file.
func (f *File) Flush() error {
	if f.f == nil {
		return errClosed
	}
	return f.w.Flush()
}

// Close flushes and closes the file.
func (f *File) Close() error {
	if f.f == nil {
		return errClosed
	}
	return f.closeFile()
}

func (f *File) closeFile() error {
	err := f.Flush()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	f.f = nil
	return err
}

type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
