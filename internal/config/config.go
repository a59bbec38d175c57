package config

// Config is everything a user may change while tlstap runs, and (Run) the
// settings a run starts with.
type Config struct {
	Capture  Capture   `json:"capture"`
	Pipeline Pipeline  `json:"pipeline"`
	Output   Output    `json:"output"`
	Forward  []Forward `json:"forward"`
	Sinks    []Sink    `json:"sinks"`
	// Run is set by command-line flags only: the --config file and the
	// API neither read nor write it, and a change through the API leaves
	// it zero (Parse), since nothing in it can change while tlstap runs.
	Run Run `json:"-"`
}

// Run holds what a run starts with and keeps until it ends. Validate
// names its fields "run.<name>"; the command line reports them by flag.
type Run struct {
	// Node names this node on every event ("": none).
	Node string
	// LogLevel is debug, info, warn or error; "" is info.
	LogLevel string
	// RawOnly disables protocol decoding.
	RawOnly bool
	// RingBytes is the BPF ring buffer's size, a power of two of at
	// least 4096 bytes; 0 is the capture's default. Live capture only.
	RingBytes int
	// CaptureSelf also captures tlstap's own connections. Live only.
	CaptureSelf bool
	// Realtime runs tlstap's threads SCHED_FIFO (internal/sched) while
	// traffic is sparse, so a woken reader preempts the traced programs;
	// on by default (issue 19: without it a lone request's events waited
	// up to ~4 ms behind them here). Live only.
	Realtime bool
	// Pods names each container's Kubernetes pod from the API: "" off,
	// "in-cluster" (the pod's service account) or the API server's URL.
	// PodsTokenFile and PodsCAFile override the service account's token
	// and CA; PodsNode is the node whose pods are listed ("": Node).
	// Live only.
	Pods, PodsTokenFile, PodsCAFile, PodsNode string
	// Record is a recording file every captured chunk is written to,
	// which must not exist unless RecordOverwrite. Live only.
	Record          string
	RecordOverwrite bool
	// Speed is the replay pace: 1 as recorded, 0 as fast as possible.
	// Loop plays the recording again and again; Exit ends the run once
	// it has been played. Replay only.
	Speed      float64
	Loop, Exit bool
	// PCAPNG and HAR are export files ("": none); PCAPNGRotateBytes
	// starts a new pcapng file after that many bytes (0: never).
	PCAPNG            string
	PCAPNGRotateBytes int64
	HAR               string
	// DrainTimeout bounds the delivery of what forwarders and sinks hold
	// at exit; 0 or less is the engine's default.
	DrainTimeout Duration
	// Server is the stream server's ("run.server.<field>").
	Server Server
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
		Run:      Run{Speed: 1, Realtime: true},
	}
}
