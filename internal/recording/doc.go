// Package recording reads and writes tlstap recordings: capture chunks as
// length-delimited protobuf records (proto/recording), so a capture can be
// replayed through the pipeline exactly as it happened.
//
// The reader trusts nothing: every length is bounded, every record is
// validated, and errors name the byte offset where the file went wrong.
package recording
