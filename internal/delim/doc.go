// Package delim is the one implementation of varint-delimited framing:
// each message is preceded by its length as an unsigned varint
// (encoding/binary's Uvarint, protobuf's delimited format). The push
// sinks' TCP and file streams and tlstap recordings are framed this way.
//
// It frames bytes, not messages, so callers marshal with their own reused
// buffers and unmarshal what Next returns in place. The Reader trusts
// nothing: a length above its limit is refused before anything is
// allocated, and every error says at which byte offset the bad frame
// starts and whether the stream merely ends inside a frame (a writer that
// stopped mid-write) or is corrupt. protobuf's protodelim package reads
// the same format but reports neither, and allocates per message.
package delim
