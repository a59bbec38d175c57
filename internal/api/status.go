package api

import (
	"net/http"
	"time"

	"github.com/tlstap/tlstap/internal/stats"
)

// RunStatus is what the API learns from the rest of the run.
type RunStatus struct {
	// Source is the capture source's kind: "openssl", "replay", "demo".
	Source string `json:"source"`
	// Running is whether the source still delivers data.
	Running bool `json:"running"`
	// Libraries are the files the probes are attached to.
	Libraries []Library `json:"libraries"`
	// GoPrograms are the Go executables whose crypto/tls is probed.
	GoPrograms []GoProgram `json:"go_programs,omitempty"`
	// Processes are the processes with connections being tracked.
	Processes []Process `json:"processes,omitempty"`
	// Connections is the number of connections the pipeline tracks.
	Connections int `json:"connections"`
}

// Library is one attached file.
type Library struct {
	Path string `json:"path"`
	// Kind is the TLS library: "openssl", "gnutls" or "nss".
	Kind    string `json:"kind,omitempty"`
	Version string `json:"version,omitempty"`
	// Found says how: "option", "search", or "process start" / "library
	// mapped" / "running process" with the pid and path that mapped it.
	Found string `json:"found,omitempty"`
	// Processes is how many running processes map the file now.
	Processes int `json:"processes"`
}

// GoProgram is one Go executable whose crypto/tls is probed.
type GoProgram struct {
	Path      string `json:"path"`
	GoVersion string `json:"go_version,omitempty"`
	Stripped  bool   `json:"stripped,omitempty"`
	// Processes is how many running processes run it now.
	Processes int `json:"processes"`
}

// Process is one process seen.
type Process struct {
	PID         uint32 `json:"pid"`
	Comm        string `json:"comm"`
	Connections int    `json:"connections"`
}

// Status is the body of GET /api/v1/status.
type Status struct {
	Version       string    `json:"version"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Revision      uint64    `json:"revision"`
	Capture       RunStatus `json:"capture"`
	Counters      Counters  `json:"counters"`
	// PublishLatency is the delay from capture to publication (live
	// capture only).
	PublishLatency *Latency `json:"publish_latency,omitempty"`
}

// Counters summarise the stats registry; Series has every series.
type Counters struct {
	Chunks      uint64            `json:"chunks"`
	Bytes       uint64            `json:"bytes"`
	Events      map[string]uint64 `json:"events_by_type"`
	Drops       map[string]uint64 `json:"drops_by_reason"`
	Truncations map[string]uint64 `json:"truncations_by_reason"`
	// DecoderErrors totals tlstap_decoder_errors_total per decoder;
	// DecoderErrorReasons has the reasons that occurred, as
	// "decoder/reason" (internal/decoder/doc.go explains each).
	DecoderErrors       map[string]uint64 `json:"decoder_errors_by_decoder"`
	DecoderErrorReasons map[string]uint64 `json:"decoder_errors_by_reason"`
	Clients             map[string]int64  `json:"clients_by_listener"`
	ClientsTotal        int64             `json:"clients"`
	Series              []Series          `json:"series"`
}

// Series is one counter or gauge.
type Series struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Gauge  bool              `json:"gauge,omitempty"`
	Value  float64           `json:"value"`
}

// Status returns the current status.
func (a *API) Status() Status {
	_, rev := a.Config()
	st := Status{
		Version:       a.opts.Version,
		Started:       a.opts.Started.UTC(),
		UptimeSeconds: time.Since(a.opts.Started).Seconds(),
		Revision:      rev,
	}
	if a.opts.Status != nil {
		st.Capture = a.opts.Status()
	}
	if st.Capture.Libraries == nil {
		st.Capture.Libraries = []Library{}
	}
	st.Counters = summarise(a.opts.Stats.Snapshot())
	st.PublishLatency = publishLatency(a.opts.Stats)
	return st
}

func summarise(samples []stats.Sample) Counters {
	c := Counters{
		Events:      map[string]uint64{},
		Drops:       map[string]uint64{},
		Truncations: map[string]uint64{},
		Clients:     map[string]int64{},

		DecoderErrors:       map[string]uint64{},
		DecoderErrorReasons: map[string]uint64{},
		Series:              make([]Series, 0, len(samples)),
	}
	for _, s := range samples {
		labels := map[string]string{}
		for _, l := range s.Labels {
			labels[l.Name] = l.Value
		}
		switch s.Name {
		case stats.ChunksTotal:
			c.Chunks += uint64(s.Value)
		case stats.BytesTotal:
			c.Bytes += uint64(s.Value)
		case stats.EventsTotal:
			c.Events[labels["type"]] += uint64(s.Value)
		case stats.DropsTotal:
			c.Drops[labels["reason"]] += uint64(s.Value)
		case stats.TruncationsTotal:
			c.Truncations[labels["reason"]] += uint64(s.Value)
		case stats.DecoderErrorsTotal:
			c.DecoderErrors[labels["decoder"]] += uint64(s.Value)
			if s.Value > 0 {
				c.DecoderErrorReasons[labels["decoder"]+"/"+labels["reason"]] += uint64(s.Value)
			}
		case stats.Clients:
			c.Clients[labels["listener"]] += int64(s.Value)
			c.ClientsTotal += int64(s.Value)
		}
		if len(labels) == 0 {
			labels = nil
		}
		c.Series = append(c.Series, Series{Name: s.Name, Labels: labels, Gauge: s.Gauge, Value: s.Value})
	}
	return c
}

func (a *API) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Status())
}
