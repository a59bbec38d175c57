// Runs filter.js and model.js under node against a table of cases: the
// package's own (filter_cases.json) and, where present, the Go filter's
// conformance table (internal/filter/testdata/cases.json). Run by
// TestFilterJS; by hand: node --test internal/webui/testdata/filter_test.cjs
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("node:fs");
const path = require("node:path");
const assets = path.join(__dirname, "..", "assets");
const F = require(path.join(assets, "filter.js"));
const M = require(path.join(assets, "model.js"));

function toEvent(ev) {
  const e = Object.assign({}, ev);
  if (typeof e.payload === "string") e.payload = new TextEncoder().encode(e.payload);
  if (typeof e.payload_base64 === "string") e.payload = Buffer.from(e.payload_base64, "base64");
  return e;
}

function runTable(file) {
  const cases = JSON.parse(fs.readFileSync(file, "utf8"));
  const list = Array.isArray(cases) ? cases : cases.cases;
  test(path.basename(file) + ": " + list.length + " cases", () => {
    const failures = [];
    for (const c of list) {
      const src = c.filter;
      const r = F.compile(src);
      if (c.error !== undefined) {
        if (!r.error) failures.push(`${JSON.stringify(src)}: accepted, want an error`);
        else if (!r.error.message.includes(c.error)) failures.push(`${JSON.stringify(src)}: ${JSON.stringify(r.error.message)} does not say ${JSON.stringify(c.error)}`);
        continue;
      }
      if (r.error) { failures.push(`${JSON.stringify(src)}: ${r.error.message}`); continue; }
      const got = r.match === null ? true : r.match(toEvent(c.event || {}));
      if (got !== c.match) failures.push(`${JSON.stringify(src)} on ${JSON.stringify(c.event)}: ${got}, want ${c.match}`);
    }
    assert.deepStrictEqual(failures, []);
  });
}

// fromProtoJSON turns a protojson eventpb.Event (camelCase names, 64-bit
// integers as strings, bytes in base64) into the decoder's shape.
function fromProtoJSON(o) {
  const e = {};
  for (const [k, v] of Object.entries(o)) {
    const name = k.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
    if (name === "payload") e.payload = new Uint8Array(Buffer.from(v, "base64"));
    else if (name === "part" && typeof v === "string") e.part = ["PART_KIND_WHOLE", "PART_KIND_HEAD", "PART_KIND_PART", "PART_KIND_END"].indexOf(v);
    else if (typeof v === "string" && /^-?[0-9]+$/.test(v) && !["host", "path", "pname", "method", "node", "container_id", "pod_name", "pod_namespace", "uuid", "src_ip", "dst_ip"].includes(name)) e[name] = Number(v);
    else e[name] = v;
  }
  return e;
}

// runShared runs the Go filter's conformance table: every filter selects
// exactly the events named, and every bad filter is refused at its
// position with its message.
function runShared(file) {
  const t = JSON.parse(fs.readFileSync(file, "utf8"));
  const names = Object.keys(t.events);
  test(path.basename(file) + ": " + t.cases.length + " filters over " + names.length + " events", () => {
    const failures = [];
    for (const c of t.cases) {
      const r = F.compile(c.filter);
      if (r.error) { failures.push(`${JSON.stringify(c.filter)}: ${r.error.message}`); continue; }
      const got = names.filter((n) => r.match === null || r.match(fromProtoJSON(t.events[n])));
      if (JSON.stringify(got.slice().sort()) !== JSON.stringify(c.match.slice().sort())) failures.push(`${JSON.stringify(c.filter)}: selects ${got}, want ${c.match}`);
    }
    assert.deepStrictEqual(failures, []);
  });
  test(path.basename(file) + ": " + t.errors.length + " bad filters", () => {
    const failures = [];
    for (const c of t.errors) {
      const r = F.compile(c.filter);
      if (!r.error) { failures.push(`${JSON.stringify(c.filter)}: accepted`); continue; }
      if (!r.error.detail.includes(c.error)) failures.push(`${JSON.stringify(c.filter)}: ${JSON.stringify(r.error.detail)} does not say ${JSON.stringify(c.error)}`);
      if (c.pos !== undefined && r.error.pos !== c.pos) failures.push(`${JSON.stringify(c.filter)}: error at ${r.error.pos}, want ${c.pos}`);
    }
    assert.deepStrictEqual(failures, []);
  });
}

runTable(path.join(__dirname, "filter_cases.json"));
const shared = path.join(__dirname, "..", "..", "filter", "testdata", "cases.json");
if (fs.existsSync(shared)) runShared(shared);

