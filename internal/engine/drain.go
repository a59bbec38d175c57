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
func (a *Applier) drain(ctx context.Context) bool {
	a.mu.Lock()
	var pending []*service
	for _, list := range a.services {
		for _, s := range list {
			if s.done != nil {
				pending = append(pending, s)
			}
		}
	}
	a.mu.Unlock()
	for _, s := range pending {
		select {
		case <-s.done:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// summary writes one line per forwarder and sink, and their total, after
// everything has stopped. It writes nothing when there are none.
func (a *Applier) summary(w io.Writer) {
	a.mu.Lock()
	var lines []string
	var tot [3]uint64
	for _, list := range a.services {
		for _, s := range list {
			d, ok := s.svc.(deliverer)
			if !ok {
				continue
			}
			del, fail, drop := d.Delivery()
			tot[0], tot[1], tot[2] = tot[0]+del, tot[1]+fail, tot[2]+drop
			lines = append(lines, fmt.Sprintf("  %s: %d delivered, %d failed, %d dropped\n", s.name, del, fail, drop))
		}
	}
	a.mu.Unlock()
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
