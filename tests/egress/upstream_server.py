#!/usr/bin/env python3
"""Test upstream server for gondolin's egress tests (loopback only).

  upstream_server.py [--cert CERT --key KEY] [--root DIR]

Prints "PORT <n>" once listening on 127.0.0.1 (ephemeral port). Endpoints:
  /echo            JSON {method, path, headers} of the request as received;
                   ?chunk=N sends it chunked in N-byte pieces, ?hdr=1 also
                   returns each request header as X-Echo-<name>, ?gzip=1
                   sends it gzip-encoded
  /digest          JSON {path, headers}: the SHA-256 (hex) of the path and of
                   each header value as received, so a test can check what
                   arrived without the response echoing it
  /bytes?n=N       N bytes of 'x' (Content-Length)
  /chunked?n=N     N bytes of 'y', chunked in 1000-byte pieces
  /close           a close-delimited body (no Content-Length)
  /upload          consumes the body as it streams (Content-Length or
                   chunked), answers JSON {bytes, sha256}
  /ws              WebSocket echo (text and binary frames)
  /static/PATH     the file DIR/PATH (--root), e.g. a git repo for "dumb" HTTP
"""
import argparse
import base64
import gzip
import hashlib
import http.server
import json
import os
import socketserver
import ssl
import struct
import sys
import urllib.parse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, body, ctype="application/octet-stream", status=200):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_echo(self, body, q):
        chunk = int(q.get("chunk", ["0"])[0])
        if q.get("gzip"):
            body = gzip.compress(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if q.get("gzip"):
            self.send_header("Content-Encoding", "gzip")
        if q.get("hdr"):
            for k, v in self.headers.items():
                self.send_header("X-Echo-" + k, v)
        if chunk:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if not chunk:
            self.wfile.write(body)
            return
        for i in range(0, len(body), chunk):
            piece = body[i:i + chunk]
            self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_PUT(self):
        self.do_POST()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/echo":
            body = json.dumps({"method": self.command, "path": self.path,
                               "headers": {k: v for k, v in self.headers.items()}}).encode()
            self.send_echo(body, q)
        elif url.path == "/digest":
            sha = lambda v: hashlib.sha256(v.encode()).hexdigest()
            body = json.dumps({"path": sha(self.path),
                               "headers": {k: sha(v) for k, v in self.headers.items()}}).encode()
            self.send_body(body, "application/json")
        elif url.path == "/bytes":
            self.send_body(b"x" * int(q.get("n", ["1024"])[0]))
        elif url.path == "/chunked":
            n = int(q.get("n", ["1024"])[0])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while n > 0:
                k = min(n, 1000)
                self.wfile.write(b"%x;ext=1\r\n" % k + b"y" * k + b"\r\n")
                n -= k
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
        elif url.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-close-body")
            self.close_connection = True
        elif url.path == "/ws":
            self.websocket()
        elif url.path.startswith("/static/") and self.server.root:
            self.static_file(urllib.parse.unquote(url.path[len("/static/"):]))
        else:
            self.send_body(b"not found", "text/plain", 404)

    def do_POST(self):
        digest = hashlib.sha256()
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:  # a cut or invalid body: drop the connection
                    self.close_connection = True
                    return
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b""):
                        pass
                    break
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    digest.update(chunk)
                    total += len(chunk)
                    left -= len(chunk)
                self.rfile.read(2)
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                digest.update(chunk)
                total += len(chunk)
                left -= len(chunk)
        body = json.dumps({"bytes": total, "sha256": digest.hexdigest(),
                           "headers": {k: v for k, v in self.headers.items()}}).encode()
        self.send_body(body, "application/json")

    def static_file(self, rel):
        root = os.path.realpath(self.server.root)
        path = os.path.realpath(os.path.join(root, rel))
        if not path.startswith(root + os.sep) or not os.path.isfile(path):
            self.send_body(b"not found", "text/plain", 404)
            return
        with open(path, "rb") as f:
            self.send_body(f.read())

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode = head[0] & 0x0F
            masked = head[1] & 0x80
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if masked else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            out = bytes([0x80 | opcode])
            out += bytes([len(data)]) if len(data) < 126 else b"\x7e" + struct.pack(">H", len(data))
            self.wfile.write(out + data)
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    root = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--root")
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    server.root = args.root
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
