package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The examples of RFC 7396, Appendix A.
func TestMergePatchRFC7396(t *testing.T) {
	tests := []struct{ doc, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		// Numbers keep their text.
		{`{"n":1}`, `{"n":18446744073709551615}`, `{"n":18446744073709551615}`},
	}
	for _, tt := range tests {
		got, err := MergePatch([]byte(tt.doc), []byte(tt.patch))
		if err != nil {
			t.Errorf("MergePatch(%s, %s): %v", tt.doc, tt.patch, err)
			continue
		}
		if !jsonEqual(t, got, []byte(tt.want)) {
			t.Errorf("MergePatch(%s, %s) = %s, want %s", tt.doc, tt.patch, got, tt.want)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestPatch(t *testing.T) {
	cur := Default()
	cur.Capture.PIDs = []uint32{7}
	cur.Pipeline.TSize = 100
	tests := []struct {
		patch string
		check func(c Config) bool
		field string // FieldError expected, if any
		err   string // other error text expected
	}{
		{patch: `{"pipeline":{"tsize":5}}`, check: func(c Config) bool {
			return c.Pipeline.TSize == 5 && c.Capture.PIDs[0] == 7 && c.Pipeline.IdleTimeout == Duration(100*time.Millisecond)
		}},
		{patch: `{"capture":{"pids":null}}`, check: func(c Config) bool { return len(c.Capture.PIDs) == 0 && c.Pipeline.TSize == 100 }},
		{patch: `{"pipeline":{"idle_timeout":null}}`, check: func(c Config) bool { return c.Pipeline.IdleTimeout == Default().Pipeline.IdleTimeout }},
		{patch: `{"pipeline":{"idle_timeout":"2s"}}`, check: func(c Config) bool { return c.Pipeline.IdleTimeout == Duration(2*time.Second) }},
		{patch: `{}`, check: func(c Config) bool { return Equal(c, cur) }},
		{patch: `{"pipeline":{"tsize":"5"}}`, field: "pipeline.tsize"},
		{patch: `{"capture":{"pids":[-1]}}`, field: "capture.pids[0]"},
		{patch: `{"bogus":1}`, field: "bogus"},
		{patch: `{"capture":{"bogus":1}}`, field: "capture.bogus"},
		{patch: `{"pipeline":{"idle_timeout":"soon"}}`, err: "invalid duration"},
		{patch: `[1]`, err: "must be a JSON object"},
		{patch: `null`, err: "must be a JSON object"},
		{patch: `{"a":1} x`, err: "trailing data"},
		{patch: `{"a":`, err: "invalid merge patch"},
		{patch: strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), err: "nested too deeply"},
	}
	for _, tt := range tests {
		got, err := Patch(cur, []byte(tt.patch))
		var fe FieldError
		switch {
		case tt.check != nil:
			if err != nil || !tt.check(got) {
				t.Errorf("Patch(%s) = %+v, %v", tt.patch, got, err)
			}
		case tt.field != "":
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("Patch(%s) error %v, want a FieldError for %s", tt.patch, err, tt.field)
			}
		default:
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Patch(%s) error %v, want %q", tt.patch, err, tt.err)
			}
		}
	}
	if cur.Capture.PIDs[0] != 7 || cur.Pipeline.TSize != 100 {
		t.Errorf("Patch changed its input: %+v", cur)
	}
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`{"output":{"hex":true}}`))
	if err != nil || !c.Output.Hex || c.Output.Format != "text" || c.Pipeline.IdleTimeout != Default().Pipeline.IdleTimeout {
		t.Errorf("Parse = %+v, %v; want defaults but hex", c, err)
	}
	for _, bad := range []string{``, `null`, `{} {}`, `{"output":{"hex":1}}`, `"x"`, `{"forward":{}}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) succeeded", bad)
		}
	}
}

func TestDiff(t *testing.T) {
	a := Default()
	b := a.Clone()
	b.Capture.PIDs = []uint32{1, 2}
	b.Output.Hex = true
	b.Sinks = []Sink{{Addr: "tcp://127.0.0.1:1"}}
	got := Diff(a, b)
	want := []Change{
		{Field: "capture.pids", Old: "", New: "[1,2]"},
		{Field: "output.hex", Old: "false", New: "true"},
		{Field: "sinks", Old: "", New: `[{"addr":"tcp://127.0.0.1:1","format":""}]`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %+v\nwant %+v", got, want)
	}
	// nil and empty lists are the same configuration.
	b = a.Clone()
	b.Capture.UIDs = []uint32{}
	if !Equal(a, b) {
		t.Errorf("nil and empty UIDs differ: %v", Diff(a, b))
	}
	// Clone is deep.
	c := b.Clone()
	c.Capture.UIDs = append(c.Capture.UIDs, 3)
	b.Capture.PIDs = []uint32{9}
	d := b.Clone()
	d.Capture.PIDs[0] = 10
	if b.Capture.PIDs[0] != 9 {
		t.Error("Clone shares the PIDs array")
	}
}

// TestEveryShapeError: one bad field does not hide the others, and each
// is named by its full path.
func TestEveryShapeError(t *testing.T) {
	doc := `{"capture":{"pids":[1,"2"],"bogus":true},"pipeline":{"tsize":"5","idle_timeout":"soon"},
		"forward":[{"url":"http://a"},{"mode":7,"extra":1}],"sinks":{"addr":"x"},"hex":1}`
	want := []FieldError{
		{"capture.bogus", "unknown field"},
		{"capture.pids[1]", `want a number, got JSON string "2"`},
		{"forward[1].extra", "unknown field"},
		{"forward[1].mode", "want a string, got JSON number 7"},
		{"hex", "unknown field"},
		{"pipeline.idle_timeout", `invalid duration "soon"`},
		{"pipeline.tsize", `want a number, got JSON string "5"`},
		{"sinks", "want an array, got JSON object"},
	}
	for _, decode := range []struct {
		name string
		f    func() error
	}{
		{"Parse", func() error { _, err := Parse([]byte(doc)); return err }},
		{"Decode", func() error { _, err := Decode(strings.NewReader(doc), Default()); return err }},
	} {
		var got FieldErrors
		if err := decode.f(); !errors.As(err, &got) {
			t.Fatalf("%s: error %v, want FieldErrors", decode.name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", decode.name, got, want)
		}
	}
}

// FuzzPatch: any patch either fails or yields a config that survives a
// JSON round trip and that Validate can judge without panicking.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"pipeline":{"tsize":5}}`,
		`{"capture":{"pids":[1,2],"comms":["curl"]},"output":{"format":"json","hex":true}}`,
		`{"capture":{"pids":null}}`,
		`{"forward":[{"url":"http://127.0.0.1:8080","mode":"proxy"}],"sinks":[{"addr":"tcp://127.0.0.1:1"}]}`,
		`{"pipeline":{"idle_timeout":"1s"}}`,
		`[1]`, `null`, `{"a":`, `{"pipeline":{"tsize":"5"}}`,
	} {
		f.Add([]byte(s))
	}
	base := Default()
	base.Capture.PIDs = []uint32{42}
	f.Fuzz(func(t *testing.T, patch []byte) {
		c, err := Patch(base, patch)
		if err != nil {
			return
		}
		_ = Validate(c)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if !Equal(back, c) {
			t.Fatalf("round trip changed %s: %v", b, Diff(c, back))
		}
	})
}

// FuzzMergePatch: MergePatch never panics, and applying a patch twice is
// the same as once (RFC 7396 patches are idempotent).
func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"a":"b","c":{"d":1}}`), []byte(`{"a":null,"c":{"e":[1]}}`))
	f.Add([]byte(`[1]`), []byte(`{"a":1}`))
	f.Add([]byte(`{}`), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		once, err := MergePatch(doc, patch)
		if err != nil {
			return
		}
		twice, err := MergePatch(once, patch)
		if err != nil {
			t.Fatalf("second application: %v", err)
		}
		if !jsonEqual(t, once, twice) {
			t.Fatalf("not idempotent: %s then %s", once, twice)
		}
	})
}
