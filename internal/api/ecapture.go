package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/tlstap/tlstap/internal/config"
)

// ecaptureTLSPaths are ecapture's OpenSSL module endpoints (cli/http).
var ecaptureTLSPaths = []string{"/tls", "/openssl", "/boringssl"}

// ecaptureModule is the module_type ecapture answers for them.
const ecaptureModule = "openssl"

// ECaptureStatus is ecapture's response code (cli/http/resp.go).
type ECaptureStatus uint8

// ecapture's codes, in its order; the message is the constant's name.
const (
	RespOK ECaptureStatus = iota
	RespErrorInvaildRequest
	RespErrorInternalServer
	RespErrorNotFound
	RespConfigDecodeFailed
	RespConfigCheckFailed
	RespSendToChanFailed
)

var ecaptureStatusNames = [...]string{
	"RespOK", "RespErrorInvaildRequest", "RespErrorInternalServer", "RespErrorNotFound",
	"RespConfigDecodeFailed", "RespConfigCheckFailed", "RespSendToChanFailed",
}

func (s ECaptureStatus) String() string {
	if int(s) < len(ecaptureStatusNames) {
		return ecaptureStatusNames[s]
	}
	return fmt.Sprintf("ECaptureStatus(%d)", s)
}

// ECaptureResp is ecapture's response envelope.
type ECaptureResp struct {
	Code       ECaptureStatus `json:"code"`
	ModuleType string         `json:"module_type"`
	Msg        string         `json:"msg"`
	Data       any            `json:"data"`
}

// ECaptureData is what tlstap puts in the envelope's data: the resulting
// revision and the request's fields it did not apply.
type ECaptureData struct {
	Revision uint64   `json:"revision,omitempty"`
	Ignored  []string `json:"ignored,omitempty"`
}

// ecaptureTLS is the subset of ecapture's OpensslConfig (BaseConfig
// embedded) tlstap can honour; pointers tell absent from zero.
type ecaptureTLS struct {
	PID          *uint64 `json:"pid"`
	UID          *uint64 `json:"uid"`
	IsHex        *bool   `json:"is_hex"`
	Hex          *bool   `json:"hex"` // the spelling of ecapture's API document
	TruncateSize *uint64 `json:"truncate_size"`
	Openssl      *string `json:"openssl"`
	Libssl       *string `json:"libssl"`
	Model        *string `json:"model"`
	PcapFile     *string `json:"pcapfile"`
	Keylog       *string `json:"keylog"`
}

func ecaptureReply(w http.ResponseWriter, status int, code ECaptureStatus, detail string, data any) {
	msg := code.String()
	if detail != "" {
		msg += ": " + detail
	}
	writeJSON(w, status, ECaptureResp{Code: code, ModuleType: ecaptureModule, Msg: msg, Data: data})
}

