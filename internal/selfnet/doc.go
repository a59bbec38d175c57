// Package selfnet keeps the set of tlstap's own network endpoints and
// hands it to the capture, so that tlstap never observes itself through
// another process's TLS library.
//
// tlstap's own process is excluded by pid in the kernel. That is not
// enough: a stream client that uses OpenSSL (Python, Node, curl calling
// the API) would have its reads of the stream captured and sent back to
// it, and a forwarder's webhook received by a local TLS server would be
// captured there and forwarded again. Both are connections with one end
// at an endpoint of tlstap's, whatever process holds the other end, so
// the capture drops every connection with a registered endpoint at either
// end (see openssl.Source.ExcludeEndpoint).
//
// Registered are: each listener's address when it is a concrete one; the
// remote end of every connection a listener accepts (this covers wildcard
// listeners), from Accept until the connection closes; and the local end
// of every connection dialled through DialContext (forwarders and sinks),
// from the dial until it closes. Registration happens before the
// connection is handed to its user, so no byte crosses it before the
// capture knows: an accepting peer's first data call cannot complete
// before tlstap's side of the TLS handshake, which only starts after
// Accept returns.
package selfnet
