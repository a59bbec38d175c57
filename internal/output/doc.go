// Package output renders events for people and scripts: text (a header line
// per event, then the payload, hex-dumped when binary) and JSON lines (one
// object per event, every field, for jq). Writer drives a renderer from a
// broker subscription: its goroutine renders what is queued, and while it
// is idle the publisher renders and writes each event itself
// (Writer.Direct), so standard output adds no goroutine hand-off. Events of
// one batch (one drain of the capture ring) are written together when the
// batch ends (Writer.Flush): one write per drain under load, and at once
// for a single event.
package output
