package server

import (
	"net/http"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/output/har"
)

// harHandler serves GET /api/v1/har: the retained exchanges that match
// the same filters as the stream (and since), as one HAR document. It
// is a snapshot: events published after the request arrived are not in
// it. The window is read a page at a time and entries are encoded and sent
// one by one, so memory does not grow with the size of the answer.
func (s *Server) harHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		last := s.b.LastSeq()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="tlstap.har"`)
		rc := http.NewResponseController(w)
		hw := har.NewWriter(w, har.Options{Creator: "tlstap"})
		// Page through the retained window: one page of entries is held
		// at a time, whatever the size of the answer.
		page := make([]*broker.Entry, 0, 256)
		for after := q.Since; ; {
			_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
			page = s.b.Retained(after, last, page[:0])
			if len(page) == 0 {
				break
			}
			for i, e := range page {
				after = e.Seq
				if q.Match(e) {
					if err := hw.Add(e.Event()); err != nil {
						s.log.Debug("har export", "err", err)
						return
					}
				}
				page[i] = nil
			}
			if r.Context().Err() != nil {
				return // the client went away
			}
		}
		if err := hw.Close(); err != nil {
			s.log.Debug("har export", "err", err)
		}
	})
}
