// Package websocket decodes one direction of a WebSocket connection
// (RFC 6455) into messages, including the permessage-deflate extension
// (RFC 7692).
//
// The decoder is fed the bytes that follow the HTTP/1.1 101 response and
// emits one decoder.Message of type decoder.WebSocket per data message
// (fragments joined) and per control frame (ping, pong, close), in the
// order they complete on the wire. Control frames interleaved between the
// fragments of a data message are therefore emitted before that message.
//
// Framing is checked strictly: a reserved opcode or RSV bit, a mask bit
// that does not match the direction, a fragmented or oversized control
// frame, or a continuation frame without a message all mean the bytes are
// not (or no longer) WebSocket. The decoder then emits the partial message
// as Incomplete and hands everything from the offending frame on to a raw
// decoder, for the rest of the connection. A Gap does the same: WebSocket
// framing has no sync marks, so resynchronising after lost bytes would be
// a guess.
//
// Compressed messages are inflated when their last frame arrives, with the
// previous messages' window as dictionary when the direction uses context
// takeover. The decoder always keeps a 32 KiB window, which covers every
// *_max_window_bits the peers may have agreed on. Memory is bounded by the
// Limits: data payload by MaxBodyBytes (longer messages are emitted
// Truncated with OriginalLength), compressed bytes awaiting inflation by
// MaxBufferBytes, and inflation itself stops at inflateCapFactor times
// MaxBodyBytes so that a decompression bomb costs bounded time. When the
// inflate cap or the buffer cap cut a compressed message, its
// OriginalLength is a lower bound: the bytes inflated before the cut. When
// a cut makes the compression context unrecoverable (context takeover and
// part of a message never inflated), the direction falls back to raw,
// because every later compressed message would decode to garbage.
// Corrupt deflate data is emitted Incomplete and the direction falls back
// to raw as well: it is not the stream the decoder thought it was.
package websocket
