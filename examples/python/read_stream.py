#!/usr/bin/env python3
"""Read the stream tlstap's push sinks write (--eventaddr).

TCP and file sinks in the protobuf format write event.LogEntry messages,
each preceded by its length as a protobuf varint (the framing of
protodelim, writeDelimitedTo and _VarintBytes). This reads such a stream
from a file, or listens for tlstap's TCP sink and reads what it pushes:

    read_stream.py events.pb
    read_stream.py --listen 127.0.0.1:9000    # tlstap ... --eventaddr tcp://127.0.0.1:9000

Needs protobuf (Debian: python3-protobuf).
"""

import argparse
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "proto", "gen", "python"))

from event import event_pb2  # noqa: E402

from render import describe  # noqa: E402

MAX_FRAME = 64 << 20  # the Go reader's default limit


class StreamError(Exception):
    pass


def read_exact(f, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise StreamError("stream ended inside a frame")
        buf += chunk
    return bytes(buf)


def frames(f):
    """Yield each frame's bytes; stop at a clean end of stream."""
    while True:
        n, shift = 0, 0
        while True:
            b = f.read(1)
            if not b:
                if shift:
                    raise StreamError("stream ended inside a length prefix")
                return
            n |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                break
            shift += 7
            if shift > 63:
                raise StreamError("length prefix too long")
        if n > MAX_FRAME:
            raise StreamError("frame of %d bytes exceeds %d" % (n, MAX_FRAME))
        yield read_exact(f, n)


def dump(f, a, seen):
    """Print f's entries; True once --count events have been printed.
    seen is a one-element list, the count so far across connections."""
    for frame in frames(f):
        entry = event_pb2.LogEntry()
        entry.ParseFromString(frame)
        kind = entry.WhichOneof("payload")
        if kind == "event_payload":
            print(describe(entry.event_payload, a.payload), flush=True)
            seen[0] += 1
            if a.count and seen[0] >= a.count:
                return True
        elif kind == "run_log" and not a.no_logs:
            print("log: " + entry.run_log, flush=True)
    return False


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", nargs="?", help="a file written by a file sink")
    p.add_argument("--listen", metavar="HOST:PORT", help="accept tlstap's TCP sink here instead (one connection after another)")
    p.add_argument("--count", type=int, default=0, help="exit after this many events")
    p.add_argument("--no-logs", action="store_true", help="leave out tlstap's own log lines")
    p.add_argument("--payload", action="store_true", help="print whole payloads, not only their first line")
    a = p.parse_args(argv)
    if bool(a.file) == bool(a.listen):
        p.error("give a file or --listen, not both")
    seen = [0]
    try:
        if a.file:
            with open(a.file, "rb") as f:
                dump(f, a, seen)
            return 0
        host, port = a.listen.rsplit(":", 1)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as ln:
            ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ln.bind((host.strip("[]"), int(port)))
            ln.listen(1)
            while True:
                # tlstap reconnects after a failure; take the next connection.
                conn, _ = ln.accept()
                with conn, conn.makefile("rb") as f:
                    if dump(f, a, seen):
                        return 0
    except StreamError as e:
        print("bad stream: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
