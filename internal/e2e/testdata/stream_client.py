#!/usr/bin/env python3
"""A stream client as a user would write it: websocket-client over OpenSSL.

Prints one JSON line per event received, until killed.
Usage: stream_client.py URL   (URL carries ?token=...)
"""
import base64
import json
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto", "gen", "python"))

import websocket  # noqa: E402
from event import event_pb2  # noqa: E402

# Default options but for the self-signed certificate. Debian's
# websocket-client 1.2.3 sends "Origin: http://HOST:PORT" even for wss://;
# the listener takes its own host:port as same-origin under either scheme.
ws = websocket.create_connection(sys.argv[1], sslopt={"cert_reqs": ssl.CERT_NONE})
print(json.dumps({"connected": True}), flush=True)
while True:
    msg = ws.recv()
    entry = event_pb2.LogEntry()
    entry.ParseFromString(msg if isinstance(msg, bytes) else msg.encode())
    if entry.WhichOneof("payload") == "event_payload":
        ev = entry.event_payload
        print(json.dumps({"pid": ev.pid, "pname": ev.pname, "src_port": ev.src_port, "dst_port": ev.dst_port,
                          "type": ev.type, "payload": base64.b64encode(ev.payload).decode()}), flush=True)
    elif entry.WhichOneof("payload") == "run_log":
        print(json.dumps({"log": entry.run_log}), flush=True)
