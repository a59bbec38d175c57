#!/usr/bin/env python3
"""Print tlstap's event stream.

Connects to the streaming server's /ws endpoint over TLS, pins the server's
self-signed certificate by its SHA-256 fingerprint (or, with --insecure,
skips verification), authenticates with the token and prints one line per
event. Every WebSocket message is one protobuf event.LogEntry; the bindings
are generated from proto/event/event.proto into proto/gen/python.

Needs: websocket-client and protobuf (Debian: python3-websocket
python3-protobuf; pip: websocket-client protobuf).
"""

import argparse
import hashlib
import os
import socket
import ssl
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "proto", "gen", "python"))

import websocket  # noqa: E402  (websocket-client)
from event import event_pb2  # noqa: E402

from render import describe  # noqa: E402

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="wss://127.0.0.1:28256/ws", help="stream URL (default %(default)s)")
    p.add_argument("--token", default=os.environ.get("TLSTAP_TOKEN", ""),
                   help="server token (default $TLSTAP_TOKEN)")
    p.add_argument("--token-file", help="read the token from this file (e.g. /var/lib/tlstap/token)")
    p.add_argument("--fingerprint", default=os.environ.get("TLSTAP_FINGERPRINT", ""),
                   help="SHA-256 fingerprint of the server certificate, as tlstap prints it (default $TLSTAP_FINGERPRINT)")
    p.add_argument("--insecure", action="store_true",
                   help="DANGEROUS: accept any server certificate; anyone on the path can read the stream and the token")
    p.add_argument("--pid", action="append", default=[], help="only these process ids (repeatable)")
    p.add_argument("--pname", action="append", default=[], help="only these process names (repeatable)")
    p.add_argument("--type", action="append", default=[],
                   help="only these event types: 0-5 or raw, http1-request, ..., request, response, http, ws (repeatable)")
    p.add_argument("--host", action="append", default=[], help="only this HTTP host, e.g. *.example.com (repeatable)")
    p.add_argument("--port", action="append", default=[], help="only this source or destination port (repeatable)")
    p.add_argument("--no-logs", action="store_true", help="leave out tlstap's own log lines (logs=0)")
    p.add_argument("--replay", action="store_true", help="start with every event the server still retains (since=0)")
    p.add_argument("--since", type=int, help="start after this event sequence number")
    p.add_argument("--count", type=int, default=0, help="exit after this many events")
    p.add_argument("--timeout", type=float, default=0, help="exit with an error if nothing arrives for this many seconds")
    p.add_argument("--payload", action="store_true", help="print whole payloads, not only their first line")
    a = p.parse_args(argv)
    if a.token_file:
        with open(a.token_file) as f:
            a.token = f.read().strip()
    if not a.token:
        p.error("no token: pass --token, --token-file or set TLSTAP_TOKEN")
    if not a.fingerprint and not a.insecure:
        p.error("no --fingerprint: pin the certificate tlstap printed, or pass --insecure")
    return a


def stream_url(a):
    """The URL with the filter query parameters the server understands."""
    u = urllib.parse.urlsplit(a.url)
    q = urllib.parse.parse_qsl(u.query)
    for name in ("pid", "pname", "type", "host", "port"):
        q += [(name, v) for v in getattr(a, name)]
    if a.no_logs:
        q.append(("logs", "0"))
    if a.since is not None:
        q.append(("since", str(a.since)))
    elif a.replay:
        q.append(("since", "0"))
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path or "/ws", urllib.parse.urlencode(q), ""))


def normalize_fingerprint(s):
    s = s.strip().lower()
    for prefix in ("sha256:", "sha256="):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.replace(":", "").replace(" ", "").replace("-", "")


def connect_tls(a, host, port):
    """Open the TLS connection and check the pin before any byte is sent,
    so the token never reaches a server with the wrong certificate."""
    ctx = ssl.create_default_context()
    # Verification is ours: the certificate is self-signed, so there is no
    # CA to check it against; the pin below is stronger.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((host, port), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname=host)
    sock.settimeout(a.timeout or None)  # the connect timeout must not become a read timeout
    der = sock.getpeercert(binary_form=True)
    got = hashlib.sha256(der).hexdigest()
    if a.insecure:
        print("WARNING: --insecure: server certificate NOT verified (sha256 %s)" % got, file=sys.stderr)
    elif got != normalize_fingerprint(a.fingerprint):
        sock.close()
        raise SystemExit("server certificate fingerprint mismatch: got %s, want %s" % (got, normalize_fingerprint(a.fingerprint)))
    return sock


def main(argv):
    a = parse_args(argv)
    url = stream_url(a)
    u = urllib.parse.urlsplit(url)
    if u.scheme != "wss":
        raise SystemExit("this example speaks wss:// only (the server's main listener)")
    port = u.port or 443
    sock = connect_tls(a, u.hostname, port)
    try:
        ws = websocket.create_connection(
            url, socket=sock, header=["Authorization: Bearer " + a.token], timeout=a.timeout or None,
            suppress_origin=True)  # not a browser: send no Origin (its default Origin is accepted too)
    except websocket.WebSocketBadStatusException as e:
        raise SystemExit("server refused the connection: %s" % e)
    seen = 0
    try:
        while True:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                raise SystemExit("no message for %g s" % a.timeout)
            if opcode != websocket.ABNF.OPCODE_BINARY:
                continue
            entry = event_pb2.LogEntry()
            entry.ParseFromString(data)
            kind = entry.WhichOneof("payload")
            if kind == "event_payload":
                print(describe(entry.event_payload, a.payload), flush=True)
                seen += 1
                if a.count and seen >= a.count:
                    return 0
            elif kind == "run_log":
                print("log: " + entry.run_log, flush=True)
            # Heartbeats (every 15 s) only show the connection is alive.
    except KeyboardInterrupt:
        return 130
    except websocket.WebSocketConnectionClosedException:
        print("server closed the connection", file=sys.stderr)
        return 1
    finally:
        ws.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
