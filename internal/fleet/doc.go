// Package fleet carries the event streams of many tlstap nodes through NATS
// JetStream, so that any number of viewers can watch a whole cluster.
//
// A Publisher is a push sink (--eventaddr nats://HOST:PORT): it publishes
// every LogEntry unchanged, as it is on every other transport, to the
// subject PREFIX.NODE.KIND, where KIND is the event type (raw,
// http1_request, ..., websocket) or log. Headers repeat the node, the
// connection uuid and the container id so that NATS tools can route and
// filter without decoding protobuf.
//
// # Delivery
//
// Publishing is asynchronous with a bounded number of unacknowledged
// messages in flight. Every message carries a message id (Nats-Msg-Id)
// unique to this run, so when a connection drops the publisher simply
// sends every unacknowledged message again, in order: JetStream drops the
// copies it already stored (within the stream's duplicate window), and
// because a connection delivers in order the stored part is a prefix, so
// order per node is kept. While the server is unreachable entries wait in
// the publisher's broker subscription, a bounded queue (the outage
// buffer); what does not fit is dropped and counted in
// tlstap_drops_total{reason="queue_full_sink_nats"}, and a notice saying
// how many were dropped is published in their place once the server is
// back.
//
// The stream is created if absent, with retention by age and size from
// the URL (see ParseURL).
//
// A Consumer reads the stream back for `tlstap watch nats://...`: an
// ordered consumer, optionally restricted to some nodes, starting at the
// newest message, at the first retained one, or after a given stream
// sequence. The NATS client re-creates it after a reconnect at the stream
// sequence after the last message delivered, so there is no gap and no
// duplicate.
package fleet
