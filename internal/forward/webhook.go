package forward

import (
	"encoding/base64"
	"encoding/json"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// webhookBody encodes one event: the LogEntry as marshaled for the broker,
// or output's JSON form with the payload always base64, so a receiver
// decodes every body the same way.
func (f *Forwarder) webhookBody(e *broker.Entry) ([]byte, string, error) {
	if f.opts.Format == Protobuf {
		return e.Bytes, "application/x-protobuf", nil
	}
	b, err := WebhookJSON(e.Event())
	return b, "application/json", err
}

// WebhookJSON is the JSON body of a webhook: output.ToJSON's object with
// payload_encoding "base64".
func WebhookJSON(ev *eventpb.Event) ([]byte, error) {
	j := output.ToJSON(ev)
	j.PayloadEncoding = "base64"
	j.Payload = base64.StdEncoding.EncodeToString(ev.GetPayload())
	return json.Marshal(j)
}
