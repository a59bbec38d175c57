package pipeline

import (
	"container/list"
	"fmt"
	"net/netip"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder/session"
)

type connKey struct {
	pid  uint32
	conn uint64
}

// conn is the pipeline's state for one connection.
type conn struct {
	key     connKey
	id      uint64
	tid     uint32
	uid     uint32
	comm    string
	fd      int32
	version uint16
	library string
	// cgroup is the first calling thread's cgroup id; container its
	// container, settled once resolved is set.
	cgroup    uint64
	container string
	resolved  bool
	local     netip.AddrPort
	remote    netip.AddrPort
	uuid      [2]string

	sess *session.Session
	emit session.Emit
	// last is the time of the last chunk, in the pipeline's clock.
	last int64
	// dirty: data arrived since the last idle flush.
	dirty bool
	lru   *list.Element

	// Pairing state: HTTP/1 requests in order, HTTP/2 requests by stream.
	h1 []pending
	h2 map[uint32]pending
	// parts holds the streamed messages whose end has not come.
	parts map[partKey]streamed

	// podName and podNamespace are the container's pod, settled once
	// podKnown is set (Options.Pods).
	podName, podNamespace string
	podKnown              bool
}

// pending is a request waiting for its response.
type pending struct {
	seq                uint64
	end                int64
	host, method, path string
}

// maxPending bounds unanswered requests kept per connection; pipelining
// deeper than this loses pairing, not data.
const maxPending = 256

func newConn(c *capture.Chunk, id uint64, sess *session.Session) *conn {
	cn := &conn{
		key:  connKey{c.PID, c.Conn},
		id:   id,
		tid:  c.TID,
		uid:  c.UID,
		comm: clean(c.Comm),
		fd:   c.FD,
		sess: sess,
	}
	for d := range cn.uuid {
		// ecapture's uuid is PID_TID_COMM_FD_DATATYPE; Burp bridges pair
		// requests and responses by that prefix. The connection id makes it
		// unique when an fd number is reused.
		cn.uuid[d] = fmt.Sprintf("%d_%d_%s_%d_%d_%d", c.PID, c.TID, cn.comm, c.FD, d, id)
	}
	cn.update(c)
	return cn
}

// update learns metadata that may arrive after the first chunk: eBPF
// capture learns the socket on the first syscall inside an SSL call.
func (cn *conn) update(c *capture.Chunk) {
	if c.Local.IsValid() {
		cn.local = c.Local
	}
	if c.Remote.IsValid() {
		cn.remote = c.Remote
	}
	if c.FD >= 0 {
		cn.fd = c.FD
	}
	if c.TLSVersion != 0 {
		cn.version = c.TLSVersion
	}
	if c.Library != "" {
		cn.library = c.Library
	}
	if cn.cgroup == 0 {
		cn.cgroup = c.Cgroup
	}
	if cn.comm == "" {
		cn.comm = clean(c.Comm)
	}
}

// ends returns sender and receiver for data travelling in dir.
func (cn *conn) ends(dir capture.Direction) (src, dst netip.AddrPort) {
	if dir == capture.Write {
		return cn.local, cn.remote
	}
	return cn.remote, cn.local
}

func (cn *conn) pushH1(p pending) {
	if len(cn.h1) >= maxPending {
		cn.h1 = cn.h1[1:]
	}
	cn.h1 = append(cn.h1, p)
}

func (cn *conn) pushH2(stream uint32, p pending) {
	if cn.h2 == nil {
		cn.h2 = make(map[uint32]pending)
	}
	if len(cn.h2) >= maxPending {
		// Drop the oldest request: smallest stream id.
		var oldest uint32
		first := true
		for id := range cn.h2 {
			if first || id < oldest {
				oldest, first = id, false
			}
		}
		delete(cn.h2, oldest)
	}
	cn.h2[stream] = p
}
