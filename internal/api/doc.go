// Package api serves tlstap's run-time HTTP API: the configuration
// (/api/v1/config, with revisions, ETags, merge patches and all-or-nothing
// application), ecapture-compatible configuration endpoints (/tls,
// /openssl, /boringssl), status (/api/v1/status), liveness (/healthz) and
// Prometheus metrics (/metrics).
//
// Changes are validated as a whole, then handed to an Applier that changes
// the running capture in place; if it fails, the previous configuration
// stays live. Mutating requests must carry a JSON content type, which a
// web page cannot send cross-origin without a CORS preflight, so the token
// check is not the only defence against cross-site requests.
//
// See docs/config.md for the endpoints, their bodies and status codes.
package api
