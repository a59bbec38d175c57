package server

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/filter"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Bounds on a query, so a hostile client cannot make the filter that runs on
// the publisher's goroutine expensive.
const (
	maxQueryValues = 64  // values per parameter, after splitting commas
	maxValueLen    = 256 // bytes per value
)

// Query is a parsed stream query string: the server-side filter and the
// resume point. Values of one parameter are alternatives (OR); different
// parameters must all match (AND). Process logs and notices are not
// subject to the event filters; Logs alone selects them.
type Query struct {
	PIDs   []int64
	Pnames []string
	// Types holds one bit per event type (1<<type).
	Types uint64
	// Hosts are lower-cased patterns: "example.com" matches that host on
	// any port, "example.com:8443" only that port, "*.example.com" any
	// subdomain.
	Hosts []string
	Ports []uint32
	// Nodes and Containers match the fleet attribution (node=, container=).
	Nodes      []string
	Containers []string
	// Logs delivers process-log entries (default true; logs=0 turns off).
	Logs bool
	// Since is the sequence number to resume after, if HasSince.
	Since    uint64
	HasSince bool
	// Filter is what Match applies to events: the parameters above and
	// filter=EXPR, ANDed, in the one filter model.
	Filter *filter.Filter
}

// typeNames maps the names accepted by type= to type bits.
var typeNames = map[string]uint64{
	"request":  1<<decoder.HTTP1Request | 1<<decoder.HTTP2Request,
	"response": 1<<decoder.HTTP1Response | 1<<decoder.HTTP2Response,
	"http":     1<<decoder.HTTP1Request | 1<<decoder.HTTP2Request | 1<<decoder.HTTP1Response | 1<<decoder.HTTP2Response,
	"ws":       1 << decoder.WebSocket,
}

func init() {
	for t := decoder.Raw; t <= decoder.WebSocket; t++ {
		typeNames[t.String()] = 1 << t
	}
}

// ParseQuery parses the query parameters of a stream request: filter (an
// expression, docs/filters.md), the older per-key parameters pid, pname,
// type, host, port, node, container (each repeatable or comma-separated;
// a container matches by id prefix), logs, since and token (checked by
// the auth middleware, ignored here). Any other parameter is an error
// naming it; a filter that does not parse is the parser's error.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Logs: true}
	var expr *filter.Filter
	for name, vals := range v {
		var err error
		switch name {
		case "token":
			continue
		case "pid":
			q.PIDs, err = parseList(name, vals, q.PIDs, func(s string) (int64, error) {
				n, err := strconv.ParseInt(s, 10, 64)
				if err == nil && n < 0 {
					err = fmt.Errorf("negative")
				}
				return n, err
			})
		case "pname":
			q.Pnames, err = parseList(name, vals, q.Pnames, func(s string) (string, error) { return s, nil })
		case "host":
			q.Hosts, err = parseList(name, vals, q.Hosts, func(s string) (string, error) { return strings.ToLower(s), nil })
		case "port":
			q.Ports, err = parseList(name, vals, q.Ports, func(s string) (uint32, error) {
				n, err := strconv.ParseUint(s, 10, 16)
				return uint32(n), err
			})
		case "node":
			q.Nodes, err = parseList(name, vals, q.Nodes, func(s string) (string, error) { return s, nil })
		case "container":
			q.Containers, err = parseList(name, vals, q.Containers, func(s string) (string, error) { return s, nil })
		case "type":
			var bits []uint64
			bits, err = parseList(name, vals, nil, parseType)
			for _, b := range bits {
				q.Types |= b
			}
		case "filter":
			if len(vals) != 1 {
				return q, fmt.Errorf("parameter %q given %d times", name, len(vals))
			}
			expr, err = filter.Parse(vals[0])
		case "logs":
			q.Logs, err = parseBool(name, vals)
		case "since":
			if len(vals) != 1 {
				return q, fmt.Errorf("parameter %q given %d times", name, len(vals))
			}
			q.Since, err = strconv.ParseUint(vals[0], 10, 64)
			if err != nil {
				err = fmt.Errorf("parameter %q: %q is not a sequence number", name, clip(vals[0]))
			}
			q.HasSince = true
		default:
			return q, fmt.Errorf("unknown parameter %q", clip(name))
		}
		if err != nil {
			return q, err
		}
	}
	return q, q.compile(expr)
}

func parseType(s string) (uint64, error) {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		if n > uint64(decoder.WebSocket) {
			return 0, fmt.Errorf("no such type")
		}
		return 1 << n, nil
	}
	if b, ok := typeNames[strings.ToLower(s)]; ok {
		return b, nil
	}
	return 0, fmt.Errorf("no such type")
}

func parseBool(name string, vals []string) (bool, error) {
	if len(vals) != 1 {
		return false, fmt.Errorf("parameter %q given %d times", name, len(vals))
	}
	switch strings.ToLower(vals[0]) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("parameter %q: %q is not a boolean (0 or 1)", name, clip(vals[0]))
}

// parseList splits every value on commas and parses each element.
func parseList[T any](name string, vals []string, dst []T, parse func(string) (T, error)) ([]T, error) {
	for _, v := range vals {
		for s := range strings.SplitSeq(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" || len(s) > maxValueLen {
				return nil, fmt.Errorf("parameter %q: empty or overlong value", name)
			}
			if len(dst) >= maxQueryValues {
				return nil, fmt.Errorf("parameter %q: more than %d values", name, maxQueryValues)
			}
			x, err := parse(s)
			if err != nil {
				return nil, fmt.Errorf("parameter %q: bad value %q", name, clip(s))
			}
			dst = append(dst, x)
		}
	}
	return dst, nil
}

// clip keeps error messages, which are echoed to the client, short.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Match reports whether the query selects e. It is a broker filter.
func (q *Query) Match(e *broker.Entry) bool {
	ev := e.Msg.GetEventPayload()
	if ev == nil {
		return e.Msg.GetLogType() != eventpb.LogType_LOG_TYPE_PROCESS_LOG || q.Logs
	}
	return q.Filter.Match(ev)
}

// compile builds q.Filter: each older parameter is the term of the same
// key (docs/filters.md, "Older spellings"), all of them and filter= ANDed.
func (q *Query) compile(expr *filter.Filter) error {
	var terms []*filter.Filter
	add := func(key string, vals []string) error {
		if len(vals) == 0 {
			return nil
		}
		t, err := filter.Term(key, filter.Eq, vals...)
		if err != nil {
			return fmt.Errorf("parameter %q: %w", key, err)
		}
		terms = append(terms, t)
		return nil
	}
	var types []string
	for t := range 64 {
		if q.Types&(1<<t) != 0 {
			types = append(types, strconv.Itoa(t))
		}
	}
	for _, err := range []error{
		add("pid", strs(q.PIDs, func(p int64) string { return strconv.FormatInt(p, 10) })),
		add("comm", q.Pnames),
		add("type", types),
		add("host", q.Hosts),
		add("port", strs(q.Ports, func(p uint32) string { return strconv.FormatUint(uint64(p), 10) })),
		add("node", q.Nodes),
		add("container", q.Containers),
	} {
		if err != nil {
			return err
		}
	}
	q.Filter = filter.And(append(terms, expr)...)
	return nil
}

func strs[T any](vs []T, f func(T) string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = f(v)
	}
	return out
}
