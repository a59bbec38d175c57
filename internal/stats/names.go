package stats

// Metric names shared by the packages that count and the ones that report.
// Drops and truncations carry a "reason" label so nothing is lost silently.
const (
	ChunksTotal      = "tlstap_chunks_total"
	BytesTotal       = "tlstap_bytes_total"
	EventsTotal      = "tlstap_events_total"      // label type
	DropsTotal       = "tlstap_drops_total"       // label reason
	TruncationsTotal = "tlstap_truncations_total" // label reason
	Connections      = "tlstap_connections"       // gauge
	Clients          = "tlstap_clients"           // gauge, label listener
	// DecoderErrorsTotal counts input a decoder could not decode, labels
	// decoder and reason (decoder.Reason; docs in internal/decoder).
	DecoderErrorsTotal = "tlstap_decoder_errors_total"
	// PublishLatency is a histogram: from the capture timestamp of the byte
	// that completed a message to the event's publication.
	PublishLatency = "tlstap_publish_latency_seconds"
)