// ecaptureTLS takes ecapture's OpenSSL configuration. Like ecapture, the
// body describes the module completely, so pid, uid, is_hex and
// truncate_size absent mean 0/false (pid 0 and uid 0: every process); a
// library path replaces the attached ones. Unlike ecapture, nothing
// restarts: the change applies in place like a PATCH.
func (a *API) ecaptureTLS(w http.ResponseWriter, r *http.Request) {
	body, cerr := readBody(w, r, typeJSON)
	if cerr != nil {
		code := RespErrorInvaildRequest
		if cerr.status == http.StatusBadRequest {
			code = RespConfigDecodeFailed
		}
		ecaptureReply(w, cerr.status, code, cerr.msg, nil)
		return
	}
	var raw map[string]json.RawMessage
	if err := strictJSON(body, &raw); err != nil || raw == nil {
		ecaptureReply(w, http.StatusBadRequest, RespConfigDecodeFailed, "body must be a JSON object", nil)
		return
	}
	var req ecaptureTLS
	if err := strictJSON(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			err = fmt.Errorf("field %s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		ecaptureReply(w, http.StatusBadRequest, RespConfigDecodeFailed, err.Error(), nil)
		return
	}
	var ignored []string
	for k := range raw {
		if !slices.Contains(ecaptureKnown, k) {
			ignored = append(ignored, k)
		}
	}
	sort.Strings(ignored)
	if msg := req.refused(); msg != "" {
		ecaptureReply(w, http.StatusBadRequest, RespConfigCheckFailed, msg, nil)
		return
	}
	_, rev, err := a.update(r.Context(), who(r), nil, req.apply)
	if err != nil {
		var ce *commitError
		if !errors.As(err, &ce) {
			ce = &commitError{status: http.StatusInternalServerError, msg: err.Error()}
		}
		code := RespConfigCheckFailed
		if ce.status >= 500 {
			code = RespErrorInternalServer
		}
		detail := ce.msg
		if len(ce.fields) > 0 {
			detail = config.FieldErrors(ce.fields).Error()
		}
		ecaptureReply(w, ce.status, code, detail, nil)
		return
	}
	detail := ""
	if len(ignored) > 0 {
		detail = "ignored unsupported fields: " + strings.Join(ignored, ", ")
	}
	ecaptureReply(w, http.StatusOK, RespOK, detail, ECaptureData{Revision: rev, Ignored: ignored})
}

// ecaptureKnown are the fields tlstap applies or checks; the others
// (debug, btf_mode, per_cpu_map_size, ifname, ...) have no counterpart and
// are accepted, so existing scripts keep working, and listed as ignored.
var ecaptureKnown = []string{"pid", "uid", "is_hex", "hex", "truncate_size", "openssl", "libssl", "model", "pcapfile", "keylog"}

// refused explains why the request cannot be honoured at all: tlstap never
// writes files because a request asked.
func (q *ecaptureTLS) refused() string {
	var why []string
	if q.PcapFile != nil && *q.PcapFile != "" {
		why = append(why, "pcapfile: tlstap does not write files on request")
	}
	if q.Keylog != nil && *q.Keylog != "" {
		why = append(why, "keylog: tlstap does not write files on request")
	}
	if q.Model != nil {
		switch *q.Model {
		case "", "text":
		default:
			why = append(why, fmt.Sprintf("model %q: only text is supported", *q.Model))
		}
	}
	if q.PID != nil && *q.PID > 1<<32-1 {
		why = append(why, fmt.Sprintf("pid %d is out of range", *q.PID))
	}
	if q.UID != nil && *q.UID > 1<<32-1 {
		why = append(why, fmt.Sprintf("uid %d is out of range", *q.UID))
	}
	if q.TruncateSize != nil && *q.TruncateSize > 1<<31-1 {
		why = append(why, fmt.Sprintf("truncate_size %d is out of range", *q.TruncateSize))
	}
	if q.Openssl != nil && q.Libssl != nil && *q.Openssl != *q.Libssl {
		why = append(why, "openssl and libssl name different files")
	}
	return strings.Join(why, "; ")
}

func (q *ecaptureTLS) apply(c config.Config) (config.Config, error) {
	c.Capture.PIDs = nil
	if q.PID != nil && *q.PID != 0 {
		c.Capture.PIDs = []uint32{uint32(*q.PID)}
	}
	c.Capture.UIDs = nil
	if q.UID != nil && *q.UID != 0 {
		c.Capture.UIDs = []uint32{uint32(*q.UID)}
	}
	hex := q.IsHex
	if hex == nil {
		hex = q.Hex
	}
	c.Output.Hex = hex != nil && *hex
	c.Pipeline.TSize = 0
	if q.TruncateSize != nil {
		c.Pipeline.TSize = int(*q.TruncateSize)
	}
	lib := q.Openssl
	if lib == nil {
		lib = q.Libssl
	}
	if lib != nil && *lib != "" {
		c.Capture.Libs = []string{*lib}
	}
	return c, nil
}

// strictJSON decodes exactly one JSON value.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if int(dec.InputOffset()) != len(bytes.TrimRight(b, " \t\r\n")) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
