package config

// Config is everything a user may change while tlstap runs.
type Config struct {
	Capture  Capture   `json:"capture"`
	Pipeline Pipeline  `json:"pipeline"`
	Output   Output    `json:"output"`
	Forward  []Forward `json:"forward"`
	Sinks    []Sink    `json:"sinks"`
}

// Capture selects what is captured. Empty lists mean "everything".
type Capture struct {
	PIDs  []uint32 `json:"pids"`
	UIDs  []uint32 `json:"uids"`
	Comms []string `json:"comms"`
	// Libs are explicit libssl paths (or binaries with OpenSSL linked
	// statically); empty means auto-detect.
	Libs []string `json:"libs"`
}

// Pipeline tunes event building.
type Pipeline struct {
	// TSize truncates payloads to this many bytes; 0 is no limit.
	TSize int `json:"tsize"`
	// IdleTimeout flushes raw data after this long without more, e.g. "100ms".
	IdleTimeout Duration `json:"idle_timeout"`
	// StreamParts emits an HTTP message whose body is still arriving as a
	// head, body parts and an end; false waits for whole messages. A
	// change applies to connections opened after it.
	StreamParts bool `json:"stream_parts"`
}

// Output configures standard output.
type Output struct {
	// Format is text, json or none.
	Format string `json:"format"`
	Hex    bool   `json:"hex"`
}

// Forward is one forwarding destination (see package forward).
type Forward struct {
	URL    string `json:"url"`
	Mode   string `json:"mode"`
	Method string `json:"method"`
	Filter string `json:"filter"`
	Format string `json:"format"`
}

// Sink is one push sink (see package sink).
type Sink struct {
	Addr   string `json:"addr"`
	Format string `json:"format"`
	// RotateBytes and RotateAge start a new file (file sinks only) once
	// the current one holds that many bytes or is that old; 0: never.
	RotateBytes int64    `json:"rotate_bytes,omitempty"`
	RotateAge   Duration `json:"rotate_age,omitempty"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Pipeline: Pipeline{IdleTimeout: Duration(100e6), StreamParts: true},
		Output:   Output{Format: "text"},
	}
}
