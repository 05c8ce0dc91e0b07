"""End-to-end: mcp jobs on remote servers, through the real mcpjobd and
mcpjobctl, against @modelcontextprotocol/server-everything started in its
streamableHttp and sse modes on a free loopback port (and behind stunnel4
for TLS). Skipped loudly when the server is missing."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import E2ETestCase, NPM_BIN, ROOT, wait_until

EVERYTHING_JS = os.path.join(ROOT, "build", "npm", "node_modules", "@modelcontextprotocol",
                             "server-everything", "dist", "index.js")
TOKEN = "e2e-tok-7f3a9c1d55b2"  # the secret the tests look for everywhere


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Everything:
    """server-everything in @mode on a free port; restartable on the same port."""

    def __init__(self, mode, tmp, port=None):
        self.mode = mode
        self.port = port or free_port()
        self.log_path = os.path.join(tmp, "everything-%s-%d.log" % (mode, self.port))
        self.proc = None

    def start(self):
        env = dict(os.environ, PORT=str(self.port))
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["node", EVERYTHING_JS, self.mode], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("server-everything exited: %s" % self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, timeout=30, what="server-everything %s on port %d" % (self.mode, self.port))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        self.proc = None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


class RecordingProxy:
    """An HTTP proxy (what http_proxy names) that writes down every request
    body it forwards: how a test sees what the daemon sent the server.
    Connections are not kept (Connection: close) so responses can be piped
    through as they stream."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.bodies = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            headers = [l for l in lines[1:] if not l.lower().startswith(("connection:", "proxy-"))]
            length = next((int(l.split(":", 1)[1]) for l in headers
                           if l.lower().startswith("content-length:")), 0)
            while len(body) < length:
                body += c.recv(65536)
            with self.lock:
                self.bodies.append(body.decode(errors="replace"))
            hostport = target.split("/")[2]
            path = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
            host, port = hostport.rsplit(":", 1)
            u = socket.create_connection((host, int(port)))
            req = "%s %s %s\r\n%s\r\nConnection: close\r\n\r\n" % (
                method, path, version, "\r\n".join(headers))
            u.sendall(req.encode("latin-1") + body)
            # The client must not reuse this connection either: say so.
            resp = b""
            while b"\r\n\r\n" not in resp:
                chunk = u.recv(65536)
                if not chunk:
                    break
                resp += chunk
            rhead, _, rest = resp.partition(b"\r\n\r\n")
            rlines = [l for l in rhead.split(b"\r\n") if not l.lower().startswith(b"connection:")]
            c.sendall(b"\r\n".join(rlines) + b"\r\nConnection: close\r\n\r\n" + rest)
            while True:
                chunk = u.recv(65536)
                if not chunk:
                    break
                c.sendall(chunk)
            u.close()
        except OSError:
            pass
        finally:
            c.close()

    def sent(self, needle):
        with self.lock:
            return [b for b in self.bodies if needle in b]

    def close(self):
        self.sock.close()


