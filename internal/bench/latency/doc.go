// Command latency measures how long tlstap takes to deliver an event: from
// the event's capture timestamp to its line on tlstap's standard output
// and to its arrival at a stream client. It runs curl and h2load against a
// private nginx, single requests and under load, and tlstap idle, for the
// tlstap under test and a baseline build side by side in the same run, and
// prints the figures as Markdown for docs/benchmarks.md.
//
// scripts/bench-latency.sh builds both binaries and runs it; it needs root
// (eBPF) and nginx, curl, h2load and openssl.
//
// The traffic runs as the user nobody and tlstap captures only that uid,
// so whatever else runs on the machine stays out of the figures.
package main
