// Package forward sends captured events on to other tools as they happen:
// to webhooks, or — for Burp Suite, mitmproxy, ZAP — through an
// intercepting proxy so captured requests show up in its history.
//
// # Webhook mode
//
// Every event that passes the filter is sent to each URL with the
// configured method (default POST), one event per request: as JSON
// (application/json; output.ToJSON's object, every field, with the payload
// always base64, payload_encoding "base64"), or as one marshaled LogEntry
// (application/x-protobuf). X-Tlstap-Seq carries the event's sequence
// number. Responses, not only requests, are sent, and events of every
// type.
//
// # Proxy mode
//
// WARNING: proxy mode SENDS THE CAPTURED REQUESTS AGAIN, TO THE REAL
// SERVERS. The proxy passes each one on, so every forwarded request is
// executed a second time, with its cookies and tokens: a captured "place
// order" places another order. For that reason proxy mode forwards only
// GET, HEAD and OPTIONS unless the filter names methods itself
// ("method=*" forwards everything; do that only against servers where
// repeats are harmless).
//
// Each HTTP request event (types 1 and 2) is rebuilt from its payload —
// method, request target, headers, body — and sent through the proxy to
// its original destination: https (every captured request travelled
// inside TLS; Options.Scheme may say http), the Host header or HTTP/2
// :authority (else the event's host field, else the destination address
// and port) and the captured path and query. For https the proxy gets a
// CONNECT and does its own TLS to the client side.
//
// WARNING: in proxy mode the forwarder accepts ANY certificate on the
// connection through the proxy (InsecureSkipVerify). An intercepting
// proxy presents certificates it forges for every host; that is how it
// sees the plaintext. The consequence is that the forwarder will also
// talk to an impostor if the proxy address is wrong. Point --forward-url
// only at a proxy you run, on loopback. Whether the proxy verifies the
// real server is the proxy's setting.
//
// The captured body is already decoded (chunking and Content-Encoding
// removed), so it is sent with a fresh Content-Length and without
// Content-Encoding. A body cut by a size limit is sent as captured with an
// X-Tlstap-Truncated header. CONNECT requests and payloads that do not
// parse as a request are skipped and counted.
//
// # Delivery
//
// Each destination has its own bounded queue (a broker subscription with
// the Drop policy): capture never waits for a forwarder, and events that
// do not fit are counted in tlstap_drops_total{reason="queue_full_forward_<mode>"}.
// A few workers per destination send concurrently, so with more than one
// worker events may arrive out of order. An attempt that fails to connect
// is retried with exponential backoff and jitter, as is a 5xx answer to a
// webhook. In proxy mode only 502 and 504 are retried — gateway errors
// mean the proxy did not reach the server; any other status came from the
// server, and repeating the request would repeat its effects. Responses
// are counted by status class in tlstap_forward_responses_total, retries
// and abandoned events in tlstap_forward_retries_total and
// tlstap_forward_failed_total.
//
// # Loops and duplicates
//
// Events of tlstap's own process are never forwarded, so a webhook over a
// traced TLS library cannot feed itself. Every request a forwarder sends
// (replays and webhook calls) carries MarkHeader with a random value per
// run; a captured request carrying it, and the response paired with it,
// are never forwarded. So a replay captured on its way on (mitmproxy's
// upstream connection uses OpenSSL) or in the receiving server is sent
// once, not again and again. (Connections to and from tlstap itself are
// not captured at all: see internal/selfnet.)
//
// A message captured at both ends of a connection is forwarded once, from
// its sender: the client's request, the server's response. The receiving
// side's copy (data_type 0) is skipped when the same sender and receiver
// addresses were seen written; a receiving side's copy published before
// any such write waits 200 ms for it before it is sent as the only copy.
// A copy whose connection has no known addresses is always forwarded.
package forward
