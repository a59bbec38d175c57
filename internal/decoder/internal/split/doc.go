// Package split cuts the body of a streamed HTTP message into parts at its
// protocol's own boundaries, as the bytes arrive: one Server-Sent Events
// event per part (text/event-stream), one length-prefixed message per part
// (application/grpc and its +proto, +json variants), one line per part
// (NDJSON, JSON Lines, JSON text sequences). A body with no boundaries is
// cut into what arrived between idle flushes.
//
// A Splitter holds at most the part it is building, and never more than its
// maximum part size: a protocol unit longer than that is emitted in pieces
// marked Continued. Emitted bytes are forgotten, so an endless stream costs
// constant memory.
package split
