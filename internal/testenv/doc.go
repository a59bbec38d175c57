// Package testenv starts real TLS servers and clients on loopback for tests
// that need live traffic: nginx (HTTP/1.1 and HTTP/2), Python's http.server
// wrapped in ssl, and openssl s_server/s_client.
//
// Every helper takes a testing.TB, binds only loopback addresses, keeps its
// files in t.TempDir() and stops its processes in t.Cleanup. A missing
// program fails the test rather than skipping it: the tests using this
// package are meant to run for real. The one exception is privilege:
// RequireRoot, called first by every test that needs root (BPF, capture,
// switching users), skips it with the reason when not root, so an
// unprivileged `go test ./...` runs everything else; as root nothing skips.
package testenv
