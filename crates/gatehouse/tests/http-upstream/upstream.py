#!/usr/bin/env python3
"""Test upstream for Gatehouse's HTTP adapter end-to-end tests.

This is a real HTTP/1.1 server (Python stdlib only, ThreadingHTTPServer) that
stands in for a user's REST API behind the gateway. The Rust tests in
crates/gatehouse/tests/ start it as a child process, wait for the ready file,
then drive the gateway with curl and check what reached (and came back from)
this upstream. Nothing here is part of the gateway itself.

Usage:
    python3 upstream.py --port 0 --ready-file PATH
        [--require-bearer TOKEN] [--require-header NAME:VALUE]
        [--require-basic USER:PASS]

It binds 127.0.0.1:PORT (0 = any free port) and, once listening, writes the
bound port number followed by a newline to PATH atomically (tmp + rename).
Each --require-* option names a credential that every request must carry
exactly (all given options must match); otherwise the response is
401 {"error":"upstream: missing or wrong credential"}. This lets the tests
prove the gateway adds its upstream credential.

Endpoints (JSON unless noted; every response has "X-Upstream: yes"):
    GET  /echo, ANY /echo/...     method, raw path, lowercased headers, body
    GET  /customers               two customers with emails, SSNs, card numbers
    GET  /big?n=N                 JSON array of N objects, chunked, streamed
    GET  /gzip                    /customers body, Content-Encoding: gzip always
    GET  /redirect                302 to http://127.0.0.1:1/elsewhere
    GET  /events                  text/event-stream, 3 events 100 ms apart
    GET  /text                    text/plain with an email and a card number
    GET  /binary                  application/octet-stream, bytes 0..255
    POST /invoices                201 echo of the parsed JSON body
    PUT|PATCH|DELETE /invoices/<id>  200 echo of the parsed JSON body
    GET  /admin, /admin/...       {"admin":true,"path":...}
    GET  /slow?ms=N               sleeps N ms, then {"slept":N}
    GET  /status/<code>           responds with that status (200..599)
    GET  /leak-credential         echoes the Authorization header it received
    anything else                 404 {"error":"not found","path":...}
HEAD is handled like GET without a body. Set UPSTREAM_LOG=1 to log requests
to stderr. SIGTERM/SIGINT exit cleanly with status 0.
"""

import argparse
import base64
import gzip
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CUSTOMERS = {
    "customers": [
        {
            "id": 1,
            "name": "Ada",
            "email": "ada@example.com",
            "ssn": "123-45-6789",
            "card": "4111 1111 1111 1111",
            "notes": "call 4111111111111111",
        },
        {
            "id": 2,
            "name": "Bob",
            "email": "bob@example.org",
            "ssn": "987-65-4320",
            "card": "5500 0000 0000 0004",
            "notes": "none",
        },
    ]
}

