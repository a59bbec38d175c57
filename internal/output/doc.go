// Package output renders events for people and scripts: text (a header line
// per event, then the payload, hex-dumped when binary) and JSON lines (one
// object per event, every field, for jq). Run drives a renderer from a
// broker subscription.
package output
