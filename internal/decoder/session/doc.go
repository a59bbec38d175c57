// Package session owns the decoders of one connection: it detects the
// protocol of each direction, dispatches bytes to the matching decoder, and
// switches both directions when the connection upgrades.
//
// # Detection
//
// A direction's first bytes are buffered (at most Limits.MaxHeaderBytes)
// until one of these tests, asked in this order, decides:
//
//  1. http2.IsClientPreface: HTTP/2 client; the peer is the HTTP/2 server.
//  2. http2.IsServerStart (a well-formed SETTINGS frame): HTTP/2 server;
//     the peer is the HTTP/2 client.
//  3. http1.IsRequestStart: HTTP/1 requests; the peer decodes the same
//     http1.Conn's responses.
//  4. http1.IsResponseStart: HTTP/1 responses; the peer decodes requests.
//
// A test that needs more bytes stops the walk, so a later test never
// decides while an earlier one could still match, and a test's answer on a
// prefix never changes as bytes are added: the outcome depends only on the
// bytes, never on how they were chunked. When every test rejects the bytes
// or the buffer fills, the direction is raw (decoder/raw); so it is when
// the connection goes idle or closes before the tests could decide, since
// bytes must not wait for more that may never come. Random binary,
// compressed data and TLS records fail every test on their first bytes.
//
// Past the first KiB of a direction the tests run only when a read brings
// a line end or doubles the buffer, and before anything that depends on
// the answer (a flush, a gap, the peer deciding): re-running them at every
// read would make a long start line trickling in a byte per read cost
// quadratic time.
//
// A direction whose peer is already HTTP/1 or HTTP/2 is not tested: it
// takes the peer's counterpart at once. Those decoders resynchronise by
// themselves when the capture started mid-connection (HTTP/1 scans for a
// start line, HTTP/2 for consecutive plausible frame headers, see
// http2.IsFrameAligned). A raw peer gets the counterpart too, after what
// its raw decoder holds is emitted: the protocol is known now.
//
// # Re-detection
//
// A raw direction is tested again, for HTTP/1 start lines only, at the
// first byte after an idle flush: request/response protocols pause between
// messages, and that pause is the one boundary raw data has. Re-testing at
// every read would make the outcome depend on chunking; never re-testing
// would lose a keep-alive connection whose capture began mid-message.
//
// # Protocol switches
//
// An HTTP/1 response carrying decoder.Upgrade switches both directions
// after it has been emitted: "websocket" to decoder/websocket (the request
// direction is the client's, whose frames are masked), "h2c" to HTTP/2, and
// anything else (a CONNECT tunnel, an unknown protocol) to raw. The bytes
// the HTTP/1 decoders held past the switch go to the new decoders, the
// client's first.
//
// # Gaps
//
// A gap goes to the direction's decoder. One that hits a direction under
// detection is resolved at the next Feed or Flush (Gap cannot emit): if
// the bytes before it decide the protocol, that decoder gets the gap;
// otherwise the direction is raw.
//
// A Session is not safe for concurrent use.
package session
