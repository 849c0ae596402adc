"""A small AWS-aware HTTP proxy for the end-to-end tests, on loopback only.

It sits between imdsguard and moto and:
  * counts every request by (service, region, action), so tests can assert
    how many calls a command makes, and logs every request it forwarded to
    moto (`forwarded`: what reached "EC2", whatever the client heard);
  * injects faults: a test passes a function that may answer a request
    itself (an AWS error, a throttle) instead of forwarding it, and one
    that may replace moto's answer after forwarding (an answer lost after
    EC2 acted: a 500, or a connection closed without a reply, DROP);
  * can add latency per call;
  * with cbor_shim=True, translates Smithy RPC-v2 CBOR requests (what
    aws-sdk-cloudwatch >= 1.100 speaks) into the JSON protocol moto
    understands, and the replies back. moto 5.2.5 answers CBOR with a 404.

Service and region come from the SigV4 credential scope in the
Authorization header; the action from the form body (query protocols), the
X-Amz-Target header (JSON protocols) or the path (RPC v2 CBOR).
"""

from __future__ import annotations

import base64
import collections
import datetime
import http.client
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

import cbor2

# Wire-format pieces shared with bench/fakeaws.py live in awsproto.py;
# SCOPE is re-exported so that `from awsproxy import SCOPE` keeps working.
from awsproto import SCOPE, cbor_timestamp, credential_scope, ec2_error_xml, epoch_seconds, query_error_xml


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes
    service: str
    region: str
    action: str
    params: dict = field(default_factory=dict)
    access_key: str = ""


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)


Fault = Callable[[Request], Optional[Reply]]
After = Callable[[Request, Reply], Optional[Reply]]

# An `after` hook's answer that closes the connection without any reply.
DROP = Reply(0, b"")


def parse(method: str, path: str, headers: dict, body: bytes) -> Request:
    access_key, region, service = credential_scope(headers.get("authorization", ""))
    action = ""
    params: dict = {}
    target = headers.get("x-amz-target")
    if target:
        action = target.rsplit(".", 1)[-1]
    elif "/operation/" in path:
        action = path.rsplit("/operation/", 1)[-1]
    elif body and "x-www-form-urlencoded" in headers.get("content-type", ""):
        params = dict(urllib.parse.parse_qsl(body.decode()))
        action = params.get("Action", "")
    return Request(method, path, headers, body, service, region, action, params, access_key)


def ec2_error(code: str, message: str, status: int = 400) -> Reply:
    """An error in EC2's query-protocol shape."""
    return Reply(status, ec2_error_xml(code, message, "proxy-req-1"), {"Content-Type": "text/xml"})


def query_error(code: str, message: str, status: int = 403) -> Reply:
    """An error in the awsQuery shape used by STS and IAM."""
    body = query_error_xml(code, message, "proxy-req-2", xmlns="https://sts.amazonaws.com/doc/2011-06-15/")
    return Reply(status, body, {"Content-Type": "text/xml"})


RPCV2_PATH = re.compile(r"^/service/([^/]+)/operation/([^/?]+)")
TIMESTAMP_KEYS = {"Timestamp", "Timestamps", "StartTime", "EndTime"}


def jsonable(x):
    """CBOR-decoded values to the JSON protocol's: timestamps become epoch seconds."""
    if isinstance(x, datetime.datetime):
        return epoch_seconds(x)
    if isinstance(x, cbor2.CBORTag):
        return jsonable(x.value)
    if isinstance(x, bytes):
        return base64.b64encode(x).decode()
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [jsonable(v) for v in x]
    return x


