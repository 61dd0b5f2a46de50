#!/usr/bin/env python3
"""A tiny HTTPS server for tests/test-http.c: canned answers and transport faults by path.

usage: server.py --dir DIR
Makes DIR/ca.pem (a throwaway CA, with the openssl CLI) unless it exists, serves HTTPS on
127.0.0.1 with a certificate for 127.0.0.1 signed by it, prints "READY https://127.0.0.1:PORT",
and exits when its stdin closes (so it never outlives the test) or on SIGTERM.

Paths (any method):
  /echo             200, JSON: conn (per-TCP-connection id), method, path, headers, body
  /status/NNN       status NNN with an OAuth-style JSON error body
  /retry-after/V    429 with "Retry-After: V" (V URL-decoded)
  /redirect         302 to /echo
  /challenge/REALM  401 with WWW-Authenticate: Basic realm=REALM
  /hang             reads the request, never answers
  /huge/N           200 with a Content-Length of N bytes
  /huge-unsized/N   200 with N bytes, no Content-Length (ends with the connection)
  /reset            reads the request, then resets the connection (RST)
  /truncated        Content-Length 100, sends 10 bytes, closes cleanly
  /close            reads the request, closes without answering
"""
import argparse
import http.server
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    if os.path.exists(os.path.join(d, "server.pem")):
        return
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem.tmp", "-days", "2",
            "-subj", "/CN=aksspark test CA %d" % os.getpid(),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem.tmp", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem.tmp", "-days", "2",
            "-extfile", "server.ext", cwd=d)
    hash_ = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", "ca.pem.tmp"], cwd=d,
                           check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(d, "ca.hash"), "w") as f:
        f.write(hash_ + "\n")
    os.rename(os.path.join(d, "ca.pem.tmp"), os.path.join(d, "ca.pem"))
    os.rename(os.path.join(d, "server.pem.tmp"), os.path.join(d, "server.pem"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.conn_id = self.server.connections

    def send(self, status, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def drop(self, reset):
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def handle_any(self):
        body = self.read_body()
        parts = self.path.partition("?")[0].split("/")
        what = parts[1] if len(parts) > 1 else ""
        arg = urllib.parse.unquote(parts[2]) if len(parts) > 2 else ""

        if what == "echo":
            self.send(200, json.dumps({
                "conn": self.conn_id,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("latin-1"),
            }))
        elif what == "status":
            self.send(int(arg), json.dumps({"error": "invalid_grant",
                                            "error_description": "AADSTS70008: expired"}))
        elif what == "retry-after":
            self.send(429, '{"error": "temporarily_unavailable"}', [("Retry-After", arg)])
        elif what == "challenge":
            self.send(401, '{"error": "unauthorized"}', [("WWW-Authenticate", "Basic realm=" + arg)])
        elif what == "redirect":
            self.send(302, "", [("Location", "/echo")])
        elif what == "hang":
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.1)
            self.drop(False)
        elif what in ("huge", "huge-unsized"):
            n = int(arg)
            self.send_response(200)
            if what == "huge":
                self.send_header("Content-Length", str(n))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            chunk = b"a" * 65536
            try:
                while n > 0:
                    self.wfile.write(chunk[:n])
                    n -= min(n, len(chunk))
                self.wfile.flush()
            except OSError:
                self.close_connection = True
        elif what == "reset":
            self.drop(True)
        elif what == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.unwrap()  # a clean TLS close: only the length tells it is short
            except OSError:
                pass
        elif what == "close":
            self.drop(False)
        else:
            self.send(404, '{"error": "not_found"}')

    do_GET = do_POST = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx):
        super().__init__(("127.0.0.1", 0), Handler)
        self.ctx = ctx
        self.lock = threading.Lock()
        self.connections = 0

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's thread: a stuck client stalls nobody else.
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()

    make_certs(args.dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(args.dir, "server.pem"), os.path.join(args.dir, "server.key"))
    server = Server(ctx)

    def watch_stdin():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY https://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
