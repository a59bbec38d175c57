package sink

import (
	"bufio"
	"context"
	"os"
	"time"

	"github.com/tlstap/tlstap/internal/rotate"
	"github.com/tlstap/tlstap/internal/stats"
)

// fileConn writes to path and rotates it by size and age.
type fileConn struct {
	path    string
	opts    *Options
	f       *os.File
	w       *bufio.Writer
	size    int64
	opened  time.Time
	names   rotate.Namer
	rotated *stats.Counter
}

func openFile(path string, o *Options, st *stats.Set) (conn, error) {
	fc := &fileConn{path: path, opts: o, rotated: st.Counter("tlstap_sink_file_rotations_total", "Files rotated by file sinks.")}
	// Never append to a file a previous run may have left mid-record.
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if _, err := fc.names.MoveAway(fc.path); err != nil {
			return nil, err
		}
	}
	if err := fc.create(); err != nil {
		return nil, err
	}
	return fc, nil
}

func (fc *fileConn) create() error {
	f, err := os.OpenFile(fc.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fc.f, fc.size, fc.opened = f, 0, time.Now()
	if fc.w == nil {
		fc.w = bufio.NewWriterSize(f, 64<<10)
	} else {
		fc.w.Reset(f)
	}
	return nil
}

func (fc *fileConn) write(_ context.Context, b []byte, _ bool) error {
	// Rotate before the entry that would cross the limit, so a file only
	// exceeds RotateBytes when a single entry does.
	full := fc.opts.RotateBytes > 0 && fc.size+int64(len(b)) > fc.opts.RotateBytes
	old := fc.opts.RotateAge > 0 && time.Since(fc.opened) >= fc.opts.RotateAge
	if fc.size > 0 && (full || old) {
		if err := fc.rotate(); err != nil {
			return err
		}
	}
	n, err := fc.w.Write(b)
	fc.size += int64(n)
	return err
}

func (fc *fileConn) rotate() error {
	if err := fc.w.Flush(); err != nil {
		return err
	}
	if err := fc.f.Close(); err != nil {
		return err
	}
	if _, err := fc.names.MoveAway(fc.path); err != nil {
		return err
	}
	fc.rotated.Inc()
	return fc.create()
}

func (fc *fileConn) due() time.Time {
	if fc.opts.RotateAge <= 0 {
		return time.Time{}
	}
	return fc.opened.Add(fc.opts.RotateAge)
}

// tick rotates by age; an empty file just starts a new period.
func (fc *fileConn) tick() error {
	if fc.size == 0 {
		fc.opened = time.Now()
		return nil
	}
	return fc.rotate()
}

func (fc *fileConn) flush() error { return fc.w.Flush() }

func (fc *fileConn) close() error {
	err := fc.w.Flush()
	if cerr := fc.f.Close(); err == nil {
		err = cerr
	}
	return err
}
