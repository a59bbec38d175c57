// Package har writes HTTP exchanges as HAR 1.2 (HTTP Archive), the format
// browser DevTools, Burp, ZAP, Charles and mitmproxy import.
//
// A Writer consumes events in stream order and writes one entry per
// request/response pair, HTTP/1 and HTTP/2, as soon as the response
// arrives: a HAR is one JSON document, so the header is written first, the
// entries one by one, and the closing brackets only by Close. A file cut
// short (a crash) is therefore not valid JSON; the recording or pcapng of
// the same run still has everything, and `tlstap replay REC --har OUT`
// rebuilds the HAR. Entries appear in completion order, not sorted by
// startedDateTime.
//
// Memory is bounded by the unanswered requests (MaxPending) and the open
// WebSocket sessions (MaxWebSockets × MaxMessages), never by the number of
// entries written.
//
// Field choices follow what Chrome writes: httpVersion "HTTP/1.1" (from the
// request line) or "http/2.0"; WebSocket sessions are the entry of their
// 101 response, with "_resourceType": "websocket" and their messages in
// "_webSocketMessages" ({type: send|receive, time: Unix seconds, opcode,
// data}, binary data base64), written when the run ends or the session is
// evicted. Bodies are the decoded ones (de-chunked, decompressed); the
// original Content-Encoding stays in the headers and in _tlstap, and
// bodySize is -1 when the compressed size was not measured.
//
// Each entry carries a "_tlstap" object: pid, tid, uid, comm, fd, uuid,
// connId, streamId, tlsVersion, src and dst ("ip:port" of the request's
// sender and receiver), requestSeq and responseSeq (the events' seq),
// contentEncoding, transferEncoding, and truncated, incomplete and
// requestMissing (the response's request was not seen) when true.
package har
