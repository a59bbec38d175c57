// Package engine assembles one tlstap run: a capture source feeding the
// pipeline, the broker fanning events out, standard output, and the
// services that subscribe to the broker (server, forwarders, sinks). It
// owns their lifecycle: on cancel or when a finite source ends, the
// pipeline is flushed, every subscriber drains, and every goroutine ends.
//
// docs/architecture.md names the function at each stage of a run.
package engine
