// filter.js: the filter expression language of docs/filters.md, in the
// browser: a port of internal/filter's parser and matcher, held to the
// same conformance table (internal/filter/testdata/cases.json: the same
// events selected, the same errors at the same positions). parse(src)
// returns a predicate over events (objects with the field names of
// proto/event/event.proto: pid, uid, pname, type, method, host, path,
// status, content_type, src_port, dst_port, tls_library, node,
// container_id, part, payload as a Uint8Array or string) or throws a
// FilterError.
(function (global) {
  "use strict";

  const MAX_LEN = 4096, MAX_DEPTH = 32;

  class FilterError extends Error {
    constructor(pos, msg) {
      super("at column " + (pos + 1) + ": " + msg);
      this.pos = pos;
      this.detail = msg;
    }
  }

  // Keys, as internal/filter/keys.go lists them. fold: case-insensitive.
  const KEYS = [
    { name: "pid", kind: "num", max: Number.MAX_SAFE_INTEGER },
    { name: "uid", kind: "num", max: 4294967295 },
    { name: "comm", other: "pname", kind: "text" },
    { name: "type", kind: "type" },
    { name: "protocol", kind: "type" },
    { name: "method", kind: "text", fold: true },
    { name: "host", kind: "text", fold: true },
    { name: "path", kind: "text" },
    { name: "status", kind: "num", max: 999 },
    { name: "content-type", other: "ct", kind: "text", fold: true },
    { name: "header", kind: "text", fold: true },
    { name: "body", kind: "text" },
    { name: "port", kind: "num", max: 65535 },
    { name: "lib", kind: "text", fold: true },
    { name: "node", kind: "text" },
    { name: "container", kind: "text" },
    { name: "pod", kind: "text" },
    { name: "namespace", other: "ns", kind: "text" },
  ];
  function lookupKey(name) {
    const n = name.toLowerCase();
    return KEYS.find((k) => k.name === n || k.other === n) || null;
  }
  const ALIASES = {
    pid: ["pid", "="], comm: ["comm", "="], m: ["method", "="], d: ["host", "="],
    u: ["path", "~="], c: ["status", "="], t: ["content-type", "~="], h: ["header", "~="],
    b: ["body", "~="], q: ["type", "=", "request"], s: ["type", "=", "response"],
    websocket: ["type", "=", "websocket"], http: ["type", "=", "http"],
  };
  const TYPE_NAMES = ["raw", "http1-request", "http2-request", "http1-response", "http2-response", "websocket"];
  const TYPE_GROUPS = { request: [1, 2], response: [3, 4], http: [1, 2, 3, 4], ws: [5] };
  const PROTOCOLS = [["raw", [0]], ["http1", [1, 3]], ["http2", [2, 4]], ["websocket", [5]]];
  const OPS = ["!=", "~=", ">=", "<=", "=", ">", "<"];

  const isSpace = (c) => c === " " || c === "\t" || c === "\n" || c === "\r";
  const delim = (c) => isSpace(c) || '&|()",'.includes(c);
  const clip = (s) => (s.length > 64 ? s.slice(0, 64) + "..." : s);
  const q = (s) => JSON.stringify(s);

  // glob: '*' any run, '?' one character; fold lower-cases the subject
  // (the pattern is lower-cased already when the key folds).
  function glob(p, s, fold) {
    let pi = 0, si = 0, star = -1, next = 0;
    while (si < s.length) {
      if (pi < p.length) {
        const c = p[pi];
        if (c === "*") { star = pi; next = si; pi++; continue; }
        if (c === "?" || c === s[si] || (fold && c === s[si].toLowerCase())) { pi++; si++; continue; }
      }
      if (star < 0) return false;
      next++;
      pi = star + 1; si = next;
    }
    while (pi < p.length && p[pi] === "*") pi++;
    return pi === p.length;
  }

  function cutPort(h) {
    const i = h.lastIndexOf(":");
    if (i < 0) return null;
    if (h.startsWith("[")) {
      if (i < 1 || h[i - 1] !== "]") return null;
      return [h.slice(1, i - 1), h.slice(i + 1)];
    }
    if (h.indexOf(":") !== i) return null;
    return [h.slice(0, i), h.slice(i + 1)];
  }

  // anyOf and allOf combine predicates without a closure per call: the
  // matcher runs once per event in a pass over 100,000 rows.
  function anyOf(ns) {
    if (ns.length === 2) { const [a, b] = ns; return (e) => a(e) || b(e); }
    return (e) => { for (let i = 0; i < ns.length; i++) if (ns[i](e)) return true; return false; };
  }
  function allOf(ns) {
    if (ns.length === 2) { const [a, b] = ns; return (e) => a(e) && b(e); }
    return (e) => { for (let i = 0; i < ns.length; i++) if (!ns[i](e)) return false; return true; };
  }

  // ---- parser (internal/filter/parse.go) ----
  function parse(src) {
    if (typeof src !== "string") src = "";
    if (new TextEncoder().encode(src).length > MAX_LEN) throw new FilterError(MAX_LEN, "filter longer than " + MAX_LEN + " bytes");
    const s = src;
    let i = 0, depth = 0;
    const eof = () => i >= s.length;
    const peek = () => s[i];
    const fail = (msg, pos) => { throw new FilterError(pos === undefined ? i : pos, msg); };
    const space = () => { while (!eof() && isSpace(peek())) i++; };
    const found = () => (eof() ? "the end of the filter" : q(s[i]));
    function keyword(kw) {
      const n = kw.length;
      if (i + n > s.length || s.slice(i, i + n).toLowerCase() !== kw) return false;
      if (i + n < s.length && !delim(s[i + n]) && s[i + n] !== "!" && s[i + n] !== "~") return false;
      i += n;
      return true;
    }
    function or() {
      const ns = [and()];
      for (;;) {
        space();
        if (eof()) break;
        if (peek() === "|") i++;
        else if (!keyword("or")) break;
        space();
        ns.push(and());
      }
      return ns.length === 1 ? ns[0] : anyOf(ns);
    }
    function and() {
      const ns = [not()];
      for (;;) {
        space();
        if (eof()) break;
        const c = peek();
        if (c === "&") i++;
        else if (keyword("and")) { /* consumed */ } else if (c === "|" || c === ")") break;
        else {
          const save = i;
          if (keyword("or")) { i = save; break; }
        }
        space();
        ns.push(not());
      }
      return ns.length === 1 ? ns[0] : allOf(ns);
    }
    function not() {
      depth++;
      try {
        if (depth > MAX_DEPTH) fail("nested more than " + MAX_DEPTH + " deep");
        space();
        if (eof()) fail('expected a term (key op value, ~alias, "!" or "("), found the end of the filter');
        const c = peek();
        if (c === "!") { i++; const n = not(); return (e) => !n(e); }
        if (keyword("not")) { const n = not(); return (e) => !n(e); }
        if (c === "(") {
          const open = i;
          i++;
          space();
          const n = or();
          space();
          if (eof() || peek() !== ")") fail('expected ")" to close the "(" at column ' + (open + 1) + ", found " + found());
          i++;
          return n;
        }
        if (c === "~") return alias();
        return term();
      } finally {
        depth--;
      }
    }
    function ident() {
      const start = i;
      while (!eof()) {
        const c = peek();
        if ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "-" || c === "_" || (i > start && c >= "0" && c <= "9")) { i++; continue; }
        break;
      }
      return s.slice(start, i);
    }
    function alias() {
      const start = i;
      i++;
      const name = ident();
      if (!name) fail('expected an alias name after "~" (~m, ~d, ~u, ~c, ~t, ~h, ~b, ~q, ~s, ~websocket, ~http, ~pid, ~comm)');
      const a = ALIASES[name.toLowerCase()];
      if (!a) fail("unknown alias " + q("~" + clip(name)), start);
      const k = lookupKey(a[0]);
      if (a[2]) return newTerm(k, a[1], [a[2]], [start], start);
      space();
      return finish(k, a[1], "~" + name);
    }
    function term() {
      const start = i;
      const name = ident();
      if (!name) {
        if (peek() === ")") fail('unexpected ")"');
        fail('expected a key, "~alias", "!" or "(", found ' + found());
      }
      const k = lookupKey(name);
      if (!k) fail("unknown key " + q(clip(name)), start);
      space();
      const opPos = i;
      const op = OPS.find((o) => s.startsWith(o, i));
      if (!op) fail('expected an operator (=, !=, ~=, >, >=, <, <=) after ' + q(name) + ", found " + found());
      i += op.length;
      const m = checkOp(k, op);
      if (m) fail(m, opPos);
      space();
      return finish(k, op, op);
    }
    function finish(k, op, after) {
      const vstart = i;
      const vals = [], pos = [];
      for (;;) {
        if (eof() || (delim(peek()) && peek() !== '"')) fail("expected a value after " + q(after) + ", found " + found());
        pos.push(i);
        if (peek() === '"') vals.push(quoted());
        else {
          const st = i;
          while (!eof() && !delim(peek())) i++;
          vals.push(s.slice(st, i));
        }
        if (eof() || peek() !== ",") break;
        i++;
        after = ",";
      }
      return newTerm(k, op, vals, pos, vstart);
    }
    function quoted() {
      const start = i;
      i++;
      let b = "";
      while (!eof()) {
        const c = peek();
        if (c === '"') {
          i++;
          if (!b) fail("empty value", start);
          return b;
        }
        if (c === "\\") {
          if (i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === "\\")) { b += s[i + 1]; i += 2; continue; }
          fail('bad escape in quoted value (only \\" and \\\\)');
        }
        b += c;
        i++;
      }
      fail("unterminated quoted value", start);
    }

    space();
    if (eof()) return () => true;
    const n = or();
    if (!eof()) {
      if (peek() === ")") fail('unexpected ")"');
      fail('expected "&", "|" or the end of the filter');
    }
    return n;
  }

  function checkOp(k, op) {
    if (op === "~=" && k.kind !== "text") return 'operator "~=" needs a text key, not ' + k.name;
    if ((op === ">" || op === ">=" || op === "<" || op === "<=") && k.kind !== "num") {
      return "operator " + q(op) + " needs a numeric key (pid, uid, status, port), not " + k.name;
    }
    return "";
  }

  function parseNum(k, v, ranges) {
    const num = (x) => {
      if (!x || x.length > 20 || !/^[0-9]+$/.test(x)) return null;
      const n = Number(x);
      return n <= k.max ? n : null;
    };
    const n = num(v);
    if (n !== null) return [n, n];
    if (!ranges) return null;
    if (k.name === "status" && v.length === 3 && v[0] >= "1" && v[0] <= "5" && v.slice(1).toLowerCase() === "xx") {
      const c = Number(v[0]) * 100;
      return [c, c + 99];
    }
    const d = v.indexOf("-");
    if (d < 0) return null;
    const a = num(v.slice(0, d)), b = num(v.slice(d + 1));
    if (a === null || b === null || a > b) return null;
    return [a, b];
  }

  function typeSet(k, v) {
    const lv = v.toLowerCase();
    const set = new Set();
    if (k.name === "protocol") {
      for (const [name, ts] of PROTOCOLS) if (glob(lv, name, true)) ts.forEach((t) => set.add(t));
      return set;
    }
    if (/^[0-5]$/.test(v)) return new Set([Number(v)]);
    if (TYPE_GROUPS[lv]) return new Set(TYPE_GROUPS[lv]);
    TYPE_NAMES.forEach((n, t) => { if (glob(lv, n, true)) set.add(t); });
    return set;
  }

  function numHint(k, op) {
    if (op !== "=" && op !== "!=") return "want a number";
    if (k.name === "status") return "want a number, a class like 4xx or a range like 400-499";
    return "want a number or a range like 10-20";
  }
  function typeHint(k) {
    return k.name === "protocol" ? "want raw, http1, http2 or websocket"
      : "want 0-5, raw, http1-request, http2-request, http1-response, http2-response, websocket, request, response, http or ws";
  }

  function newTerm(k, op, values, pos, vstart) {
    const eqOp = op === "=" || op === "!=";
    const preds = [];
    values.forEach((v, idx) => {
      const at = pos[idx] !== undefined ? pos[idx] : vstart;
      if (v === "") throw new FilterError(at, "empty value for " + k.name);
      if (k.kind === "num") {
        const r = parseNum(k, v, eqOp);
        if (!r) throw new FilterError(at, "bad value " + q(clip(v)) + " for " + k.name + " (" + numHint(k, op) + ")");
        preds.push(numPred(k, op, r));
      } else if (k.kind === "type") {
        const set = typeSet(k, v);
        if (!set.size) throw new FilterError(at, "bad value " + q(clip(v)) + " for " + k.name + " (" + typeHint(k) + ")");
        preds.push((e) => set.has(Number(e.type || 0)));
      } else {
        preds.push(op === "~=" ? containsPred(k, v) : eqPred(k, v));
      }
    });
    const any = preds.length === 1 ? preds[0] : anyOf(preds);
    return op === "!=" ? (e) => !any(e) : any;
  }

  // numPred tests the key's values of an event (none, one, or two for
  // port) without building a list: it runs once per event per pass.
  function numPred(k, op, [lo, hi]) {
    let hit;
    switch (op) {
      case ">": hit = (v) => v > lo; break;
      case ">=": hit = (v) => v >= lo; break;
      case "<": hit = (v) => v < lo; break;
      case "<=": hit = (v) => v <= lo; break;
      default: hit = (v) => lo <= v && v <= hi;
    }
    switch (k.name) {
      case "pid": return (e) => (e.pid >= 0 || e.pid === undefined) && hit(Number(e.pid || 0));
      case "uid": return (e) => hit(Number(e.uid || 0));
      case "status": return (e) => !!e.status && hit(Number(e.status));
      case "port": return (e) => (!!e.src_port && hit(Number(e.src_port))) || (!!e.dst_port && hit(Number(e.dst_port)));
    }
    return () => false;
  }

  // fold lower-cases a field's value, memoized: a pass over 100,000 rows
  // sees a few hundred distinct methods, hosts and types, and must not
  // allocate a new string for each event.
  const foldMemo = new Map();
  function fold(s) {
    let l = foldMemo.get(s);
    if (l === undefined) {
      l = s.toLowerCase();
      if (foldMemo.size > 50000) foldMemo.clear();
      foldMemo.set(s, l);
    }
    return l;
  }
  // hostOnly is a host field without its port (and IPv6 brackets),
  // lower-cased, memoized like fold.
  const hostMemo = new Map();
  function hostOnly(s) {
    let h = hostMemo.get(s);
    if (h === undefined) {
      h = s;
      const hp = cutPort(h);
      if (hp) h = hp[0];
      else if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
      h = h.toLowerCase();
      if (hostMemo.size > 50000) hostMemo.clear();
      hostMemo.set(s, h);
    }
    return h;
  }

  const FIELD = { comm: "pname", method: "method", host: "host", path: "path", "content-type": "content_type",
    lib: "tls_library", node: "node", container: "container_id",
    pod: "pod_name", namespace: "pod_namespace" };

  // ---- payload access (internal/filter/keys.go: head, eachHeader, body) ----
  const dec = typeof TextDecoder !== "undefined" ? new TextDecoder("utf-8", { fatal: false }) : null;
  function payloadText(e) {
    const p = e.payload;
    if (p == null) return "";
    if (typeof p === "string") return p;
    if (e._text === undefined) e._text = dec.decode(p);
    return e._text;
  }
  const isHTTP = (e) => e.type >= 1 && e.type <= 4;
  // headText is the head of an HTTP message up to the blank line (or all
  // of it), decoded without the body.
  function headText(e) {
    const p = e.payload;
    if (p == null) return "";
    if (typeof p === "string") {
      const end = p.indexOf("\r\n\r\n");
      return end >= 0 ? p.slice(0, end + 2) : p;
    }
    if (e._text !== undefined) {
      const end = e._text.indexOf("\r\n\r\n");
      return end >= 0 ? e._text.slice(0, end + 2) : e._text;
    }
    let n = p.length;
    for (let i = 0; i + 3 < p.length; i++) {
      if (p[i] === 13 && p[i + 1] === 10 && p[i + 2] === 13 && p[i + 3] === 10) { n = i + 2; break; }
    }
    return dec.decode(n === p.length ? p : p.subarray(0, n));
  }
  // headerLines splits an HTTP message's head into [name, value] pairs.
  function headerLines(e) {
    const out = [];
    if (isHTTP(e) && e.part !== 2 && e.part !== 3) {
      const p = headText(e);
      const nl = p.indexOf("\n");
      if (nl >= 0) {
        for (let line of p.slice(nl + 1).split("\n")) {
          if (line.endsWith("\r")) line = line.slice(0, -1);
          const c = line.indexOf(":");
          if (c <= 0) continue;
          out.push([line.slice(0, c), line.slice(c + 1).replace(/^[ \t]+/, "")]);
        }
      }
    }
    return out;
  }
  // headers are prepared once per event (prepare, at ingest), lower-cased
  // for matching: [name, value, "name: value"] each, so that a pass over
  // 100,000 rows neither decodes nor splits nor allocates.
  function headers(e) {
    if (e._hl !== undefined) return e._hl;
    const out = [];
    for (const [n, v] of headerLines(e)) {
      const ln = n.toLowerCase(), lv = v.toLowerCase();
      out.push([ln, lv, ln + ": " + lv]);
    }
    e._hl = out;
    return out;
  }
  function prepare(e) { if (isHTTP(e)) headers(e); return e; }
  function body(e) {
    const p = payloadText(e);
    if (!isHTTP(e) || e.part === 2) return p;
    if (e.part === 1 || e.part === 3) return "";
    const i = p.indexOf("\r\n\r\n");
    return i < 0 ? "" : p.slice(i + 4);
  }

  function eqPred(k, raw) {
    let v = k.fold ? raw.toLowerCase() : raw;
    if (k.name === "header") {
      const c = v.indexOf(":");
      const name = (c < 0 ? v : v.slice(0, c)).trim();
      const val = c < 0 ? "" : v.slice(c + 1).trim();
      return (e) => {
        const hs = headers(e);
        for (let i = 0; i < hs.length; i++) if (glob(name, hs[i][0], false) && (c < 0 || glob(val, hs[i][1], false))) return true;
        return false;
      };
    }
    if (k.name === "body") return (e) => { const b = body(e); return b !== "" && glob(v, b, false); };
    const wild = /[*?]/.test(v);
    let port = false;
    if (k.name === "host") port = cutPort(v) !== null;
    const f = FIELD[k.name];
    if (k.name === "host") {
      return (e) => {
        const s = e.host;
        if (s === undefined || s === null || s === "") return false;
        const h = port ? fold(String(s)) : hostOnly(String(s));
        return wild ? glob(v, h, false) : h === v;
      };
    }
    if (k.fold && k.name !== "content-type") {
      return (e) => {
        const s = e[f];
        if (s === undefined || s === null || s === "") return false;
        const l = fold(typeof s === "string" ? s : String(s));
        return wild ? glob(v, l, false) : l === v;
      };
    }
    return (e) => {
      let s = e[f];
      if (s === undefined || s === null || s === "") return false;
      s = String(s);
      switch (k.name) {
        case "path": {
          const qi = s.indexOf("?");
          if (qi >= 0 && glob(v, s.slice(0, qi), false)) return true;
          break;
        }
        case "content-type":
          s = s.split(";")[0].trim();
          break;
        case "container":
          if (!wild) return s.startsWith(v);
          break;
      }
      if (!wild) return k.fold ? s.toLowerCase() === v : s === v;
      return glob(v, s, k.fold);
    };
  }

  function containsPred(k, raw) {
    const v = k.fold ? raw.toLowerCase() : raw;
    if (k.name === "header") {
      return (e) => {
        const hs = headers(e);
        for (let i = 0; i < hs.length; i++) if (hs[i][2].includes(v)) return true;
        return false;
      };
    }
    if (k.name === "body") return (e) => { const b = body(e); return b !== "" && b.includes(v); };
    const f = FIELD[k.name];
    return (e) => {
      const s = e[f];
      if (s === undefined || s === null || s === "") return false;
      const t = typeof s === "string" ? s : String(s);
      return (k.fold ? fold(t) : t).includes(v);
    };
  }

  // compile returns {match, error}: match is null for an empty filter
  // (everything matches), error a FilterError for one that does not parse.
  function compile(src) {
    if (!src || !src.trim()) return { match: null, error: null };
    try {
      return { match: parse(src), error: null };
    } catch (err) {
      if (err instanceof FilterError) return { match: undefined, error: err };
      throw err;
    }
  }

  function splitMessage(e) { return [headerLines(e).map(([n, v]) => n + ": " + v).join("\n"), body(e)]; }

  const api = { parse, compile, FilterError, splitMessage, prepare };
  global.TlstapFilter = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
