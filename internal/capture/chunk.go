package capture

import (
	"context"
	"net/netip"
)

// Direction says which way plaintext moved, seen from the traced process.
// The values are ecapture's data_type.
type Direction uint8

const (
	// Read is data the process received (SSL_read).
	Read Direction = 0
	// Write is data the process sent (SSL_write).
	Write Direction = 1
)

func (d Direction) String() string {
	if d == Write {
		return "write"
	}
	return "read"
}

// Kind distinguishes data from lifecycle notices.
type Kind uint8

const (
	// Data carries plaintext in Chunk.Data.
	Data Kind = 0
	// Close says the connection ended (SSL_free, close(2)); Data is empty.
	Close Kind = 1
	// Lost says the source lost LostBytes of this connection's Direction
	// (ring buffer full, per-call cap). Decoders resynchronise after it.
	Lost Kind = 2
)

// Chunk is one piece of plaintext from one TLS call, or a lifecycle notice.
//
// Connection identity is (PID, Conn): Conn is an opaque value chosen by the
// source that stays the same for the connection's life (the SSL* pointer for
// eBPF capture), so one connection served by several threads is one stream.
type Chunk struct {
	// Time is Unix time in nanoseconds.
	Time int64
	PID  uint32
	TID  uint32
	UID  uint32
	Comm string
	// FD is the socket's file descriptor, -1 if unknown.
	FD int32
	// Conn identifies the connection within PID.
	Conn uint64
	// Local and Remote are the socket's addresses; invalid if unknown.
	Local  netip.AddrPort
	Remote netip.AddrPort
	Dir    Direction
	Kind   Kind
	// TLSVersion as on the wire (0x0303, 0x0304), 0 if unknown.
	TLSVersion uint16
	// Library is the TLS library that carried the connection ("openssl",
	// "gnutls", "nss", "gotls"), empty if unknown.
	Library string
	// Cgroup is the cgroup v2 id (the inode of the cgroup directory) of the
	// thread that made the call, 0 if unknown. internal/container maps it
	// to a container.
	Cgroup uint64
	// LostBytes is set on Kind == Lost.
	LostBytes uint64
	// Data belongs to the receiver once the chunk is sent: chunks wait in
	// buffered channels, so a source must not reuse the memory.
	Data []byte
}

// Source produces chunks until ctx is cancelled or it runs out.
//
// Run sends every chunk to out and returns when done; it never closes out.
// A nil error means the source ended normally (a recording played to its end).
type Source interface {
	Run(ctx context.Context, out chan<- Chunk) error
}
