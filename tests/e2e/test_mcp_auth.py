"""The MCP client's authorization against a local authorization server that
misbehaves on purpose (tests/e2e/oauth_hostile.py), through the engine's own
client (build/tests/mcpjob-conformance-client: the pool, the HTTP transport
and daemon/mcp/mcp_auth.c, with an in-memory grant store and a headless
login). Each refusal must name its cause and keep nothing; a refresh must
honour rotation; a refused refresh token must be forgotten."""
import os
import subprocess
import sys
import threading

from harness import BUILD, E2ETestCase

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oauth_hostile  # noqa: E402

CLIENT = os.path.join(BUILD, "tests", "mcpjob-conformance-client")


class McpAuth(E2ETestCase):
    def start_server(self, mode):
        srv = oauth_hostile.make_server(mode)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv

    def run_client(self, srv, path="/mcp", sse=False, login_first=False):
        env = dict(os.environ, MCP_CONFORMANCE_SCENARIO="auth/mcpjob-local")
        env.pop("MCP_CONFORMANCE_CONTEXT", None)
        args = ([CLIENT] + (["--sse"] if sse else []) + (["--login-first"] if login_first else [])
                + [srv.base + path])
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        return r.returncode, r.stderr

    def assert_refused(self, mode, why):
        srv = self.start_server(mode)
        rc, err = self.run_client(srv)
        self.assertNotEqual(rc, 0, err)
        self.assertIn(why, err)
        self.assertIn("grant kept: no", err)
        for secret in srv.secrets():
            self.assertNotIn(secret, err)
        return srv, err

    def test_login_then_tool_call_carries_the_bearer_token(self):
        srv = self.start_server("ok")
        rc, err = self.run_client(srv)
        self.assertEqual(rc, 0, err)
        self.assertIn("grant kept: yes", err)
        self.assertIn("tools/call", srv.authorized_methods)
        self.assertEqual(srv.token_requests, ["authorization_code"])
        for secret in srv.secrets():
            self.assertNotIn(secret, err)

    def test_login_before_any_request_learns_the_challenge_itself(self):
        for mode in ("ok", "open-init"):
            with self.subTest(mode=mode):
                srv = self.start_server(mode)
                rc, err = self.run_client(srv, login_first=True)
                self.assertEqual(rc, 0, err)
                self.assertNotIn("waiting for authorization", err)  # logged in before
                self.assertEqual(srv.token_requests, ["authorization_code"])
                self.assertIn("tools/call", srv.authorized_methods)

    def test_legacy_sse_stream_asks_for_a_login_then_carries_the_token(self):
        srv = self.start_server("ok")
        self.addCleanup(srv.sse_queue.put, None)
        rc, err = self.run_client(srv, "/sse", sse=True)
        self.assertEqual(rc, 0, err)
        self.assertIn("waiting for authorization: run `mcpjobctl auth login sut`", err)
        self.assertIn("grant kept: yes", err)
        self.assertIn("tools/call", srv.authorized_methods)
        self.assertEqual(srv.sse_streams, 1)

    def test_authorization_server_with_another_issuer_is_refused(self):
        srv, _ = self.assert_refused("bad-issuer", "refused (RFC 8414 section 3.3)")
        self.assertEqual(srv.authorize_requests, 0)

    def test_authorization_server_over_plain_http_is_refused(self):
        srv, _ = self.assert_refused("plain-as", "is not https")
        self.assertEqual(srv.authorize_requests, 0)

    def test_redirect_with_a_forged_state_is_refused(self):
        srv, _ = self.assert_refused("bad-state", "state is not this login's")
        self.assertEqual(srv.token_requests, [])

    def test_oversized_token_response_is_refused(self):
        self.assert_refused("oversized", "sent more than 65536 bytes")

    def test_malformed_token_response_is_refused(self):
        self.assert_refused("malformed", "token endpoint of")

    def test_token_without_bearer_type_is_refused(self):
        self.assert_refused("not-bearer", "token endpoint of")

    def test_expiring_token_is_refreshed_with_rotation(self):
        srv = self.start_server("refresh")
        rc, err = self.run_client(srv)
        self.assertEqual(rc, 0, err)
        # Tokens live 1 s: every request renews first; the server accepts each
        # refresh token once (rotation), so a second refresh proves the new one was kept.
        self.assertEqual(srv.token_requests[0], "authorization_code")
        self.assertGreaterEqual(srv.token_requests.count("refresh_token"), 2, srv.token_requests)
        self.assertEqual(srv.refused_refresh, 0)
        self.assertIn("tools/call", srv.authorized_methods)

    def test_revoked_refresh_token_is_dropped_and_asks_for_a_login(self):
        srv = self.start_server("revoked")
        rc, err = self.run_client(srv)
        self.assertNotEqual(rc, 0, err)
        self.assertIn("dropped: the authorization server refused the refresh token", err)
        self.assertIn("waiting for authorization: run `mcpjobctl auth login sut`", err)
        self.assertGreaterEqual(srv.refused_refresh, 1)
        for secret in srv.secrets():
            self.assertNotIn(secret, err)


if __name__ == "__main__":
    import unittest
    unittest.main()
