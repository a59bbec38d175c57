// Package pcapng writes captured plaintext as a pcapng file that Wireshark
// and tshark dissect like ordinary cleartext traffic.
//
// Each connection becomes TCP over IPv4 or IPv6 on its real 4-tuple: a
// synthesized three-way handshake, data segments cut at MSS with sequence
// and acknowledgement numbers that reassemble, and FINs when the
// connection closes. Every packet carries a comment naming the process
// (pid, tid, comm, fd), the connection's uuid and the TLS library. Where
// the capture lost bytes, the sender's sequence number jumps by the lost
// count and the next packet's comment says so, so Wireshark reports
// "previous segment not captured" exactly there.
//
// The side with the lower port is taken to be the server (it receives the
// SYN); equal ports make the traced process the client. A connection whose
// 4-tuple is unknown is given a synthetic one in 198.18.0.0/15, the range
// RFC 2544 reserves for benchmarking, which no real traffic uses: the
// traced process is 198.18.X.Y (one address per such connection) and its
// peer 198.19.0.1 on port 80, where Wireshark looks for HTTP.
//
// The writer sits on the chunk stream, before decoding, so the file holds
// the bytes as they crossed SSL_read/SSL_write (chunked, compressed,
// framed), from a live capture or a recording alike.
package pcapng
