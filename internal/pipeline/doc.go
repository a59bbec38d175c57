// Package pipeline turns capture chunks into events.
//
// It keeps one state per connection — keyed by (pid, connection), not by
// thread, both directions together — feeds each direction to the
// connection's decoder session, and turns every message the decoders
// complete into a wire Event: addresses by direction, a sequence number that
// grows by one per event, request/response pairing with latency, and the
// --tsize cut. Events go to the Broker the moment they are complete.
//
// RunSource drives a pipeline from a capture source. For live capture the
// source's own goroutine (the ring reader) calls Handle, so decoding adds
// no goroutine hand-off to an event's latency; only the idle sweeps run on
// a timer of their own, under the same lock, and only while connections
// are tracked. A source that says where its drains end (capture.DrainRunner)
// and a Batcher broker make the events of one drain one batch, flushed at
// the drain's end.
//
// Memory is bounded: connections are capped (the least recently active is
// evicted, counted) and freed on close or after an idle timeout; decoders
// bound their own buffers. Every drop and truncation is counted in stats.
//
// docs/architecture.md shows where the pipeline sits between the capture
// sources and the broker.
package pipeline
