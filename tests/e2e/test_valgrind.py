"""The daemon's normal run under valgrind (memcheck): exec, cleanup and MCP
runs, a timeout, a reload, queries and events, then SIGTERM. No invalid
access, no use of uninitialised memory, nothing definitely lost."""
import os
import re
import shutil

from harness import BUILD, SANITIZED, E2ETestCase

DEMO = os.path.join(BUILD, "mcpjob-demo-server")


class Valgrind(E2ETestCase):
    def setUp(self):
        super().setUp()
        if SANITIZED:
            self.skipTest("NOT RUN: valgrind does not run sanitizer builds (the plain pass covers it)")
        if shutil.which("valgrind") is None:
            self.skipTest("NOT RUN: valgrind is not installed (apt-get install valgrind)")

    def test_normal_run_is_valgrind_clean(self):
        cache = os.path.join(self.tmp, "cache")
        os.makedirs(cache)
        cfg = {"mcpServers": {"demo": {"command": DEMO,
                                       "args": ["--data-dir", os.path.join(self.tmp, "demo")]}},
               "jobs": [
                   {"id": "hello", "interval": "1h",
                    "action": {"exec": {"argv": ["sh", "-c", "echo hello"]}}},
                   {"id": "clean", "interval": "1h", "initial_delay": "1h",
                    "action": {"cleanup": {"path": cache, "max_age": "1d"}}},
                   {"id": "notes", "interval": "1h", "initial_delay": "1h",
                    "action": {"mcp": {"server": "demo", "tool": "getNotifications",
                                       "arguments": {"since": "${last_success}"}}}},
                   {"id": "hang", "interval": "1h", "initial_delay": "1h", "timeout": "1s",
                    "action": {"exec": {"argv": ["sleep", "30"]}}}]}
        d = self.daemon(cfg, start=False)
        vlog = os.path.join(self.tmp, "valgrind.log")
        d.prefix = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite",
                    "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                    "--log-file=" + vlog]
        d.start()
        sub = d.client()
        sub.call("events.subscribe")
        for job in ("clean", "notes", "hang"):
            d.ctl("run", job, "--wait", timeout=120)
        self.assertEqual(d.history("notes")[0]["outcome"], "success")
        self.assertEqual(d.history("hang")[0]["outcome"], "timeout")
        d.ctl("list", check=True)
        d.ctl("status", "hello", check=True)
        d.ctl("history", "hello", check=True)
        d.ctl("disable", "hello", check=True)
        d.ctl("reload", check=True)
        d.result("device.set", {"network": "none"})
        sub.close()
        rc = d.stop(timeout=60)
        report = open(vlog).read()
        self.assertEqual(rc, 0, "mcpjobd under valgrind exited %s:\n%s" % (rc, report))
        self.assertFalse(re.search(r"Invalid (read|write)|uninitialised|definitely lost", report),
                         report)
