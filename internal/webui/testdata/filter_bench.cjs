// Times filter passes over rows, under node, for two filter.js files
// interleaved (A/B on the same machine in the same run):
//   git show REV:internal/webui/assets/filter.js > /tmp/filter_old.js
//   node internal/webui/testdata/filter_bench.cjs /tmp/filter_old.js internal/webui/assets/filter.js
// Rows as BenchmarkWebUI's fillScript makes them; a row matches when any
// of its events does, as in the page.
"use strict";
const path = require("node:path");
const M = require(path.join(__dirname, "..", "assets", "model.js"));
const files = process.argv.slice(2).map((f) => path.resolve(f));
const FILTERS = ["~m POST", '~h "Host: bench" & status=4xx'];
const REPS = 5;

function fill(F, n) {
  const m = new M.Model(); const enc = new TextEncoder();
  const add = (e) => { if (m.add(e) && F.prepare) F.prepare(e); };
  const now = Date.now() * 1e6;
  for (let i = 0; i < n; i++) {
    const meth = i % 10 ? "GET" : "POST", p = "/items/" + i, seq = 1e9 + 2 * i;
    add({ seq, type: 1, method: meth, host: "bench.test", path: p, pid: 1000 + i % 7, pname: "curl", timestamp: now,
      payload: enc.encode(meth + " " + p + " HTTP/1.1\r\nHost: bench.test\r\n\r\n") });
    add({ seq: seq + 1, type: 3, request_seq: seq, status: i % 13 ? 200 : 404, method: meth, host: "bench.test", path: p,
      pid: 1000 + i % 7, pname: "curl", timestamp: now, latency_ns: 1e6, content_type: "application/json",
      payload: enc.encode("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"id\":" + i + "}") });
  }
  return m;
}

const med = (xs) => { const s = xs.slice().sort((a, b) => a - b); return s[s.length >> 1]; };
const res = {};
for (let r = 0; r < REPS; r++) {
  for (const f of files) {
    delete require.cache[f];
    const F = require(f);
    for (const n of [1000, 100000]) {
      const m = fill(F, n);
      for (const src of FILTERS) {
        const c = F.compile(src);
        // The first pass after filling: what a user typing a filter waits for.
        const t0 = performance.now();
        let k = 0;
        for (const row of m.rows) if (row.events.some(c.match)) k++;
        const key = path.basename(f) + " " + n + " " + src;
        (res[key] = res[key] || []).push(performance.now() - t0);
      }
    }
  }
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(60), "median", med(v).toFixed(1), "ms of", v.length);
