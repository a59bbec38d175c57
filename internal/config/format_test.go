package config

import (
	"slices"
	"testing"

	"github.com/tlstap/tlstap/internal/forward"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/sink"
)

// TestValueSetsMatchConsumers: the formats and modes config accepts are
// exactly those the consumers run with, so nothing valid here fails at
// start and nothing they run is refused here.
func TestValueSetsMatchConsumers(t *testing.T) {
	for _, tt := range []struct {
		name  string
		set   []string
		parse func(string) error
	}{
		{"output", OutputFormats, func(s string) error { _, err := output.ParseFormat(s); return err }},
		{"sink", SinkFormats, func(s string) error { _, err := sink.ParseFormat(s); return err }},
	} {
		for _, s := range append(slices.Clone(tt.set), "xml", "JSON", "") {
			valid := slices.Contains(tt.set, s) || (tt.name == "sink" && s == "")
			if got := tt.parse(s) == nil; got != valid {
				t.Errorf("%s format %q: consumer accepts %v, config %v", tt.name, s, got, valid)
			}
		}
	}
	if want := []string{string(forward.JSON), string(forward.Protobuf)}; !slices.Equal(ForwardFormats, want) {
		t.Errorf("forward formats %q, forward has %q", ForwardFormats, want)
	}
	if want := []string{string(forward.Webhook), string(forward.Proxy)}; !slices.Equal(ForwardModes, want) {
		t.Errorf("forward modes %q, forward has %q", ForwardModes, want)
	}
}
