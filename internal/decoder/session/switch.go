package session

import (
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/http1"
	"github.com/tlstap/tlstap/internal/decoder/http2"
	"github.com/tlstap/tlstap/internal/decoder/raw"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
)

// decide sets direction i's protocol, gives an undecided or raw peer the
// counterpart decoder, and hands both the bytes held during detection. why
// says why a direction is raw; it is counted when detection, not
// re-detection or --raw, decided so.
func (s *Session) decide(i int, p proto, sd side, why decoder.Reason) {
	d := &s.dirs[i]
	if p == protoRaw && !d.h1only {
		s.opts.Limits.CountError(why)
	}
	d.gap, d.gapN = false, 0
	own := held{d.pend, d.marks}
	d.pend, d.marks = nil, nil
	var peer held
	switch p {
	case protoHTTP1:
		if s.dirs[1-i].proto != protoHTTP1 || s.h1 == nil {
			s.h1 = http1.NewConn(s.opts.Limits)
			s.h1req = i
			if sd == server {
				s.h1req = 1 - i
			}
		}
		s.setHTTP1(i)
		peer = s.adoptPeer(1-i, protoHTTP1, 0)
	case protoHTTP2:
		s.setHTTP2(i, sd)
		peer = s.adoptPeer(1-i, protoHTTP2, 1-sd)
	default:
		d.proto, d.dec = protoRaw, raw.New(s.opts.Limits.RawFlushBytes)
	}
	// The client's bytes first: the HTTP/1 response decoder learns from
	// the requests (HEAD, CONNECT, Upgrade) how to read the answers.
	if p != protoRaw && d.side == server {
		own, peer = peer, own
		i = 1 - i
	}
	own.replay(&s.dirs[i])
	peer.replay(&s.dirs[1-i])
}

func (s *Session) setHTTP1(i int) {
	d := &s.dirs[i]
	d.proto, d.h1only = protoHTTP1, false
	if i == s.h1req {
		d.dec, d.side = s.h1.Requests(), client
	} else {
		d.dec, d.side = s.h1.Responses(), server
	}
}

func (s *Session) setHTTP2(i int, sd side) {
	d := &s.dirs[i]
	d.proto, d.h1only = protoHTTP2, false
	hs := http2.Client
	if sd == server {
		hs = http2.Server
	}
	d.dec, d.side = http2.New(hs, s.opts.Limits), sd
}

// adoptPeer makes the peer direction j the counterpart of a protocol just
// decided, if it has none yet or is raw, and returns the bytes it held for
// the caller to replay. A peer whose own bytes already say raw (its tests
// may not have run yet, see eagerTests) is raw first.
func (s *Session) adoptPeer(j int, p proto, sd side) held {
	d := &s.dirs[j]
	if d.proto == protoNone && d.gap {
		s.afterGap(j)
	}
	if d.proto == protoNone && len(d.pend) > 0 {
		if q, _, ok := s.test(d); ok && q == protoRaw {
			s.decide(j, protoRaw, 0, s.whyRaw(d))
		}
	}
	switch d.proto {
	case protoNone:
		if len(d.pend) == 0 {
			// Nothing seen yet: its first bytes take the counterpart.
			break
		}
		h := held{d.pend, d.marks}
		d.pend, d.marks = nil, nil
		s.setPeer(j, p, sd)
		return h
	case protoRaw:
		// Emit what the raw decoder holds: it belongs to before the
		// protocol was known.
		d.dec.Flush(0, decoder.Idle, d.emit)
		d.recheck = false
		s.setPeer(j, p, sd)
	}
	return held{}
}

func (s *Session) setPeer(j int, p proto, sd side) {
	if p == protoHTTP1 {
		s.setHTTP1(j)
	} else {
		s.setHTTP2(j, sd)
	}
}

// switchIfUpgraded performs a protocol switch an HTTP/1 response announced.
func (s *Session) switchIfUpgraded(ts int64) {
	up := s.upgrade
	if up == nil {
		return
	}
	s.upgrade = nil
	req, resp := s.h1req, 1-s.h1req
	// Messages the request side completed at the switch are pending in
	// it; an idle flush hands them over before the decoders go.
	for _, i := range [2]int{req, resp} {
		if d := &s.dirs[i]; d.proto == protoHTTP1 {
			d.dec.Flush(ts, decoder.Idle, d.emit)
		}
	}
	held := [2][]byte{}
	held[req] = s.h1.Detach(0)
	held[resp] = s.h1.Detach(1)
	s.h1 = nil
	switch up.Protocol {
	case "websocket", "h2c", "tunnel":
		// A CONNECT tunnel carries TLS, raw by nature.
	default:
		s.opts.Limits.CountError(decoder.SessionUpgradeUnknown)
	}
	for i := range s.dirs {
		d := &s.dirs[i]
		d.h1only, d.recheck = false, false
		switch up.Protocol {
		case "websocket":
			d.proto = protoWebSocket
			d.dec = websocket.New(websocket.Options{FromClient: i == req, Extensions: up.Extensions}, s.opts.Limits)
		case "h2c":
			sd := server
			if i == req {
				sd = client
			}
			s.setHTTP2(i, sd)
		default:
			d.proto, d.dec = protoRaw, raw.New(s.opts.Limits.RawFlushBytes)
		}
	}
	// The client's bytes were sent before the answer that switched.
	for _, i := range [2]int{req, resp} {
		if len(held[i]) > 0 {
			s.dirs[i].dec.Feed(ts, held[i], s.dirs[i].emit)
		}
	}
}
