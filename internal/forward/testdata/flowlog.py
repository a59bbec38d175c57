"""mitmproxy addon: append one JSON line per completed flow to $FLOWLOG.

Used by the proxy-mode tests (forward and internal/e2e), with mitmdump standing in for Burp Suite.
"""
import base64
import json
import os

from mitmproxy import http


class FlowLog:
    def __init__(self):
        self.path = os.environ["FLOWLOG"]

    def response(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        rec = {
            "method": req.method,
            "url": req.pretty_url,
            "scheme": req.scheme,
            "host": req.host,
            "port": req.port,
            "path": req.path,
            "http_version": req.http_version,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in req.headers.fields],
            "body": base64.b64encode(req.raw_content or b"").decode(),
            "status": flow.response.status_code,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")


addons = [FlowLog()]
