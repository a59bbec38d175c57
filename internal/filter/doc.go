// Package filter is tlstap's one filter model: the key list, the
// expression language, the parser and one matcher per key, as
// docs/filters.md documents them. Every place that selects events uses
// it: the stream query and GET /api/v1/har (internal/server), client.Filters,
// --forward-filter (internal/forward), tlstap watch and the capture-side
// process filter, which gets the part the kernel can judge from Capture.
//
// A Filter is immutable once built and safe for concurrent use; Match
// does not allocate, because it runs on the broker's publishing goroutine.
//
// The table in testdata/cases.json is the language's conformance suite:
// the web UI's JavaScript implementation runs the same rows, so a change
// of meaning shows up in both.
package filter
