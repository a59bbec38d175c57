// worker.js: the stream, off the page's main thread. It holds the
// WebSocket, decodes each binary message (proto.js) and posts what
// arrived to the page in batches, at most one every BATCH_MS, so the page
// pairs and draws once per batch instead of once per event. Payload
// buffers are transferred, not copied.
//
// page -> worker: {op: "connect", url, gen}; {op: "drop"} (close the
// socket as a dropped connection would); {op: "close"}.
// worker -> page: {op: "open", gen}; {op: "batch", gen, entries}
// (decoded LogEntries, in stream order); {op: "closed", gen, opened}.
"use strict";
importScripts("/ui/proto.js");
const { decodeEntry } = self.TlstapProto;

const BATCH_MS = 16;
// A batch is posted early when it has this many entries.
const BATCH_MAX = 4096;

let ws = null, gen = 0, batch = [], transfer = [], timer = 0, bad = 0;

function flush() {
  clearTimeout(timer);
  timer = 0;
  if (!batch.length) return;
  self.postMessage({ op: "batch", gen, entries: batch, bad }, transfer);
  batch = []; transfer = []; bad = 0;
}

function open(url, g) {
  if (ws) { ws.onclose = null; ws.onmessage = null; ws.close(); }
  flush();
  gen = g;
  let opened = false;
  const sock = new WebSocket(url);
  sock.binaryType = "arraybuffer";
  ws = sock;
  sock.onopen = () => { opened = true; self.postMessage({ op: "open", gen: g }); };
  sock.onmessage = (m) => {
    let e;
    try { e = decodeEntry(m.data); } catch (err) { bad++; return; }
    batch.push(e);
    if (e.event && e.event.payload && e.event.payload.byteLength) transfer.push(e.event.payload.buffer);
    if (batch.length >= BATCH_MAX) flush();
    else if (!timer) timer = setTimeout(flush, BATCH_MS);
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    flush();
    ws = null;
    self.postMessage({ op: "closed", gen: g, opened });
  };
}

self.onmessage = (m) => {
  const d = m.data;
  switch (d.op) {
    case "connect": open(d.url, d.gen); break;
    case "drop": if (ws) ws.close(); break;
    case "close":
      if (ws) { ws.onclose = null; ws.close(); ws = null; }
      flush();
      break;
  }
};
