package filter

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Table is testdata/cases.json, the language's conformance table.
type Table struct {
	Events map[string]json.RawMessage `json:"events"`
	Cases  []struct {
		Filter string   `json:"filter"`
		Match  []string `json:"match"`
	} `json:"cases"`
	Errors []struct {
		Filter string `json:"filter"`
		Error  string `json:"error"`
		Pos    int    `json:"pos"`
	} `json:"errors"`
}

func loadTable(t *testing.T) (*Table, map[string]*eventpb.Event) {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var tb Table
	if err := json.Unmarshal(b, &tb); err != nil {
		t.Fatal(err)
	}
	evs := map[string]*eventpb.Event{}
	for name, raw := range tb.Events {
		ev := &eventpb.Event{}
		if err := protojson.Unmarshal(raw, ev); err != nil {
			t.Fatalf("event %s: %v", name, err)
		}
		evs[name] = ev
	}
	return &tb, evs
}

func names(evs map[string]*eventpb.Event) []string {
	var n []string
	for k := range evs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func TestCases(t *testing.T) {
	tb, evs := loadTable(t)
	for _, c := range tb.Cases {
		t.Run(c.Filter, func(t *testing.T) {
			f, err := Parse(c.Filter)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// The canonical text must mean the same.
			g, err := Parse(f.String())
			if err != nil {
				t.Fatalf("Parse(String() = %q): %v", f.String(), err)
			}
			var got, again []string
			for _, n := range names(evs) {
				if f.Match(evs[n]) {
					got = append(got, n)
				}
				if g.Match(evs[n]) {
					again = append(again, n)
				}
			}
			want := slices.Clone(c.Match)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("selects %v, want %v", got, want)
			}
			if !slices.Equal(again, got) {
				t.Errorf("canonical %q selects %v, the original %v", f.String(), again, got)
			}
		})
	}
}

func TestErrorCases(t *testing.T) {
	tb, _ := loadTable(t)
	for _, c := range tb.Errors {
		name := c.Filter
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			f, err := Parse(c.Filter)
			if err == nil {
				t.Fatalf("accepted as %q", f.String())
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T, want *SyntaxError", err)
			}
			if !strings.Contains(se.Msg, c.Error) {
				t.Errorf("error %q, want one containing %q", se.Msg, c.Error)
			}
			if se.Pos != c.Pos {
				t.Errorf("position %d, want %d (%v)", se.Pos, c.Pos, err)
			}
		})
	}
}

// TestTableCoversLanguage: every key, spelling, alias and operator occurs
// in the table, so the JavaScript implementation is held to all of it.
func TestTableCoversLanguage(t *testing.T) {
	tb, _ := loadTable(t)
	var all strings.Builder
	for _, c := range tb.Cases {
		all.WriteString(strings.ToLower(c.Filter) + "\n")
	}
	text := all.String()
	for _, k := range Keys() {
		for _, n := range []string{k.Name, k.Other} {
			if n != "" && !strings.Contains(text, n+"=") && !strings.Contains(text, n+"!=") && !strings.Contains(text, n+"~=") && !strings.Contains(text, n+">") {
				t.Errorf("key %q has no case", n)
			}
		}
	}
	for a := range aliases {
		if !strings.Contains(text, "~"+a) {
			t.Errorf("alias ~%s has no case", a)
		}
	}
	for _, op := range []Op{Eq, Ne, Contains, Gt, Ge, Lt, Le} {
		if !strings.Contains(text, string(op)) {
			t.Errorf("operator %s has no case", op)
		}
	}
	for _, w := range []string{" and ", " or ", "not ", "&", "|", "!", "(", "\""} {
		if !strings.Contains(text, w) {
			t.Errorf("%q has no case", w)
		}
	}
}
