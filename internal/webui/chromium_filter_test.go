package webui_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestFilterJSInChromium runs the Go filter's conformance table through
// filter.js as the page loads it, in Chromium: the same events selected
// and the same errors at the same positions as internal/filter.
func TestFilterJSInChromium(t *testing.T) {
	table, err := os.ReadFile("../filter/testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := startBenchServer(t)
	ctx := browser(t)
	run(t, ctx, "open the page", chromedp.Navigate(srv.page))
	waitConn(t, ctx, "live")
	tableJS, _ := json.Marshal(string(table))
	var res struct {
		Cases, Errors int
		Failures      []string
	}
	eval(t, ctx, fmt.Sprintf(`(() => {
  const t = JSON.parse(%s);
  const F = window.TlstapFilter;
  const ev = (o) => {
    const e = {};
    for (const [k, v] of Object.entries(o)) {
      const name = k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
      if (name === "payload") e.payload = Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
      else if (name === "part" && typeof v === "string") e.part = ["PART_KIND_WHOLE", "PART_KIND_HEAD", "PART_KIND_PART", "PART_KIND_END"].indexOf(v);
      else if (typeof v === "string" && /^-?[0-9]+$/.test(v) && ["timestamp", "pid", "seq", "request_seq", "message_seq", "conn_id", "tid", "latency_ns", "original_length", "body_offset", "cgroup_id"].includes(name)) e[name] = Number(v);
      else e[name] = v;
    }
    return e;
  };
  const names = Object.keys(t.events);
  const failures = [];
  for (const c of t.cases) {
    const r = F.compile(c.filter);
    if (r.error) { failures.push(c.filter + ": " + r.error.message); continue; }
    const got = names.filter((n) => r.match === null || r.match(ev(t.events[n]))).sort();
    if (JSON.stringify(got) !== JSON.stringify(c.match.slice().sort())) failures.push(c.filter + ": selects " + got + ", want " + c.match);
  }
  for (const c of t.errors) {
    const r = F.compile(c.filter);
    if (!r.error) failures.push(c.filter + ": accepted");
    else if (!r.error.detail.includes(c.error) || (c.pos !== undefined && r.error.pos !== c.pos)) failures.push(c.filter + ": " + r.error.message + " at " + r.error.pos);
  }
  return {Cases: t.cases.length, Errors: t.errors.length, Failures: failures};
})()`, tableJS), &res)
	if res.Cases == 0 || res.Errors == 0 {
		t.Fatalf("the table ran no case: %+v", res)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	t.Logf("%d filters and %d bad filters through filter.js in Chromium", res.Cases, res.Errors)
}
