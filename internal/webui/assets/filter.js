// filter.js: the filter expression language of docs/filters.md, in the
// browser. parse(src) returns a predicate over events (objects with the
// field names of proto/event/event.proto: pid, uid, pname, type, method,
// host, path, status, content_type, src_port, dst_port, tls_library, node,
// container_id, payload as a Uint8Array or string) or throws a
// FilterError with the position and what was expected. The Go twin is
// internal/filter; both pass internal/filter/testdata/cases.json.
(function (global) {
  "use strict";

  class FilterError extends Error {
    constructor(pos, msg) {
      super("at " + pos + ": " + msg);
      this.pos = pos;
      this.detail = msg;
    }
  }

  const TYPES = {
    raw: [0], "http1-request": [1], "http2-request": [2], "http1-response": [3],
    "http2-response": [4], websocket: [5],
    request: [1, 2], response: [3, 4], http: [1, 2, 3, 4], ws: [5],
  };
  const PROTOCOLS = { raw: [0], http1: [1, 3], http2: [2, 4], websocket: [5] };

  // key: [kind, field]; kinds: num, text (case-insensitive), ctext (case
  // sensitive), host, type, protocol, status, header, body, port, prefix.
  const KEYS = {
    pid: "num", uid: "num", comm: "text", pname: "text", type: "type",
    protocol: "protocol", method: "text", host: "host", path: "ctext",
    status: "status", "content-type": "text", ct: "text", header: "header",
    body: "body", port: "port", lib: "text", node: "text", container: "prefix",
  };
  const FIELD = {
    pid: "pid", uid: "uid", comm: "pname", pname: "pname", method: "method",
    path: "path", "content-type": "content_type", ct: "content_type",
    lib: "tls_library", node: "node", container: "container_id",
  };
  // alias: [key, op] or a fixed predicate for the value-less ones.
  const ALIASES = {
    m: ["method", "="], d: ["host", "="], u: ["path", "~="], c: ["status", "="],
    t: ["content-type", "~="], h: ["header", "~="], b: ["body", "~="],
    pid: ["pid", "="], comm: ["comm", "="],
  };
  const FLAGS = {
    q: (e) => e.type === 1 || e.type === 2,
    s: (e) => e.type === 3 || e.type === 4,
    websocket: (e) => e.type === 5,
    http: (e) => e.type >= 1 && e.type <= 4,
  };
  const OPS = ["!=", "~=", ">=", "<=", "=", ">", "<"];

  // ---- lexer ----
  function lex(src) {
    const toks = [];
    let i = 0;
    const isSpace = (c) => c === " " || c === "\t" || c === "\n" || c === "\r";
    const stop = (c) => isSpace(c) || c === "(" || c === ")" || c === "&" || c === "|";
    while (i < src.length) {
      const c = src[i];
      if (isSpace(c)) { i++; continue; }
      if (c === "(" || c === ")" || c === "&" || c === "|" || (c === "!" && src[i + 1] !== "=")) {
        toks.push({ t: c, pos: i }); i++; continue;
      }
      if (c === '"') {
        const start = i;
        let s = "";
        i++;
        for (;;) {
          if (i >= src.length) throw new FilterError(start, "unterminated quoted string");
          const d = src[i];
          if (d === "\\") {
            const n = src[i + 1];
            if (n !== '"' && n !== "\\") throw new FilterError(i, 'expected \\" or \\\\ after \\');
            s += n; i += 2; continue;
          }
          if (d === '"') { i++; break; }
          s += d; i++;
        }
        toks.push({ t: "str", v: s, pos: start });
        continue;
      }
      // A word runs up to a space or a bracket; an operator inside it is
      // split off so "status>=400" is key, op, value.
      const start = i;
      while (i < src.length && !stop(src[i])) {
        if (src[i] === '"') break;
        i++;
      }
      toks.push({ t: "word", v: src.slice(start, i), pos: start });
    }
    toks.push({ t: "eof", pos: src.length });
    return toks;
  }

  // ---- parser ----
  function parse(src) {
    if (typeof src !== "string") src = "";
    const toks = lex(src);
    let k = 0;
    const peek = () => toks[k];
    const isWord = (tok, w) => tok.t === "word" && tok.v.toLowerCase() === w;

    function parseOr() {
      let left = parseAnd();
      while (peek().t === "|" || isWord(peek(), "or")) {
        k++;
        const right = parseAnd();
        const l = left;
        left = (e) => l(e) || right(e);
      }
      return left;
    }
    function startsNot(tok) {
      return tok.t === "!" || tok.t === "(" || tok.t === "str" ||
        (tok.t === "word" && !isWord(tok, "or") && !isWord(tok, "and"));
    }
    function parseAnd() {
      let left = parseNot();
      for (;;) {
        const tok = peek();
        if (tok.t === "&" || isWord(tok, "and")) {
          k++;
        } else if (!startsNot(tok)) {
          return left;
        }
        const right = parseNot();
        const l = left;
        left = (e) => l(e) && right(e);
      }
    }
    function parseNot() {
      const tok = peek();
      if (tok.t === "!" || isWord(tok, "not")) {
        k++;
        const inner = parseNot();
        return (e) => !inner(e);
      }
      if (tok.t === "(") {
        k++;
        const inner = parseOr();
        if (peek().t !== ")") throw new FilterError(peek().pos, "expected )");
        k++;
        return inner;
      }
      return parseTerm();
    }
    function value() {
      const tok = peek();
      if (tok.t === "word" || tok.t === "str") { k++; return tok; }
      throw new FilterError(tok.pos, "expected a value");
    }
    function parseTerm() {
      const tok = peek();
      if (tok.t !== "word") {
        throw new FilterError(tok.pos, tok.t === "eof" ? "expected a term" : "expected a term, not " + tok.t);
      }
      k++;
      const w = tok.v;
      if (w[0] === "~" && !w.includes("=")) {
        const name = w.slice(1).toLowerCase();
        if (FLAGS[name]) return FLAGS[name];
        const a = ALIASES[name];
        if (!a) throw new FilterError(tok.pos, "unknown alias ~" + w.slice(1));
        const v = value();
        return term(a[0], a[1], v.v, v.pos);
      }
      // key op value, possibly split over several words ("status >= 400").
      let i = 0;
      while (i < w.length && /[A-Za-z0-9_-]/.test(w[i])) i++;
      const key = w.slice(0, i).toLowerCase();
      if (!key) throw new FilterError(tok.pos, "expected a key");
      if (!(key in KEYS)) throw new FilterError(tok.pos, "unknown key " + JSON.stringify(w.slice(0, i)));
      let rest = w.slice(i);
      let restPos = tok.pos + i;
      if (rest === "") {
        const n = peek();
        if (n.t !== "word") throw new FilterError(n.pos, "expected an operator after " + key);
        k++;
        rest = n.v; restPos = n.pos;
      }
      const op = OPS.find((o) => rest.startsWith(o));
      if (!op) throw new FilterError(restPos, "expected an operator (= != ~= > >= < <=)");
      let v = rest.slice(op.length);
      let vpos = restPos + op.length;
      if (v === "") {
        const n = value();
        v = n.v; vpos = n.pos;
      }
      return term(key, op, v, vpos);
    }
    const pred = parseOr();
    if (peek().t !== "eof") throw new FilterError(peek().pos, "expected an operator or the end, not " + JSON.stringify(peek().v || peek().t));
    return pred;
  }

  // ---- matching ----
  function globRe(p, fold) {
    const re = "^" + p.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$";
    return new RegExp(re, fold ? "is" : "s");
  }
  function textMatcher(p, op, fold) {
    if (op === "~=") {
      const q = fold ? p.toLowerCase() : p;
      return (s) => (fold ? s.toLowerCase() : s).includes(q);
    }
    if (p.includes("*")) {
      const re = globRe(p, fold);
      return (s) => re.test(s);
    }
    const q = fold ? p.toLowerCase() : p;
    return (s) => (fold ? s.toLowerCase() : s) === q;
  }
  function splitHost(h) {
    if (h.startsWith("[")) {
      const j = h.indexOf("]");
      if (j > 0) return [h.slice(1, j), h[j + 1] === ":" ? h.slice(j + 2) : ""];
    }
    const i = h.lastIndexOf(":");
    if (i < 0 || h.indexOf(":") !== i) return [h, ""];
    return [h.slice(0, i), h.slice(i + 1)];
  }
  function hostMatcher(p, op, pos) {
    if (op === "~=") return textMatcher(p, op, true);
    if (op !== "=") throw new FilterError(pos, "host takes = != or ~=");
    const [ph, pp] = splitHost(p.toLowerCase());
    const name = ph.startsWith("*.") ? null : textMatcher(ph, "=", true);
    return (h) => {
      if (!h) return false;
      const [hh, hp] = splitHost(h.toLowerCase());
      if (pp && hp !== pp) return false;
      if (ph.startsWith("*.")) {
        const suf = ph.slice(1);
        return hh.length > suf.length && hh.endsWith(suf);
      }
      return name(hh);
    };
  }
  function numCmp(op, n) {
    switch (op) {
      case "=": return (x) => x === n;
      case ">": return (x) => x > n;
      case ">=": return (x) => x >= n;
      case "<": return (x) => x < n;
      case "<=": return (x) => x <= n;
    }
    return null;
  }
  function parseNum(v, pos) {
    if (!/^[0-9]+$/.test(v)) throw new FilterError(pos, "expected a number, not " + JSON.stringify(v));
    return Number(v);
  }
  const dec = typeof TextDecoder !== "undefined" ? new TextDecoder("utf-8", { fatal: false }) : null;
  function payloadText(e) {
    const p = e.payload;
    if (p == null) return "";
    if (typeof p === "string") return p;
    if (e._text === undefined) e._text = dec.decode(p);
    return e._text;
  }
  function splitMessage(e) {
    const s = payloadText(e);
    if (!(e.type >= 1 && e.type <= 4) || e.part === 2) return ["", s];
    let i = s.indexOf("\r\n\r\n");
    let n = 4;
    if (i < 0) { i = s.indexOf("\n\n"); n = 2; }
    if (i < 0) return [s, ""];
    return [s.slice(0, i), s.slice(i + n)];
  }
  // headerLines are cached on the event: a filter over 100,000 rows must
  // not decode and split every payload again on each keystroke.
  function headerLines(e) {
    if (e._hl === undefined) {
      const head = splitMessage(e)[0];
      e._hl = head ? head.split(/\r?\n/).slice(1) : [];
    }
    return e._hl;
  }

  // term builds one key op value predicate; a comma list means any of.
  function term(key, op, raw, pos) {
    const kind = KEYS[key];
    const neg = op === "!=";
    const eop = neg ? "=" : op;
    const cmp = eop === ">" || eop === ">=" || eop === "<" || eop === "<=";
    if (cmp && kind !== "num" && kind !== "status" && kind !== "port") {
      throw new FilterError(pos, op + " needs a numeric key, not " + key);
    }
    if (eop === "~=" && (kind === "num" || kind === "status" || kind === "port" || kind === "type" || kind === "protocol")) {
      throw new FilterError(pos, "~= needs a text key, not " + key);
    }
    const vals = (cmp ? [raw] : raw.split(",")).map((s) => s.trim());
    if (raw === "" || vals.some((s) => s === "")) throw new FilterError(pos, "expected a value");
    const ms = vals.map((v) => one(kind, key, eop, v, pos));
    const p = ms.length === 1 ? ms[0] : (e) => ms.some((m) => m(e));
    return neg ? (e) => !p(e) : p;
  }

  function one(kind, key, op, v, pos) {
    switch (kind) {
      case "num": {
        const c = numCmp(op, parseNum(v, pos));
        const f = FIELD[key];
        return (e) => c(Number(e[f] || 0));
      }
      case "port": {
        const c = numCmp(op, parseNum(v, pos));
        return (e) => c(Number(e.src_port || 0)) || c(Number(e.dst_port || 0));
      }
      case "status": {
        let c;
        const cls = /^([1-5])xx$/i.exec(v);
        const rng = /^([0-9]+)-([0-9]+)$/.exec(v);
        if (op === "=" && cls) {
          const lo = Number(cls[1]) * 100;
          c = (x) => x >= lo && x < lo + 100;
        } else if (op === "=" && rng) {
          const lo = Number(rng[1]), hi = Number(rng[2]);
          c = (x) => x >= lo && x <= hi;
        } else {
          c = numCmp(op, parseNum(v, pos));
        }
        return (e) => !!e.status && c(Number(e.status));
      }
      case "type":
      case "protocol": {
        const table = kind === "type" ? TYPES : PROTOCOLS;
        let set = table[v.toLowerCase()];
        if (!set && kind === "type" && /^[0-5]$/.test(v)) set = [Number(v)];
        if (!set) throw new FilterError(pos, "unknown " + kind + " " + JSON.stringify(v));
        return (e) => set.includes(Number(e.type || 0));
      }
      case "host": {
        const m = hostMatcher(v, op, pos);
        return (e) => m(e.host || "");
      }
      case "text":
      case "ctext": {
        const m = textMatcher(v, op, kind === "text");
        const f = FIELD[key];
        return (e) => {
          const s = e[f];
          return s !== undefined && s !== null && s !== "" && m(String(s));
        };
      }
      case "prefix": {
        const f = FIELD[key];
        if (op === "~=") return (e) => (e[f] || "").includes(v);
        return (e) => !!e[f] && e[f].startsWith(v);
      }
      case "header": {
        if (op === "~=") return (e) => headerLines(e).some((l) => l.includes(v));
        const c = v.indexOf(":");
        if (c < 0) {
          const m = textMatcher(v, "=", false);
          return (e) => headerLines(e).some((l) => m(l));
        }
        const name = v.slice(0, c).trim().toLowerCase();
        const m = textMatcher(v.slice(c + 1).trim(), "=", false);
        return (e) => headerLines(e).some((l) => {
          const j = l.indexOf(":");
          return j > 0 && l.slice(0, j).trim().toLowerCase() === name && m(l.slice(j + 1).trim());
        });
      }
      case "body": {
        const m = textMatcher(v, op, false);
        return (e) => m(splitMessage(e)[1]);
      }
    }
    throw new FilterError(pos, "unknown key " + key);
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

  const api = { parse, compile, FilterError, splitMessage };
  global.TlstapFilter = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
