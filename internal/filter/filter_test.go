package filter

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestConstructors(t *testing.T) {
	pid, err := Term("pid", Eq, "1", "2")
	if err != nil {
		t.Fatal(err)
	}
	host, err := Term("HOST", Eq, "*.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f    *Filter
		want string
	}{
		{nil, ""},
		{&Filter{}, ""},
		{pid, "pid=1,2"},
		{And(pid, nil, host), "pid=1,2 & host=*.example.com"},
		{Or(pid, host), "pid=1,2 | host=*.example.com"},
		{Or(pid, &Filter{}), ""},
		{Not(Or(pid, host)), "!(pid=1,2 | host=*.example.com)"},
		{And(Or(pid, host), Not(host)), "(pid=1,2 | host=*.example.com) & !host=*.example.com"},
		{Not(nil), "pid<0"},
	} {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	if Not(nil).Match(&eventpb.Event{}) {
		t.Error("Not(empty) matched")
	}
	for _, bad := range []struct {
		key  string
		op   Op
		vals []string
	}{{"colour", Eq, []string{"x"}}, {"pid", Eq, nil}, {"pid", Contains, []string{"1"}}, {"pid", Eq, []string{""}}, {"pid", "=~", []string{"1"}}} {
		if _, err := Term(bad.key, bad.op, bad.vals...); err == nil {
			t.Errorf("Term(%q, %q, %q) accepted", bad.key, bad.op, bad.vals)
		}
	}
}

func TestQuotedValues(t *testing.T) {
	f, err := Parse(`body~="a \"quoted\" \\ , & value"`)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(&eventpb.Event{Type: 5, Payload: []byte(`x a "quoted" \ , & value y`)}) {
		t.Error("quoted value did not match")
	}
	if got, want := f.String(), `body~="a \"quoted\" \\ , & value"`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

func TestUses(t *testing.T) {
	f, err := Parse("pid=1 | !(~m GET & ct=text/*)")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"pid": true, "method": true, "content-type": true, "ct": true, "host": false, "nope": false} {
		if got := f.Uses(key); got != want {
			t.Errorf("Uses(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestCapture(t *testing.T) {
	for _, tt := range []struct {
		filter string
		want   Capture
	}{
		{"", Capture{}},
		{"pid=1,2", Capture{PIDs: []uint32{1, 2}}},
		{"pid=1,2 & uid=0 & comm=curl,nginx & host=a.com", Capture{PIDs: []uint32{1, 2}, UIDs: []uint32{0}, Comms: []string{"curl", "nginx"}}},
		{"pid=1,2,3 & pid=2,3,4", Capture{PIDs: []uint32{2, 3}}},
		{"pid=1 & pid=2", Capture{}}, // nothing in common: not pushed down
		{"pid=1 | uid=0", Capture{}},
		{"!pid=1", Capture{}},
		{"pid!=1", Capture{}},
		{"pid>1", Capture{}},
		{"pid=10-12", Capture{PIDs: []uint32{10, 11, 12}}},
		{"pid=1-100000", Capture{}},
		{"pid=4294967296", Capture{}},
		{"comm=cu*", Capture{}},
		{"~comm curl ~pid 7", Capture{PIDs: []uint32{7}, Comms: []string{"curl"}}},
		{"(pid=1 | pid=2) & uid=5", Capture{UIDs: []uint32{5}}},
	} {
		f, err := Parse(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		got := f.Capture()
		if !slices.Equal(got.PIDs, tt.want.PIDs) || !slices.Equal(got.UIDs, tt.want.UIDs) || !slices.Equal(got.Comms, tt.want.Comms) {
			t.Errorf("%q: Capture() = %+v, want %+v", tt.filter, got, tt.want)
		}
	}
}

// TestCaptureSound: pushing down never drops an event the filter selects
// (checked on the conformance events).
func TestCaptureSound(t *testing.T) {
	tb, evs := loadTable(t)
	for _, c := range tb.Cases {
		f, _ := Parse(c.Filter)
		cp := f.Capture()
		for name, ev := range evs {
			if !f.Match(ev) {
				continue
			}
			if len(cp.PIDs) > 0 && !slices.Contains(cp.PIDs, uint32(ev.GetPid())) ||
				len(cp.UIDs) > 0 && !slices.Contains(cp.UIDs, ev.GetUid()) ||
				len(cp.Comms) > 0 && !slices.Contains(cp.Comms, ev.GetPname()) {
				t.Errorf("%q: pushed down %+v drops %s", c.Filter, cp, name)
			}
		}
	}
}

func TestFromCapture(t *testing.T) {
	for _, tt := range []struct {
		c    Capture
		want string
	}{
		{Capture{}, ""},
		{Capture{PIDs: []uint32{42, 43}}, "pid=42,43"},
		{Capture{UIDs: []uint32{0}, Comms: []string{"curl", "my app"}}, `uid=0 & comm=curl,"my app"`},
		{Capture{Comms: []string{"a*"}}, "comm=a*"}, // one exact name, see below
	} {
		f := FromCapture(tt.c)
		if got := f.String(); got != tt.want {
			t.Errorf("FromCapture(%+v) = %q, want %q", tt.c, got, tt.want)
		}
		back := f.Capture()
		if !slices.Equal(back.PIDs, tt.c.PIDs) || !slices.Equal(back.UIDs, tt.c.UIDs) || !slices.Equal(back.Comms, tt.c.Comms) {
			t.Errorf("FromCapture(%+v).Capture() = %+v", tt.c, back)
		}
	}
	if f := FromCapture(Capture{Comms: []string{"a*"}}); f.Match(&eventpb.Event{Pname: "ab"}) || !f.Match(&eventpb.Event{Pname: "a*"}) {
		t.Error("a capture setting's process name is not one exact name")
	}
}

// TestDocumentedKeys: docs/filters.md's key table is this package's key
// list, no more and no less.
func TestDocumentedKeys(t *testing.T) {
	b, err := os.ReadFile("../../docs/filters.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(b)
	sec = sec[strings.Index(sec, "## Keys"):]
	sec = sec[:strings.Index(sec[1:], "\n## ")]
	name := regexp.MustCompile("^`([a-z-]+)`(?: \\(`([a-z-]+)`\\))?$")
	var doc []Key
	for line := range strings.SplitSeq(sec, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 {
			continue
		}
		m := name.FindStringSubmatch(strings.TrimSpace(cells[1]))
		if m == nil {
			continue
		}
		doc = append(doc, Key{Name: m[1], Other: m[2], Capture: strings.TrimSpace(cells[4]) == "yes"})
	}
	var code []Key
	for _, k := range Keys() {
		k.Numeric = false
		code = append(code, k)
	}
	if !slices.Equal(doc, code) {
		t.Errorf("docs/filters.md lists\n%+v\nthe package has\n%+v", doc, code)
	}
	aliasRow := regexp.MustCompile("`~([a-z]+)`")
	for a := range aliases {
		found := false
		for _, m := range aliasRow.FindAllStringSubmatch(sec, -1) {
			found = found || m[1] == a
		}
		if !found {
			t.Errorf("alias ~%s is not in docs/filters.md", a)
		}
	}
}

// TestMatchDoesNotAllocate: Match runs on the broker's publishing
// goroutine for every event and subscriber.
func TestMatchDoesNotAllocate(t *testing.T) {
	_, evs := loadTable(t)
	f, err := Parse(`~m POST & ~d *.example.com & !~c 404 & ct=application/* & ~h x-debug & header=host:*example* & ~b Widget & path=/api/* & port=1-9000 & comm=curl & node=web-* & container=3f2a & type=http & protocol=http1 & lib=openssl`)
	if err != nil {
		t.Fatal(err)
	}
	ev := evs["h1req"]
	if !f.Match(ev) {
		t.Fatal("the filter does not select h1req")
	}
	if n := testing.AllocsPerRun(100, func() { f.Match(ev) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	ev := &eventpb.Event{Type: 1, Pid: 42, Pname: "curl", Method: "POST", Host: "api.example.com:8443", Path: "/api/v1/items?id=7", ContentType: "application/json"}
	f, err := Parse(`~m POST & ~d *.example.com & path=/api/* & ct=application/json`)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f.Match(ev)
	}
}

// FuzzParse: no text makes the parser panic or run away; what parses
// prints as a canonical text that parses to the same canonical text, and
// matching any event does not panic.
func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		f.Fatal(err)
	}
	var tb struct {
		Cases  []struct{ Filter string }
		Errors []struct{ Filter string }
	}
	if err := json.Unmarshal(b, &tb); err != nil {
		f.Fatal(err)
	}
	for _, c := range tb.Cases {
		f.Add(c.Filter, "API.example.com:8443", "/a?b=1", "text/html; x=y", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), uint32(1), uint32(0), uint32(200))
	}
	for _, c := range tb.Errors {
		f.Add(c.Filter, "[::1]:1", "", "", []byte("Host:"), uint32(4), uint32(2), uint32(0))
	}
	f.Fuzz(func(t *testing.T, text, host, path, ctype string, payload []byte, typ, part, status uint32) {
		flt, err := Parse(text)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error %T", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error message of %d bytes", len(err.Error()))
			}
			return
		}
		canon := flt.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canon, text, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical %q reprints as %q", canon, again.String())
		}
		ev := &eventpb.Event{Type: typ, Part: eventpb.PartKind(part % 4), Status: status, Host: host, Path: path,
			ContentType: ctype, Payload: payload, Pname: host, Node: path, ContainerId: ctype, Method: path,
			Pid: int64(status) - 1, SrcPort: typ, DstPort: status}
		if flt.Match(ev) != again.Match(ev) {
			t.Fatalf("%q and its canonical %q disagree", text, canon)
		}
		flt.Capture()
	})
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