def cborable(x, key: str = ""):
    """JSON-protocol values to RPC-v2 CBOR's: timestamps are tag 1, doubles are floats."""
    if isinstance(x, dict):
        return {k: cborable(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [cborable(v, key) for v in x]
    if key in TIMESTAMP_KEYS and isinstance(x, (int, float)):
        return cbor_timestamp(x)
    if key == "Values" and isinstance(x, (int, float)):
        return float(x)
    return x


class AwsProxy:
    def __init__(
        self,
        upstream: str,
        fault: Optional[Fault] = None,
        latency: float = 0.0,
        cbor_shim: bool = False,
        after: Optional[After] = None,
    ):
        self.cbor_shim = cbor_shim
        self.cbor_calls = 0
        url = urllib.parse.urlparse(upstream)
        self.upstream_host = url.hostname
        self.upstream_port = url.port
        self.fault = fault
        self.after = after
        self.latency = latency
        # Requests forwarded to moto (they took effect there), and how many
        # are between arriving and being answered.
        self.forwarded: list[Request] = []
        self.in_progress = 0
        self.calls: collections.Counter = collections.Counter()
        self.log: list[Request] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def handle_any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = parse(self.command, self.path, headers, body)
                with proxy.lock:
                    proxy.calls[(req.service, req.region, req.action)] += 1
                    proxy.log.append(req)
                    proxy.in_progress += 1
                try:
                    if proxy.latency:
                        time.sleep(proxy.latency)
                    reply = proxy.fault(req) if proxy.fault else None
                    if reply is None:
                        reply = proxy.forward(req)
                        with proxy.lock:
                            proxy.forwarded.append(req)
                        if proxy.after:
                            reply = proxy.after(req, reply) or reply
                finally:
                    with proxy.lock:
                        proxy.in_progress -= 1
                if reply is DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, req: Request) -> Reply:
        m = RPCV2_PATH.match(req.path)
        if self.cbor_shim and m and "cbor" in req.headers.get("content-type", ""):
            with self.lock:
                self.cbor_calls += 1
            return self.forward_cbor(req, f"{m.group(1)}.{m.group(2)}")
        return self.send_upstream(req.method, req.path, req.headers, req.body)

    def forward_cbor(self, req: Request, target: str) -> Reply:
        data = cbor2.loads(req.body) if req.body else {}
        headers = {
            k: v
            for k, v in req.headers.items()
            if k not in ("smithy-protocol", "content-type", "accept", "content-length", "host")
        }
        headers["content-type"] = "application/x-amz-json-1.0"
        headers["x-amz-target"] = target
        upstream = self.send_upstream("POST", "/", headers, json.dumps(jsonable(data)).encode())
        try:
            payload = json.loads(upstream.body) if upstream.body else {}
        except ValueError:
            return upstream  # not JSON (an emulator error page): pass it on as is
        out_headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
        for k, v in upstream.headers.items():
            if k.lower() in ("x-amzn-requestid", "x-amz-request-id"):
                out_headers[k] = v
        return Reply(upstream.status, cbor2.dumps(cborable(payload)), out_headers)

    def send_upstream(self, method: str, path: str, headers: dict, body: bytes) -> Reply:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        headers = {k: v for k, v in headers.items() if k not in ("host", "content-length")}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return Reply(resp.status, body, dict(resp.getheaders()))

    def count(self, action: str, service: Optional[str] = None, region: Optional[str] = None) -> int:
        with self.lock:
            return sum(
                n
                for (s, r, a), n in self.calls.items()
                if a == action and (service is None or s == service) and (region is None or r == region)
            )

    def forwarded_ids(self, action: str = "ModifyInstanceMetadataOptions", dry_run: bool = False) -> list[str]:
        """InstanceId of every `action` request that reached moto, in order."""
        with self.lock:
            return [
                q.params.get("InstanceId", "")
                for q in self.forwarded
                if q.action == action and (q.params.get("DryRun") == "true") == dry_run
            ]

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Waits until no request is between arriving and being answered."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if self.in_progress == 0:
                    return
            time.sleep(0.02)
        raise AssertionError("the proxy still has requests in progress")

    def total(self) -> int:
        with self.lock:
            return sum(self.calls.values())

    def __enter__(self) -> "AwsProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
