package engine

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tlstap/tlstap/internal/config"
)

// DefaultDrainTimeout bounds the delivery of what forwarders and sinks
// hold at exit unless Options.DrainTimeout says otherwise.
const DefaultDrainTimeout = 10 * time.Second

// deliverer is a forwarder or a sink: it can say how its deliveries went.
type deliverer interface {
	Delivery() (delivered, failed, dropped uint64)
}

// drain waits until every forwarder and sink has returned, which they do
// once the broker is closed and their queues are delivered, or until ctx
// ends. It reports whether all of them finished.
func (s *senders) drain(ctx context.Context) bool {
	s.mu.Lock()
	var pending []*service
	for _, list := range s.byKey {
		for _, sv := range list {
			if sv.done != nil {
				pending = append(pending, sv)
			}
		}
	}
	s.mu.Unlock()
	for _, sv := range pending {
		select {
		case <-sv.done:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// summary writes one line per forwarder and sink, and their total, after
// everything has stopped. It writes nothing when there are none.
func (s *senders) summary(w io.Writer) {
	s.mu.Lock()
	var lines []string
	var tot [3]uint64
	for _, list := range s.byKey {
		for _, sv := range list {
			d, ok := sv.svc.(deliverer)
			if !ok {
				continue
			}
			del, fail, drop := d.Delivery()
			tot[0], tot[1], tot[2] = tot[0]+del, tot[1]+fail, tot[2]+drop
			lines = append(lines, fmt.Sprintf("  %s: %d delivered, %d failed, %d dropped\n", sv.name, del, fail, drop))
		}
	}
	s.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	slices.Sort(lines)
	fmt.Fprintf(w, "tlstap: delivered at exit: %d delivered, %d failed, %d dropped\n%s", tot[0], tot[1], tot[2], strings.Join(lines, ""))
}

func forwardName(f config.Forward) string {
	mode := f.Mode
	if mode == "" {
		mode = "webhook"
	}
	return "forward " + mode + " " + redactURL(f.URL)
}

func sinkName(s config.Sink) string { return "sink " + redactURL(s.Addr) }

// redactURL drops credentials and the query, where tokens live, so a
// summary line can go to a terminal or a log.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return s
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