class CountingForwarder:
    """A TCP forwarder to @port that counts the connections it accepts."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.target = port
        self.accepted = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            u = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def mcp_job(job_id, tool, arguments=None, server="remote", **extra):
    j = {"id": job_id, "name": job_id, "interval": "24h", "initial_delay": "24h",
         "action": {"mcp": {"server": server, "tool": tool, "arguments": arguments or {}}}}
    j.update(extra)
    return j


class RemoteMcp(E2ETestCase):
    mode = "streamableHttp"

    def setUp(self):
        super().setUp()
        if not os.path.exists(EVERYTHING_JS) or shutil.which("node") is None:
            self.skipTest("SKIPPED: server-everything not installed: run tests/bootstrap.sh")
        self.srv = Everything(self.mode, self.tmp).start()
        self.addCleanup(self.srv.stop)

    def server_def(self, **extra):
        d = {"type": "http", "url": "http://127.0.0.1:%d/mcp" % self.srv.port,
             "headers": {"Authorization": "Bearer ${env:MCPJOB_E2E_TOKEN}"},
             "idle_timeout": "10m"}
        d.update(extra)
        return d

    def remote_daemon(self, *jobs, **extra):
        cfg = {"mcpServers": {"remote": self.server_def(**extra)}, "jobs": list(jobs)}
        return self.daemon(cfg, env={"MCPJOB_E2E_TOKEN": TOKEN})

    def run_wait(self, d, job):
        return d.result("job.run", {"job": job, "wait": True})


class StreamableHttp(RemoteMcp):
    def test_echo_over_streamable_http_succeeds(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "over http"}))
        run = self.run_wait(d, "echo")
        self.assertEqual(run["outcome"], "success", run)
        self.assertEqual(run["message"], "Echo: over http")
        # The whole text content is the run's output, shown by history.
        self.assertEqual(d.history("echo")[0]["output"], "Echo: over http")

    def test_structured_content_is_kept_in_history(self):
        d = self.remote_daemon(mcp_job("weather", "get-structured-content",
                                       {"location": "Chicago"}))
        self.run_wait(d, "weather")
        run = d.history("weather")[0]
        self.assertEqual(run["outcome"], "success", run)
        self.assertIn("temperature", run["structured_content"])

    def test_progress_is_shown_by_status_then_success(self):
        d = self.remote_daemon(mcp_job("long", "trigger-long-running-operation",
                                       {"duration": 3, "steps": 6}))
        d.result("job.run", {"job": "long"})
        st = wait_until(lambda: (lambda s: s if s.get("progress") else None)(d.status("long")),
                        timeout=20, what="progress in job.status")
        self.assertEqual(st["progress"]["total"], 6)
        r = d.ctl("status", "long")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("progress", r.stdout.lower())
        runs = d.wait_runs("long", 1, timeout=30)
        self.assertEqual(runs[0]["outcome"], "success", runs[0])

    def proxied_daemon(self, *jobs):
        """A daemon whose requests go through a RecordingProxy (http_proxy)."""
        proxy = RecordingProxy()
        self.addCleanup(proxy.close)
        cfg = {"mcpServers": {"remote": self.server_def()}, "jobs": list(jobs)}
        env = {"MCPJOB_E2E_TOKEN": TOKEN, "http_proxy": "http://127.0.0.1:%d" % proxy.port,
               "no_proxy": "", "NO_PROXY": ""}
        return self.daemon(cfg, env=env), proxy

    def test_cancel_sends_cancelled_and_the_session_still_works(self):
        d, proxy = self.proxied_daemon(mcp_job("long", "trigger-long-running-operation",
                                               {"duration": 30, "steps": 30}),
                                       mcp_job("echo", "echo", {"message": "after cancel"}))
        d.result("job.run", {"job": "long"})
        wait_until(lambda: d.status("long").get("progress"), timeout=20, what="progress")
        r = d.ctl("cancel", "long")
        self.assertEqual(r.returncode, 0, r.stderr)
        runs = d.wait_runs("long", 1, timeout=10)
        self.assertEqual(runs[0]["outcome"], "cancelled", runs[0])
        self.assertEqual(self.run_wait(d, "echo")["outcome"], "success")
        # Through the proxy the daemon's http_proxy named: the server was told.
        sent = proxy.sent("notifications/cancelled")
        self.assertEqual(len(sent), 1, proxy.bodies)
        self.assertIn("cancelled by request", sent[0])

    def test_timeout_ends_the_call_and_sends_cancelled(self):
        d, proxy = self.proxied_daemon(mcp_job("slow", "trigger-long-running-operation",
                                               {"duration": 20, "steps": 4}, timeout="1s",
                                               retry={"max_attempts": 1}))
        run = self.run_wait(d, "slow")
        self.assertEqual(run["outcome"], "timeout", run)
        sent = wait_until(lambda: proxy.sent("notifications/cancelled"), timeout=10,
                          what="notifications/cancelled through the proxy")
        self.assertIn("timed out", sent[0])

    def test_restarted_server_gets_a_new_session(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "one"}))
        self.assertEqual(self.run_wait(d, "echo")["outcome"], "success")
        # Same port, new process: our session id is unknown there (404).
        self.srv.stop()
        self.srv.start()
        run = self.run_wait(d, "echo")
        self.assertEqual(run["outcome"], "success", run)
        self.assertIn("starting a new one", d.log())

    def test_connection_refused_names_the_host(self):
        port = free_port()
        cfg = {"mcpServers": {"gone": {"url": "http://127.0.0.1:%d/mcp" % port}},
               "jobs": [mcp_job("j", "echo", server="gone", retry={"max_attempts": 1})]}
        d = self.daemon(cfg)
        run = self.run_wait(d, "j")
        self.assertNotEqual(run["outcome"], "success", run)
        self.assertIn("cannot connect to http://127.0.0.1:%d" % port, run["message"])

    def test_http_error_status_fails_the_run_with_status_and_body(self):
        cfg = {"mcpServers": {"bad": {"url": "http://127.0.0.1:%d/nothing-here" % self.srv.port}},
               "jobs": [mcp_job("j", "echo", server="bad", retry={"max_attempts": 1})]}
        d = self.daemon(cfg)
        run = self.run_wait(d, "j")
        self.assertNotEqual(run["outcome"], "success", run)
        self.assertIn("HTTP 404", run["message"])

    def test_probe_checks_tools_over_http(self):
        from harness import MCPJOBD
        cfg = {"mcpServers": {"remote": self.server_def()},
               "jobs": [mcp_job("ok", "echo", {"message": "x"}), mcp_job("typo", "ecko")]}
        path = os.path.join(self.tmp, "probe.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([MCPJOBD, "--check-config", "--probe", "--config", path],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MCPJOB_E2E_TOKEN=TOKEN))
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        self.assertIn('job typo: server remote has no tool "ecko" (tools: echo,', out)
        self.assertIn("probe found 1 problem", out)
        self.assertNotIn(TOKEN, out)

    def test_runs_on_a_kept_session_reuse_connections(self):
        fwd = CountingForwarder(self.srv.port)
        self.addCleanup(fwd.close)
        d = self.remote_daemon(*[mcp_job("e%d" % i, "echo", {"message": "n%d" % i})
                                 for i in range(10)],
                               url="http://127.0.0.1:%d/mcp" % fwd.port)
        for i in range(10):
            self.assertEqual(self.run_wait(d, "e%d" % i)["outcome"], "success")
        # A connection per message would be 20 or more (10 POSTs of
        # tools/call alone); kept: the POSTs' one, the GET stream's, and at
        # most one more where two exchanges overlapped.
        self.assertLessEqual(fwd.accepted, 4)

    def test_idle_session_is_ended_with_delete(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "bye"}), idle_timeout="1s")
        self.assertEqual(self.run_wait(d, "echo")["outcome"], "success")
        wait_until(lambda: "Received session termination request" in self.srv.log(), timeout=20,
                   what="the DELETE of the idle session at server-everything")

    def test_body_over_the_cap_fails_the_call(self):
        import http.server

        class Big(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if "id" not in body:
                    self.send_response(202)
                    self.end_headers()
                    return
                if body["method"] == "initialize":
                    out = {"jsonrpc": "2.0", "id": body["id"], "result": {
                        "protocolVersion": "2025-11-25", "capabilities": {},
                        "serverInfo": {"name": "big", "version": "1"}}}
                else:
                    out = {"jsonrpc": "2.0", "id": body["id"], "result": {
                        "content": [{"type": "text", "text": "x" * (5 << 20)}]}}
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

            def do_GET(self):
                self.send_response(405)
                self.end_headers()

            def log_message(self, *a):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Big)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.shutdown)
        cfg = {"mcpServers": {"big": {"url": "http://127.0.0.1:%d/mcp" % httpd.server_port}},
               "jobs": [mcp_job("j", "huge", server="big", retry={"max_attempts": 1})]}
        d = self.daemon(cfg)
        run = self.run_wait(d, "j")
        self.assertEqual(run["outcome"], "failure", run)
        self.assertIn("larger than 4194304 bytes", run["message"])

    def test_elicitation_answered_by_policy(self):
        # The tool asks for "name" (required, no default) and optional fields with defaults.
        d = self.remote_daemon(mcp_job("ask", "trigger-elicitation-request"),
                               elicitation={"answers": {"name": "mcpjobd e2e"}})
        run = self.run_wait(d, "ask")
        self.assertEqual(run["outcome"], "success", run)
        self.assertIn("User provided the requested information", run["output"])
        self.assertIn("mcpjobd e2e", run["output"])
        self.assertIn("Monica", run["output"])  # a default filled in beside the answer
        d2 = self.remote_daemon(mcp_job("ask", "trigger-elicitation-request"),
                                elicitation="defaults")
        run = self.run_wait(d2, "ask")
        self.assertIn("declined", run["output"])

    def test_roots_are_answered(self):
        d = self.remote_daemon(mcp_job("roots", "get-roots-list"),
                               roots=["file:///var/lib/mcpjob-e2e-root"])
        run = self.run_wait(d, "roots")
        self.assertEqual(run["outcome"], "success", run)
        self.assertIn("file:///var/lib/mcpjob-e2e-root", run["output"])

    def test_task_required_tool_runs_through_tasks(self):
        # simulate-research-query declares execution.taskSupport "required".
        d = self.remote_daemon(mcp_job("research", "simulate-research-query",
                                       {"topic": "background jobs"}, timeout="2m"))
        run = self.run_wait(d, "research")
        self.assertEqual(run["outcome"], "success", run)
        self.assertIn("background jobs", run["output"])

    def test_header_token_never_reaches_logs_history_or_json(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "secret test"}),
                               mcp_job("typo", "no-such-tool"))
        self.run_wait(d, "echo")
        self.run_wait(d, "typo")
        outputs = [d.log()]
        for args in (("list",), ("status", "echo"), ("history", "echo"), ("history", "typo"),
                     ("status", "typo")):
            for prefix in ((), ("--json",)):
                r = d.ctl(*(prefix + args))
                self.assertEqual(r.returncode, 0, r.stderr)
                outputs.append(r.stdout + r.stderr)
        outputs.append(json.dumps(d.history("echo")) + json.dumps(d.history("typo")))
        d.stop()
        for root, _, files in os.walk(d.tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    outputs.append(f.read().decode("latin-1"))
        for text in outputs:
            self.assertNotIn(TOKEN, text)
        # ... while the server really got it (the test would prove nothing otherwise).
        self.assertTrue(any("secret test" in o for o in outputs))

    def test_missing_credential_fails_naming_the_reference(self):
        cfg = {"mcpServers": {"remote": self.server_def(
                   headers={"Authorization": "Bearer ${credential:api-token}"})},
               "jobs": [mcp_job("echo", "echo", {"message": "x"}, retry={"max_attempts": 1})]}
        d = self.daemon(cfg, env={"CREDENTIALS_DIRECTORY": self.tmp})
        run = self.run_wait(d, "echo")
        self.assertNotEqual(run["outcome"], "success", run)
        self.assertIn("${credential:api-token}", run["message"])
        with open(os.path.join(self.tmp, "api-token"), "w") as f:
            f.write(TOKEN + "\n")
        run = self.run_wait(d, "echo")
        self.assertEqual(run["outcome"], "success", run)


class LegacySse(RemoteMcp):
    mode = "sse"

    def test_echo_over_legacy_sse_succeeds(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "over sse"}),
                               type="sse", url="http://127.0.0.1:%d/sse" % self.srv.port)
        run = self.run_wait(d, "echo")
        self.assertEqual(run["outcome"], "success", run)
        self.assertEqual(run["message"], "Echo: over sse")

    def test_progress_over_legacy_sse(self):
        d = self.remote_daemon(mcp_job("long", "trigger-long-running-operation",
                                       {"duration": 2, "steps": 4}),
                               type="sse", url="http://127.0.0.1:%d/sse" % self.srv.port)
        d.result("job.run", {"job": "long"})
        wait_until(lambda: d.status("long").get("progress"), timeout=20, what="progress")
        self.assertEqual(d.wait_runs("long", 1, timeout=30)[0]["outcome"], "success")

    def test_http_type_falls_back_to_legacy_sse(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "fell back"}),
                               url="http://127.0.0.1:%d/sse" % self.srv.port)
        run = self.run_wait(d, "echo")
        self.assertEqual(run["outcome"], "success", run)
        self.assertIn("2024-11-05 HTTP+SSE", d.log())


STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")


class Tls(RemoteMcp):
    """server-everything behind stunnel4 with a CA made here by openssl."""

    def setUp(self):
        super().setUp()
        if STUNNEL is None or shutil.which("openssl") is None:
            self.skipTest("SKIPPED: stunnel4 or openssl missing: run tests/bootstrap.sh")
        self.pki = os.path.join(self.tmp, "pki")
        os.makedirs(self.pki)
        self.make_ca("ca")
        self.make_ca("other")
        self.make_cert("ca", "server", "localhost")
        self.tls_port = free_port()
        conf = os.path.join(self.pki, "stunnel.conf")
        with open(conf, "w") as f:
            f.write("foreground = yes\npid =\n[mcp]\naccept = 127.0.0.1:%d\n"
                    "connect = 127.0.0.1:%d\ncert = %s/server.pem\nkey = %s/server.key\n"
                    % (self.tls_port, self.srv.port, self.pki, self.pki))
        self.stunnel = subprocess.Popen([STUNNEL, conf], stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(self.pki, "stunnel.log"), "wb"))
        self.addCleanup(self.stop_stunnel)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, timeout=20, what="stunnel on %d" % self.tls_port)

    def stop_stunnel(self):
        self.stunnel.terminate()
        self.stunnel.wait(10)

    def openssl(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=self.pki)

    def make_ca(self, name):
        self.openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                     "-subj", "/CN=mcpjobd test CA %s" % name, "-keyout", name + ".key",
                     "-out", name + ".pem")

    def make_cert(self, ca, name, host):
        self.openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + host,
                     "-keyout", name + ".key", "-out", name + ".csr")
        with open(os.path.join(self.pki, "ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:%s,IP:127.0.0.1\n" % host)
        self.openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
                     ca + ".key", "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf",
                     "-out", name + ".pem")

    def tls_url(self):
        return "https://127.0.0.1:%d/mcp" % self.tls_port

    def test_ca_file_makes_tls_work(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "over tls"}),
                               url=self.tls_url(), ca_file=os.path.join(self.pki, "ca.pem"))
        run = self.run_wait(d, "echo")
        self.assertEqual(run["outcome"], "success", run)
        self.assertEqual(run["message"], "Echo: over tls")

    def test_wrong_ca_fails_naming_host_and_verification_error(self):
        d = self.remote_daemon(mcp_job("echo", "echo", {"message": "x"},
                                       retry={"max_attempts": 1}),
                               url=self.tls_url(), ca_file=os.path.join(self.pki, "other.pem"))
        run = self.run_wait(d, "echo")
        self.assertNotEqual(run["outcome"], "success", run)
        self.assertIn("https://127.0.0.1:%d" % self.tls_port, run["message"])
        self.assertIn("could not be verified", run["message"])
        self.assertIn("certificate", run["message"].split("verified", 1)[1])


if __name__ == "__main__":
    unittest.main()
