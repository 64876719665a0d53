#!/usr/bin/env python3
"""A minimal Docker registry token server (distribution's "Token Authentication Specification").

docker-registry configured with `auth: token:` sends clients here; this server answers
GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...][&account=USER] with
{"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ...}.

The JWT is RS256-signed with --key (by the openssl command line tool: standard library only) and
carries the signing certificate in its "x5c" header, which the registry verifies against its
rootcertbundle (the same certificate, --cert).

Access rules: a request with valid Basic credentials (--user NAME:PASSWORD, repeatable) gets every
action it asks for; wrong credentials get 401; an anonymous request gets "pull" on repositories
starting with --anonymous-pull PREFIX (if given) and nothing else (an empty grant: the registry then
refuses, as Docker Hub does for private repositories).

--log FILE appends one JSON line per request: {"account", "scopes", "anonymous", "status"}.
--port-file FILE receives the listening port. Loopback only.
"""

import argparse
import base64
import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--anonymous-pull")
    p.add_argument("--expires", type=int, default=300)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log")
    args = p.parse_args()

    users = dict(u.split(":", 1) for u in args.user)
    with open(args.cert) as f:
        pem = f.read()
    der_b64 = "".join(line for line in pem.splitlines() if "-----" not in line)
    lock = threading.Lock()

    def sign(payload):
        out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.key], input=payload,
                             capture_output=True, check=True)
        return out.stdout

    def log(entry):
        if args.log:
            with lock:
                with open(args.log, "a") as f:
                    f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *a):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path != "/token":
                return self.reply(404, {"details": "not found"})
            q = urllib.parse.parse_qs(url.query)
            service = q.get("service", [""])[0]
            scopes = q.get("scope", [])
            account = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    user, password = base64.b64decode(auth[6:]).decode().split(":", 1)
                except Exception:
                    user, password = None, None
                if user is None or users.get(user) != password:
                    log({"account": user, "scopes": scopes, "anonymous": False, "status": 401})
                    return self.reply(401, {"details": "incorrect username or password"})
                account = user
            access = []
            for scope in scopes:
                parts = scope.split(":")
                if len(parts) < 3:
                    continue
                kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
                if account is None:
                    prefix = args.anonymous_pull
                    actions = [a for a in actions if a == "pull"] if prefix and name.startswith(prefix) else []
                if actions:
                    access.append({"type": kind, "name": name, "actions": actions})
            now = int(time.time())
            header = {"typ": "JWT", "alg": "RS256", "x5c": [der_b64]}
            claims = {"iss": args.issuer, "sub": account or "", "aud": service, "exp": now + args.expires,
                      "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()), "access": access}
            signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
            token = signing_input.decode() + "." + b64url(sign(signing_input))
            log({"account": account, "scopes": scopes, "anonymous": account is None, "status": 200})
            self.reply(200, {"token": token, "access_token": token, "expires_in": args.expires,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