BIG_MAX = 10_000_000
BIG_BATCH = 1000
SLOW_MAX_MS = 600_000
PAD = "x" * 100
TEXT_BODY = b"contact ada@example.com or card 4111 1111 1111 1111\n"
LOG = os.environ.get("UPSTREAM_LOG") == "1"
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gatehouse-test-upstream/1"
    # Set by main(): list of (header_name, exact_value) that must all match.
    required = []

    # ---- plumbing -------------------------------------------------------

    def log_message(self, fmt, *args):
        if LOG:
            sys.stderr.write("upstream: %s %s\n" % (self.address_string(), fmt % args))

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except DISCONNECTS:
            self.close_connection = True

    def handle(self):
        try:
            super().handle()
        except DISCONNECTS:
            pass

    def finish(self):
        try:
            super().finish()
        except DISCONNECTS:
            pass

    def send_error(self, code, message=None, explain=None):
        # Used by the stdlib for malformed requests / unsupported methods.
        self.close_connection = True
        body = dumps({"error": message or self.responses.get(code, ("error",))[0], "status": code})
        try:
            self.send_response(code, message)
            self.send_header("X-Upstream", "yes")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except DISCONNECTS:
            pass

    def read_body(self):
        """Read the request body (Content-Length or chunked) so keep-alive stays in sync."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionResetError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # Trailers, up to the blank line.
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after chunk data
            return b"".join(parts)
        length = self.headers.get("Content-Length")
        if length:
            n = int(length)
            return self.rfile.read(n) if n > 0 else b""
        return b""

    def send_bytes(self, status, body, content_type="application/json", extra=None):
        self.send_response(status)
        self.send_header("X-Upstream", "yes")
        if status not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def send_json(self, status, obj, extra=None):
        self.send_bytes(status, dumps(obj), "application/json", extra)

    def start_stream(self, status, content_type, extra=None):
        """Begin a streamed body: chunked for HTTP/1.1, close-delimited for HTTP/1.0.

        Returns a write(bytes) function; call it with b"" to finish the body.
        """
        chunked = self.request_version != "HTTP/1.0"
        self.send_response(status)
        self.send_header("X-Upstream", "yes")
        self.send_header("Content-Type", content_type)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        head = self.command == "HEAD"

        def write(data):
            if head:
                return
            if chunked:
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(b"0\r\n\r\n")
            elif data:
                self.wfile.write(data)
            self.wfile.flush()

        return write

    # ---- dispatch -------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def credential_ok(self):
        for name, value in self.required:
            if self.headers.get(name) != value:
                return False
        return True

    def dispatch(self):
        try:
            body = self.read_body()
        except ValueError:
            self.send_error(400, "bad request body framing")
            return
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query)
        method = self.command
        get = method in ("GET", "HEAD")

        if not self.credential_ok():
            self.send_json(401, {"error": "upstream: missing or wrong credential"})
            return

        if path == "/echo" or path.startswith("/echo/"):
            headers = {}
            for k, v in self.headers.items():
                k = k.lower()
                headers[k] = headers[k] + ", " + v if k in headers else v
            self.send_json(200, {
                "method": method,
                "path": self.path,
                "headers": headers,
                "body": body.decode("utf-8", errors="replace"),
            })
        elif get and path == "/customers":
            self.send_json(200, CUSTOMERS)
        elif get and path == "/big":
            self.big(query)
        elif get and path == "/gzip":
            self.send_bytes(200, gzip.compress(dumps(CUSTOMERS)), "application/json",
                            {"Content-Encoding": "gzip"})
        elif get and path == "/redirect":
            loc = "http://127.0.0.1:1/elsewhere"
            self.send_json(302, {"redirect": loc}, {"Location": loc})
        elif get and path == "/events":
            self.events()
        elif get and path == "/text":
            self.send_bytes(200, TEXT_BODY, "text/plain; charset=utf-8")
        elif get and path == "/binary":
            self.send_bytes(200, bytes(range(256)), "application/octet-stream")
        elif (method == "POST" and path == "/invoices") or (
            method in ("PUT", "PATCH", "DELETE")
            and path.startswith("/invoices/") and len(path) > len("/invoices/")
        ):
            try:
                parsed = json.loads(body) if body.strip() else None
            except ValueError:
                parsed = None
            self.send_json(201 if method == "POST" else 200,
                           {"ok": True, "method": method, "path": self.path, "body": parsed})
        elif get and (path == "/admin" or path.startswith("/admin/")):
            self.send_json(200, {"admin": True, "path": self.path})
        elif get and path == "/slow":
            ms = self.int_param(query, "ms", 0, SLOW_MAX_MS)
            if ms is None:
                return
            time.sleep(ms / 1000.0)
            self.send_json(200, {"slept": ms})
        elif get and path.startswith("/status/"):
            try:
                code = int(path[len("/status/"):])
            except ValueError:
                code = -1
            if not 200 <= code <= 599:
                self.send_json(400, {"error": "status must be an integer 200..599"})
                return
            self.send_json(code, {"status": code})
        elif get and path == "/leak-credential":
            out = {"seen_authorization": self.headers.get("Authorization")}
            for name, _ in self.required:
                if name.lower() != "authorization":
                    out["seen_" + name.lower()] = self.headers.get(name)
            self.send_json(200, out)
        else:
            self.send_json(404, {"error": "not found", "path": self.path})

    def int_param(self, query, name, lo, hi):
        raw = query.get(name, ["0"])[-1]
        try:
            v = int(raw)
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            self.send_json(400, {"error": "%s must be an integer %d..%d" % (name, lo, hi)})
            return None
        return v

    def big(self, query):
        n = self.int_param(query, "n", 0, BIG_MAX)
        if n is None:
            return
        write = self.start_stream(200, "application/json")
        if self.command == "HEAD":
            return
        k = 0
        first = True
        while k < n:
            end = min(n, k + BIG_BATCH)
            parts = []
            for i in range(k, end):
                parts.append('{"i":%d,"email":"user%d@example.com","pad":"%s"}' % (i, i, PAD))
            chunk = ",".join(parts)
            chunk = ("[" if first else ",") + chunk
            if end == n:
                chunk += "]"
            write(chunk.encode("ascii"))
            first = False
            k = end
        if n == 0:
            write(b"[]")
        write(b"")

    def events(self):
        write = self.start_stream(200, "text/event-stream", {"Cache-Control": "no-cache"})
        if self.command == "HEAD":
            return
        for k in range(3):
            if k:
                time.sleep(0.1)
            write(b'data: {"email":"e%d@example.com"}\n\n' % k)
        write(b"")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, DISCONNECTS):
            return
        super().handle_error(request, client_address)


def write_ready(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def parse_pair(value, sep, what):
    if sep not in value:
        raise SystemExit("upstream: %s must look like A%sB, got %r" % (what, sep, value))
    a, b = value.split(sep, 1)
    return a.strip(), b.strip()


def main():
    ap = argparse.ArgumentParser(description="Gatehouse test upstream HTTP server")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--require-bearer", metavar="TOKEN")
    ap.add_argument("--require-header", metavar="NAME:VALUE")
    ap.add_argument("--require-basic", metavar="USER:PASS")
    ap.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    ap.add_argument("--tls-key", metavar="PEM")
    args = ap.parse_args()

    required = []
    if args.require_bearer is not None:
        required.append(("Authorization", "Bearer " + args.require_bearer))
    if args.require_basic is not None:
        parse_pair(args.require_basic, ":", "--require-basic")
        cred = base64.b64encode(args.require_basic.encode("utf-8")).decode("ascii")
        required.append(("Authorization", "Basic " + cred))
    if args.require_header is not None:
        required.append(parse_pair(args.require_header, ":", "--require-header"))
    Handler.required = required

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    try:
        write_ready(args.ready_file, server.server_address[1])
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
