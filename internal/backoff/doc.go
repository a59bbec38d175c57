// Package backoff spaces out retries: the forwarders' re-sends, the push
// sinks' reconnects and the stream client's reconnects all wait by the
// same policy, exponential with equal jitter.
//
// The nominal delay starts at Min and doubles per retry up to Max; each
// wait is drawn uniformly from [d/2, d]. Half of it is guaranteed, so a
// retry never hammers a peer that is down; the other half is random, so
// peers that failed together (forwarder workers, sinks, every client of
// a restarted server) do not retry in lockstep.
package backoff
