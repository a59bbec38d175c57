// Package raw is the decoder for data without a recognised protocol. It
// emits what arrived as one type 0 message when the connection goes idle,
// when RawFlushBytes are buffered, or when the connection closes.
package raw
