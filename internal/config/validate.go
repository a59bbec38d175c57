package config

import (
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/filter"
)

// Bounds the BPF filter maps and common sense impose.
const (
	// MaxFilterEntries is the most entries one capture filter set may have.
	MaxFilterEntries = 4096
	// MaxComm is the longest process name the kernel keeps (TASK_COMM_LEN-1).
	MaxComm = 15
	// MaxIdleTimeout keeps raw data from being held for absurdly long.
	MaxIdleTimeout = time.Hour
	// MaxServices bounds forwarders plus sinks.
	MaxServices = 64
)

// FieldError is one invalid field: Field is its JSON path, as in
// "capture.pids[0]".
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// FieldErrors joins several into one error.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	s := make([]string, len(fe))
	for i, e := range fe {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

type checker struct{ errs []FieldError }

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Validate reports every invalid field of c, in field order; nil means c is
// valid. It checks values only: where a file sink may write is a question of
// who asks, see CheckUpdate.
func Validate(c Config) []FieldError {
	var ck checker
	ck.capture(c.Capture)
	if c.Pipeline.TSize < 0 {
		ck.add("pipeline.tsize", "must be >= 0, got %d (0: no limit)", c.Pipeline.TSize)
	}
	switch d := time.Duration(c.Pipeline.IdleTimeout); {
	case d <= 0:
		ck.add("pipeline.idle_timeout", "must be > 0, got %s", d)
	case d > MaxIdleTimeout:
		ck.add("pipeline.idle_timeout", "must be at most %s, got %s", MaxIdleTimeout, d)
	}
	if err := checkOutputFormat(c.Output.Format); err != nil {
		ck.add("output.format", "%v", err)
	}
	if n := len(c.Forward) + len(c.Sinks); n > MaxServices {
		ck.add("forward", "at most %d forwarders and sinks together, got %d", MaxServices, n)
	}
	for i, f := range c.Forward {
		ck.forward(fmt.Sprintf("forward[%d]", i), f)
	}
	for i, s := range c.Sinks {
		ck.sink(fmt.Sprintf("sinks[%d]", i), s)
	}
	ck.run(c.Run)
	return ck.errs
}

func (ck *checker) capture(c Capture) {
	for _, set := range []struct {
		name string
		n    int
	}{{"pids", len(c.PIDs)}, {"uids", len(c.UIDs)}, {"comms", len(c.Comms)}} {
		if set.n > MaxFilterEntries {
			ck.add("capture."+set.name, "at most %d entries, got %d", MaxFilterEntries, set.n)
		}
	}
	for i, pid := range c.PIDs {
		if pid == 0 {
			ck.add(fmt.Sprintf("capture.pids[%d]", i), "0 is not a process id")
		}
	}
	for i, comm := range c.Comms {
		f := fmt.Sprintf("capture.comms[%d]", i)
		switch {
		case comm == "":
			ck.add(f, "empty process name")
		case len(comm) > MaxComm:
			ck.add(f, "%q is %d bytes; the kernel keeps at most %d", comm, len(comm), MaxComm)
		case strings.ContainsRune(comm, 0):
			ck.add(f, "contains a NUL byte")
		}
	}
	for i, lib := range c.Libs {
		f := fmt.Sprintf("capture.libs[%d]", i)
		if !filepath.IsAbs(lib) {
			ck.add(f, "%q is not an absolute path", lib)
			continue
		}
		st, err := os.Stat(lib)
		switch {
		case err != nil:
			ck.add(f, "%v", unwrapPath(err))
		case !st.Mode().IsRegular():
			ck.add(f, "%q is not a regular file", lib)
		case !isELF(lib):
			ck.add(f, "%q is not an ELF file: want a libssl.so, or a program with OpenSSL linked in statically", lib)
		}
	}
}

func (ck *checker) forward(at string, f Forward) {
	u, err := url.Parse(f.URL)
	switch {
	case f.URL != "" && !strings.Contains(f.URL, "://"):
		ck.add(at+".url", "%q has no scheme: did you mean http://%s ?", f.URL, f.URL)
	case err != nil:
		ck.add(at+".url", "does not parse: %v", unwrapURL(err))
	case u.Scheme != "http" && u.Scheme != "https":
		ck.add(at+".url", "%q: want an http:// or https:// URL", f.URL)
	case u.Host == "":
		ck.add(at+".url", "%q has no host", f.URL)
	case !validPort(u.Port()):
		ck.add(at+".url", "%q: port %s is out of range (1-65535)", f.URL, u.Port())
	}
	if f.Mode != "" && !slices.Contains(ForwardModes, f.Mode) {
		ck.add(at+".mode", "%q: want %s", f.Mode, orList(ForwardModes))
	}
	if f.Format != "" && !slices.Contains(ForwardFormats, f.Format) {
		ck.add(at+".format", "%q: want %s", f.Format, orList(ForwardFormats))
	}
	if f.Method != "" && !isToken(f.Method) {
		ck.add(at+".method", "%q is not an HTTP method", f.Method)
	}
	// The filter syntax is the forwarders' until the one filter model
	// (internal/filter) owns it; it is the only thing config takes from
	// a downstream package.
	if _, err := filter.ParseForward(f.Filter); err != nil {
		ck.add(at+".filter", "%v", err)
	}
}

func (ck *checker) sink(at string, s Sink) {
	if s.RotateBytes < 0 {
		ck.add(at+".rotate_bytes", "must be >= 0 (0: never), got %d", s.RotateBytes)
	}
	if s.RotateAge < 0 {
		ck.add(at+".rotate_age", "must be >= 0 (0: never), got %s", time.Duration(s.RotateAge))
	}
	if err := checkSinkFormat(s.Format); err != nil {
		ck.add(at+".format", "%v", err)
	}
	kind, rest, err := SinkTarget(s.Addr)
	if err != nil {
		ck.add(at+".addr", "%v", err)
		return
	}
	if kind == "nats" && s.Format != "" && s.Format != "protobuf" {
		ck.add(at+".format", "NATS carries protobuf only, got %q", s.Format)
	}
	if kind == "tcp" {
		if _, _, err := net.SplitHostPort(rest); err != nil {
			ck.add(at+".addr", "%q: want tcp://host:port", s.Addr)
		}
	}
}

// natsCheck parses a nats:// or tls:// address; package fleet, which
// owns that syntax, registers it (RegisterNATS).
var natsCheck struct {
	sync.RWMutex
	parse func(addr string) (server string, err error)
}

// RegisterNATS makes SinkTarget, hence Validate, check nats:// and tls://
// addresses with parse, which returns the server URL. Package fleet
// calls it when it is linked in; without it such addresses are only
// classified.
func RegisterNATS(parse func(addr string) (server string, err error)) {
	natsCheck.Lock()
	natsCheck.parse = parse
	natsCheck.Unlock()
}

// IsNATS reports whether addr names a NATS server (nats:// or tls://).
func IsNATS(addr string) bool {
	return strings.HasPrefix(addr, "nats://") || strings.HasPrefix(addr, "tls://")
}

// SinkTarget classifies a sink address as sink.New does: "tcp", "ws", "wss"
// with the host, "nats" (nats:// and tls://, see package fleet) with the
// server URL, or "file" with the path.
func SinkTarget(addr string) (kind, target string, err error) {
	if addr == "" {
		return "", "", errors.New("empty address")
	}
	u, perr := url.Parse(addr)
	switch {
	case perr == nil && (u.Scheme == "tcp" || u.Scheme == "ws" || u.Scheme == "wss"):
		if u.Host == "" {
			return "", "", fmt.Errorf("%q has no host", addr)
		}
		return u.Scheme, u.Host, nil
	case perr == nil && IsNATS(addr):
		natsCheck.RLock()
		parse := natsCheck.parse
		natsCheck.RUnlock()
		if parse == nil {
			return "nats", addr, nil
		}
		server, err := parse(addr)
		if err != nil {
			return "", "", err
		}
		return "nats", server, nil
	case perr == nil && u.Scheme == "file":
		p := strings.TrimPrefix(addr, "file://")
		if p == "" {
			return "", "", fmt.Errorf("%q has no path", addr)
		}
		return "file", p, nil
	case strings.Contains(addr, "://"):
		return "", "", fmt.Errorf("%q: unsupported scheme (want tcp, ws, wss, nats, tls, file or a path)", addr)
	}
	return "file", addr, nil
}

// CheckUpdate validates next as a change of the running cur requested from
// outside (the API): on top of Validate, every file sink that cur does not
// already have must lie inside stateDir, after cleaning the path and
// resolving symbolic links in its directory, and must not itself be a
// symbolic link. Without this a request could make tlstap, running as
// root, create or append to any file. An empty stateDir refuses every new
// file sink.
func CheckUpdate(cur, next Config, stateDir string) []FieldError {
	errs := Validate(next)
	for i, s := range next.Sinks {
		kind, path, err := SinkTarget(s.Addr)
		if err != nil || kind != "file" || slices.Contains(cur.Sinks, s) {
			continue
		}
		if reason := insideDir(path, stateDir); reason != "" {
			errs = append(errs, FieldError{Field: fmt.Sprintf("sinks[%d].addr", i), Reason: reason})
		}
	}
	return errs
}

func insideDir(path, dir string) string {
	if dir == "" {
		return "file sinks cannot be added at run time: no state directory"
	}
	if !filepath.IsAbs(path) {
		return fmt.Sprintf("%q is not an absolute path", path)
	}
	root, err := filepath.EvalSymlinks(filepath.Clean(dir))
	if err != nil {
		return fmt.Sprintf("state directory: %v", unwrapPath(err))
	}
	clean := filepath.Clean(path)
	parent, err := filepath.EvalSymlinks(filepath.Dir(clean))
	if err != nil {
		return fmt.Sprintf("directory of %q: %v", path, unwrapPath(err))
	}
	rel, err := filepath.Rel(root, parent)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return fmt.Sprintf("%q is outside the state directory %s", path, root)
	}
	if st, err := os.Lstat(clean); err == nil && !st.Mode().IsRegular() {
		return fmt.Sprintf("%q exists and is not a regular file", path)
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token, as HTTP methods are.
// validPort accepts "" (the scheme's default) and 1-65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// isELF reports whether path opens as an ELF file, as uprobes need.
func isELF(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
