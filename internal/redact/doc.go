// Package redact keeps tlstap's own secrets (its access tokens) out of
// everything it emits, as a second line of defence behind self-exclusion
// (internal/selfnet): should a request carrying a token be captured
// anyway (the kernel's endpoint map was full, a connection was opened
// before tlstap started, or self-exclusion was turned off for debugging),
// the token's bytes are masked before any decoder, recording, stream,
// sink or forwarder sees them.
//
// A secret is masked in place of its bytes with as many '*', so lengths
// (Content-Length, frame sizes) stay true and decoders are not thrown off.
// Its URL-escaped form is masked too. Masking works within one chunk: a
// secret split across two SSL calls is not found. Every masked occurrence
// is counted in tlstap_redacted_total.
package redact
