// Package server streams tlstap's events to WebSocket clients: the Go
// client and `tlstap watch`, ecapture's eCaptureQ GUI, Burp bridges and
// scripts.
//
// # Wire contract
//
// Every WebSocket binary message is exactly one marshaled event.LogEntry
// (the broker's Entry.Bytes, marshaled once for all clients), with no other
// framing, as ecapture sends it. A heartbeat (LOG_TYPE_HEARTBEAT, count
// starting at 1 per connection, Unix-ns timestamp, last_seq) is sent right
// after connect and every Options.Heartbeat. Then come the recent process
// logs (the broker's backlog), then events and logs as they are published.
//
// The first heartbeat's last_seq is the newest event published before the
// client subscribed, and the stream continues from the event after it:
// reconnecting with ?since=N, where N is the last event seq received (or
// that last_seq if none arrived), has no gap and no duplicate. If the
// broker no longer retains what followed N, the client first gets a
// process-log notice saying how many events it missed. Sequence numbers
// start at 1 in every run, so a since ahead of the newest event means the
// server restarted: the client is told so and gets this run's retained
// events from the start.
//
// # Listeners
//
// The main listener (default 127.0.0.1:28256) serves GET /ws and whatever
// other packages mount with Handle, over TLS with a self-signed certificate
// kept in the state directory (see package tlsauth), and requires the token
// as "Authorization: Bearer" or ?token=. Plain HTTP and auth "none" are
// refused on non-loopback addresses. Browsers may only open a WebSocket
// from the same origin (the Origin's host and port equal HOST, the
// request's Host header, and HOST is an IP address or localhost, which
// rules out DNS rebinding; the scheme label, http or https, is not
// compared) or an origin listed in AllowOrigins; clients that send no
// Origin are not browsers and only need the token.
//
// The optional eCaptureQ listener speaks plain WebSocket exactly as the
// eCaptureQ GUI expects: it upgrades on any path. On loopback it needs no
// token; elsewhere it needs one (?token in the ECaptureQ URL) unless auth
// is explicitly "none". Because it may have no token, it accepts only
// Origins no web page can present: none (native clients), the GUI's exact
// "http://localhost/", "tauri://localhost", "http://tauri.localhost", and
// AllowOrigins; and only a Host of localhost or a loopback address (or the
// listener's own address). Every refusal is a 403, logged with its reason
// and counted in tlstap_server_rejected_total.
//
// # Query parameters
//
// filter=EXPR selects events with an expression of the one filter model
// (internal/filter, docs/filters.md). The older parameters pid, pname,
// type (numbers or names: raw, http1-request, http2-request,
// http1-response, http2-response, websocket, and request, response, http,
// ws), host, port, node and container are single terms of it; each is
// repeatable or a comma list, values of one parameter are alternatives and
// parameters (filter included) combine with AND. logs=0 leaves out process
// logs, since=SEQ resumes, token authenticates. Anything else, and a filter
// that does not parse, is a 400 with the reason. GET /api/v1/har takes the
// same parameters.
//
// # Slow clients
//
// Each client has its own bounded broker queue with the Drop policy:
// capture and the other clients never wait for it. A client that falls
// behind loses entries and is later told how many, in stream order. A
// client whose socket accepts nothing for WriteTimeout is disconnected
// with close code 1008 and the reason "client too slow ..." (best effort:
// a peer that reads nothing cannot receive the frame either) and counted
// in tlstap_server_slow_disconnects_total.
//
// A client's writer is woken once per batch of events (one drain of the
// capture ring, broker.Broker.Flush) and, while more entries wait behind
// the one it writes, holds its writes back (corkConn), so a batch goes out
// in one write; it writes out as soon as its queue is empty, so no message
// waits for a later one.
//
// Clients have nothing to say: what they send is read, so pings and close
// frames are answered, and discarded; a message over ReadLimit closes the
// connection with 1009.
package server
