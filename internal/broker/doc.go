// Package broker fans the stream of LogEntry messages out to subscribers:
// the streaming server's clients, stdout, files, push sinks and forwarders.
//
// Every subscriber has its own bounded queue, so a slow one never stalls
// capture or the others. A subscriber either drops on overflow (network
// clients: the drop is counted and the client is told how many entries it
// missed, in order, once it has room again) or blocks the publisher (stdout
// and files in replay, where losing output would be worse than waiting).
// A blocking subscriber may also take entries straight from the publisher
// while it is idle (SubOptions.Direct, read with Serve): standard output
// does, to save a goroutine hand-off per event.
//
// A publisher that knows where its batches end (the live capture: one
// drain of the kernel's ring) publishes with PublishBatched and calls
// Flush at each batch's end: Direct subscribers write the batch in one go
// (SubOptions.Flush), and queued subscribers are woken once per batch
// rather than per entry (or once 64 entries wait). Nothing waits for a
// timer: a batch of one is out when its Flush returns.
//
// The broker also retains recent events, bounded by count and bytes, so a
// client can resume after a disconnect from the last sequence number it
// saw, and recent process-log lines so late joiners see how the run
// started.
package broker
