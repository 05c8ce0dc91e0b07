"""A local OAuth 2.1 authorization server and a protected MCP endpoint, for
the end-to-end tests of mcpjobd's authorization (tests/e2e/test_auth*.py).

Two HTTP servers on free loopback ports, in threads of the test process:

- AuthServer: RFC 8414 metadata, Dynamic Client Registration (RFC 7591),
  /authorize (PKCE S256 required; redirects to the registered redirect URI
  with a code and the state), /token (authorization_code and refresh_token,
  with rotation, short expiry on request), and switches a test turns:
  revoke() (refresh tokens refused with invalid_grant, access tokens
  refused), expire_access_tokens(), and hostile token responses
  ("oversized", "malformed").
- ResourceProxy: the MCP endpoint /mcp requiring "Authorization: Bearer"
  with a live access token (else 401 with a WWW-Authenticate challenge
  naming its Protected Resource Metadata, RFC 9728), forwarding everything
  else, streamed, to the real server-everything behind it.

Every secret handed out (codes, tokens) is kept in .secrets so a test can
look for them in the daemon's logs, history, events and replies.
"""
import base64
import hashlib
import http.client
import http.server
import json
import secrets
import socketserver
import threading
import time
import urllib.parse


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up (on an oversized answer, say) is no test failure


def _start(handler_cls, owner):
    srv = _Server(("127.0.0.1", 0), handler_cls)
    srv.owner = owner
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def send_json(self, code, obj, raw=None, headers=()):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


