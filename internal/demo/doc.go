// Package demo embeds the recording that 'tlstap demo' plays.
//
// demo.rec is synthesised by ./gen (go generate ./internal/demo): it runs
// real implementations — Go's net/http client and server (HTTP/1.1
// keep-alive, chunked and gzip bodies), golang.org/x/net/http2 (several
// concurrent streams), github.com/coder/websocket (a compressed
// conversation) and a small binary protocol — over real loopback
// connections (IPv4 and IPv6), and records every Read and Write on the
// client's side as capture chunks. The bytes, addresses, ports and timing
// are real; the process metadata (pid, tid, comm, fd, uid) is invented,
// since no process was traced.
package demo
