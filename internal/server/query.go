package server

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/decoder"
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

// ParseQuery parses the query parameters of a stream request: pid, pname,
// type, host, port, node, container (each repeatable or comma-separated;
// a container matches by id prefix), logs, since and
// token (checked by the auth middleware, ignored here). Any other
// parameter is an error naming it.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Logs: true}
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
	return q, nil
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
	if len(q.PIDs) > 0 && !slices.Contains(q.PIDs, ev.GetPid()) {
		return false
	}
	if len(q.Pnames) > 0 && !slices.Contains(q.Pnames, ev.GetPname()) {
		return false
	}
	if q.Types != 0 && (ev.GetType() > 63 || q.Types&(1<<ev.GetType()) == 0) {
		return false
	}
	if len(q.Ports) > 0 && !slices.Contains(q.Ports, ev.GetSrcPort()) && !slices.Contains(q.Ports, ev.GetDstPort()) {
		return false
	}
	if len(q.Nodes) > 0 && !slices.Contains(q.Nodes, ev.GetNode()) {
		return false
	}
	if len(q.Containers) > 0 && !slices.ContainsFunc(q.Containers, func(c string) bool {
		// Like docker, accept a unique prefix of the id (12 digits as ps shows).
		return c != "" && strings.HasPrefix(ev.GetContainerId(), c)
	}) {
		return false
	}
	if len(q.Hosts) > 0 && !slices.ContainsFunc(q.Hosts, func(p string) bool { return hostMatch(p, ev.GetHost()) }) {
		return false
	}
	return true
}

// hostMatch matches a lower-cased pattern against an event's host, which
// may carry a port.
func hostMatch(pattern, host string) bool {
	if host == "" {
		return false
	}
	if strings.EqualFold(pattern, host) {
		return true
	}
	name := host
	if h, _, ok := cutPort(host); ok {
		name = h
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return len(name) > len(suffix)+1 && name[len(name)-len(suffix)-1] == '.' &&
			strings.EqualFold(name[len(name)-len(suffix):], suffix)
	}
	return strings.EqualFold(pattern, name)
}

// cutPort splits "host:port" and "[v6]:port"; a bare IPv6 address has no
// port.
func cutPort(hostport string) (host, port string, ok bool) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return hostport, "", false
	}
	if strings.HasPrefix(hostport, "[") {
		if hostport[i-1] != ']' {
			return hostport, "", false
		}
		return hostport[1 : i-1], hostport[i+1:], true
	}
	if strings.Count(hostport, ":") > 1 {
		return hostport, "", false
	}
	return hostport[:i], hostport[i+1:], true
}
