package filter

import (
	"encoding/json"
	"os"
	"sort"
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
