"""Formatting shared by watch.py and read_stream.py: one header line per
event, then the first line of its payload (or all of it)."""

TYPE_NAMES = ["raw", "http1-request", "http2-request", "http1-response", "http2-response", "websocket"]


def endpoint(ip, port):
    if not ip:
        return "?"
    return "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)


def describe(ev, whole):
    kind = TYPE_NAMES[ev.type] if ev.type < len(TYPE_NAMES) else "unknown"
    line = "#%d %s %s[%d] %s -> %s len=%d" % (
        ev.seq, kind, ev.pname, ev.pid, endpoint(ev.src_ip, ev.src_port), endpoint(ev.dst_ip, ev.dst_port), ev.length)
    if ev.host:
        line += " host=%s" % ev.host
    if ev.status:
        line += " status=%d" % ev.status
    if ev.request_seq:
        line += " request=#%d" % ev.request_seq
    text = ev.payload.decode("utf-8", "replace")
    if whole:
        return line + "\n" + text
    first = text.split("\r\n", 1)[0].split("\n", 1)[0]
    printable = first.isprintable()
    return line + "\n  " + (first if printable and ev.type != 0 else "(%d bytes)" % len(ev.payload))
