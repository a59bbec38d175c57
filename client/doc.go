// Package client receives tlstap's event stream from a streaming server
// (package server) over WebSocket: the library behind `tlstap watch`, for
// Go programs that want decoded *eventpb.LogEntry values instead of raw
// frames.
//
// The client pins the server's self-signed certificate by its SHA-256
// fingerprint (or verifies it against a CA), sends the token as a bearer
// credential, asks the server to filter, and reconnects with exponential
// backoff. Every reconnect resumes after the last event it delivered
// (?since=SEQ), so the stream has neither a gap nor a duplicate as long as
// the server still retains the events in between; if it does not, the
// server's process-log notice saying how many were missed is delivered in
// their place.
//
// Delivery is in order and blocking: a consumer that does not keep up
// slows the reading, and the server, which never waits for one client,
// drops for it and says so in the stream.
package client
