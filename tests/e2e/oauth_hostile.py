"""A small MCP server with its own OAuth authorization server on one
loopback port, for tests/e2e/test_mcp_auth.py. It speaks just enough
Streamable HTTP (JSON answers, no session) and OAuth (RFC 9728 metadata,
RFC 8414 metadata, RFC 7591 registration, authorization code with PKCE,
refresh with rotation) to be logged in to, and misbehaves as its mode says:

  ok          behaves
  bad-issuer  its metadata names another issuer
  open-init   initialize needs no token (the rest does)
  plain-as    its resource metadata names an authorization server over plain http
  bad-state   the authorization redirect carries a forged state
  oversized   the token response is larger than OAUTH_BODY_MAX
  malformed   the token response is not JSON
  not-bearer  the token response's token_type is not Bearer
  refresh     tokens live 1 s; each refresh token is accepted once (rotation)
  revoked     tokens live 1 s; every refresh is refused with invalid_grant

Besides Streamable HTTP at /mcp it serves the 2024-11-05 HTTP+SSE
transport: the stream at /sse (401 without a token), messages at /messages.
"""
import base64
import hashlib
import http.server
import json
import queue
import secrets
import urllib.parse


def make_server(mode):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.mode = mode
    srv.daemon_threads = True
    srv.handle_error = lambda request, address: None  # a client hanging up is expected
    srv.base = "http://127.0.0.1:%d" % srv.server_address[1]
    srv.valid_tokens = set()
    srv.refresh_tokens = set()
    srv.issued = []
    srv.challenge = None
    srv.token_requests = []
    srv.authorize_requests = 0
    srv.refused_refresh = 0
    srv.authorized_methods = []
    srv.secrets = lambda: list(srv.issued)
    srv.sse_queue = queue.Queue()
    srv.sse_streams = 0
    return srv


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj, headers=()):
        body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def new_secret(self, prefix):
        s = prefix + secrets.token_urlsafe(16)
        self.server.issued.append(s)
        return s

    def do_GET(self):
        srv = self.server
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/.well-known/oauth-protected-resource/mcp":
            as_url = "http://as.example.com" if srv.mode == "plain-as" else srv.base
            self.send_json(200, {"resource": srv.base,  # covers /mcp and /sse
                                 "authorization_servers": [as_url]})
        elif url.path == "/.well-known/oauth-authorization-server":
            issuer = srv.base + ("/elsewhere" if srv.mode == "bad-issuer" else "")
            self.send_json(200, {
                "issuer": issuer,
                "authorization_endpoint": srv.base + "/authorize",
                "token_endpoint": srv.base + "/token",
                "registration_endpoint": srv.base + "/register",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"]})
        elif url.path == "/authorize":
            srv.authorize_requests += 1
            q = dict(urllib.parse.parse_qsl(url.query))
            srv.challenge = q.get("code_challenge")
            state = "forged" if srv.mode == "bad-state" else q.get("state", "")
            loc = q["redirect_uri"] + "?" + urllib.parse.urlencode(
                {"code": self.new_secret("code-"), "state": state})
            self.send_response(302)
            self.send_header("Location", loc)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/mcp":
            self.send_json(405, {"error": "no GET stream"})
        elif url.path == "/sse":
            self.sse_stream()
        else:
            self.send_json(404, {"error": "not_found"})

    def tokens(self):
        life = 1 if self.server.mode in ("refresh", "revoked") else 3600
        at, rt = self.new_secret("at-"), self.new_secret("rt-")
        self.server.valid_tokens.add(at)
        self.server.refresh_tokens.add(rt)
        return {"access_token": at, "refresh_token": rt, "expires_in": life,
                "token_type": "not-bearer" if self.server.mode == "not-bearer" else "Bearer"}

    def do_token(self, form):
        srv = self.server
        grant = form.get("grant_type")
        srv.token_requests.append(grant)
        if grant == "authorization_code":
            v = form.get("code_verifier", "")
            s256 = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=")
            if s256.decode() != srv.challenge:
                return self.send_json(400, {"error": "invalid_grant"})
            if srv.mode == "oversized":
                return self.send_json(200, b'{"pad":"' + b"x" * 100000 + b'"}')
            if srv.mode == "malformed":
                return self.send_json(200, b"<html>not json</html>")
            return self.send_json(200, self.tokens())
        if grant == "refresh_token":
            rt = form.get("refresh_token")
            if srv.mode == "revoked" or rt not in srv.refresh_tokens:
                srv.refused_refresh += 1
                return self.send_json(400, {"error": "invalid_grant",
                                            "error_description": "refresh token revoked"})
            srv.refresh_tokens.discard(rt)  # rotation: each one is good once
            return self.send_json(200, self.tokens())
        return self.send_json(400, {"error": "unsupported_grant_type"})

    def authorized(self):
        srv = self.server
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in srv.valid_tokens:
            return True
        self.send_json(401, {"error": "invalid_token"}, [(
            "WWW-Authenticate", 'Bearer resource_metadata="%s/.well-known/'
            'oauth-protected-resource/mcp"' % srv.base)])
        return False

    def sse_stream(self):
        if not self.authorized():
            return
        self.server.sse_streams += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(b"event: endpoint\ndata: /messages\n\n")
        self.wfile.flush()
        while True:
            try:
                msg = self.server.sse_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if msg is None:
                return
            try:
                self.wfile.write(b"event: message\ndata: " + msg.encode() + b"\n\n")
                self.wfile.flush()
            except OSError:
                return

    def answer(self, msg):
        m = msg.get("method")
        if m == "initialize":
            res = {"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                   "serverInfo": {"name": "hostile", "version": "1"}}
        elif m == "tools/list":
            res = {"tools": [{"name": "test-tool", "inputSchema": {"type": "object"}}]}
        elif m == "tools/call":
            res = {"content": [{"type": "text", "text": "done"}]}
        else:
            res = {}
        return {"jsonrpc": "2.0", "id": msg["id"], "result": res}

    def do_messages(self, raw):
        if not self.authorized():
            return
        msg = json.loads(raw)
        self.server.authorized_methods.append(msg.get("method"))
        if "id" in msg and "method" in msg:
            self.server.sse_queue.put(json.dumps(self.answer(msg)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_mcp(self, raw):
        srv = self.server
        msg = json.loads(raw)
        open_init = srv.mode == "open-init" and msg.get("method") == "initialize"
        if not open_init and not self.authorized():
            return
        srv.authorized_methods.append(msg.get("method"))
        if "id" not in msg:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        m = msg.get("method")
        if m == "initialize":
            res = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                   "serverInfo": {"name": "hostile", "version": "1"}}
        elif m == "tools/list":
            res = {"tools": [{"name": "test-tool", "inputSchema": {"type": "object"}}]}
        elif m == "tools/call":
            res = {"content": [{"type": "text", "text": "done"}]}
        else:
            res = {}
        self.send_json(200, {"jsonrpc": "2.0", "id": msg["id"], "result": res})

    def do_POST(self):
        raw = self.body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/register":
            return self.send_json(201, {"client_id": "hostile-client",
                                        "token_endpoint_auth_method": "none"})
        if path == "/token":
            return self.do_token(dict(urllib.parse.parse_qsl(raw.decode())))
        if path == "/mcp":
            return self.do_mcp(raw)
        if path == "/messages":
            return self.do_messages(raw)
        self.send_json(404, {"error": "not_found"})

    def do_DELETE(self):
        self.send_json(405, {"error": "no sessions"})
