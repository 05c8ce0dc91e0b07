"""Hostile and broken peers against the real daemon: a client that never
reads its replies, a client that half-closes, a daemon out of file
descriptors, an MCP server that floods us. Each one may cost the daemon a
bounded amount of memory and CPU (read from /proc, with generous limits),
and the daemon goes on serving everyone else.

RSS figures are skipped under ASan (its quarantine keeps freed memory);
everything else is asserted in both builds."""
import errno
import json
import os
import resource
import socket
import time

from harness import BUILD, SANITIZED, E2ETestCase, RpcClient, wait_until

FAULT = os.path.join(BUILD, "tests", "servers", "mcp-fault")
RSS_SLACK_KB = 30 * 1024   # what one hostile peer may add to the daemon
CPU_BUSY_S = 1.5           # CPU seconds in 5 s that count as spinning
TICKS = os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def requests(method, params, n):
    out = []
    for i in range(n):
        m = {"jsonrpc": "2.0", "id": i + 1, "method": method}
        if params is not None:
            m["params"] = params
        out.append(json.dumps(m).encode() + b"\n")
    return b"".join(out)


class ChaosPeers(E2ETestCase):
    def flood_without_reading(self, d, payload, seconds=40):
        """Send @payload and never read; return (peak RSS growth in KiB,
        whether the daemon dropped us). The daemon's CPU time meanwhile is
        bounded: pausing a reader must not turn into a busy loop."""
        pid = d.proc.pid
        base, cpu0, t0 = rss_kb(pid), cpu_s(pid), time.monotonic()
        peak = base
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket)
        s.setblocking(False)
        view = memoryview(payload)
        sent = 0
        dropped = False
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                try:
                    if sent < len(payload):
                        sent += s.send(view[sent:sent + 65536])
                    else:
                        s.send(b"\n")  # blank lines are ignored: a probe for the drop
                        time.sleep(0.2)
                except BlockingIOError:
                    time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
                    break
                peak = max(peak, rss_kb(pid))
        finally:
            s.close()
        busy, wall = cpu_s(pid) - cpu0, time.monotonic() - t0
        self.assertLess(busy, max(CPU_BUSY_S, wall / 2),
                        "the daemon used %.1f s CPU in %.1f s for one client" % (busy, wall))
        return peak - base, dropped

    def assert_rss_growth(self, grown_kb, what):
        if not SANITIZED:
            self.assertLess(grown_kb, RSS_SLACK_KB,
                            "%s grew the daemon by %d KiB" % (what, grown_kb))

    def test_client_pipelining_60000_jobs_list_without_reading_is_bounded_and_dropped(self):
        jobs = [self.exec_job("job-%d" % i, ["/bin/true"], description="x" * 200)
                for i in range(5)]
        d = self.daemon({"jobs": jobs})
        grown, dropped = self.flood_without_reading(d, requests("jobs.list", None, 60000))
        self.assert_rss_growth(grown, "60000 unread jobs.list replies")
        self.assertTrue(dropped, "the daemon kept a client that does not read:\n" + d.log()[-2000:])
        self.assertIn("does not read its replies", d.log())
        self.assertEqual(d.result("daemon.hello")["name"], "mcpjobd")

    def test_client_pipelining_history_of_64k_outputs_without_reading_is_bounded(self):
        big = self.exec_job("big", ["/bin/sh", "-c", "head -c 65536 /dev/zero | tr '\\0' x"])
        d = self.daemon({"jobs": [big]})
        for _ in range(20):
            r = d.ctl("run", "big", "--wait")
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(d.history("big")[0]["output"]), 65536)
        grown, dropped = self.flood_without_reading(
            d, requests("job.history", {"job": "big"}, 60))
        self.assert_rss_growth(grown, "60 unread job.history replies of 1.3 MB each")
        self.assertTrue(dropped, "the daemon kept a client that does not read")
        self.assertEqual(d.result("daemon.hello")["name"], "mcpjobd")

    def test_a_client_that_reads_slowly_gets_every_reply(self):
        d = self.daemon({"jobs": [self.exec_job("j", ["/bin/true"], description="y" * 500)]})
        n = 3000
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket)
        s.settimeout(30)
        s.sendall(requests("jobs.list", None, n))
        got, buf = 0, b""
        while got < n:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "connection closed after %d of %d replies" % (got, n))
            buf += chunk
            got += chunk.count(b"\n")
            time.sleep(0.0005)
        s.close()
        self.assertEqual(got, n)

    def test_half_closed_client_gets_all_50_answers(self):
        # 50 replies of ~10 KB: more than the socket buffer holds, so most of
        # them are still queued when the daemon reads the end of the input.
        jobs = [self.exec_job("j%d" % i, ["/bin/true"], description="z" * 2000) for i in range(5)]
        d = self.daemon({"jobs": jobs})
        body = b"".join([requests("jobs.list", None, 25),
                         requests("job.status", {"job": "j0"}, 25).replace(b'"id": ', b'"id": 100')])
        pid = d.proc.pid
        rss0, cpu0 = rss_kb(pid), cpu_s(pid)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket)
        s.settimeout(20)
        s.sendall(body)
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        replies = [json.loads(l) for l in buf.splitlines()]
        self.assertEqual(len(replies), 50, buf[-500:])
        self.assertTrue(all("result" in r for r in replies), replies[:3])
        self.assertEqual(len({r["id"] for r in replies}), 50)
        self.assert_rss_growth(rss_kb(pid) - rss0, "a half-closing client")
        self.assertLess(cpu_s(pid) - cpu0, CPU_BUSY_S * 4)

    def test_half_closed_client_with_a_trailing_line_without_newline_is_answered(self):
        d = self.daemon({"jobs": []})
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket)
        s.settimeout(20)
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.hello"}')
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        self.assertEqual(json.loads(buf)["result"]["name"], "mcpjobd")

    def test_out_of_file_descriptors_pauses_accepting_without_spinning_then_recovers(self):
        d = self.daemon({"max_connections_per_uid": 10000, "jobs": []})
        pid = d.proc.pid
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (48, 48))
        conns = []
        try:
            for _ in range(120):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                if s.connect_ex(d.socket) != 0:
                    s.close()
                    break
                conns.append(s)
            wait_until(lambda: "Too many open files" in d.log(), timeout=10,
                       what="the daemon to run out of file descriptors")
            log0, cpu0 = os.path.getsize(d.log_path), cpu_s(pid)
            time.sleep(5)
            busy = cpu_s(pid) - cpu0
            logged = os.path.getsize(d.log_path) - log0
            self.assertLess(busy, CPU_BUSY_S, "the daemon spun at EMFILE: %.2f s CPU in 5 s" % busy)
            self.assertLess(logged, 4096, "the daemon flooded its log at EMFILE: %d bytes in 5 s"
                            % logged)
            self.assertIn("not accepting connections", d.log())
        finally:
            for s in conns:
                s.close()
        r = wait_until(lambda: self.hello_ok(d), timeout=20, what="the daemon to serve again")
        self.assertTrue(r)

    @staticmethod
    def hello_ok(d):
        try:
            return d.result("daemon.hello")["name"] == "mcpjobd"
        except (OSError, EOFError, AssertionError):
            return False

    def test_strings_with_nul_are_refused_not_cut_at_the_nul(self):
        d = self.daemon({"jobs": [self.exec_job("tick", ["/bin/true"])]})
        c = d.client()
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"daemon.hello\\u0000evil"}\n')
        r = c.recv_msg()
        self.assertEqual(r["error"]["code"], -32600, r)
        self.assertIn("NUL", r["error"]["message"])
        c.send_raw(b'{"jsonrpc":"2.0","id":2,"method":"job.status",'
                   b'"params":{"job":"tick\\u0000/../../etc"}}\n')
        r = c.recv_msg()
        self.assertEqual(r["error"]["code"], -32602, r)
        self.assertIn('param "job" must not contain a NUL', r["error"]["message"])
        c.send_raw(b'{"jsonrpc":"2.0","id":3,"method":"events.subscribe",'
                   b'"params":{"jobs":["tick","x\\u0000y"]}}\n')
        r = c.recv_msg()
        self.assertEqual(r["error"]["code"], -32602, r)
        self.assertIn('param "jobs[1]"', r["error"]["message"])
        self.assertEqual(c.call("job.status", {"job": "tick"})["result"]["id"], "tick")
        c.close()

    def test_flooding_mcp_server_is_stopped_and_fails_the_run_with_a_bounded_daemon(self):
        pidfile = os.path.join(self.tmp, "pids")
        d = self.daemon({
            "mcpServers": {"flood": {"command": FAULT,
                                     "args": ["--mode", "flood", "--pidfile", pidfile]},
                           "good": {"command": FAULT, "args": ["--mode", "ok"]}},
            "jobs": [{"id": "call", "interval": "24h", "initial_delay": "24h",
                      "retry": {"max_attempts": 1},
                      "action": {"mcp": {"server": "flood", "tool": "echo",
                                         "arguments": {"message": "hi"}}}},
                     {"id": "healthy", "interval": "24h", "initial_delay": "24h",
                      "action": {"mcp": {"server": "good", "tool": "echo",
                                         "arguments": {"message": "ok"}}}}]})
        pid = d.proc.pid
        base, cpu0 = rss_kb(pid), cpu_s(pid)
        r = d.ctl("run", "call", "--wait", timeout=60)
        grown = rss_kb(pid) - base
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        run = d.history("call")[0]
        self.assertNotEqual(run["outcome"], "success")
        self.assertIn("does not read its stdin", run["message"])
        self.assertIn("flood", run["message"])
        self.assert_rss_growth(grown, "a flooding MCP server")
        self.assertLess(cpu_s(pid) - cpu0, 20, "the flood cost the daemon too much CPU")
        server = int(open(pidfile).read().split()[0])
        wait_until(lambda: not os.path.exists("/proc/%d" % server) or
                   open("/proc/%d/stat" % server).read().rsplit(")", 1)[1].split()[0] == "Z",
                   timeout=10, what="the flooding server to be stopped")
        r = d.ctl("run", "healthy", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
