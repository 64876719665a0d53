#!/usr/bin/env python3
"""A reverse HTTP proxy in front of a registry that injects faults, for the registry tests.

Clients talk to the proxy as if it were the registry (plain HTTP on 127.0.0.1); it forwards each
request to --upstream unchanged (Host included, so Location headers name the proxy) and streams
the answer back, except where a fault applies:

  --cut-after N       the first GET of each matching blob sends N body bytes, then the
                      connection is cut (the client must resume with a Range request)
  --corrupt           every matching blob body has the byte at --corrupt-offset (default 4: the
                      gzip header's mtime, so the blob still decompresses to the same tar and
                      only its digest is wrong) flipped; the length is unchanged
  --fail-first K      the first K matching blob GETs answer --fail-status (default 503)
  --match TEXT        faults apply to blob paths containing TEXT (default: every blob GET)

--stats FILE appends one JSON line per request: {"method", "path", "status", "bytes", "range"},
where bytes counts response body bytes sent. --port-file FILE receives the listening port once
the proxy accepts connections. Loopback only; stops on SIGTERM/SIGINT. Standard library only.
"""

import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import sys
import threading

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT of the registry (plain HTTP)")
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats")
    p.add_argument("--cut-after", type=int)
    p.add_argument("--corrupt", action="store_true")
    p.add_argument("--corrupt-manifests", action="store_true",
                   help="also flip a byte of every manifest GET (whatever --match says)")
    p.add_argument("--corrupt-offset", type=int, default=4)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=503)
    p.add_argument("--match", default="")
    args = p.parse_args()
    up_host, up_port = args.upstream.rsplit(":", 1)

    lock = threading.Lock()
    state = {"cut": set(), "failed": 0}

    def log_stats(entry):
        if not args.stats:
            return
        with lock:
            with open(args.stats, "a") as f:
                f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one exchange per connection: no framing to get wrong

        def log_message(self, fmt, *a):
            pass

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else None

        def _forward(self):
            path = self.path
            is_blob = self.command == "GET" and "/blobs/sha256:" in path and args.match in path
            is_manifest = self.command == "GET" and "/manifests/" in path
            entry = {"method": self.command, "path": path, "range": self.headers.get("Range", ""), "bytes": 0}
            if is_blob and args.fail_first:
                with lock:
                    fail = state["failed"] < args.fail_first
                    if fail:
                        state["failed"] += 1
                if fail:
                    msg = b'{"errors":[{"code":"UNAVAILABLE","message":"injected failure"}]}'
                    self.send_response(args.fail_status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    entry.update(status=args.fail_status, bytes=len(msg))
                    log_stats(entry)
                    return
            body = self._body()
            conn = http.client.HTTPConnection(up_host, int(up_port), timeout=60)
            try:
                # Header by header: repeated ones (several Accept lines) must all get through.
                conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        conn.putheader(k, v)
                if body is not None:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.end_headers()
                entry["status"] = resp.status
                cut_at = None
                if is_blob and args.cut_after is not None and resp.status in (200, 206):
                    with lock:
                        if path not in state["cut"]:
                            state["cut"].add(path)
                            cut_at = args.cut_after
                corrupt = (is_blob and args.corrupt) or (is_manifest and args.corrupt_manifests)
                flipped = not (corrupt and resp.status in (200, 206))
                sent = 0
                while self.command != "HEAD":
                    chunk = resp.read(64 * 1024)
                    if not chunk:
                        break
                    if not flipped and sent + len(chunk) > args.corrupt_offset:
                        i = args.corrupt_offset - sent
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                        flipped = True
                    if cut_at is not None and sent + len(chunk) >= cut_at:
                        self.wfile.write(chunk[: cut_at - sent])
                        self.wfile.flush()
                        sent = cut_at
                        entry["cut"] = True
                        # An abrupt end: the client sees a short body and must resume.
                        self.connection.shutdown(socket.SHUT_RDWR)
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
                entry["bytes"] = sent
            finally:
                conn.close()
                log_stats(entry)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, args.port_file)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
