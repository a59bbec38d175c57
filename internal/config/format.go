package config

import (
	"fmt"
	"slices"
	"strings"
)

// The event formats each consumer accepts, in the order messages list
// them: standard output (Output.Format), webhook bodies (Forward.Format)
// and push sinks (Sink.Format). The one Go type for these values is
// output.Format, which renders them.
var (
	OutputFormats  = []string{"text", "json", "none"}
	ForwardFormats = []string{"json", "protobuf"}
	SinkFormats    = []string{"protobuf", "json", "text"}
)

// ForwardModes are what a forwarder may do (see package forward):
// webhook sends each matching event to the URL; proxy re-sends each
// matching captured request through the HTTP proxy at the URL.
var ForwardModes = []string{"webhook", "proxy"}

// checkOutputFormat checks a standard output format (--output,
// output.format).
func checkOutputFormat(s string) error {
	if slices.Contains(OutputFormats, s) {
		return nil
	}
	return fmt.Errorf("unknown output format %q (want %s)", s, orList(OutputFormats))
}

// checkSinkFormat checks a push sink's format (--eventaddr-format,
// sinks[].format); "" is protobuf.
func checkSinkFormat(s string) error {
	if s == "" || slices.Contains(SinkFormats, s) {
		return nil
	}
	return fmt.Errorf("unknown event format %q (want %s)", s, orList(SinkFormats))
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
