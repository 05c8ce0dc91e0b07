"""End-to-end: mcp jobs against the official reference server
@modelcontextprotocol/server-everything (installed by tests/bootstrap.sh into
build/npm). Skipped loudly when it is missing."""
import json
import os
import time
import unittest

from harness import E2ETestCase, NPM_BIN, wait_until

EVERYTHING = os.path.join(NPM_BIN, "mcp-server-everything")


def mcp_job(job_id, tool, arguments=None, **extra):
    j = {"id": job_id, "name": job_id, "interval": extra.pop("interval", "24h"),
         "initial_delay": extra.pop("initial_delay", "24h"),
         "action": {"mcp": {"server": "everything", "tool": tool,
                            "arguments": arguments or {}}}}
    j.update(extra)
    return j


def config(*jobs):
    return {"mcpServers": {"everything": {"command": EVERYTHING}}, "jobs": list(jobs)}


def server_children(daemon_pid):
    """Processes whose parent is the daemon and whose command line names server-everything."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == daemon_pid and "everything" in cmd:
            found.append(int(d))
    return found


class McpJobs(E2ETestCase):
    def setUp(self):
        super().setUp()
        if not os.access(EVERYTHING, os.X_OK):
            self.skipTest("SKIPPED: server-everything not installed: run tests/bootstrap.sh")

    def run_wait(self, d, job):
        return d.result("job.run", {"job": job, "wait": True})

    def test_echo_job_succeeds_with_echoed_text(self):
        d = self.daemon(config(mcp_job("echo", "echo", {"message": "hello from ${job_id}"})))
        run = self.run_wait(d, "echo")
        self.assertEqual(run["outcome"], "success", run)
        self.assertEqual(run["message"], "Echo: hello from echo")
        self.assertEqual(d.status("echo")["last_outcome"], "success")

    def test_unknown_tool_fails_with_server_text(self):
        d = self.daemon(config(mcp_job("typo", "no-such-tool")))
        run = self.run_wait(d, "typo")
        self.assertEqual(run["outcome"], "failure", run)
        self.assertIn("no-such-tool", run["message"])

    def test_long_running_operation_shows_progress(self):
        d = self.daemon(config(mcp_job("long", "trigger-long-running-operation",
                                       {"duration": 3, "steps": 6})))
        d.result("job.run", {"job": "long"})
        st = wait_until(lambda: (lambda s: s if s.get("progress") else None)(d.status("long")),
                        timeout=20, what="progress in job.status")
        self.assertEqual(st["state"], "running")
        self.assertEqual(st["progress"]["total"], 6)
        self.assertGreater(st["progress"]["progress"], 0)
        r = d.ctl("status", "long")
        self.assertEqual(r.returncode, 0, r.stderr)
        runs = d.wait_runs("long", 1, timeout=20)
        self.assertEqual(runs[0]["outcome"], "success", runs[0])
        self.assertIsNone(d.status("long")["progress"])

    def test_cancel_ends_a_running_call(self):
        d = self.daemon(config(mcp_job("long", "trigger-long-running-operation",
                                       {"duration": 30, "steps": 30})))
        d.result("job.run", {"job": "long"})
        wait_until(lambda: d.status("long").get("progress"), timeout=20, what="progress")
        d.result("job.cancel", {"job": "long"})
        runs = d.wait_runs("long", 1, timeout=10)
        self.assertEqual(runs[0]["outcome"], "cancelled", runs[0])
        # The server is still usable afterwards (late progress was dropped).
        d.write_config(config(mcp_job("long", "echo", {"message": "after"})))
        d.result("daemon.reload")
        run = self.run_wait(d, "long")
        self.assertEqual(run["outcome"], "success", run)

    def test_timeout_ends_the_call_as_timeout(self):
        d = self.daemon(config(mcp_job("slow", "trigger-long-running-operation",
                                       {"duration": 20, "steps": 4}, timeout="1s",
                                       retry={"max_attempts": 1})))
        t0 = time.monotonic()
        run = self.run_wait(d, "slow")
        self.assertEqual(run["outcome"], "timeout", run)
        self.assertLess(time.monotonic() - t0, 15)

    def test_structured_content_is_kept_in_history(self):
        d = self.daemon(config(mcp_job("weather", "get-structured-content",
                                       {"location": "Chicago"})))
        self.run_wait(d, "weather")
        run = d.history("weather")[0]
        self.assertEqual(run["outcome"], "success", run)
        self.assertIn("temperature", run["structured_content"])

    def test_jobs_due_together_share_one_server(self):
        d = self.daemon(config(
            mcp_job("a", "trigger-long-running-operation", {"duration": 3, "steps": 3}),
            mcp_job("b", "trigger-long-running-operation", {"duration": 3, "steps": 3})))
        d.result("job.run", {"job": "a"})
        d.result("job.run", {"job": "b"})
        wait_until(lambda: d.status("a")["state"] == "running" and d.status("b")["state"] == "running",
                   timeout=20, what="both jobs running")
        wait_until(lambda: d.status("a").get("progress") and d.status("b").get("progress"),
                   timeout=20, what="progress on both")
        self.assertEqual(len(server_children(d.proc.pid)), 1)
        for job in ("a", "b"):
            self.assertEqual(d.wait_runs(job, 1, timeout=20)[0]["outcome"], "success")


if __name__ == "__main__":
    unittest.main()


MEMORY = os.path.join(NPM_BIN, "mcp-server-memory")


class MemoryServer(E2ETestCase):
    """The second reference server, @modelcontextprotocol/server-memory: a job
    that writes to its knowledge graph and one that reads it back, so state
    really crosses two runs on one kept server."""

    def setUp(self):
        super().setUp()
        if not os.access(MEMORY, os.X_OK):
            self.skipTest("SKIPPED: server-memory not installed: run tests/bootstrap.sh")

    def test_jobs_write_and_read_the_knowledge_graph(self):
        graph = os.path.join(self.tmp, "memory.jsonl")
        entity = {"name": "mcpjobd", "entityType": "daemon",
                  "observations": ["synced by ${job_id} run ${run_id}"]}
        cfg = {"mcpServers": {"memory": {"command": MEMORY,
                                         "env": {"MEMORY_FILE_PATH": graph}}},
               "jobs": [{"id": "remember", "interval": "24h", "initial_delay": "24h",
                         "action": {"mcp": {"server": "memory", "tool": "create_entities",
                                            "arguments": {"entities": [entity]}}}},
                        {"id": "recall", "interval": "24h", "initial_delay": "24h",
                         "action": {"mcp": {"server": "memory", "tool": "read_graph",
                                            "arguments": {}}}}]}
        d = self.daemon(cfg)
        w = d.result("job.run", {"job": "remember", "wait": True})
        self.assertEqual(w["outcome"], "success", w)
        r = d.result("job.run", {"job": "recall", "wait": True})
        self.assertEqual(r["outcome"], "success", r)
        text = json.dumps(r["structured_content"]) + (r["message"] or "")
        self.assertIn("mcpjobd", text)
        self.assertIn("synced by remember run %d" % w["run_id"], text)
