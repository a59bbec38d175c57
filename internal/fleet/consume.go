package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// ConsumerOptions say what a Consumer reads.
type ConsumerOptions struct {
	// Nodes restricts the stream to these nodes (empty: all).
	Nodes []string
	// From: FromNew starts with messages published after subscribing,
	// FromAll with the oldest one retained, FromAfter after stream
	// sequence After.
	From  From
	After uint64
	// Tail is how many of the newest retained messages FromTail starts
	// with.
	Tail uint64
	// NoReconnect ends the consumer (Next returns ErrClosed) when the
	// connection to the server is lost, instead of reconnecting.
	NoReconnect bool
	// Log receives connection changes; nil discards them.
	Log *slog.Logger
}

// From is where a Consumer starts.
type From int

const (
	FromNew From = iota
	FromAll
	FromAfter
	FromTail
)

// Message is one entry read from the stream.
type Message struct {
	Entry *eventpb.LogEntry
	// Node is the publishing node (from the header).
	Node string
	// Seq is the stream sequence: pass it as After to resume after it.
	Seq uint64
	// Pending is how many messages of the consumer's selection the stream
	// held after this one when it was delivered: 0 means caught up.
	Pending uint64
}

// Consumer reads a fleet stream in stream order.
type Consumer struct {
	nc   *nats.Conn
	cons jetstream.Consumer
	iter jetstream.MessagesContext
}

// Subscribe connects to addr (see ParseURL) and starts an ordered
// consumer. Close releases it.
func Subscribe(ctx context.Context, addr string, o ConsumerOptions) (*Consumer, error) {
	t, err := ParseURL(addr)
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := t.options("tlstap viewer")
	if err != nil {
		return nil, err
	}
	// closed stops the iterator once the connection is gone for good
	// (NoReconnect, or closed), so Next returns instead of waiting.
	var (
		mu     sync.Mutex
		c      *Consumer
		closed bool
	)
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats: disconnected", "err", err) }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats: reconnected") }),
		nats.ClosedHandler(func(*nats.Conn) {
			mu.Lock()
			defer mu.Unlock()
			closed = true
			if c != nil {
				c.iter.Stop()
			}
		}),
	)
	if o.NoReconnect {
		opts = append(opts, nats.NoReconnect())
	}
	nc, err := nats.Connect(t.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	cons, err := subscribe(ctx, nc, t, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	c = cons
	if closed {
		c.iter.Stop()
	}
	return c, nil
}

func subscribe(ctx context.Context, nc *nats.Conn, t Target, o ConsumerOptions) (*Consumer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	cfg := jetstream.OrderedConsumerConfig{}
	for _, n := range o.Nodes {
		cfg.FilterSubjects = append(cfg.FilterSubjects, NodeFilter(t.Prefix, n))
	}
	switch o.From {
	case FromNew:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case FromAll:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case FromAfter:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = o.After + 1
	case FromTail:
		st, err := js.Stream(ctx, t.Stream)
		if err != nil {
			return nil, fmt.Errorf("nats: stream %s: %w", t.Stream, err)
		}
		last := st.CachedInfo().State.LastSeq
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = 1
		if last >= o.Tail {
			cfg.OptStartSeq = last - o.Tail + 1
		}
	default:
		return nil, fmt.Errorf("fleet: unknown start %d", o.From)
	}
	cons, err := js.OrderedConsumer(ctx, t.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("nats: consumer on stream %s: %w", t.Stream, err)
	}
	iter, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	return &Consumer{nc: nc, cons: cons, iter: iter}, nil
}

// Next returns the next message. A message that is not a LogEntry is
// skipped rather than ending the stream: anyone may publish to the
// stream's subjects.
func (c *Consumer) Next(ctx context.Context) (Message, error) {
	stop := context.AfterFunc(ctx, c.iter.Stop)
	defer stop()
	for {
		m, err := c.iter.Next()
		if err != nil {
			if ctx.Err() != nil {
				return Message{}, ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return Message{}, ErrClosed
			}
			return Message{}, fmt.Errorf("nats: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		var e eventpb.LogEntry
		if err := proto.Unmarshal(m.Data(), &e); err != nil {
			continue
		}
		return Message{Entry: &e, Node: m.Headers().Get(HeaderNode), Seq: meta.Sequence.Stream, Pending: meta.NumPending}, nil
	}
}

// Pending asks the server how many messages of the consumer's selection
// are still to be delivered.
func (c *Consumer) Pending(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("nats: %w", err)
	}
	return info.NumPending, nil
}

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("fleet: consumer closed")

// Close stops the consumer and closes its connection.
func (c *Consumer) Close() {
	c.iter.Stop()
	c.nc.Close()
}
