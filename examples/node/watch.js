#!/usr/bin/env node
// Print tlstap's event stream.
//
// Connects to the streaming server's /ws endpoint over TLS, pins the
// server's self-signed certificate by its SHA-256 fingerprint (or, with
// --insecure, skips verification), authenticates with the token and prints
// one line per event. Every WebSocket message is one protobuf
// event.LogEntry, decoded with the bindings in gen/ (generated from
// proto/event/event.proto by protoc-gen-es: npm run generate).

import { readFileSync } from "node:fs";
import tls from "node:tls";
import { parseArgs } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { LogEntrySchema } from "./gen/event/event_pb.js";

const TYPE_NAMES = ["raw", "http1-request", "http2-request", "http1-response", "http2-response", "websocket"];

const usage = `usage: node watch.js [options]
  --url URL            stream URL (default wss://127.0.0.1:28256/ws)
  --token TOKEN        server token (default $TLSTAP_TOKEN)
  --token-file FILE    read the token from FILE (e.g. /var/lib/tlstap/token)
  --fingerprint FP     SHA-256 fingerprint of the server certificate, as tlstap
                       prints it (default $TLSTAP_FINGERPRINT)
  --insecure           DANGEROUS: accept any server certificate; anyone on the
                       path can read the stream and the token
  --pid N, --pname NAME, --type T, --host H, --port N
                       server-side filters (repeatable)
  --no-logs            leave out tlstap's own log lines (logs=0)
  --replay             start with every event the server still retains (since=0)
  --since N            start after event sequence number N
  --count N            exit after N events
  --timeout SECONDS    exit with an error if nothing arrives for that long
  --payload            print whole payloads, not only their first line`;

function die(msg) {
  console.error(`watch: ${msg}`);
  process.exit(1);
}

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string", default: "wss://127.0.0.1:28256/ws" },
        token: { type: "string", default: process.env.TLSTAP_TOKEN ?? "" },
        "token-file": { type: "string" },
        fingerprint: { type: "string", default: process.env.TLSTAP_FINGERPRINT ?? "" },
        insecure: { type: "boolean", default: false },
        pid: { type: "string", multiple: true, default: [] },
        pname: { type: "string", multiple: true, default: [] },
        type: { type: "string", multiple: true, default: [] },
        host: { type: "string", multiple: true, default: [] },
        port: { type: "string", multiple: true, default: [] },
        "no-logs": { type: "boolean", default: false },
        replay: { type: "boolean", default: false },
        since: { type: "string" },
        count: { type: "string", default: "0" },
        timeout: { type: "string", default: "0" },
        payload: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    die(`${e.message}\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  if (values["token-file"]) values.token = readFileSync(values["token-file"], "utf8").trim();
  if (!values.token) die("no token: pass --token, --token-file or set TLSTAP_TOKEN");
  if (!values.fingerprint && !values.insecure) die("no --fingerprint: pin the certificate tlstap printed, or pass --insecure");
  return values;
}

function streamURL(a) {
  const u = new URL(a.url);
  if (u.protocol !== "wss:") die("this example speaks wss:// only (the server's main listener)");
  for (const name of ["pid", "pname", "type", "host", "port"]) for (const v of a[name]) u.searchParams.append(name, v);
  if (a["no-logs"]) u.searchParams.set("logs", "0");
  if (a.since !== undefined) u.searchParams.set("since", a.since);
  else if (a.replay) u.searchParams.set("since", "0");
  return u;
}

const normalize = (fp) => fp.trim().toLowerCase().replace(/^sha256[:=]/, "").replace(/[: -]/g, "");

// probe fetches the server's certificate without sending anything, so the
// pin can be checked before the token leaves this process.
function probe(u) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port || 443), rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => {
      const cert = s.getPeerCertificate();
      s.end();
      resolve(cert);
    });
    s.on("error", reject);
  });
}

const pem = (der) => `-----BEGIN CERTIFICATE-----\n${der.toString("base64").match(/.{1,64}/g).join("\n")}\n-----END CERTIFICATE-----\n`;

function endpoint(ip, port) {
  if (!ip) return "?";
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function isPrintable(s) {
  return !/[\p{C}]/u.test(s);
}

function describe(ev, whole) {
  const kind = TYPE_NAMES[ev.type] ?? "unknown";
  let line = `#${ev.seq} ${kind} ${ev.pname}[${ev.pid}] ${endpoint(ev.srcIp, ev.srcPort)} -> ${endpoint(ev.dstIp, ev.dstPort)} len=${ev.length}`;
  if (ev.host) line += ` host=${ev.host}`;
  if (ev.status) line += ` status=${ev.status}`;
  if (ev.requestSeq) line += ` request=#${ev.requestSeq}`;
  const text = new TextDecoder().decode(ev.payload);
  if (whole) return `${line}\n${text}`;
  let first = text.split("\n", 1)[0].replace(/\r$/, "");
  if (ev.type === 0 || !isPrintable(first)) first = `(${ev.payload.length} bytes)`;
  return `${line}\n  ${first}`;
}

async function main() {
  const a = parse();
  const u = streamURL(a);
  const count = Number(a.count);
  const timeout = Number(a.timeout) * 1000;

  const cert = await probe(u).catch((e) => die(`connect: ${e.message}`));
  const got = cert.fingerprint256.replace(/:/g, "").toLowerCase();
  const tlsOpts = {};
  if (a.insecure) {
    console.error(`WARNING: --insecure: server certificate NOT verified (sha256 ${got})`);
    tlsOpts.rejectUnauthorized = false;
  } else {
    if (got !== normalize(a.fingerprint)) die(`server certificate fingerprint mismatch: got ${got}, want ${normalize(a.fingerprint)}`);
    // Trust exactly the pinned certificate for the real connection, and
    // check the fingerprint again in case the server changed in between.
    tlsOpts.ca = [pem(cert.raw)];
    tlsOpts.checkServerIdentity = (_host, c) =>
      c.fingerprint256.replace(/:/g, "").toLowerCase() === got ? undefined : new Error("server certificate changed");
  }

  const ws = new WebSocket(u, { headers: { Authorization: `Bearer ${a.token}` }, perMessageDeflate: false, ...tlsOpts });
  let seen = 0;
  let timer;
  const arm = () => {
    if (!timeout) return;
    clearTimeout(timer);
    timer = setTimeout(() => die(`no message for ${a.timeout} s`), timeout);
  };
  arm();
  ws.on("unexpected-response", (_req, res) => die(`server refused the connection: ${res.statusCode} ${res.statusMessage}`));
  ws.on("error", (e) => die(e.message));
  ws.on("close", () => {
    clearTimeout(timer);
    if (!count || seen < count) die("server closed the connection");
  });
  ws.on("message", (data, isBinary) => {
    arm();
    if (!isBinary || (count && seen >= count)) return;
    const entry = fromBinary(LogEntrySchema, data);
    switch (entry.payload.case) {
      case "eventPayload":
        console.log(describe(entry.payload.value, a.payload));
        if (count && ++seen >= count) {
          clearTimeout(timer);
          ws.close();
        }
        break;
      case "runLog":
        console.log(`log: ${entry.payload.value}`);
        break;
      // Heartbeats (every 15 s) only show the connection is alive.
    }
  });
}

main();
