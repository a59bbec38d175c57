// Package tlsauth holds the credentials that make tlstap's streaming server
// secure by default, and that its clients need to talk to it: the state
// directory, the self-signed server certificate and its fingerprint, and the
// bearer token.
//
// On first run the server generates an ECDSA P-256 certificate valid for
// 127.0.0.1, ::1 and localhost and a random 32-byte token, and keeps both in
// the state directory (0700, files 0600) so that later runs present the same
// fingerprint and accept the same token. Clients pin the certificate by its
// SHA-256 fingerprint instead of trusting a CA.
//
// Fingerprints are the SHA-256 of the DER certificate. Format prints them as
// upper-case hex pairs separated by colons (the form of `openssl x509
// -fingerprint -sha256`); ParseFingerprint also accepts plain hex, any case,
// with or without a "sha256:" prefix.
package tlsauth