test("model pairs requests and responses", () => {
  const m = new M.Model();
  const enc = (s) => new TextEncoder().encode(s);
  m.add({ seq: 1, type: 2, stream_id: 1, conn_id: 5, pid: 1, method: "GET", host: "h", path: "/a", payload: enc("GET /a HTTP/2\r\nHost: h\r\n\r\n") });
  m.add({ seq: 2, type: 2, stream_id: 3, conn_id: 5, pid: 1, method: "GET", host: "h", path: "/b", payload: enc("GET /b HTTP/2\r\nHost: h\r\n\r\n") });
  m.add({ seq: 3, type: 4, stream_id: 3, conn_id: 5, pid: 1, request_seq: 2, status: 200, payload: enc("HTTP/2 200\r\n\r\nbbb") });
  m.add({ seq: 4, type: 4, stream_id: 1, conn_id: 5, pid: 1, request_seq: 1, status: 404, part: 1, payload: enc("HTTP/2 404\r\n\r\n") });
  m.add({ seq: 5, type: 4, conn_id: 5, pid: 1, request_seq: 1, part: 2, message_seq: 4, payload: enc("xy") });
  m.add({ seq: 6, type: 4, conn_id: 5, pid: 1, request_seq: 1, part: 3, message_seq: 4, payload: enc("") });
  assert.strictEqual(m.add({ seq: 6, type: 0 }), null, "a duplicate seq is ignored");
  m.add({ seq: 7, type: 1, conn_id: 9, pid: 2, method: "GET", path: "/ws", payload: enc("GET /ws HTTP/1.1\r\n\r\n") });
  m.add({ seq: 8, type: 3, conn_id: 9, pid: 2, request_seq: 7, status: 101, payload: enc("HTTP/1.1 101 Switching\r\n\r\n") });
  m.add({ seq: 9, type: 5, conn_id: 9, pid: 2, ws_opcode: 1, data_type: 1, payload: enc("hi") });
  m.add({ seq: 10, type: 5, conn_id: 9, pid: 2, ws_opcode: 8, ws_close_code: 1000, data_type: 0, payload: enc("") });
  m.add({ seq: 11, type: 0, pid: 3, payload: enc("\x01\x02") });
  m.add({ seq: 12, type: 3, conn_id: 4, pid: 3, request_seq: 999, status: 500, payload: enc("HTTP/1.1 500 x\r\n\r\n") });
  const got = m.rows.map((r) => [r.kind, r.req && r.req.seq, r.resp && r.resp.seq, r.status, r.ws.length, r.respSize]);
  assert.deepStrictEqual(got, [
    ["http", 1, 4, 404, 0, 2],
    ["http", 2, 3, 200, 0, 3],
    ["ws", 7, 8, 101, 2, 0],
    ["raw", null, null, 0, 0, 0],
    ["http", null, 12, 500, 0, 0],
  ]);
  assert.strictEqual(m.rows[2].closeCode, 1000);
  assert.strictEqual(m.rows[0].protocol, "http2");
  assert.strictEqual(m.lastSeq, 12);
});

test("model evicts the oldest rows past its cap", () => {
  const cases = [
    // cap, pairs added: rows kept, evicted, first row's request seq
    { cap: 100, pairs: 100, rows: 100, evicted: 0, first: 1 },
    { cap: 100, pairs: 101, rows: 90, evicted: 11, first: 23 },
    { cap: 100, pairs: 150, rows: 95, evicted: 55, first: 111 },
    { cap: 10, pairs: 1000, rows: 10, evicted: 990, first: 1981 },
  ];
  for (const c of cases) {
    const m = new M.Model(c.cap);
    for (let i = 0; i < c.pairs; i++) {
      const seq = 2 * i + 1;
      const r = m.add({ seq, type: 1, method: "GET", path: "/" + i });
      if (r.added && m.rows.length > m.maxRows) m.evict();
      m.add({ seq: seq + 1, type: 3, request_seq: seq, status: 200 });
    }
    const name = `cap ${c.cap}, ${c.pairs} pairs`;
    assert.strictEqual(m.rows.length, c.rows, name + ": rows");
    assert.strictEqual(m.evicted, c.evicted, name + ": evicted");
    assert.strictEqual(m.evictedEvents, 2 * c.evicted, name + ": evicted events");
    assert.strictEqual(m.rows[0].req.seq, c.first, name + ": first row");
    assert.strictEqual(m.row(m.base), m.rows[0], name + ": row(base)");
    assert.strictEqual(m.row(m.base - 1), undefined, name + ": an evicted id");
    for (const r of m.rows) assert.ok(r.resp && r.resp.request_seq === r.req.seq, name + ": paired");
    assert.ok(m.heads.size <= 2 * m.rows.length, name + ": heads bounded");
    assert.ok(m.seen.size === 2 * m.rows.length, name + ": seen bounded");
    // A replay (since=0 after a filter change) does not bring evicted
    // events back, nor repeat kept ones.
    if (c.evicted) {
      assert.strictEqual(m.add({ seq: 1, type: 1 }), null, name + ": evicted event replayed");
      assert.strictEqual(m.add({ seq: c.first, type: 1 }), null, name + ": kept event replayed");
    }
  }
});
