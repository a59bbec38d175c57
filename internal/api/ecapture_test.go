package api_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/config"
)

// The request bodies of ecapture's remote configuration API document
// (docs/remote-config-update-api.md) and of its BaseConfig/OpensslConfig
// JSON, answered with ecapture's envelope.
func TestECaptureCompat(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		body    string
		status  int
		code    api.ECaptureStatus
		msg     string // prefix of msg
		ignored []string
		check   func(c config.Config) bool
	}{
		{
			name: "document example", path: "/tls", status: 200, code: api.RespOK, msg: "RespOK",
			body: `{"pid": 0, "uid": 0, "debug": false, "hex": false, "btf": 0, "per_cpu_map_size": 1024,
				"truncate_size": 0, "filters": {"target_process": ["nginx", "curl"], "ignore_process": ["ecapture"]}}`,
			ignored: []string{"btf", "debug", "filters", "per_cpu_map_size"},
			check:   func(c config.Config) bool { return len(c.Capture.PIDs) == 0 && c.Pipeline.TSize == 0 },
		},
		{
			name: "pid, truncate, hex", path: "/openssl", status: 200, code: api.RespOK, msg: "RespOK",
			body:    `{"pid": 12345, "uid": 1000, "is_hex": true, "truncate_size": 64, "btf_mode": 0, "per_cpu_map_size": 1024, "model": "text"}`,
			ignored: []string{"btf_mode", "per_cpu_map_size"},
			check: func(c config.Config) bool {
				return slices.Equal(c.Capture.PIDs, []uint32{12345}) && slices.Equal(c.Capture.UIDs, []uint32{1000}) &&
					c.Output.Hex && c.Pipeline.TSize == 64
			},
		},
		{
			name: "library path", path: "/boringssl", status: 200, code: api.RespOK, msg: "RespOK",
			body:  `{"pid": 1, "openssl": "` + exe + `"}`,
			check: func(c config.Config) bool { return slices.Equal(c.Capture.Libs, []string{exe}) },
		},
		{name: "decode failure", path: "/tls", body: `{"pid": 1`, status: 400, code: api.RespConfigDecodeFailed, msg: "RespConfigDecodeFailed"},
		{name: "wrong type", path: "/tls", body: `{"truncate_size": -1}`, status: 400, code: api.RespConfigDecodeFailed, msg: "RespConfigDecodeFailed"},
		{name: "not an object", path: "/tls", body: `[]`, status: 400, code: api.RespConfigDecodeFailed, msg: "RespConfigDecodeFailed"},
		{name: "pcap model", path: "/tls", body: `{"model": "pcap", "pcapfile": "/tmp/x.pcapng", "ifname": "eth0"}`, status: 400, code: api.RespConfigCheckFailed, msg: "RespConfigCheckFailed"},
		{name: "keylog", path: "/tls", body: `{"model": "keylog", "keylog": "/tmp/keys.log"}`, status: 400, code: api.RespConfigCheckFailed, msg: "RespConfigCheckFailed"},
		{name: "relative library", path: "/tls", body: `{"openssl": "libssl.so.3"}`, status: 400, code: api.RespConfigCheckFailed, msg: "RespConfigCheckFailed: capture.libs[0]"},
		{name: "pid out of range", path: "/tls", body: `{"pid": 4294967296}`, status: 400, code: api.RespConfigCheckFailed, msg: "RespConfigCheckFailed"},
		{name: "wrong content type", path: "/tls", body: `{}`, status: 415, code: api.RespErrorInvaildRequest, msg: "RespErrorInvaildRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, config.Default())
			ctype := ""
			if tt.status == 415 {
				ctype = "text/plain"
			}
			res := e.do(request{method: "POST", path: tt.path, ctype: ctype, body: tt.body})
			if res.status != tt.status {
				t.Errorf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			r := decode[ecaptureClientResp](t, res.body)
			if r.Code != uint8(tt.code) || r.ModuleType != "openssl" || !strings.HasPrefix(r.Msg, tt.msg) {
				t.Errorf("envelope %s, want code %d (%s)", res.body, tt.code, tt.msg)
			}
			for _, f := range tt.ignored {
				if !strings.Contains(r.Msg, f) {
					t.Errorf("msg %q does not report ignored field %s", r.Msg, f)
				}
			}
			c, rev := e.snapshot()
			if tt.check != nil {
				if !tt.check(c) {
					t.Errorf("config after: revision %d %+v", rev, c)
				}
				if r.Data["revision"] != float64(rev) {
					t.Errorf("data %v, want revision %d", r.Data, rev)
				}
			} else if rev != 1 || !config.Equal(c, config.Default()) {
				t.Errorf("refused request changed the config: revision %d %+v", rev, c)
			}
		})
	}
}

// ecaptureClientResp is the response struct of ecapture's client example.
type ecaptureClientResp struct {
	Code       uint8          `json:"code"`
	ModuleType string         `json:"module_type"`
	Msg        string         `json:"msg"`
	Data       map[string]any `json:"data"`
}
