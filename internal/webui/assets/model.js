// model.js: turns the stream's events into the list's rows, without the
// DOM (so node can test it). One row per exchange: a request and the
// response whose request_seq names it (one row per HTTP/2 stream, since
// each stream is one request and one response); the body parts and end of
// a streamed message join its row through message_seq; a WebSocket
// connection is one row (the upgrade exchange, when seen) holding its
// messages; a raw event is a row of its own.
(function (global) {
  "use strict";

  const PROTO = ["raw", "http1", "http2", "http1", "http2", "websocket"];

  // headEnd returns the offset of the body in an HTTP message payload, or
  // -1 if it has no blank line.
  function headEnd(p) {
    if (!p) return -1;
    for (let i = 0; i + 1 < p.length; i++) {
      if (p[i] === 10) {
        if (p[i + 1] === 10) return i + 2;
        if (p[i + 1] === 13 && p[i + 2] === 10) return i + 3;
      }
    }
    return -1;
  }

  // bodyBytes is the body length an event adds to its message.
  function bodyBytes(ev) {
    const p = ev.payload;
    const n = p ? p.length : 0;
    switch (ev.part || 0) {
      case 2: return n;
      case 3: return 0;
      case 1: return 0;
    }
    const h = headEnd(p);
    return h < 0 ? 0 : n - h;
  }

  class Row {
    constructor(id, ev) {
      this.id = id;
      this.kind = "http"; // http, ws, raw
      this.events = [];
      this.req = null;  // the request's whole or head event
      this.resp = null; // the response's
      this.reqParts = []; // body parts and end of a streamed request
      this.respParts = [];
      this.ws = []; // WebSocket messages
      this.first = ev;
      this.reqSize = 0;
      this.respSize = 0;
      this.ver = 0; // bumped on every change, for the renderer's cache
    }
    get time() { return this.first.timestamp || 0; }
    get pid() { return this.first.pid || 0; }
    get comm() { return this.first.pname || ""; }
    get method() { return (this.req && this.req.method) || (this.resp && this.resp.method) || ""; }
    get host() { return (this.req && this.req.host) || (this.resp && this.resp.host) || (this.ws[0] && this.ws[0].host) || ""; }
    get path() { return (this.req && this.req.path) || (this.resp && this.resp.path) || ""; }
    get status() { return (this.resp && this.resp.status) || 0; }
    get protocol() {
      if (this.kind === "ws") return "websocket";
      return PROTO[(this.req || this.resp || this.first).type || 0] || "raw";
    }
    get latencyNs() { return (this.resp && this.resp.latency_ns) || 0; }
    get closeCode() {
      for (let i = this.ws.length - 1; i >= 0; i--) if (this.ws[i].ws_opcode === 8) return this.ws[i].ws_close_code || 0;
      return 0;
    }
  }

  // Rows kept by default: past this many the oldest are evicted (a page
  // must not grow without bound while a capture runs for days).
  const MAX_ROWS = 200000;

  class Model {
    constructor(maxRows) { this.maxRows = maxRows > 0 ? maxRows : MAX_ROWS; this.reset(); }
    reset() {
      // Row ids only grow; rows[i] has id base+i, so evicting the oldest
      // rows shifts base and keeps every id held elsewhere meaningful.
      this.base = 0;
      this.nextId = 0;
      this.evicted = 0;       // rows evicted so far
      this.evictedEvents = 0; // and their events
      // floor is the highest seq an evicted row held: a replay (since=0
      // after a filter change) must not bring evicted events back as new
      // rows, so unseen events at or below it are left out.
      this.floor = 0;
      this.rows = [];
      this.heads = new Map();  // seq of a request or response head -> row
      this.upgrades = new Map(); // conn_id/pid -> row of its 101 exchange
      this.wsRows = new Map(); // conn_id/pid -> WebSocket row
      this.seen = new Set();
      this.lastSeq = 0;
      this.events = 0;
    }
    // row returns the row with id, or undefined once evicted.
    row(id) { return id >= this.base ? this.rows[id - this.base] : undefined; }
    newRow(ev) {
      const r = new Row(this.nextId++, ev);
      this.rows.push(r);
      return r;
    }
    // evict drops the oldest rows while more than maxRows are held, a
    // tenth of the cap at once so that the cost of rebuilding the maps is
    // spread over many rows. It returns the rows dropped.
    evict() {
      if (this.rows.length <= this.maxRows) return [];
      const n = this.rows.length - this.maxRows + Math.floor(this.maxRows / 10);
      const gone = this.rows.splice(0, Math.min(n, this.rows.length));
      this.base += gone.length;
      let events = 0;
      for (const r of gone) {
        events += r.events.length;
        for (const ev of r.events) {
          if (!ev.seq) continue;
          this.seen.delete(ev.seq);
          if (ev.seq > this.floor) this.floor = ev.seq;
        }
      }
      const keep = (m) => { for (const [k, r] of m) if (r.id < this.base) m.delete(k); };
      keep(this.heads); keep(this.upgrades); keep(this.wsRows);
      this.evicted += gone.length;
      this.evictedEvents += events;
      return gone;
    }
    // add files ev into a row and returns {row, added} (added: the row is
    // new), or null for a duplicate.
    add(ev) {
      const seq = ev.seq || 0;
      if (seq) {
        if (this.seen.has(seq) || seq <= this.floor) return null;
        this.seen.add(seq);
        if (seq > this.lastSeq) this.lastSeq = seq;
      }
      this.events++;
      const t = ev.type || 0;
      const part = ev.part || 0;
      let row = null, added = false;
      const connKey = (ev.conn_id || 0) + "/" + (ev.pid || 0);
      if (t === 1 || t === 2) {
        if (part === 2 || part === 3) row = this.heads.get(ev.message_seq);
        if (!row) {
          row = this.newRow(ev); added = true;
          row.req = ev;
          this.heads.set(seq, row);
        } else {
          row.reqParts.push(ev);
        }
        row.reqSize += bodyBytes(ev);
      } else if (t === 3 || t === 4) {
        if (part === 2 || part === 3) row = this.heads.get(ev.message_seq);
        if (!row && part !== 2 && part !== 3 && ev.request_seq) {
          const r = this.heads.get(ev.request_seq);
          if (r && r.req && !r.resp) row = r;
        }
        if (!row) {
          row = this.newRow(ev); added = true;
        }
        if (part === 2 || part === 3) {
          if (!row.resp) row.resp = ev; else row.respParts.push(ev);
        } else {
          row.resp = ev;
          this.heads.set(seq, row);
          if (ev.status === 101) this.upgrades.set(connKey, row);
        }
        row.respSize += bodyBytes(ev);
      } else if (t === 5) {
        row = this.wsRows.get(connKey) || this.upgrades.get(connKey);
        if (!row) {
          row = this.newRow(ev); added = true;
        }
        row.kind = "ws";
        this.wsRows.set(connKey, row);
        row.ws.push(ev);
        if (ev.data_type === 1) row.reqSize += ev.payload ? ev.payload.length : 0;
        else row.respSize += ev.payload ? ev.payload.length : 0;
      } else {
        row = this.newRow(ev); added = true;
        row.kind = "raw";
        row.reqSize = ev.payload ? ev.payload.length : 0;
      }
      row.events.push(ev);
      row.ver++;
      return { row, added };
    }
  }

  const api = { Model, Row, headEnd, bodyBytes };
  global.TlstapModel = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
