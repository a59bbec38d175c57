package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/filter"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/pipeline"
)

// CaptureControl is what a configuration change may do to a live capture
// source; *openssl.Source has it.
type CaptureControl interface {
	SetFilter(openssl.Filter) error
	AttachLib(path string) (openssl.Library, error)
	DetachLib(path string) error
	Libraries() []openssl.Library
}

var _ CaptureControl = (*openssl.Source)(nil)

// Applier applies configuration changes to a running engine in place:
// the capture filter through the BPF maps, libraries attached before
// others are detached, pipeline settings atomically, forwarders and sinks
// started and stopped one by one. Nothing restarts, so nothing goes
// uncaptured while a change applies. It implements api.Applier.
type Applier struct {
	e   *Engine
	src CaptureControl // nil: the source is a recording

	// Output is the standard output renderer (the engine's, unless
	// replaced); output changes are refused without one.
	Output *output.Switch
}

// NewApplier returns an Applier that changes e, and the live capture
// through src; src is nil when replaying, and capture changes are then
// refused as not applicable. It changes nothing itself: the engine runs
// the forwarders and sinks of its configuration whether or not an
// Applier exists.
func (e *Engine) NewApplier(src CaptureControl) *Applier {
	return &Applier{e: e, src: src, Output: e.Output}
}

// Apply implements api.Applier. Steps run in an order that never leaves a
// gap, and each records its undo; on failure the undos run in reverse.
func (a *Applier) Apply(_ context.Context, from, to config.Config) error {
	var undo []func() error
	fail := func(err error) error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				errs = append(errs, uerr)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w; %w: %w", err, api.ErrRollback, errors.Join(errs...))
		}
		return err
	}

	fc, tc := from.Capture, to.Capture
	if !slices.Equal(fc.PIDs, tc.PIDs) || !slices.Equal(fc.UIDs, tc.UIDs) || !slices.Equal(fc.Comms, tc.Comms) {
		if a.src == nil {
			return fmt.Errorf("capture filter: %w: this run replays a recording", api.ErrNotApplicable)
		}
		if err := a.src.SetFilter(filterOf(tc)); err != nil {
			return fail(fmt.Errorf("capture filter: %w", err))
		}
		undo = append(undo, func() error { return a.src.SetFilter(filterOf(fc)) })
	}
	if !slices.Equal(fc.Libs, tc.Libs) {
		if a.src == nil {
			return fail(fmt.Errorf("capture libraries: %w: this run replays a recording", api.ErrNotApplicable))
		}
		u, err := a.swapLibs(tc.Libs)
		undo = append(undo, u...)
		if err != nil {
			return fail(err)
		}
	}

	fp, tp := from.Pipeline, to.Pipeline
	if fp != tp {
		old := a.e.Pipeline.Runtime()
		a.e.Pipeline.SetRuntime(pipeline.Runtime{TSize: tp.TSize, IdleFlush: time.Duration(tp.IdleTimeout), StreamParts: tp.StreamParts})
		undo = append(undo, func() error { a.e.Pipeline.SetRuntime(old); return nil })
	}

	if from.Output != to.Output {
		if a.Output == nil {
			return fail(fmt.Errorf("output: %w: standard output cannot change in this run", api.ErrNotApplicable))
		}
		f, err := output.ParseFormat(to.Output.Format)
		if err != nil {
			return fail(err)
		}
		a.Output.Set(f, to.Output.Hex)
		old := from.Output
		undo = append(undo, func() error {
			f, err := output.ParseFormat(old.Format)
			a.Output.Set(f, old.Hex)
			return err
		})
	}

	if err := a.e.senders.swap(from, to); err != nil {
		return fail(err)
	}
	return nil
}

func filterOf(c config.Capture) openssl.Filter { return CaptureFilter(c) }

// CaptureFilter is what the capture settings put into the BPF filter
// maps: the settings mean the filter pid=… & uid=… & comm=… of the one
// filter model, and the kernel gets the part of it the kernel can judge.
func CaptureFilter(c config.Capture) openssl.Filter {
	f := filter.FromCapture(filter.Capture{PIDs: c.PIDs, UIDs: c.UIDs, Comms: c.Comms})
	return openssl.Filter(f.Capture())
}

// swapLibs attaches every library of want not attached yet, then detaches
// the attached files want does not name, so that a process using either is
// never unprobed. Files are compared by inode, as the probes are: a path
// naming an attached file under another name keeps it. An empty want
// means "discover", which cannot be redone in place: the attached
// libraries stay. It returns the undos of what it did, also on error.
func (a *Applier) swapLibs(want []string) (undo []func() error, err error) {
	if len(want) == 0 {
		return nil, nil
	}
	type fileID struct{ dev, ino uint64 }
	have := a.src.Libraries()
	attached := map[fileID]bool{}
	for _, l := range have {
		attached[fileID{l.Dev, l.Inode}] = true
	}
	keep := map[fileID]bool{}
	for _, p := range want {
		lib, err := a.src.AttachLib(p)
		if err != nil {
			return undo, fmt.Errorf("attach %s: %w", p, err)
		}
		id := fileID{lib.Dev, lib.Inode}
		keep[id] = true
		if !attached[id] {
			attached[id] = true
			undo = append(undo, func() error { return a.src.DetachLib(lib.Path) })
		}
	}
	for _, l := range have {
		if keep[fileID{l.Dev, l.Inode}] {
			continue
		}
		if err := a.src.DetachLib(l.Path); err != nil {
			return undo, fmt.Errorf("detach %s: %w", l.Path, err)
		}
		undo = append(undo, func() error { _, err := a.src.AttachLib(l.Path); return err })
	}
	return undo, nil
}

// RunStatus reports the capture for /api/v1/status.
func (a *Applier) RunStatus() api.RunStatus {
	st := api.RunStatus{Source: "replay", Connections: a.e.Pipeline.Connections()}
	a.e.senders.mu.Lock()
	st.Running = a.e.senders.running
	a.e.senders.mu.Unlock()
	for _, pr := range a.e.Pipeline.Processes() {
		st.Processes = append(st.Processes, api.Process{PID: pr.PID, Comm: pr.Comm, Connections: pr.Connections})
	}
	if a.src != nil {
		st.Source = "openssl"
		var inUse map[openssl.FileKey]int
		u, ok := a.src.(usageReporter)
		if ok {
			inUse = u.InUse()
		}
		for _, l := range a.src.Libraries() {
			st.Libraries = append(st.Libraries, api.Library{Path: l.Path, Kind: l.Kind, Version: l.Version, Found: l.Found,
				Processes: inUse[openssl.FileKey{Dev: l.Dev, Inode: l.Inode}]})
		}
		if ok {
			for _, g := range u.GoPrograms() {
				st.GoPrograms = append(st.GoPrograms, api.GoProgram{Path: g.Path, GoVersion: g.GoVersion, Stripped: g.Stripped,
					Processes: inUse[openssl.FileKey{Dev: g.Dev, Inode: g.Inode}]})
			}
		}
	}
	return st
}

// usageReporter is what a live capture source adds to CaptureControl for
// the status: its Go programs, and how many processes use each file.
type usageReporter interface {
	GoPrograms() []openssl.GoProgram
	InUse() map[openssl.FileKey]int
}

var _ usageReporter = (*openssl.Source)(nil)
