"""Logging to the journal: what mcpjobd --log-target=journal sends, read
from a stand-in for journald's socket in a private mount namespace, so
`journalctl MCPJOB_ID=sync-data` can show a job's story."""
import json
import os
import shutil
import subprocess
import sys

from harness import E2ETestCase

HERE = os.path.dirname(os.path.abspath(__file__))


class Journal(E2ETestCase):
    def test_runs_are_logged_with_structured_fields(self):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            self.skipTest("NOT RUN: needs root and unshare(1) for a private mount namespace")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                            os.path.join(HERE, "journal_listener.py"), self.tmp],
                           capture_output=True, text=True, timeout=60, env=dict(os.environ))
        if r.returncode != 0 and "unshare failed" in r.stderr:
            self.skipTest("NOT RUN: cannot make a mount namespace here: " + r.stderr.strip())
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        self.assertTrue(entries, "nothing reached the journal socket:\n" + r.stderr)
        self.assertTrue(all(e.get("SYSLOG_IDENTIFIER") == "mcpjobd" for e in entries), entries)
        ready = [e for e in entries if "ready" in e.get("MESSAGE", "")]
        self.assertTrue(ready, entries)
        job = [e for e in entries if e.get("MCPJOB_ID") == "sync-data"]
        started = [e for e in job if e.get("MESSAGE_ID") == "6a1d3f0c4e8b4d6f9a2c51e7b3d80f11"]
        finished = [e for e in job if e.get("MESSAGE_ID") == "6a1d3f0c4e8b4d6f9a2c51e7b3d80f12"]
        self.assertEqual(len(started), 1, job)
        self.assertEqual(len(finished), 1, job)
        self.assertEqual(finished[0]["MCPJOB_OUTCOME"], "success")
        self.assertEqual(finished[0]["MCPJOB_RUN"], started[0]["MCPJOB_RUN"])
        self.assertIn("synced 3", finished[0]["MESSAGE"])
        # The text names the job as stderr does; the id stays a field too.
        run = finished[0]["MCPJOB_RUN"]
        self.assertTrue(started[0]["MESSAGE"].startswith("sync-data: run %s started" % run),
                        started[0])
        self.assertTrue(finished[0]["MESSAGE"].startswith("sync-data: run %s: success" % run),
                        finished[0])
        self.assertFalse([e for e in entries if "MCPJOB_ID" not in e
                          and e["MESSAGE"].startswith(": ")], entries)
        self.assertEqual(finished[0]["PRIORITY"], "6")
