// Package decoder defines the incremental decoder interface that turns one
// direction of a connection's plaintext into messages, and the Message they
// emit.
//
// Decoders are fed bytes as they arrive and emit a Message the moment it is
// complete; they never wait for a timer except the raw decoder, whose
// messages have no boundaries. Protocol implementations live in
// sub-packages (raw, http1, http2, websocket); decoder/session detects the
// protocol of each direction and dispatches to them.
//
// # Failure reasons
//
// Bad input never stops a decoder: it recovers (the message is emitted
// Incomplete, the bytes are emitted raw, a body is kept as it was sent) and
// reports the failure once, as a Reason, to Limits.Errors. The pipeline
// counts them as tlstap_decoder_errors_total{decoder, reason} in /metrics
// and totals them in /api/v1/status. This is the one list of the reasons;
// a test keeps it and the Reason constants in step. The raw decoder accepts
// any bytes and has none.
//
//	decoder    reason                             what happened, and what the decoder did
//	http1      start_line_invalid                 where a message should start, or at a line that began like one, the bytes are not a request or status line; they are emitted raw while the decoder looks for the next start line
//	http1      start_line_too_long                no line end within Limits.MaxHeaderBytes of a candidate start line; raw, resynchronising
//	http1      header_field_invalid               a header line without a colon, with a name that is not a token, a value with control characters, or an obs-fold before any field; the message's bytes are emitted raw, resynchronising
//	http1      content_length_invalid             Content-Length is not digits, or several differ; raw, resynchronising
//	http1      header_too_large                   the header section exceeds Limits.MaxHeaderBytes; it is emitted Truncated and the decoder resynchronises after the cut
//	http1      chunk_size_invalid                 a chunk-size line is not hex digits ending in CRLF (or has more than 16 digits); the message is emitted Incomplete, resynchronising
//	http1      chunk_line_too_long                chunk extensions longer than Limits.MaxHeaderBytes; Incomplete, resynchronising
//	http1      chunk_data_no_crlf                 chunk data not followed by CRLF; Incomplete, resynchronising
//	http2      frame_data_stream_0                a DATA frame on stream 0; the direction is raw from here on, streams in flight are emitted Incomplete (so for every frame_* reason)
//	http2      frame_headers_stream_0             a HEADERS frame on stream 0
//	http2      frame_priority_stream_0            a PRIORITY frame on stream 0
//	http2      frame_rst_stream_stream_0          an RST_STREAM frame on stream 0
//	http2      frame_push_promise_stream_0        a PUSH_PROMISE frame on stream 0
//	http2      frame_continuation_stream_0        a CONTINUATION frame on stream 0
//	http2      frame_settings_stream_nonzero      a SETTINGS frame on a stream other than 0
//	http2      frame_ping_stream_nonzero          a PING frame on a stream other than 0
//	http2      frame_goaway_stream_nonzero        a GOAWAY frame on a stream other than 0
//	http2      frame_data_length                  a PADDED DATA frame too short for its pad length field
//	http2      frame_headers_length               a HEADERS frame too short for its pad length and priority fields
//	http2      frame_priority_length              a PRIORITY frame whose length is not 5
//	http2      frame_rst_stream_length            an RST_STREAM frame whose length is not 4
//	http2      frame_settings_length              a SETTINGS frame whose length is not a multiple of 6, or a SETTINGS ACK with a payload
//	http2      frame_push_promise_length          a PUSH_PROMISE frame too short for its promised stream id
//	http2      frame_ping_length                  a PING frame whose length is not 8
//	http2      frame_goaway_length                a GOAWAY frame shorter than 8
//	http2      frame_window_update_length         a WINDOW_UPDATE frame whose length is not 4
//	http2      frame_continuation_expected        a header block was open and the next frame is not a CONTINUATION of its stream
//	http2      frame_continuation_unexpected      a CONTINUATION frame with no header block open
//	http2      frame_pad_too_long                 a pad length larger than the frame's payload
//	http2      frame_headers_stream_even          a client sent HEADERS on an even (server-initiated) stream
//	http2      frame_push_promise_from_client     a client sent PUSH_PROMISE
//	http2      frame_push_promise_stream_invalid  a PUSH_PROMISE promising stream 0 or an odd stream
//	http2      frame_settings_value               a SETTINGS value out of its range (ENABLE_PUSH not 0 or 1, MAX_FRAME_SIZE out of bounds, ...)
//	http2      hpack_invalid                      a header block that does not decode with a complete HPACK table; the direction is raw from here on
//	http2      hpack_table_too_large              a dynamic table size update beyond Limits.MaxHPACKTable; raw from here on
//	http2      hpack_lost_entry                   after lost bytes, a header block referred to a table entry never seen; its stream is emitted Incomplete with the fields that decoded, and decoding goes on
//	http2      stream_evicted                     more than Limits.MaxStreams streams open; the oldest is emitted Incomplete
//	http2      resync_buffer_full                 no frame boundary found within Limits.MaxBufferBytes after a gap or a mid-connection start; raw from here on
//	websocket  frame_rsv_bits                     RSV2 or RSV3 set; the partial message is emitted Incomplete and the direction is raw from here on (so for every frame_* reason)
//	websocket  frame_opcode_unknown               an opcode RFC 6455 does not define
//	websocket  frame_mask                         a client frame not masked, or a server frame masked
//	websocket  frame_control_invalid              a control frame fragmented, compressed or longer than 125 bytes
//	websocket  frame_continuation_unexpected      a continuation frame with no message in progress, or with RSV1 set
//	websocket  frame_data_unexpected              a text or binary frame while a message is in progress, or compressed without permessage-deflate
//	websocket  frame_length_invalid               a 64-bit payload length with its top bit set
//	websocket  deflate_corrupt                    a compressed message that does not inflate; emitted Incomplete, then raw from here on
//	websocket  deflate_too_large                  a compressed message beyond what the limits let it inflate to or buffer; emitted Truncated (raw from here on when the compression context is kept across messages)
//	session    no_protocol                        a direction's first bytes are neither HTTP/1 nor HTTP/2 (TLS to a database, SMTP, ...): decoded raw; not always bad input
//	session    buffer_full                        detection held Limits.MaxHeaderBytes without a decision; raw
//	session    undecided_flush                    the connection went idle or closed before detection decided; raw
//	session    undecided_gap                      bytes were lost before detection decided; raw
//	session    upgrade_unknown                    an HTTP/1 upgrade to a protocol other than websocket or h2c (a CONNECT tunnel is not counted); both directions raw
//	content    coding_unknown                     a Content-Encoding or Transfer-Encoding tlstap cannot undo; the body is kept as sent
//	content    corrupt                            a gzip, deflate, br or zstd body that does not decode, or exceeds zstd's memory bound; the body is kept as sent
//	content    too_many_codings                   more than 4 content codings stacked; the body is kept as sent
package decoder
