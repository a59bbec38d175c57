package config

import (
	"encoding/json"
	"testing"
)

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
