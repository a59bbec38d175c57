package output

import (
	"io"
	"sync/atomic"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Switch is a Renderer whose format can change while it renders, so the
// configuration API can change standard output without restarting it.
// Format None renders nothing (the subscription stays, costing little).
type Switch struct {
	r atomic.Pointer[switched]
}

type switched struct{ r Renderer }

// NewSwitch returns a Switch rendering f.
func NewSwitch(f Format, hex bool) *Switch {
	s := new(Switch)
	s.Set(f, hex)
	return s
}

// Set changes the format from the next event on.
func (s *Switch) Set(f Format, hex bool) { s.r.Store(&switched{New(f, hex)}) }

// Render implements Renderer.
func (s *Switch) Render(w io.Writer, ev *eventpb.Event) error {
	if r := s.r.Load().r; r != nil {
		return r.Render(w, ev)
	}
	return nil
}
