// Package e2e holds end-to-end tests that run real programs under real
// eBPF capture through the whole engine: capture → pipeline → decoders →
// broker, and record → replay. They need root, as CI has.
//
// The package has no source files to mirror, so its test files are named
// for the scenario they run: capture (real TLS programs end to end),
// container (cgroup attribution), export (pcapng and HAR from a live
// capture), latency (a streamed part's delay, a benchmark), order (both
// ends of one exchange in order), selfsafe (tlstap never captures itself)
// and stream (streamed messages emitted part by part). See docs/architecture.md, "Tests".
package e2e
