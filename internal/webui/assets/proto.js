// proto.js: decodes the stream's binary messages, one marshaled
// event.LogEntry each (proto/event/event.proto), without a protobuf
// library. 64-bit integers become Numbers: exact up to 2^53, which covers
// sequence numbers and ports, and nanosecond timestamps to within a
// microsecond.
(function (global) {
  "use strict";

  const EVENT_FIELDS = {
    1: ["timestamp", "i64"], 2: ["uuid", "str"], 3: ["src_ip", "str"], 4: ["src_port", "u"],
    5: ["dst_ip", "str"], 6: ["dst_port", "u"], 7: ["pid", "i64"], 8: ["pname", "str"],
    9: ["type", "u"], 10: ["length", "u"], 11: ["payload", "bytes"], 12: ["tid", "i64"],
    13: ["fd", "u"], 14: ["version", "u"], 15: ["data_type", "u"], 16: ["seq", "u"],
    17: ["conn_id", "u"], 18: ["stream_id", "u"], 19: ["request_seq", "u"], 20: ["latency_ns", "i64"],
    21: ["truncated", "bool"], 22: ["transfer_encoding", "str"], 23: ["content_encoding", "str"],
    24: ["uid", "u"], 25: ["incomplete", "bool"], 26: ["ws_opcode", "u"], 27: ["ws_close_code", "u"],
    28: ["host", "str"], 29: ["original_length", "u"], 30: ["method", "str"], 31: ["path", "str"],
    32: ["status", "u"], 33: ["content_type", "str"], 34: ["tls_library", "str"], 35: ["part", "u"],
    36: ["part_index", "u"], 37: ["body_offset", "u"], 38: ["message_seq", "u"],
    39: ["part_continued", "bool"], 40: ["sse_event", "str"], 41: ["sse_id", "str"],
    42: ["sse_data", "str"], 43: ["grpc_compressed", "bool"], 44: ["grpc_length", "u"],
    45: ["grpc_status", "u"], 46: ["grpc_message", "str"], 50: ["node", "str"],
    51: ["container_id", "str"], 52: ["cgroup_id", "u"], 53: ["pod_name", "str"], 54: ["pod_namespace", "str"],
  };
  const HEARTBEAT_FIELDS = { 1: ["timestamp", "i64"], 2: ["count", "i64"], 3: ["message", "str"], 4: ["last_seq", "u"] };
  const utf8 = new TextDecoder("utf-8");

  class Reader {
    constructor(buf, start, end) { this.b = buf; this.i = start; this.end = end; }
    varint() {
      let lo = 0, mul = 1, n = 0;
      for (;;) {
        if (this.i >= this.end) throw new Error("truncated varint");
        const c = this.b[this.i++];
        lo += (c & 0x7f) * mul;
        mul *= 128;
        if (!(c & 0x80)) break;
        if (++n > 9) throw new Error("varint too long");
      }
      return lo;
    }
    // varint64 keeps the sign of two's-complement negatives (int64).
    signed() {
      const start = this.i;
      const v = this.varint();
      if (this.i - start === 10 && v >= 2 ** 63) return v - 2 ** 64;
      return v;
    }
    bytes() {
      const n = this.varint();
      if (n > this.end - this.i) throw new Error("truncated field");
      const s = this.b.subarray(this.i, this.i + n);
      this.i += n;
      return s;
    }
    skip(wt) {
      switch (wt) {
        case 0: this.varint(); return;
        case 1: this.i += 8; break;
        case 2: this.bytes(); return;
        case 5: this.i += 4; break;
        default: throw new Error("wire type " + wt);
      }
      if (this.i > this.end) throw new Error("truncated field");
    }
  }

  function decodeMsg(buf, fields) {
    const r = new Reader(buf, 0, buf.length);
    const out = {};
    while (r.i < r.end) {
      const key = r.varint();
      const num = Math.floor(key / 8), wt = key & 7;
      const f = fields[num];
      if (!f) { r.skip(wt); continue; }
      const [name, kind] = f;
      if ((kind === "str" || kind === "bytes") !== (wt === 2)) { r.skip(wt); continue; }
      switch (kind) {
        case "str": out[name] = utf8.decode(r.bytes()); break;
        case "bytes": out[name] = r.bytes().slice(); break;
        case "bool": out[name] = r.varint() !== 0; break;
        case "i64": out[name] = r.signed(); break;
        default: out[name] = r.varint();
      }
    }
    return out;
  }

  // decodeEntry returns {log_type, event?, heartbeat?, run_log?}.
  function decodeEntry(ab) {
    const buf = ab instanceof Uint8Array ? ab : new Uint8Array(ab);
    const r = new Reader(buf, 0, buf.length);
    const m = { log_type: 0 };
    while (r.i < r.end) {
      const key = r.varint();
      const num = Math.floor(key / 8), wt = key & 7;
      if (num === 1 && wt === 0) m.log_type = r.varint();
      else if (num === 2 && wt === 2) m.event = decodeMsg(r.bytes(), EVENT_FIELDS);
      else if (num === 3 && wt === 2) m.heartbeat = decodeMsg(r.bytes(), HEARTBEAT_FIELDS);
      else if (num === 4 && wt === 2) m.run_log = utf8.decode(r.bytes());
      else r.skip(wt);
    }
    return m;
  }

  const api = { decodeEntry };
  global.TlstapProto = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
