package server

import (
	"net/http"
	"time"

	"github.com/tlstap/tlstap/broker"
	"github.com/tlstap/tlstap/output/har"
)

// harHandler serves GET /api/v1/har: the retained exchanges that match
// the same filters as the stream (and since), as one HAR document. It
// is a snapshot: events published after the request arrived are not in
// it. Entries are encoded and sent one by one, so memory does not grow
// with the size of the answer.
func (s *Server) harHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		last := s.b.LastSeq()
		// Live entries are all newer than last and rejected here, so
		// nothing queues while the answer is written.
		sub := s.b.Subscribe(broker.SubOptions{
			Name:   "har",
			Resume: true,
			Since:  q.Since,
			Filter: func(e *broker.Entry) bool { return e.Seq != 0 && e.Seq <= last && q.Match(e) },
		})
		defer sub.Close()

		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="tlstap.har"`)
		rc := http.NewResponseController(w)
		hw := har.NewWriter(w, har.Options{Creator: "tlstap"})
		deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)) }
		deadline()
		for n := 0; sub.Len() > 0; n++ {
			e, err := sub.Next(r.Context())
			if err != nil {
				return // the client went away
			}
			ev := e.Event()
			if ev == nil {
				continue // a resume notice
			}
			if err := hw.Add(ev); err != nil {
				s.log.Debug("har export", "err", err)
				return
			}
			if n%256 == 255 {
				deadline()
			}
		}
		if err := hw.Close(); err != nil {
			s.log.Debug("har export", "err", err)
		}
	})
}
