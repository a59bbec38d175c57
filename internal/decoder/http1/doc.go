// Package http1 decodes HTTP/1.0 and HTTP/1.1 connections incrementally.
//
// A Conn holds the state both directions of one connection share: the queue
// of outstanding requests (a response to HEAD has no body, a 2xx answer to
// CONNECT opens a tunnel) and a pending protocol switch. Requests and
// Responses return the two per-direction decoders. Each emits one
// decoder.Message per HTTP message the moment its last byte arrives, however
// the bytes are cut into Feed calls: keep-alive, pipelining, chunked bodies
// with trailers, bodies delimited by the connection's close and interim
// responses all yield exact message boundaries.
//
// # Payloads
//
// A payload is the message as HTTP/1.1 text that a person or a Burp-style
// parser can read: the start line and header fields in their original order
// and case (line ends normalised to CRLF, obs-fold joined, one SP after the
// colon), the body de-chunked and content-decoded (gzip, x-gzip, deflate as
// zlib or raw, br, zstd, and stacks such as "gzip, br"), Content-Length set
// to the length of the body as carried, and Transfer-Encoding and a decoded
// Content-Encoding removed. Chunked trailer fields follow the header
// fields. The wire encodings stay in Message.TransferEncoding and
// Message.ContentEncoding; a body whose coding is unknown or fails to decode
// is kept as sent, with its Content-Encoding. Messages without a body by
// definition (responses to HEAD, 1xx, 204, 304) keep their fields as sent.
//
// Interim responses (status 100-199 other than 101) are messages of their
// own, emitted as they arrive; the final response that follows answers the
// same request. Responses carry Status but not Host, Method or Path.
//
// # Limits and resynchronisation
//
// Memory is bounded by decoder.Limits whatever the input: the buffered
// input (MaxBufferBytes), a header section (MaxHeaderBytes, beyond which the
// message is emitted Truncated), the stored body and the decompressor's
// output (MaxBodyBytes each, beyond which the payload is cut, Truncated is
// set and OriginalLength counts the rest when it can be learned cheaply).
// Chunk-size lines and extensions are measured, never stored.
//
// Bytes that do not parse as HTTP (a capture that started mid-connection,
// bytes after a gap, a framing error) become decoder.Raw messages, at most
// RawFlushBytes each, while the decoder scans forward for a line start (or,
// in responses, "HTTP/1." anywhere) that IsRequestStart or IsResponseStart
// accepts. A gap inside a body of known length is skipped and the message
// marked Incomplete.
//
// # Protocol switches
//
// After a request with an Upgrade field, or CONNECT, the request decoder
// parses nothing until the response is known. A 101 response, or a 2xx
// answer to CONNECT, carries Message.Upgrade (Protocol "websocket", "h2c",
// ... as the Upgrade field names it, lower-cased, or "tunnel" for CONNECT)
// and stops both directions: Conn.Detach then returns the bytes each
// direction kept, the first bytes of the new protocol. Any other final
// response lets the request decoder resume with what it kept.
package http1
