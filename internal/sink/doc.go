// Package sink pushes the event stream to places that do not connect to
// tlstap themselves: a TCP listener, a WebSocket server (ws:// or wss://) or
// a file. It implements ecapture's --eventaddr.
//
// Each sink owns one broker subscription with the Drop policy, so the queue
// between capture and a slow or absent peer is bounded and every entry that
// does not fit is counted (tlstap_drops_total{reason="queue_full_sink_..."}).
// Capture never waits for a sink.
//
// # Framing
//
// TCP and file sinks in the protobuf format write a stream of LogEntry
// messages, each preceded by its length as a protobuf varint: the framing of
// google.golang.org/protobuf/encoding/protodelim, Java's writeDelimitedTo
// and Python's _VarintBytes. Reader reads it back. WebSocket sinks send one
// binary message per LogEntry, without a length prefix. The json and text
// formats write output.JSON lines or output.Text blocks instead (one text
// message each on WebSocket) and carry events only.
//
// # Delivery
//
// Network sinks reconnect with exponential backoff and jitter. The entry whose write
// failed is sent again on the next connection; entries the kernel accepted
// just before the peer went away are lost, so delivery is at most once per
// entry across a reconnect. Entries queued while disconnected stay queued
// until the queue is full, then are dropped and counted.
//
// File sinks rotate by size and by age. The live file keeps the configured
// name; a rotated file is renamed to NAME-<UTC time>-<index>.EXT. Rotation
// happens only between entries, after a flush, so every file is complete
// and readable on its own. A file found at start-up is rotated away first
// rather than appended to, because a previous run may have left a torn
// final record.
package sink