class AuthServer:
    def __init__(self, scope="mcp", expires_in=3600):
        self.scope = scope
        self.expires_in = expires_in
        self.clients = {}        # client_id -> registration
        self.codes = {}          # code -> {client_id, redirect_uri, challenge, scope, resource}
        self.access = {}         # access token -> expiry (monotonic)
        self.refresh = set()     # live refresh tokens
        self.secrets = []        # every code and token handed out
        self.token_requests = []  # grant_type of each /token request
        self.token_mode = None   # None | "oversized" | "malformed"
        self.lock = threading.Lock()
        self.httpd = _start(_AuthHandler, self)
        self.port = self.httpd.server_address[1]
        self.issuer = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- switches ---------------------------------------------------------
    def revoke(self):
        """The person withdrew the grant: refresh and access tokens stop working."""
        with self.lock:
            self.refresh.clear()
            self.access.clear()

    def expire_access_tokens(self):
        """Every access token is past its expiry; refresh tokens still work."""
        with self.lock:
            for t in self.access:
                self.access[t] = 0

    def token_ok(self, token):
        with self.lock:
            exp = self.access.get(token)
            return exp is not None and exp > time.monotonic()

    def metadata(self):
        i = self.issuer
        return {"issuer": i, "authorization_endpoint": i + "/authorize",
                "token_endpoint": i + "/token", "registration_endpoint": i + "/register",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": [self.scope]}

    def new_secret(self, prefix):
        s = prefix + secrets.token_urlsafe(24)
        self.secrets.append(s)
        return s

    def issue(self, scope):
        at, rt = self.new_secret("e2eAT-"), self.new_secret("e2eRT-")
        with self.lock:
            self.access[at] = time.monotonic() + self.expires_in
            self.refresh.add(rt)
        return {"access_token": at, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": rt, "scope": scope}


class _AuthHandler(_Handler):
    def do_GET(self):
        a = self.server.owner
        u = urllib.parse.urlsplit(self.path)
        if u.path in ("/.well-known/oauth-authorization-server",
                      "/.well-known/openid-configuration"):
            return self.send_json(200, a.metadata())
        if u.path == "/authorize":
            return self.authorize(a, urllib.parse.parse_qs(u.query))
        self.send_json(404, {"error": "not_found"})

    def authorize(self, a, q):
        one = {k: v[0] for k, v in q.items()}
        cl = a.clients.get(one.get("client_id"))
        if cl is None or one.get("redirect_uri") not in cl["redirect_uris"]:
            return self.send_json(400, {"error": "invalid_request",
                                        "error_description": "unknown client or redirect_uri"})
        if one.get("code_challenge_method") != "S256" or not one.get("code_challenge") \
                or one.get("response_type") != "code":
            return self.send_json(400, {"error": "invalid_request",
                                        "error_description": "PKCE S256 is required"})
        code = a.new_secret("e2eCODE-")
        a.codes[code] = {"client_id": one["client_id"], "redirect_uri": one["redirect_uri"],
                         "challenge": one["code_challenge"], "scope": one.get("scope") or a.scope,
                         "resource": one.get("resource")}
        loc = one["redirect_uri"] + "?" + urllib.parse.urlencode(
            {"code": code, "state": one.get("state", "")})
        self.send_response(302)
        self.send_header("Location", loc)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        a = self.server.owner
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/register":
            req = json.loads(self.body() or b"{}")
            cid = "e2e-client-" + secrets.token_hex(6)
            reg = dict(req, client_id=cid, token_endpoint_auth_method="none",
                       client_id_issued_at=int(time.time()))
            a.clients[cid] = reg
            return self.send_json(201, reg)
        if u.path == "/token":
            return self.token(a, {k: v[0] for k, v in
                                  urllib.parse.parse_qs(self.body().decode()).items()})
        self.send_json(404, {"error": "not_found"})

    def token(self, a, f):
        a.token_requests.append(f.get("grant_type"))
        if a.token_mode == "oversized":
            big = a.issue(a.scope)
            big["padding"] = "x" * (200 * 1024)
            return self.send_json(200, big)
        if a.token_mode == "malformed":
            at = a.new_secret("e2eAT-")
            return self.send_json(200, None, raw=('{"access_token": "%s", "token_type": '
                                                  '"Bearer", "expires_in": ' % at).encode())
        if f.get("grant_type") == "authorization_code":
            c = a.codes.pop(f.get("code"), None)
            verifier = f.get("code_verifier", "")
            want = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
                .rstrip(b"=").decode()
            if c is None or c["redirect_uri"] != f.get("redirect_uri") or c["challenge"] != want \
                    or c["client_id"] != f.get("client_id"):
                return self.send_json(400, {"error": "invalid_grant"})
            return self.send_json(200, a.issue(c["scope"]))
        if f.get("grant_type") == "refresh_token":
            rt = f.get("refresh_token")
            with a.lock:
                live = rt in a.refresh
                a.refresh.discard(rt)  # rotation: a refresh token works once
            if not live:
                return self.send_json(400, {"error": "invalid_grant",
                                            "error_description": "refresh token revoked"})
            return self.send_json(200, a.issue(a.scope))
        self.send_json(400, {"error": "unsupported_grant_type"})


class ResourceProxy:
    """/mcp with Bearer required, in front of the MCP server at upstream_port."""

    def __init__(self, auth, upstream_port):
        self.auth = auth
        self.upstream_port = upstream_port
        self.unauthorized = 0  # 401s answered
        self.requests = []     # (method, the Bearer token or None) of every request on /mcp
        self.httpd = _start(_ResourceHandler, self)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/mcp" % self.port
        self.prm_url = "http://127.0.0.1:%d/.well-known/oauth-protected-resource/mcp" % self.port

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _ResourceHandler(_Handler):
    HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
           "authorization", "proxy-connection", "upgrade", "te", "trailer"}

    def prm(self):
        p = self.server.owner
        return {"resource": p.url, "authorization_servers": [p.auth.issuer],
                "scopes_supported": [p.auth.scope], "bearer_methods_supported": ["header"]}

    def handle_any(self, method):
        p = self.server.owner
        u = urllib.parse.urlsplit(self.path)
        if method == "GET" and u.path.startswith("/.well-known/oauth-protected-resource"):
            return self.send_json(200, self.prm())
        if u.path != "/mcp":
            return self.send_json(404, {"error": "not_found"})
        auth = self.headers.get("Authorization", "")
        p.requests.append((method, auth[7:] if auth.startswith("Bearer ") else None))
        body = self.body()
        if not (auth.startswith("Bearer ") and p.auth.token_ok(auth[7:])):
            p.unauthorized += 1
            err = ', error="invalid_token"' if auth else ""
            return self.send_json(401, {"error": "unauthorized"}, headers=[
                ("WWW-Authenticate", 'Bearer resource_metadata="%s", scope="%s"%s'
                 % (p.prm_url, p.auth.scope, err))])
        self.forward(method, body)

    def forward(self, method, body):
        p = self.server.owner
        up = http.client.HTTPConnection("127.0.0.1", p.upstream_port, timeout=600)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP}
        up.request(method, self.path, body=body if body else None, headers=headers)
        r = up.getresponse()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in self.HOP:
                self.send_header(k, v)
        self.send_header("Connection", "close")  # streamed through until the upstream ends
        self.end_headers()
        self.close_connection = True
        try:
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    break
                self.wfile.write(chunk)
                self.wfile.flush()
        except OSError:
            pass
        finally:
            up.close()

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")
