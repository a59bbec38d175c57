// app.js: the page. It reads the token from the URL fragment (or asks for
// it), streams /ws, keeps rows in a model.js Model, renders only the
// visible rows (so 100,000 rows stay responsive), filters with filter.js
// both on the server (the stream's query) and on what it holds, and shows
// a detail pane. window.tlstapUI exposes a few hooks for tests.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const { Model, headEnd } = window.TlstapModel;
  const { compile, prepare } = window.TlstapFilter;
  const { decodeEntry } = window.TlstapProto;

  const ROW_H = 22;
  // Events held while paused; past this many they are dropped and counted
  // (they are still in the server's retained window, and come back with
  // a changed filter or a reload).
  const MAX_PENDING = 200000;
  const TOKEN_KEY = "tlstap.token";
  // The rows kept (?maxrows=N in the page URL; default 200,000): past it
  // the oldest are evicted, and the status bar counts them.
  const maxRows = Math.max(100, Number(new URL(location.href).searchParams.get("maxrows")) || 200000);
  const state = {
    token: "",
    model: new Model(maxRows),
    filterSrc: "",
    filter: null,      // predicate or null
    highlight: null,
    visible: [],       // indexes of rows that pass the filter
    selected: -1,
    paused: false,
    pending: [],       // events received while paused
    pendingDropped: 0,
    ws: null,
    wsGen: 0,
    retry: 0,
    dirty: false,
    serverFilter: "",  // what the stream was asked for
    serverFilterMode: "unknown", // "filter", "legacy" or "none"
    lastStatus: null,
    stats: { frames: 0, received: 0, batches: 0 },
  };

  // ---- token ----
  function readToken() {
    const h = new URLSearchParams(location.hash.slice(1));
    const t = h.get("token");
    if (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
      h.delete("token");
      // Keep the token out of the address bar, bookmarks and copies.
      const rest = h.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
      return t;
    }
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function askToken(msg) {
    const d = $("token-dialog");
    $("token-error").hidden = !msg;
    $("token-error").textContent = msg || "";
    if (!d.open) d.showModal();
  }

  $("token-form").addEventListener("submit", () => {
    const t = $("token-input").value.trim();
    if (!t) return;
    state.token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    start();
  });

  async function api(path, opts = {}) {
    const headers = Object.assign({ Authorization: "Bearer " + state.token }, opts.headers || {});
    const r = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store", credentials: "omit" }));
    if (r.status === 401) {
      setConn("unauthorized");
      askToken("The token was refused.");
      throw new Error("401 unauthorized");
    }
    return r;
  }

  // ---- server-side filtering ----
  // The stream takes the whole expression as filter= where the server
  // knows it; an older server only knows per-key parameters, so a
  // conjunction of the terms those can express is sent that way (a
  // superset: the page filters what it holds again), and anything else
  // is filtered in the page only.
  async function probeFilterParam() {
    if (state.serverFilterMode !== "unknown") return;
    // A 401 throws (and asks for the token): the question stays open.
    const r = await api("/api/v1/har?since=18446744073709551615&filter=" + encodeURIComponent("pid>=0"));
    state.serverFilterMode = r.ok ? "filter" : "legacy";
  }

  const LEGACY = { pid: "pid", host: "host", type: "type", port: "port" };
  function legacyParams(src) {
    const out = new URLSearchParams();
    if (!src.trim()) return out;
    // Only plain "key=value" conjunctions: no or, not, brackets, quotes.
    if (/[|!()"~<>]/.test(src) || /\b(or|not)\b/i.test(src)) return out;
    for (const part of src.split(/\s*&\s*|\s+and\s+|\s+/i)) {
      if (!part) continue;
      const m = /^([a-z-]+)=([^=]+)$/i.exec(part);
      if (!m) continue;
      const key = LEGACY[m[1].toLowerCase()];
      if (!key) continue;
      if (m[2].includes("*") && key !== "host") continue;
      if (key === "host" && m[2].includes("*") && !m[2].startsWith("*.")) continue;
      out.append(key, m[2]);
    }
    return out;
  }

  function streamParams(since) {
    let p;
    if (state.serverFilterMode === "filter" && state.filterSrc.trim() && state.filter) {
      p = new URLSearchParams();
      p.set("filter", state.filterSrc);
    } else if (state.filter) {
      p = legacyParams(state.filterSrc);
    } else {
      p = new URLSearchParams();
    }
    state.serverFilter = p.toString();
    p.set("since", String(since));
    p.set("logs", "0");
    return p;
  }

  // ---- stream ----
  // The stream runs in a Web Worker (worker.js: socket, decoding,
  // batches of at most 16 ms), so that 2,000 events a second cost the
  // page one task per batch, not one per event; ?worker=0 in the page URL
  // (or a browser without workers) keeps it on the page.
  let useWorker = typeof Worker !== "undefined" && new URL(location.href).searchParams.get("worker") !== "0";
  let worker = null, workerHeard = false;
  function streamWorker() {
    if (worker) return worker;
    worker = new Worker("/ui/worker.js");
    worker.onmessage = (m) => {
      workerHeard = true;
      const d = m.data;
      const c = state.conn;
      if (!c || d.gen !== c.gen || d.gen !== state.wsGen) return;
      switch (d.op) {
        case "open": c.onopen(); break;
        case "batch":
          state.stats.batches++;
          if (d.bad) console.warn(d.bad + " bad messages");
          for (const e of d.entries) c.onentry(e);
          break;
        case "closed": c.onclose(d.opened); break;
      }
    };
    worker.onerror = (e) => {
      console.warn("stream worker", e.message || e);
      if (workerHeard) return;
      // The worker never started (a browser that refuses it): stream on
      // the page instead.
      worker.terminate();
      worker = null;
      useWorker = false;
      connect(store.since); // the point this connection started from, at least
    };
    return worker;
  }

  function connect(since) {
    const gen = ++state.wsGen;
    if (state.ws) state.ws.detach();
    const p = streamParams(since);
    streamFrom(since, gen);
    p.set("token", state.token);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + "/ws?" + p.toString();
    // What this connection delivered (seq and host), for tests: it shows
    // what the server's filter let through.
    state.connEvents = [];
    const c = {
      gen,
      onopen() {
        state.retry = 0; setConn("live");
        if (!state.liveAt) state.liveAt = performance.now();
      },
      onentry(e) {
        if (e.event) {
          state.stats.received++;
          persist(e.event, gen);
          if (state.connEvents.length < 100000) state.connEvents.push([e.event.seq, e.event.host || "", e.event.type || 0]);
          if (!state.paused) ingest(e.event);
          else if (state.pending.length < MAX_PENDING) state.pending.push(e.event);
          else state.pendingDropped++; // counted, and shown on the button
          if (state.paused) schedule();
        } else if (e.heartbeat && e.heartbeat.count === 1 && since > e.heartbeat.last_seq) {
          // The server's newest event is behind the resume point: it
          // restarted, its sequence numbers started again, and it
          // replays this run from the start. What the page holds is of
          // the last run.
          restarted("tlstap restarted (its newest event is " + e.heartbeat.last_seq + ", this page had seen " + since + "): the list starts again with this run.");
        } else if (e.heartbeat && !state.model.lastSeq && e.heartbeat.last_seq && since !== 0) {
          state.model.lastSeq = e.heartbeat.last_seq;
        }
      },
      onclose(opened) {
        if (!opened) {
          // A refused upgrade looks like this to a page; ask the API why:
          // a refused token waits for a new one, anything else (tlstap
          // restarting, say) is tried again.
          api("/api/v1/status").then(() => retryLater(), (err) => { if (!/^401/.test(err.message)) retryLater(); });
          return;
        }
        retryLater();
      },
    };
    state.conn = c;
    if (useWorker) {
      const w = streamWorker();
      w.postMessage({ op: "connect", url, gen });
      // close() drops the connection as the network would (tests use it);
      // detach() replaces it without a word.
      state.ws = { close: () => w.postMessage({ op: "drop" }), detach: () => {} };
      return;
    }
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    let opened = false;
    ws.onopen = () => { opened = true; c.onopen(); };
    ws.onmessage = (m) => {
      if (gen !== state.wsGen) return;
      let e;
      try { e = decodeEntry(m.data); } catch (err) { console.warn("bad message", err); return; }
      c.onentry(e);
    };
    ws.onclose = () => { if (gen === state.wsGen) c.onclose(opened); };
    state.ws = { close: () => ws.close(), detach: () => { ws.onclose = null; ws.onmessage = null; ws.close(); } };
  }

  function retryLater() {
    setConn("reconnecting");
    const d = Math.min(10000, 500 * 2 ** state.retry++);
    const gen = state.wsGen;
    setTimeout(() => { if (gen === state.wsGen) connect(state.model.lastSeq); }, d);
  }

  function setConn(s) { $("st-conn").textContent = s; document.body.dataset.conn = s; }

  // ---- reload: resume after the last event seen ----
  // A reload keeps the list and resumes the stream right after the last
  // event the tab received: no row twice, none missing. The events this
  // tab received are written, in batches, to an IndexedDB database of the
  // tab's own (named by an id in sessionStorage, which a reload keeps and
  // a new tab does not). A reload reads them back into the model and asks
  // for since= the resume point stored with them: the highest seq of the
  // stream written, so events received but not yet written when the page
  // went away come again from the server, and are deduplicated. The
  // resume point belongs to one run of tlstap (its start time) and one
  // stream filter; with another, the stored rows are kept (another
  // filter) or dropped (another run) and the stream starts from what the
  // server retains.
  const TAB_KEY = "tlstap.tab";
  const DB_PREFIX = "tlstap-ui-";
  const FLUSH_MS = 300;
  // Databases of closed tabs are removed by the next page that starts,
  // once untouched for this long.
  const STALE_MS = 24 * 3600 * 1000;
  const store = {
    db: null,
    queue: [],        // [event, connection generation]
    deletes: [],      // seqs of evicted events
    timer: 0,
    gen: 0,           // the connection whose events advance the point
    since: 0,         // resume point: every event of the stream filter up to it is written (or being written)
    saved: 0,         // the resume point the database holds: since, once its transaction committed
    epoch: 0,         // bumped by clearStored(true): older transactions' commits no longer say what is saved
    filter: "",       // the stream filter the point is for
    run: "",          // the server run (its start time)
    clear: false,
  };

  function tabID() {
    let id = sessionStorage.getItem(TAB_KEY);
    if (!id) {
      id = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now());
      sessionStorage.setItem(TAB_KEY, id);
    }
    return id;
  }

  const req2p = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });

  // openStore opens the tab's database; null when IndexedDB is not there
  // (then a reload starts from what the server retains).
  async function openStore() {
    if (!window.indexedDB) return null;
    try {
      const r = indexedDB.open(DB_PREFIX + tabID(), 1);
      r.onupgradeneeded = () => {
        r.result.createObjectStore("events", { keyPath: "seq" });
        r.result.createObjectStore("meta");
      };
      return await req2p(r);
    } catch (e) {
      console.warn("reload resume off: IndexedDB", e);
      return null;
    }
  }

  // loadStored returns the stored events and the resume point for run,
  // or null.
  async function loadStored(run) {
    const db = store.db;
    if (!db) return null;
    const tx = db.transaction(["events", "meta"], "readonly");
    const meta = await req2p(tx.objectStore("meta").get("resume"));
    if (!meta) return null;
    if (meta.run !== run) { clearStored(true); return null; }
    const events = await req2p(tx.objectStore("events").getAll());
    return { events, since: meta.since || 0, filter: meta.filter || "" };
  }

  function persist(ev, gen) {
    if (!store.db || !ev.seq) return;
    store.queue.push([ev, gen]);
    flushSoon();
  }
  function unpersist(rows) {
    if (!store.db) return;
    for (const r of rows) for (const ev of r.events) if (ev.seq) store.deletes.push(ev.seq);
    flushSoon();
  }
  function flushSoon() { if (!store.timer) store.timer = setTimeout(flush, FLUSH_MS); }

  // streamFrom notes that the connection gen streams everything after
  // since: its events advance the resume point from there.
  function streamFrom(since, gen) {
    store.gen = gen;
    store.since = since;
    store.filter = state.serverFilter;
    if (store.db) flushSoon();
  }

  // clearStored drops the stored events (Clear, a restarted server); all
  // also forgets the resume point.
  function clearStored(all) {
    for (const [ev, gen] of store.queue.splice(0)) if (!all && gen === store.gen && ev.seq > store.since) store.since = ev.seq;
    if (all) { store.since = store.saved = 0; store.epoch++; }
    store.clear = true;
    if (store.db) flushSoon();
  }

  function flush() {
    store.timer = 0;
    const db = store.db;
    if (!db) return;
    const tx = db.transaction(["events", "meta"], "readwrite");
    const evs = tx.objectStore("events");
    if (store.clear) { evs.clear(); store.clear = false; }
    for (const [ev, gen] of store.queue.splice(0)) {
      // What filter.js caches on an event (_text, _hl) is not kept.
      const o = {};
      for (const k in ev) if (k[0] !== "_") o[k] = ev[k];
      evs.put(o);
      // The stream delivers in seq order, so all of it up to here is in.
      if (gen === store.gen && ev.seq > store.since) store.since = ev.seq;
    }
    for (const seq of store.deletes.splice(0)) evs.delete(seq);
    tx.objectStore("meta").put({ run: store.run, since: store.since, filter: store.filter, touched: Date.now() }, "resume");
    // A page reloaded before the commit finds the previous point: only a
    // committed one is reported as saved (resume()).
    const point = store.since, epoch = store.epoch;
    tx.oncomplete = () => { if (epoch === store.epoch) store.saved = point; };
    tx.onerror = () => console.warn("reload resume: writing failed", tx.error);
  }
  // A reload right after an event: write what is queued now.
  window.addEventListener("pagehide", () => { if (store.timer) { clearTimeout(store.timer); flush(); } });

  // removeStale deletes the databases of tabs closed long ago.
  async function removeStale() {
    if (!indexedDB.databases) return;
    const mine = DB_PREFIX + tabID();
    for (const d of await indexedDB.databases()) {
      if (!d.name || !d.name.startsWith(DB_PREFIX) || d.name === mine) continue;
      try {
        const db = await req2p(indexedDB.open(d.name));
        let touched = 0;
        if (db.objectStoreNames.contains("meta")) {
          const m = await req2p(db.transaction("meta").objectStore("meta").get("resume"));
          touched = (m && m.touched) || 0;
        }
        db.close();
        if (Date.now() - touched > STALE_MS) indexedDB.deleteDatabase(d.name);
      } catch (e) { /* another tab's business */ }
    }
  }

  function restarted(msg) {
    const m = state.model;
    const next = m.nextId; // ids are never reused: the renderer caches by id
    m.reset();
    m.base = m.nextId = next;
    state.visible = [];
    state.selected = -1;
    $("detail").hidden = true;
    clearStored(true);
    // The stored events are of the new run from now on.
    api("/api/v1/status").then((r) => r.json()).then((st) => { store.run = String((st && st.started) || ""); flushSoon(); }, () => {});
    $("filter-error").hidden = false;
    $("filter-error").textContent = msg;
    schedule(true);
  }

  function ingest(ev) {
    state.lastIngestAt = performance.now();
    const r = state.model.add(ev);
    if (!r) return;
    // Headers are split once, here, not on every filter pass.
    prepare(ev);
    if (r.added && state.model.rows.length > state.model.maxRows) evictOldest();
    if (r.added) {
      if (!state.filter || state.filter(r.row)) { r.row.vis = true; state.visible.push(r.row.id); }
    } else if (state.filter && !r.row.vis && state.filter(r.row)) {
      // A row can start to match when its response arrives.
      insertVisible(r.row.id);
    }
    schedule();
  }

  // evictOldest drops the oldest rows past the cap, from the list, the
  // selection and the events kept for a reload.
  function evictOldest() {
    const m = state.model;
    const gone = m.evict();
    if (!gone.length) return;
    const v = state.visible;
    let lo = 0, hi = v.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (v[mid] < m.base) lo = mid + 1; else hi = mid; }
    if (lo) state.visible = v.slice(lo);
    if (state.selected >= 0 && state.selected < m.base) { state.selected = -1; $("detail").hidden = true; }
    unpersist(gone);
    const ev = $("st-evicted");
    ev.hidden = false;
    ev.textContent = m.evicted + " oldest rows (" + m.evictedEvents + " events) evicted: the page keeps " + m.maxRows + " rows";
    schedule(true);
  }

  function insertVisible(id) {
    const v = state.visible;
    let lo = 0, hi = v.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (v[mid] < id) lo = mid + 1; else hi = mid; }
    if (v[lo] !== id) v.splice(lo, 0, id);
    state.model.row(id).vis = true;
  }

  // ---- filtering ----
  function rowPred(evPred) {
    if (!evPred) return null;
    return (row) => row.events.some(evPred);
  }

  function applyFilter(src, reconnect) {
    const c = compile(src);
    const input = $("filter");
    if (c.error) {
      input.classList.add("bad");
      $("filter-error").hidden = false;
      $("filter-error").textContent = "Filter: " + c.error.message;
      input.setCustomValidity(c.error.message);
      return false;
    }
    input.classList.remove("bad");
    input.setCustomValidity("");
    $("filter-error").hidden = true;
    state.filterSrc = src;
    state.filter = rowPred(c.match);
    refilter();
    const u = new URL(location.href);
    if (src) u.searchParams.set("filter", src); else u.searchParams.delete("filter");
    history.replaceState(null, "", u.pathname + u.search + u.hash);
    if (reconnect) {
      // Rows the old stream filter kept out are fetched again from what
      // the server retains; rows held already are not duplicated.
      connect(0);
    }
    return true;
  }

  function refilter() {
    const t0 = performance.now();
    const rows = state.model.rows;
    const f = state.filter;
    const v = [];
    for (let i = 0; i < rows.length; i++) {
      const ok = !f || f(rows[i]);
      rows[i].vis = ok;
      if (ok) v.push(rows[i].id);
    }
    state.visible = v;
    state.lastFilterMs = performance.now() - t0;
    schedule(true);
  }

  function applyHighlight(src) {
    const c = compile(src);
    const input = $("highlight");
    if (c.error) {
      input.classList.add("bad");
      $("filter-error").hidden = false;
      $("filter-error").textContent = "Highlight: " + c.error.message;
      return;
    }
    input.classList.remove("bad");
    $("filter-error").hidden = true;
    state.highlight = rowPred(c.match);
    state.highlightVer = (state.highlightVer || 0) + 1;
    schedule(true);
  }

  let filterTimer = 0;
  $("filter").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => applyFilter($("filter").value, true), 250);
  });
  $("filter").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { clearTimeout(filterTimer); applyFilter($("filter").value, true); }
  });
  $("highlight").addEventListener("input", () => applyHighlight($("highlight").value));

  // ---- rendering ----
  let rafPending = false, forceRender = false;
  function schedule(force) {
    if (force) forceRender = true;
    if (rafPending) return;
    rafPending = true;
    requestAnimationFrame(render);
  }

  const vp = $("viewport"), spacer = $("spacer"), rowsEl = $("rows");
  const pool = [];
  let lastStart = -1, lastCount = -1, lastLen = -1;

  function fmtTime(ns) {
    if (!ns) return "";
    const d = new Date(ns / 1e6);
    return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }
  function fmtSize(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }
  function fmtLatency(ns) {
    if (!ns) return "";
    const ms = ns / 1e6;
    return ms < 10 ? ms.toFixed(2) + " ms" : ms < 1000 ? ms.toFixed(0) + " ms" : (ms / 1000).toFixed(2) + " s";
  }

  function cells(row) {
    let status = row.status ? String(row.status) : "";
    if (row.kind === "ws") {
      status = (status || "") + (row.closeCode ? " close " + row.closeCode : "");
    }
    const method = row.kind === "raw" ? "" : row.method;
    const url = row.kind === "raw"
      ? (row.first.dst_ip || "") + (row.first.dst_port ? ":" + row.first.dst_port : "") + " (" + row.first.length + " B raw)"
      : row.host + row.path;
    const sizes = row.kind === "ws" ? row.ws.length + " msg " + fmtSize(row.reqSize + row.respSize) : fmtSize(row.reqSize) + " / " + fmtSize(row.respSize);
    return [fmtTime(row.time), row.pid + " " + row.comm, method, url, status, row.protocol, sizes, fmtLatency(row.latencyNs)];
  }
  const CLS = ["c-time", "c-proc", "c-method", "c-url", "c-status", "c-proto", "c-size", "c-lat"];
  const KEYS = ["", "pid", "method", "host", "status", "protocol", "", ""];

  function makeRowEl() {
    const el = document.createElement("div");
    el.className = "row";
    for (const c of CLS) {
      const s = document.createElement("span");
      s.className = c;
      el.appendChild(s);
    }
    rowsEl.appendChild(el);
    return el;
  }

  function render() {
    rafPending = false;
    const t0 = performance.now();
    if (state.paused) $("pause").textContent = "Resume (" + (state.pending.length + state.pendingDropped) + " new)";
    const n = state.visible.length;
    if (n !== lastLen) spacer.style.height = n * ROW_H + "px";
    if ($("autoscroll").checked && !state.paused && n !== lastLen) {
      vp.scrollTop = n * ROW_H;
    }
    const start = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - 5);
    const count = Math.min(n - start, Math.ceil(vp.clientHeight / ROW_H) + 10);
    if (start === lastStart && count === lastCount && n === lastLen && !forceRender && !state.dirtyRows) {
      state.renderMs = performance.now() - t0;
      return;
    }
    forceRender = false;
    lastStart = start; lastCount = count; lastLen = n;
    while (pool.length < count) pool.push(makeRowEl());
    rowsEl.style.transform = "translateY(" + start * ROW_H + "px)";
    for (let i = 0; i < pool.length; i++) {
      const el = pool[i];
      if (i >= count) { el.hidden = true; continue; }
      el.hidden = false;
      const row = state.model.row(state.visible[start + i]);
      const stamp = row.id + ":" + row.ver + ":" + (row.id === state.selected) + ":" + (state.highlightVer || 0);
      if (el._stamp === stamp) continue;
      el._stamp = stamp;
      el.dataset.id = row.id;
      const cs = cells(row);
      for (let j = 0; j < cs.length; j++) el.children[j].textContent = cs[j];
      el.classList.toggle("sel", row.id === state.selected);
      el.classList.toggle("hl", !!(state.highlight && state.highlight(row)));
      el.classList.toggle("err", row.status >= 400);
    }
    if (n && !state.firstRowsAt) state.firstRowsAt = performance.now();
    $("st-rows").textContent = n + " / " + state.model.rows.length + " rows, " + state.model.events + " events";
    state.stats.frames++;
    state.renderMs = performance.now() - t0;
    const sel = state.selected >= 0 ? state.model.row(state.selected) : null;
    if (sel && state.detailVer !== sel.ver) showDetail(state.selected);
  }
  vp.addEventListener("scroll", () => {
    // Scrolling up means reading: stop following new rows.
    if (vp.scrollTop + vp.clientHeight < vp.scrollHeight - ROW_H * 2) $("autoscroll").checked = false;
    schedule();
  });
  window.addEventListener("resize", () => schedule(true));

  rowsEl.addEventListener("click", (e) => {
    const el = e.target.closest(".row");
    if (!el) return;
    const id = Number(el.dataset.id);
    if (e.altKey) {
      // Alt-click a cell: filter by its value.
      const idx = Array.prototype.indexOf.call(el.children, e.target);
      const key = KEYS[idx];
      const row = state.model.row(id);
      const val = key === "pid" ? row.pid : key === "method" ? row.method : key === "host" ? row.host : key === "status" ? row.status : key === "protocol" ? row.protocol : "";
      if (key && val !== "") {
        const term = key + "=" + quote(String(val));
        const cur = $("filter").value.trim();
        $("filter").value = cur ? cur + " & " + term : term;
        applyFilter($("filter").value, true);
      }
      return;
    }
    state.selected = id;
    showDetail(id);
    schedule(true);
  });
  function quote(v) { return /^[A-Za-z0-9._:\/*-]+$/.test(v) ? v : '"' + v.replace(/["\\]/g, "\\$&") + '"'; }

  // ---- detail pane ----
  const utf8 = new TextDecoder("utf-8");
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });

  function concat(chunks) {
    let n = 0;
    for (const c of chunks) n += c.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    return out;
  }

  // message splits a request or response (whole, or head plus parts) into
  // its head text and body bytes.
  function message(head, parts) {
    if (!head) return null;
    const p = head.payload || new Uint8Array();
    const h = headEnd(p);
    const headText = utf8.decode(h < 0 ? p : p.subarray(0, h)).replace(/\r?\n\r?\n$/, "");
    let body = h < 0 ? new Uint8Array() : p.subarray(h);
    const bodyParts = parts.filter((e) => (e.part || 0) === 2).map((e) => e.payload || new Uint8Array());
    if (bodyParts.length) body = concat([body, ...bodyParts]);
    const end = parts.find((e) => e.part === 3);
    return { ev: head, headText, body, end };
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function hexdump(b, max) {
    const lines = [];
    const n = Math.min(b.length, max);
    for (let i = 0; i < n; i += 16) {
      const s = b.subarray(i, Math.min(i + 16, n));
      let hex = "", asc = "";
      for (let j = 0; j < 16; j++) {
        hex += j < s.length ? s[j].toString(16).padStart(2, "0") + " " : "   ";
        asc += j < s.length ? (s[j] >= 32 && s[j] < 127 ? String.fromCharCode(s[j]) : ".") : "";
      }
      lines.push(i.toString(16).padStart(8, "0") + "  " + hex + " " + asc);
    }
    if (b.length > n) lines.push("... " + (b.length - n) + " more bytes");
    return lines.join("\n");
  }

  // sniffImage names the image type of a body by its magic number, for
  // servers that label images application/octet-stream. SVG is never
  // sniffed: it is a document, not an image.
  function sniffImage(b) {
    const at = (sig) => sig.every((x, i) => b[i] === x);
    if (at([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
    if (at([0xff, 0xd8, 0xff])) return "image/jpeg";
    if (at([0x47, 0x49, 0x46, 0x38])) return "image/gif";
    if (at([0x52, 0x49, 0x46, 0x46]) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return "image/webp";
    return "";
  }

  const blobs = [];
  function renderBody(container, body, ct, cls) {
    let media = (ct || "").split(";")[0].trim().toLowerCase();
    if (!body.length) { container.appendChild(el("p", "(no body)", "note")); return; }
    const sniffed = sniffImage(body);
    if (sniffed && !media.startsWith("image/")) media = sniffed;
    if (media.startsWith("image/") && media !== "image/svg+xml") {
      const url = URL.createObjectURL(new Blob([body], { type: media }));
      blobs.push(url);
      const img = el("img");
      img.src = url;
      img.alt = media + " body";
      img.className = cls + " body-image";
      container.appendChild(img);
      return;
    }
    let text = null;
    try { text = utf8Strict.decode(body); } catch (e) { text = null; }
    if (text !== null && /[\x00-\x08\x0e-\x1f]/.test(text)) text = null;
    if (text === null) {
      container.appendChild(el("p", "binary, " + body.length + " bytes (hex dump)", "note"));
      container.appendChild(el("pre", hexdump(body, 64 * 1024), cls + " body-hex"));
      return;
    }
    const looksJSON = /^\s*[[{]/.test(text) && (media === "" || media === "application/octet-stream" || media === "text/plain");
    if ((media.includes("json") && !media.includes("ndjson") && !media.includes("jsonl")) || looksJSON) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
        container.appendChild(el("p", "JSON, pretty-printed", "note"));
      } catch (e) { /* not one JSON value: show as sent */ }
    }
    container.appendChild(el("pre", text, cls + " body-text"));
  }

  function section(root, title) {
    root.appendChild(el("h3", title));
    const d = el("div");
    root.appendChild(d);
    return d;
  }

  function renderMessage(root, title, m, cls) {
    if (!m) return;
    const s = section(root, title);
    s.classList.add(cls);
    s.appendChild(el("pre", m.headText, cls + "-head"));
    const notes = [];
    if (m.ev.content_encoding) notes.push("body decoded from Content-Encoding: " + m.ev.content_encoding);
    if (m.ev.transfer_encoding) notes.push("de-chunked from Transfer-Encoding: " + m.ev.transfer_encoding);
    if (m.ev.truncated || (m.end && m.end.truncated)) notes.push("truncated (original length " + (m.ev.original_length || (m.end && m.end.original_length) || "?") + ")");
    if (m.ev.incomplete || (m.end && m.end.incomplete)) notes.push("incomplete: the message never completed");
    if (m.ev.part === 1) notes.push("streamed: head" + (m.end ? ", parts and end" : ", parts so far"));
    for (const n of notes) s.appendChild(el("p", n, "note encoding-note"));
    renderBody(s, m.body, m.ev.content_type, cls + "-body");
  }

  function kv(root, pairs) {
    const t = el("table");
    for (const [k, v] of pairs) {
      if (v === undefined || v === "" || v === null) continue;
      const tr = el("tr");
      tr.appendChild(el("td", k));
      tr.appendChild(el("td", String(v)));
      t.appendChild(tr);
    }
    root.appendChild(t);
  }

  const OPCODES = { 0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong" };

  function showDetail(id) {
    const row = state.model.row(id);
    if (!row) return;
    state.detailVer = row.ver;
    for (const u of blobs.splice(0)) URL.revokeObjectURL(u);
    $("detail").hidden = false;
    const root = $("detail-body");
    root.replaceChildren();
    root.dataset.row = id;
    const req = message(row.req, row.reqParts);
    const resp = message(row.resp, row.respParts);
    if (row.kind === "raw") {
      const s = section(root, "Raw data");
      renderBody(s, row.first.payload || new Uint8Array(), "", "raw-body");
    }
    renderMessage(root, "Request", req, "req");
    renderMessage(root, "Response", resp, "resp");
    if (row.ws.length) {
      const s = section(root, "WebSocket messages (" + row.ws.length + ")");
      s.classList.add("ws");
      for (const m of row.ws) {
        const head = (m.data_type === 1 ? "→ sent" : "← received") + " by " + m.pname + ", " + (OPCODES[m.ws_opcode] || "opcode " + m.ws_opcode) +
          (m.ws_opcode === 8 ? " code " + (m.ws_close_code || "none") : "") + ", " + (m.payload ? m.payload.length : 0) + " B, " + fmtTime(m.timestamp);
        const d = el("div", undefined, "ws-msg");
        d.appendChild(el("p", head, "note ws-head"));
        renderBody(d, m.payload || new Uint8Array(), m.ws_opcode === 2 ? "application/octet-stream" : "text/plain", "ws-body");
        s.appendChild(d);
      }
    }
    const f = row.req || row.resp || row.first;
    const c = section(root, "Connection");
    kv(c, [
      ["source", (f.src_ip || "?") + ":" + (f.src_port || 0)],
      ["destination", (f.dst_ip || "?") + ":" + (f.dst_port || 0)],
      ["pid", f.pid], ["tid", f.tid], ["comm", f.pname], ["uid", f.uid],
      ["fd", f.fd === 4294967295 ? "unknown" : f.fd], ["uuid", f.uuid], ["connection id", f.conn_id],
      ["TLS library", f.tls_library || "unknown"],
      ["TLS version", f.version ? "0x" + f.version.toString(16) : ""],
      ["HTTP/2 stream", f.stream_id], ["node", f.node],
      ["container", f.container_id], ["pod", f.pod_name],
      ["namespace", f.pod_name ? f.pod_namespace : ""],
    ]);
    const t = section(root, "Timing");
    const pairs = [["request", row.req ? fmtTime(row.req.timestamp) + " (seq " + row.req.seq + ")" : ""],
      ["response", row.resp ? fmtTime(row.resp.timestamp) + " (seq " + row.resp.seq + ")" : ""],
      ["latency", fmtLatency(row.latencyNs)]];
    const ends = row.respParts.filter((e) => e.part === 3);
    if (ends.length) pairs.push(["response end", fmtTime(ends[0].timestamp)]);
    kv(t, pairs);
  }

  $("close-detail").addEventListener("click", () => { $("detail").hidden = true; state.selected = -1; schedule(true); });

  // ---- actions ----
  function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

  function curlFor(row) {
    const m = message(row.req, row.reqParts);
    if (!m) return null;
    const lines = m.headText.split(/\r?\n/);
    const [method, target] = lines[0].split(" ");
    const headers = [];
    let host = row.req.host;
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i <= 0) continue;
      const name = l.slice(0, i).trim();
      const low = name.toLowerCase();
      if (low === "host") { host = host || l.slice(i + 1).trim(); continue; }
      // curl computes these from what it sends.
      if (low === "content-length" || low === "transfer-encoding" || low === "connection") continue;
      headers.push(name + ": " + l.slice(i + 1).trim());
    }
    const url = (/^https?:\/\//.test(target) ? target : "https://" + host + target);
    const parts = ["curl"];
    if (method !== "GET") parts.push("-X", shellQuote(method));
    parts.push(row.req.type === 2 ? "--http2" : "--http1.1");
    parts.push(shellQuote(url));
    for (const h of headers) parts.push("-H", shellQuote(h));
    if (m.body.length) parts.push("--data-binary", shellQuote(utf8.decode(m.body)));
    return parts.join(" ");
  }

  function rawFor(row) {
    const out = [];
    for (const ev of row.events) out.push(utf8.decode(ev.payload || new Uint8Array()));
    return out.join("\n\n");
  }

  function showCopy(title, text) {
    $("copy-title").textContent = title;
    $("copy-text").value = text;
    if (!$("copy-dialog").open) $("copy-dialog").showModal();
    $("copy-text").select();
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
  }

  $("copy-curl").addEventListener("click", () => {
    const row = state.model.row(state.selected);
    const c = row && curlFor(row);
    showCopy(c ? "cURL command (copied to the clipboard if allowed):" : "This row has no request.", c || "");
  });
  $("copy-raw").addEventListener("click", () => {
    const row = state.model.row(state.selected);
    if (row) showCopy("Raw payloads:", rawFor(row));
  });
  $("download-body").addEventListener("click", () => {
    const row = state.model.row(state.selected);
    if (!row) return;
    const m = message(row.resp, row.respParts) || message(row.req, row.reqParts);
    if (!m) return;
    const ct = (m.ev.content_type || "application/octet-stream").split(";")[0];
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([m.body], { type: ct }));
    a.download = "body-" + m.ev.seq;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });

  // Send to proxy: only after the dialog said that the request is
  // repeated against the real server, and the user confirmed.
  $("resend").addEventListener("click", () => {
    const row = state.model.row(state.selected);
    $("resend-result").textContent = "";
    if (!row || !row.req || (row.req.part || 0) !== 0) {
      $("resend-what").textContent = "This row has no whole request to send.";
      $("resend-confirm").disabled = true;
    } else {
      $("resend-what").textContent = row.req.method + " https://" + row.req.host + row.req.path + "  (seq " + row.req.seq + ")";
      $("resend-confirm").disabled = false;
    }
    if (!$("resend-dialog").open) $("resend-dialog").showModal();
  });
  $("resend-confirm").addEventListener("click", async (e) => {
    e.preventDefault();
    const row = state.model.row(state.selected);
    if (!row || !row.req) return;
    $("resend-confirm").disabled = true;
    $("resend-result").textContent = "sending…";
    try {
      const r = await api("/api/v1/ui/resend", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ seq: row.req.seq, confirm: true }) });
      const b = await r.json();
      $("resend-result").textContent = r.ok ? "Sent through " + b.proxy + ": the server answered " + b.status + "." : "Not sent: " + b.error;
    } catch (err) {
      $("resend-result").textContent = "Not sent: " + (err.message || err);
    }
  });

  function harQuery() {
    const p = state.serverFilterMode === "filter" && state.filterSrc.trim()
      ? new URLSearchParams({ filter: state.filterSrc }) : legacyParams(state.filterSrc);
    return p.toString();
  }
  async function harText() {
    const r = await api("/api/v1/har?" + harQuery());
    if (!r.ok) throw new Error("HAR export: " + r.status + " " + (await r.text()));
    return r.text();
  }
  $("har").addEventListener("click", async () => {
    try {
      const text = await harText();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      a.download = "tlstap.har";
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      $("filter-error").hidden = false;
      $("filter-error").textContent = String(e.message || e);
    }
  });

  // ---- pause, clear ----
  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("pause").textContent = state.paused ? "Resume" : "Pause";
    if (!state.paused) {
      for (const ev of state.pending.splice(0)) ingest(ev);
      if (state.pendingDropped) {
        $("filter-error").hidden = false;
        $("filter-error").textContent = state.pendingDropped + " events arrived while paused beyond " + MAX_PENDING + " held and were left out; reload to fetch what the server retains.";
        state.pendingDropped = 0;
      }
    }
    schedule(true);
  });
  $("clear").addEventListener("click", () => {
    // Cleared rows stay cleared after a reload: the stored events go, the
    // resume point stays.
    clearStored(false);
    state.model.rows = [];
    state.model.base = state.model.nextId;
    state.model.heads.clear();
    state.model.upgrades.clear();
    state.model.wsRows.clear();
    state.visible = [];
    state.selected = -1;
    $("detail").hidden = true;
    schedule(true);
  });

  // ---- status bar ----
  let prevEvents = null, prevAt = 0;
  async function pollStatus() {
    try {
      const r = await api("/api/v1/status");
      if (!r.ok) return;
      const s = await r.json();
      state.lastStatus = s;
      const c = s.counters || {};
      let events = 0;
      for (const v of Object.values(c.events_by_type || {})) events += v;
      const now = performance.now();
      if (prevEvents !== null) {
        const rate = (events - prevEvents) / ((now - prevAt) / 1000);
        $("st-rate").textContent = rate.toFixed(0) + " events/s";
      }
      prevEvents = events; prevAt = now;
      const drops = Object.entries(c.drops_by_reason || {}).filter(([, v]) => v);
      let dropN = 0;
      for (const [, v] of drops) dropN += v;
      $("st-drops").textContent = "drops/losses " + dropN + (drops.length ? " (" + drops.map(([k, v]) => k + " " + v).join(", ") + ")" : "");
      $("st-clients").textContent = "clients " + (c.clients || 0);
      const libs = (s.capture && s.capture.libraries) || [];
      $("st-libs").textContent = (s.capture && s.capture.source ? s.capture.source + ": " : "") + libs.length + " libraries" +
        (libs.length ? " (" + libs.map((l) => l.path.split("/").pop()).join(", ") + ")" : "");
      $("st-libs").title = libs.map((l) => l.path + (l.kind ? " " + l.kind : "")).join("\n");
    } catch (e) { /* shown by the connection state */ }
  }

  // ---- settings ----
  const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
  async function openSettings() {
    $("settings-errors").replaceChildren();
    $("settings-ok").hidden = true;
    const r = await api("/api/v1/config");
    if (!r.ok) return;
    const c = await r.json();
    const cap = c.capture || {};
    $("set-pids").value = (cap.pids || []).join(", ");
    $("set-uids").value = (cap.uids || []).join(", ");
    $("set-comms").value = (cap.comms || []).join(", ");
    $("set-libs").value = (cap.libs || []).join(", ");
    if (!$("settings").open) $("settings").showModal();
  }
  $("settings-open").addEventListener("click", openSettings);
  $("settings-close").addEventListener("click", () => $("settings").close());
  $("settings-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const errs = $("settings-errors");
    errs.replaceChildren();
    $("settings-ok").hidden = true;
    const nums = (s, field) => list(s).map((x) => (/^[0-9]+$/.test(x) ? Number(x) : x));
    const patch = { capture: {
      pids: nums($("set-pids").value, "pids"), uids: nums($("set-uids").value, "uids"),
      comms: list($("set-comms").value), libs: list($("set-libs").value),
    } };
    const r = await api("/api/v1/config", { method: "PATCH", headers: { "Content-Type": "application/merge-patch+json" }, body: JSON.stringify(patch) });
    let body = {};
    try { body = await r.json(); } catch (e2) { /* empty */ }
    if (!r.ok) {
      errs.appendChild(el("li", body.error || r.status + " " + r.statusText));
      for (const f of body.fields || []) errs.appendChild(el("li", (f.field || f.path || "") + ": " + (f.reason || f.message || JSON.stringify(f))));
      return;
    }
    $("settings-rev").textContent = (r.headers.get("ETag") || "").replace(/"/g, "");
    $("settings-ok").hidden = false;
  });

  // ---- start ----
  async function start() {
    if (!state.token) { askToken(); return; }
    let status;
    try {
      await probeFilterParam();
      status = await (await api("/api/v1/status")).json();
    } catch (e) { return; }
    if ($("token-dialog").open) $("token-dialog").close();
    const f = new URL(location.href).searchParams.get("filter") || "";
    $("filter").value = f;
    if (!applyFilter(f, false)) applyFilter("", false);
    let since = 0;
    if (!state.storeOpened) {
      state.storeOpened = true;
      store.db = await openStore();
      store.run = String((status && status.started) || "");
      let saved = null;
      try { saved = await loadStored(store.run); } catch (e) { console.warn("reload resume: reading failed", e); }
      if (saved) {
        for (const ev of saved.events) ingest(ev);
        state.restored = saved.events.length;
        // The stored point holds for the stream filter it was written
        // with; another filter starts from what the server retains (rows
        // held are not repeated).
        streamParams(0);
        if (saved.filter === state.serverFilter) since = saved.since;
      }
      removeStale().catch(() => {});
    }
    state.resumedFrom = since;
    connect(since);
    pollStatus();
    if (!state.statusTimer) state.statusTimer = setInterval(pollStatus, 2000);
  }

  window.tlstapUI = {
    state,
    harText,
    curlFor: (id) => curlFor(state.model.row(id)),
    rows: () => state.visible.map((i) => {
      const r = state.model.row(i);
      return { id: r.id, kind: r.kind, method: r.method, host: r.host, path: r.path, status: r.status, protocol: r.protocol,
        pid: r.pid, comm: r.comm, req: r.req ? r.req.seq : 0, resp: r.resp ? r.resp.seq : 0, requestSeq: r.resp ? r.resp.request_seq || 0 : 0, ws: r.ws.length };
    }),
    serverFilter: () => state.serverFilter,
    connEvents: () => state.connEvents,
    // "worker" when the stream runs in worker.js, "page" otherwise.
    streamMode: () => (useWorker ? "worker" : "page"),
    // The reload resume point written, the events a reload read back and
    // the since= it asked for.
    resume: () => ({ since: store.saved, restored: state.restored || 0, resumedFrom: state.resumedFrom || 0, stored: !!store.db }),
    connState: () => document.body.dataset.conn || "",
    applyFilter: (s) => applyFilter(s, true),
    refilterMs: (s) => { applyFilter(s, false); return state.lastFilterMs; },
    ingest,
  };

  state.token = readToken();
  start();
})();
