package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// MaxDepth bounds the nesting of JSON documents and patches; the model is
// three levels deep, and unbounded nesting would let a small body cost a
// deep recursion.
const MaxDepth = 32

// ErrDepth reports a JSON document nested deeper than MaxDepth.
var ErrDepth = errors.New("JSON nested too deeply")

// MergePatch applies an RFC 7396 JSON merge patch to doc and returns the
// result. Both must be single JSON values.
func MergePatch(doc, patch []byte) ([]byte, error) {
	d, err := parseValue(doc)
	if err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	p, err := parseValue(patch)
	if err != nil {
		return nil, fmt.Errorf("merge patch: %w", err)
	}
	return json.Marshal(mergeValue(d, p))
}

// mergeValue is RFC 7396's MergePatch(Target, Patch).
func mergeValue(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergeValue(tm[k], v)
	}
	return tm
}

// parseValue reads exactly one JSON value, numbers kept as written.
func parseValue(b []byte) (any, error) {
	if err := checkDepth(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if trailing(dec, b) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// trailing reports whether anything but white space follows the value
// dec has just decoded from b.
func trailing(dec *json.Decoder, b []byte) bool {
	return int(dec.InputOffset()) != len(bytes.TrimRight(b, " \t\r\n"))
}

// checkDepth rejects documents nested deeper than MaxDepth before any
// recursive code sees them. Brackets inside strings are skipped.
func checkDepth(b []byte) error {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return ErrDepth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// Parse decodes one complete JSON config over Default(): fields the JSON
// leaves out take their defaults. Unknown fields, wrong types and trailing
// data are errors; a field-specific error is a FieldError.
func Parse(b []byte) (Config, error) {
	if err := checkDepth(b); err != nil {
		return Config{}, err
	}
	if errs := shapeErrors(b); len(errs) == 1 {
		return Config{}, errs[0]
	} else if len(errs) > 1 {
		return Config{}, errs
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	c := Default()
	if err := dec.Decode(&c); err != nil {
		return Config{}, describe(err)
	}
	if trailing(dec, b) {
		return Config{}, errors.New("trailing data after the JSON object")
	}
	// A JSON null decodes to nothing; it is not a config.
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return Config{}, errors.New("config must be a JSON object, not null")
	}
	return c, nil
}

// Patch returns cur with the merge patch applied, parsed as Parse does:
// a member the patch sets to null goes back to its default.
func Patch(cur Config, patch []byte) (Config, error) {
	doc, err := json.Marshal(cur)
	if err != nil {
		return Config{}, err
	}
	p, err := parseValue(patch)
	if err != nil {
		return Config{}, fmt.Errorf("invalid merge patch: %w", err)
	}
	if _, ok := p.(map[string]any); !ok {
		return Config{}, errors.New("invalid merge patch: must be a JSON object")
	}
	merged, err := MergePatch(doc, patch)
	if err != nil {
		return Config{}, err
	}
	return Parse(merged)
}

// describe turns encoding/json's errors into FieldErrors where it can.
func describe(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return FieldError{Field: te.Field, Reason: fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(f)
		return FieldError{Field: name, Reason: "unknown field"}
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// Clone returns a deep copy of c.
func (c Config) Clone() Config {
	c.Capture.PIDs = slices.Clone(c.Capture.PIDs)
	c.Capture.UIDs = slices.Clone(c.Capture.UIDs)
	c.Capture.Comms = slices.Clone(c.Capture.Comms)
	c.Capture.Libs = slices.Clone(c.Capture.Libs)
	c.Forward = slices.Clone(c.Forward)
	c.Sinks = slices.Clone(c.Sinks)
	return c
}

// Equal reports whether a and b configure the same thing; a nil and an
// empty list are the same.
func Equal(a, b Config) bool { return len(Diff(a, b)) == 0 }

// Change is one changed leaf: its JSON path with old and new values
// (JSON text; "" for absent).
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
}

func (c Change) String() string { return c.Field + ": " + c.Old + " -> " + c.New }

// Diff lists what differs between a and b, by JSON path, sorted. Lists
// are compared whole, so a change shows the entire old and new list.
func Diff(a, b Config) []Change {
	fa, fb := flatten(a), flatten(b)
	var out []Change
	for k, va := range fa {
		if vb := fb[k]; va != vb {
			out = append(out, Change{Field: k, Old: va, New: vb})
		}
	}
	for k, vb := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, Change{Field: k, New: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// flatten maps each leaf's JSON path to its JSON text; empty lists count
// as absent.
func flatten(c Config) map[string]string {
	b, _ := json.Marshal(c)
	var v any
	_ = json.Unmarshal(b, &v)
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
		case []any:
			if len(t) > 0 {
				j, _ := json.Marshal(t)
				out[prefix] = string(j)
			}
		case nil:
		default:
			j, _ := json.Marshal(t)
			out[prefix] = string(j)
		}
	}
	walk("", v)
	return out
}
