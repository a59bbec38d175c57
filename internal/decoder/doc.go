// Package decoder defines the incremental decoder interface that turns one
// direction of a connection's plaintext into messages, and the Message they
// emit.
//
// Decoders are fed bytes as they arrive and emit a Message the moment it is
// complete; they never wait for a timer except the raw decoder, whose
// messages have no boundaries. Protocol implementations live in
// sub-packages (raw, http1, http2, websocket); decoder/session detects the
// protocol of each direction and dispatches to them.
package decoder
