// Package e2e holds end-to-end tests that run real programs under real
// eBPF capture through the whole engine: capture → pipeline → decoders →
// broker, and record → replay. They need root, as CI has.
package e2e
