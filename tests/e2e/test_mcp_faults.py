"""MCP servers that misbehave, against the real daemon: each fault ends as a
failed run with a message a person understands, and the daemon stays
healthy (the next job runs, the socket answers)."""
import json
import os
import time

from harness import BUILD, E2ETestCase, wait_until

FAULT = os.path.join(BUILD, "tests", "servers", "mcp-fault")


class McpFaults(E2ETestCase):
    def start(self, mode, tool="echo", args=None, timeout="5s", retry=None, extra=()):
        self.pidfile = os.path.join(self.tmp, "pids")
        self.sent = os.path.join(self.tmp, "sent.log")
        job = {"id": "call", "interval": "24h", "initial_delay": "24h", "timeout": timeout,
               "action": {"mcp": {"server": "fault", "tool": tool,
                                  "arguments": args if args is not None else {"message": "hi"}}}}
        if retry:
            job["retry"] = retry
        cfg = {"mcpServers": {
                   "fault": {"command": FAULT,
                             "args": ["--mode", mode, "--pidfile", self.pidfile,
                                      "--log", self.sent] + list(extra)},
                   "good": {"command": FAULT, "args": ["--mode", "ok"]}},
               "jobs": [job,
                        {"id": "healthy", "interval": "24h", "initial_delay": "24h",
                         "action": {"mcp": {"server": "good", "tool": "echo",
                                            "arguments": {"message": "still fine"}}}}]}
        self.d = self.daemon(cfg)
        return self.d

    def run_call(self):
        r = self.d.ctl("run", "call", "--wait", timeout=60)
        run = self.d.history("call")[0]
        return r, run

    def assert_healthy(self):
        r = self.d.ctl("run", "healthy", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr + self.d.log()[-3000:])
        self.assertEqual(self.d.history("healthy")[0]["message"], "Echo: still fine")
        self.assertEqual(self.d.result("daemon.hello")["name"], "mcpjobd")

    def test_ok_server_call_succeeds(self):
        self.start("ok")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(run["outcome"], "success")
        self.assertEqual(run["message"], "Echo: hi")

    def test_server_not_found(self):
        cfg = {"mcpServers": {"gone": {"command": "/nonexistent/mcp-server"}},
               "jobs": [{"id": "call", "interval": "24h", "initial_delay": "24h",
                         "retry": {"max_attempts": 1},
                         "action": {"mcp": {"server": "gone", "tool": "x", "arguments": {}}}}]}
        d = self.daemon(cfg)
        r = d.ctl("run", "call", "--wait")
        self.assertEqual(r.returncode, 1)
        run = d.history("call")[0]
        self.assertNotEqual(run["outcome"], "success")
        self.assertIn("/nonexistent/mcp-server", run["message"])

    def test_server_exits_before_initialize(self):
        self.start("exit-before-init")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(run["outcome"], "retry")
        self.assertIn("3", run["message"])  # its exit status
        self.assertIn("cannot open database", run["message"] + (run["output"] or ""))
        self.assert_healthy()

    def test_server_dies_mid_call(self):
        self.start("die-mid-call")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(run["outcome"], "retry")
        self.assertRegex(run["message"], "exit|died|status")
        self.assert_healthy()
        # A crashed server is started again on next use.
        self.run_call()
        pids = open(self.pidfile).read().split()
        self.assertEqual(len(pids), 2)

    def test_server_never_answers_times_out_and_is_told(self):
        self.start("never-answer", timeout="1s")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(run["outcome"], "timeout")
        self.assertIn("timed out", run["message"])
        def sent_msgs():
            return [json.loads(l) for l in open(self.sent) if l.strip()]
        # The server logs the cancel when it reads it, which may be just after
        # the run was recorded.
        wait_until(lambda: any(m.get("method") == "notifications/cancelled" for m in sent_msgs()),
                   timeout=5, what="the server to receive notifications/cancelled")
        sent = sent_msgs()
        cancels = [m for m in sent if m.get("method") == "notifications/cancelled"]
        self.assertEqual(len(cancels), 1, sent)
        call = [m for m in sent if m.get("method") == "tools/call"][0]
        self.assertEqual(cancels[0]["params"]["requestId"], call["id"])
        self.assert_healthy()

    def test_timeout_waiting_for_the_reply_says_so(self):
        self.start("never-answer", timeout="1s")
        r, run = self.run_call()
        self.assertEqual(run["outcome"], "timeout")
        self.assertIn("timed out after 1s waiting for the reply to tools/call from server fault",
                      run["message"])

    def test_timeout_during_initialize_says_so(self):
        self.start("slow-start", timeout="1s", extra=["--delay-ms", "20000"])
        r, run = self.run_call()
        self.assertEqual(run["outcome"], "timeout")
        self.assertIn("timed out after 1s during initialize", run["message"])
        self.assertIn("server fault", run["message"])

    def test_timeout_after_a_reply_that_could_not_be_parsed_says_so(self):
        self.start("garbage-then-silence", timeout="1s")
        r, run = self.run_call()
        self.assertEqual(run["outcome"], "timeout")
        self.assertIn("after a reply from server fault that could not be parsed", run["message"])

    def test_a_malformed_reply_that_names_our_call_fails_it_at_once(self):
        # Invalid UTF-8 in a reply with our id: the call fails with why, not by timing out.
        self.start("bad-utf8", timeout="30s")
        r, run = self.run_call()
        self.assertEqual(run["outcome"], "failure", run)  # a timeout would say "timeout"

    def test_garbage_lines_are_survived(self):
        self.start("garbage")
        r, run = self.run_call()
        self.assertEqual(run["outcome"], "success", run)
        self.assert_healthy()

    def test_ten_mib_line_fails_the_call_not_the_daemon(self):
        self.start("huge-line")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 1)
        self.assertIn(run["outcome"], ("retry", "failure"))
        self.assertRegex(run["message"], "(?i)line|long|too")
        self.assert_healthy()

    def test_invalid_utf8_fails_the_call_clearly(self):
        self.start("bad-utf8", timeout="3s")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 1)
        self.assertNotEqual(run["outcome"], "success")
        self.assertTrue(run["message"])
        self.assert_healthy()

    def test_requests_from_the_server_are_answered(self):
        self.start("server-requests")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 0, run)
        self.assertEqual(run["message"], "answers ok")

    def test_progress_after_cancel_is_dropped(self):
        self.start("progress-after-cancel", timeout="30s")
        self.d.ctl("run", "call", check=True)
        wait_until(lambda: self.d.status("call")["progress"], timeout=5, what="progress")
        c = self.d.ctl("cancel", "call")
        self.assertEqual(c.returncode, 0, c.stderr)
        runs = self.d.wait_runs("call", 1, timeout=10)
        self.assertEqual(runs[0]["outcome"], "cancelled")
        time.sleep(0.8)  # the server keeps sending progress for the old token
        st = self.d.status("call")
        self.assertEqual(st["state"], "scheduled")
        self.assertIsNone(st["progress"])
        self.assert_healthy()

    def test_unsupported_protocol_version_names_both(self):
        self.start("bad-version")
        r, run = self.run_call()
        self.assertEqual(r.returncode, 1)
        self.assertIn("1999-01-01", run["message"])
        self.assertIn("2025-11-25", run["message"])
        self.assert_healthy()

    def test_tool_error_is_a_failure_with_its_text(self):
        self.start("ok", tool="fail", args={})
        r, run = self.run_call()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(run["outcome"], "failure")
        self.assertEqual(run["message"], "it failed")

    def test_transport_failures_are_retried_with_backoff(self):
        self.start("die-mid-call", retry={"max_attempts": 2, "initial": "1s"})
        self.d.write_config(self.d.config_path and open(self.d.config_path).read())
        # A scheduled run (manual runs are not retried) via a short reload.
        cfg = json.load(open(self.d.config_path))
        cfg["jobs"][0]["initial_delay"] = "100ms"
        cfg["jobs"][0]["id"] = "sched"
        self.d.write_config(cfg)
        self.d.ctl("reload", check=True)
        runs = self.d.wait_runs("sched", 2, timeout=15)
        self.assertEqual(sorted(r["attempt"] for r in runs), [1, 2])
        self.assertTrue(all(r["outcome"] == "retry" for r in runs))


class Probe(E2ETestCase):
    def test_check_config_probe_finds_a_misspelled_tool(self):
        import subprocess
        from harness import MCPJOBD
        demo = os.path.join(BUILD, "mcpjob-demo-server")
        cfg = {"mcpServers": {"primary-server": {"command": demo,
                                                 "args": ["--data-dir", self.tmp]}},
               "jobs": [{"id": "sync-data", "interval": "15m",
                         "action": {"mcp": {"server": "primary-server", "tool": "syncDat",
                                            "arguments": {}}}},
                        {"id": "notes", "interval": "15m",
                         "action": {"mcp": {"server": "primary-server",
                                            "tool": "getNotifications", "arguments": {}}}}]}
        path = os.path.join(self.tmp, "mcpjobd.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([MCPJOBD, "--check-config", "--probe", "--config", path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('%s: job sync-data: server primary-server has no tool "syncDat"' % path,
                      r.stdout)
        self.assertIn("syncData", r.stdout)  # the tools it does have
        self.assertNotIn("job notes", r.stdout)
        cfg["jobs"][0]["action"]["mcp"]["tool"] = "syncData"
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([MCPJOBD, "--check-config", "--probe", "--config", path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)
