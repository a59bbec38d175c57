// Package capture defines what every capture source produces: Chunks of TLS
// plaintext with the metadata of the call that carried them.
//
// A Chunk is the unit between the kernel (or a recording) and the pipeline.
// Sources live in sub-packages: capture/openssl attaches eBPF uprobes to
// TLS libraries (OpenSSL, GnuTLS, Go's crypto/tls), capture/replay plays a
// recording. docs/architecture.md follows a chunk from its source to the
// outputs.
package capture
