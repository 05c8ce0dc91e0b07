"""The bundled MCP servers, driven directly over pipes (no daemon).

build/mcpjob-demo-server must be a correct MCP stdio server, and
build/tests/servers/mcp-fault must misbehave exactly as its --mode says,
since the MCP client's tests rely on both.
"""
import json
import os
import select
import shutil
import subprocess
import signal
import tempfile
import threading
import time
import unittest

from harness import BUILD

DEMO = os.path.join(BUILD, "mcpjob-demo-server")
FAULT = os.path.join(BUILD, "tests", "servers", "mcp-fault")


class StdioServer:
    """A minimal MCP client on a server's stdin/stdout."""

    def __init__(self, argv, cwd=None, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd, env=env)
        self.buf = b""
        self.next_id = 1

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv_line(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError("no line from the server within %.1fs" % timeout)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise EOFError("server closed stdout")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self, timeout=10.0):
        return json.loads(self.recv_line(timeout))

    def request(self, method, params=None):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return rid

    def call(self, method, params=None):
        """Send a request and return its response, skipping notifications."""
        rid = self.request(method, params)
        while True:
            m = self.recv()
            if m.get("id") == rid and "method" not in m:
                return m

    def initialize(self, version="2025-11-25"):
        r = self.call("initialize", {"protocolVersion": version, "capabilities": {},
                                     "clientInfo": {"name": "e2e", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def tool(self, name, arguments=None, meta=None):
        params = {"name": name, "arguments": arguments or {}}
        if meta:
            params["_meta"] = meta
        return self.call("tools/call", params)

    def close(self, timeout=5):
        """Close stdin and return the exit status."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


class ServerTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mcpjob-srv-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            if s.proc.poll() is None:
                s.proc.kill()
            s.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, argv, cwd=None, env=None):
        s = StdioServer(argv, cwd=cwd or self.tmp, env=env)
        self.servers.append(s)
        return s

    def text(self, resp):
        self.assertIn("result", resp, resp)
        return resp["result"]["content"][0]["text"]


class DemoServerTest(ServerTestCase):
    def notifications_from_default_dir(self, env):
        # cwd "/" is not writable for a test run as a normal user, nor under
        # the unit's ProtectSystem=strict: the default must not be ".".
        env = dict({"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, **env)
        s = self.start([DEMO], cwd="/", env=env)
        s.initialize()
        r = s.tool("getNotifications", {"since": None})
        self.assertNotIn("isError", r["result"], r)
        self.assertEqual(self.text(r), "3 new notifications")
        self.assertEqual(s.close(), 0)

    def test_default_data_dir_without_a_writable_home_is_a_private_dir_in_tmpdir(self):
        # What the system unit gives a server run as nobody: HOME=/nonexistent.
        self.notifications_from_default_dir({"HOME": "/nonexistent", "TMPDIR": self.tmp})
        data = os.path.join(self.tmp, "mcpjob-demo-%d" % os.geteuid())
        self.assertTrue(os.path.isfile(os.path.join(data, "notifications.json")))
        self.assertEqual(os.stat(data).st_mode & 0o777, 0o700)

    def test_default_data_dir_with_a_writable_home_is_under_local_state(self):
        home = os.path.join(self.tmp, "home")
        os.mkdir(home)
        self.notifications_from_default_dir({"HOME": home, "TMPDIR": "/nonexistent"})
        self.assertTrue(os.path.isfile(
            os.path.join(home, ".local", "state", "mcpjob-demo", "notifications.json")))

    def test_default_data_dir_refuses_a_tmp_dir_someone_else_made(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a directory owned by another user")
        data = os.path.join(self.tmp, "mcpjob-demo-%d" % os.geteuid())
        os.mkdir(data)
        os.chown(data, 65534, 65534)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "TMPDIR": self.tmp}
        s = self.start([DEMO], cwd="/", env=env)
        self.assertNotEqual(s.proc.wait(timeout=10), 0)
        err = s.proc.stderr.read().decode()
        self.assertIn("not a directory of this user", err)
        self.assertIn("--data-dir", err)

    def demo(self):
        self.data = os.path.join(self.tmp, "data")
        s = self.start([DEMO, "--data-dir", self.data])
        return s

    def test_initialize_negotiates_version_and_lists_tools(self):
        s = self.demo()
        r = s.initialize()["result"]
        self.assertEqual(r["protocolVersion"], "2025-11-25")
        self.assertEqual(r["serverInfo"]["name"], "mcpjob-demo-server")
        self.assertIn("tools", r["capabilities"])
        tools = s.call("tools/list")["result"]
        self.assertNotIn("nextCursor", tools)
        by_name = {t["name"]: t for t in tools["tools"]}
        self.assertEqual(sorted(by_name), ["getNotifications", "syncData"])
        for t in by_name.values():
            self.assertEqual(t["inputSchema"]["type"], "object")
            self.assertEqual(t["inputSchema"]["required"], [])
        self.assertIn("since", by_name["getNotifications"]["inputSchema"]["properties"])
        self.assertEqual(s.close(), 0)

    def test_initialize_answers_an_older_supported_version_and_latest_otherwise(self):
        s = self.demo()
        self.assertEqual(s.initialize("2025-03-26")["result"]["protocolVersion"], "2025-03-26")
        t = self.start([DEMO, "--data-dir", self.data])
        self.assertEqual(t.initialize("2024-01-01")["result"]["protocolVersion"], "2025-11-25")

    def test_sync_data_appends_to_the_file_and_counts(self):
        s = self.demo()
        s.initialize()
        r1 = s.tool("syncData", {"data": [{"a": 1}, {"b": 2}], "lastSync": None})
        self.assertEqual(self.text(r1), "synced 2 items")
        self.assertEqual(r1["result"]["structuredContent"], {"synced": 2, "total": 2})
        self.assertNotIn("isError", r1["result"])
        with open(os.path.join(self.data, "synced.json")) as f:
            first = json.load(f)
        self.assertEqual([e["data"] for e in first], [{"a": 1}, {"b": 2}])
        r2 = s.tool("syncData", {"data": "one", "lastSync": "2026-01-01T00:00:00Z"})
        self.assertEqual(r2["result"]["structuredContent"], {"synced": 1, "total": 3})
        with open(os.path.join(self.data, "synced.json")) as f:
            second = json.load(f)
        self.assertEqual(len(second), 3)
        self.assertEqual(second[2]["data"], "one")
        self.assertEqual(second[2]["last_sync"], "2026-01-01T00:00:00Z")
        r3 = s.tool("syncData", {})
        self.assertEqual(r3["result"]["structuredContent"], {"synced": 0, "total": 3})
        self.assertEqual(os.listdir(self.data).count("synced.json"), 1)
        self.assertFalse([n for n in os.listdir(self.data) if ".tmp." in n])

    def test_sync_data_rejects_a_non_string_last_sync(self):
        s = self.demo()
        s.initialize()
        r = s.tool("syncData", {"data": [1], "lastSync": 5})
        self.assertTrue(r["result"]["isError"])
        self.assertIn("lastSync", self.text(r))
        self.assertFalse(os.path.exists(os.path.join(self.data, "synced.json")))

    def test_get_notifications_filters_by_since(self):
        s = self.demo()
        s.initialize()
        r = s.tool("getNotifications", {"since": None})
        self.assertEqual(self.text(r), "3 new notifications")
        notes = r["result"]["structuredContent"]["notifications"]
        self.assertEqual(len(notes), 3)
        self.assertEqual(sorted(notes[0]), ["body", "payload", "title"])
        with open(os.path.join(self.data, "notifications.json")) as f:
            samples = json.load(f)
        second = samples[1]["time"]
        r = s.tool("getNotifications", {"since": second})
        self.assertEqual(self.text(r), "1 new notifications")
        self.assertEqual(r["result"]["structuredContent"]["notifications"][0]["title"],
                         samples[2]["title"])
        r = s.tool("getNotifications", {"since": "2999-01-01T00:00:00+02:00"})
        self.assertEqual(r["result"]["structuredContent"], {"notifications": []})
        r = s.tool("getNotifications", {"since": "yesterday"})
        self.assertTrue(r["result"]["isError"])

    def test_unknown_tool_is_a_tool_error_and_unknown_method_is_32601(self):
        s = self.demo()
        s.initialize()
        r = s.tool("nope")
        self.assertTrue(r["result"]["isError"])
        self.assertEqual(self.text(r), "unknown tool: nope")
        self.assertEqual(s.call("resources/list")["error"]["code"], -32601)
        self.assertEqual(s.call("ping"), {"jsonrpc": "2.0", "id": s.next_id - 1, "result": {}})

    def test_garbage_gets_json_rpc_errors_and_the_server_keeps_serving(self):
        s = self.demo()
        s.initialize()
        s.send_raw(b"this is not json\n")
        self.assertEqual(s.recv()["error"]["code"], -32700)
        s.send_raw(b"\xff\xfe{\n")
        self.assertEqual(s.recv()["error"]["code"], -32700)
        s.send_raw(b'{"jsonrpc":"1.0","id":7,"method":"ping"}\n')
        self.assertEqual(s.recv(), {"jsonrpc": "2.0", "id": 7, "error": {
            "code": -32600, "message": '"jsonrpc" must be "2.0"'}})
        s.send_raw(b'"valid JSON, not a message"\n')
        self.assertEqual(s.recv()["error"]["code"], -32600)
        s.send_raw(b'[{"jsonrpc":"2.0","id":8,"method":"ping"}]\n')
        r = s.recv()
        self.assertEqual((r["id"], r["error"]["code"]), (None, -32600))
        s.send_raw(b'{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"'
                   + b"y" * (4 << 20) + b'"}}\n')
        self.assertEqual(s.recv()["id"], "big")
        self.assertEqual(s.call("ping")["result"], {})
        self.assertIsNone(s.proc.poll())

    def test_creates_samples_once_and_keeps_an_edited_file(self):
        s = self.demo()
        s.initialize()
        path = os.path.join(self.data, "notifications.json")
        with open(path, "w") as f:
            json.dump([{"time": "2026-05-01T10:00:00Z", "title": "mine", "body": "b",
                        "payload": None}], f)
        s.close()
        t = self.start([DEMO, "--data-dir", self.data])
        t.initialize()
        r = t.tool("getNotifications")
        self.assertEqual([n["title"] for n in r["result"]["structuredContent"]["notifications"]],
                         ["mine"])


class FaultServerTest(ServerTestCase):
    def fault(self, mode, *extra):
        self.log = os.path.join(self.tmp, "received.log")
        self.pids = os.path.join(self.tmp, "pids")
        return self.start([FAULT, "--mode", mode, "--log", self.log, "--pidfile", self.pids]
                          + list(extra))

    def received(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_ok_mode_echoes_and_logs_what_it_received(self):
        s = self.fault("ok")
        s.initialize()
        self.assertEqual(self.text(s.tool("echo", {"message": "hi"})), "Echo: hi")
        s.close()
        methods = [m.get("method") for m in self.received()]
        self.assertEqual(methods, ["initialize", "notifications/initialized", "tools/call"])
        with open(self.pids) as f:
            self.assertEqual(f.read(), "%d\n" % s.proc.pid)

    def test_ok_mode_slow_sends_progress_then_done(self):
        s = self.fault("ok")
        s.initialize()
        rid = s.request("tools/call", {"name": "slow", "arguments": {"seconds": 0.3, "steps": 3},
                                       "_meta": {"progressToken": "tok"}})
        got = [s.recv() for _ in range(4)]
        self.assertEqual([m["params"]["progress"] for m in got[:3]], [1, 2, 3])
        self.assertEqual(got[0]["params"], {"progressToken": "tok", "progress": 1, "total": 3,
                                            "message": "step 1"})
        self.assertEqual((got[3]["id"], self.text(got[3])), (rid, "done"))

    def test_ok_mode_cancel_stops_slow_without_a_reply(self):
        s = self.fault("ok")
        s.initialize()
        rid = s.request("tools/call", {"name": "slow", "arguments": {"seconds": 0.4, "steps": 4}})
        s.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid}})
        self.assertRaises(AssertionError, s.recv, 0.7)
        self.assertEqual(s.call("ping")["result"], {})

    def test_ok_mode_fail_and_structured(self):
        s = self.fault("ok")
        s.initialize()
        r = s.tool("fail")
        self.assertEqual((r["result"]["isError"], self.text(r)), (True, "it failed"))
        self.assertEqual(s.tool("structured")["result"]["structuredContent"], {"value": 42})

    def test_exit_before_init_exits_3_with_a_message(self):
        s = self.fault("exit-before-init")
        self.assertEqual(s.proc.wait(timeout=5), 3)
        self.assertIn(b"fatal: cannot open database", s.proc.stderr.read())

    def test_die_mid_call_exits_1_without_a_reply(self):
        s = self.fault("die-mid-call")
        s.initialize()
        s.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        self.assertEqual(s.proc.wait(timeout=5), 1)
        self.assertRaises(EOFError, s.recv)

    def test_never_answer_keeps_logging_the_cancel(self):
        s = self.fault("never-answer")
        s.initialize()
        rid = s.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        self.assertRaises(AssertionError, s.recv, 0.3)
        s.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": rid, "reason": "timeout"}})
        self.assertEqual(s.call("ping")["result"], {})
        self.assertEqual(self.received()[-2]["params"]["requestId"], rid)

    def test_garbage_then_a_correct_reply(self):
        s = self.fault("garbage")
        s.initialize()
        rid = s.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        lines = [s.recv_line() for _ in range(4)]
        self.assertEqual(lines[:2], [b"not json", b'{"half":'])
        self.assertIn(b"\xff", lines[2])
        self.assertEqual(json.loads(lines[3])["id"], rid)

    def test_huge_line_is_ten_mebibytes(self):
        s = self.fault("huge-line")
        s.initialize()
        s.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        line = s.recv_line(timeout=20)
        self.assertEqual(len(line), 10 * 1024 * 1024 + 2)
        self.assertRaises(AssertionError, s.recv_line, 0.2)

    def test_bad_utf8_reply(self):
        s = self.fault("bad-utf8")
        s.initialize()
        s.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        line = s.recv_line()
        self.assertIn(b"\xff", line)
        self.assertRaises(UnicodeDecodeError, line.decode, "utf-8")

    def test_server_requests_checks_the_answers(self):
        for answers_right in (True, False):
            s = self.fault("server-requests")
            s.initialize()
            rid = s.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
            for _ in range(4):
                m = s.recv()
                # Right: ping and elicitation (declined by policy) get results.
                if m["method"] in ("ping", "elicitation/create") or not answers_right:
                    s.send({"jsonrpc": "2.0", "id": m["id"], "result": {}})
                else:
                    s.send({"jsonrpc": "2.0", "id": m["id"],
                            "error": {"code": -32601, "message": "not supported"}})
            r = s.recv()
            self.assertEqual(r["id"], rid)
            if answers_right:
                self.assertEqual(self.text(r), "answers ok")
            else:
                self.assertTrue(r["result"]["isError"])
                self.assertIn("roots/list (id 0): expected error -32601", self.text(r))

    def test_progress_after_cancel_sends_five_more(self):
        s = self.fault("progress-after-cancel")
        s.initialize()
        rid = s.request("tools/call", {"name": "echo", "arguments": {},
                                       "_meta": {"progressToken": 9}})
        self.assertEqual(s.recv()["params"]["progressToken"], 9)
        s.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": rid}})
        after = []
        while True:
            try:
                after.append(s.recv(timeout=0.5))
            except AssertionError:
                break
        # Those in flight before the cancel arrived, then exactly five.
        self.assertGreaterEqual(len(after), 5)
        self.assertLessEqual(len(after), 7)
        self.assertTrue(all(m["method"] == "notifications/progress" for m in after))

    def test_linger_outlives_stdin_close_until_sigterm(self):
        s = self.fault("linger")
        s.initialize()
        s.proc.stdin.close()
        self.assertRaises(subprocess.TimeoutExpired, s.proc.wait, 0.5)
        s.proc.send_signal(signal.SIGTERM)
        self.assertEqual(s.proc.wait(timeout=5), -signal.SIGTERM)

    def test_stubborn_ignores_sigterm(self):
        s = self.fault("stubborn")
        s.initialize()
        s.proc.stdin.close()
        s.proc.send_signal(signal.SIGTERM)
        self.assertRaises(subprocess.TimeoutExpired, s.proc.wait, 0.5)
        s.proc.kill()
        self.assertEqual(s.proc.wait(timeout=5), -signal.SIGKILL)

    def test_stderr_flood_answers_once_stderr_is_drained(self):
        s = self.fault("stderr-flood")
        drained = []
        reader = threading.Thread(target=lambda: drained.append(s.proc.stderr.read()))
        reader.start()
        s.initialize()
        self.assertEqual(self.text(s.tool("echo", {"message": "x"})), "Echo: x")
        s.proc.stdin.close()
        reader.join(timeout=10)
        self.assertGreater(len(drained[0]), 1 << 20)

    def test_bad_version(self):
        s = self.fault("bad-version")
        self.assertEqual(s.initialize()["result"]["protocolVersion"], "1999-01-01")

    def test_slow_start_waits_before_answering(self):
        s = self.fault("slow-start", "--delay-ms", "300")
        t0 = time.monotonic()
        s.initialize()
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        with open(self.pids) as f:
            self.assertEqual(len(f.read().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
