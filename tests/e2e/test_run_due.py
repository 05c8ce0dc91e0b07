"""mcpjobd --run-due --budget: the path the mobile hooks take. It runs what
is due and allowed, stops what still runs when the budget ends (recorded
cancelled, like the OS's expiration handler), and exits."""
import json
import os
import subprocess
import time

from harness import MCPJOBD, E2ETestCase


class RunDue(E2ETestCase):
    def run_due(self, config, budget="5s", timeout=30):
        etc = os.path.join(self.tmp, "etc")
        os.makedirs(etc, exist_ok=True)
        path = os.path.join(etc, "mcpjobd.json")
        with open(path, "w") as f:
            json.dump(config, f)
        state = os.path.join(self.tmp, "state")
        t0 = time.monotonic()
        r = subprocess.run([MCPJOBD, "--config", path, "--state-dir", state, "--platform", "sim",
                            "--run-due", "--budget", budget], capture_output=True, text=True,
                           timeout=timeout)
        return r, time.monotonic() - t0, path

    def test_runs_due_jobs_then_exits_and_expires_the_slow_ones(self):
        config = {"jobs": [
            {"id": "quick", "interval": "1h", "action": {"exec": {"argv": ["true"]}}},
            {"id": "slow", "interval": "1h", "action": {"exec": {"argv": ["sleep", "60"]}}},
            {"id": "not-due", "interval": "1h", "initial_delay": "1h",
             "action": {"exec": {"argv": ["true"]}}},
        ]}
        r, elapsed, path = self.run_due(config, budget="2s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(elapsed, 12)
        self.assertIn("budget", r.stderr)
        # The history is the same store the daemon reads: start it and look.
        d = self.daemon(config, tmp=self.tmp, start=False)
        d.config_path = path
        d.start()
        self.assertEqual(d.history("quick")[0]["outcome"], "success")
        slow = d.history("slow")
        self.assertEqual(len(slow), 1)
        self.assertEqual(slow[0]["outcome"], "cancelled")
        self.assertIn("time budget", slow[0]["message"])
        self.assertEqual(d.history("not-due"), [])

    def test_nothing_due_exits_at_once(self):
        config = {"jobs": [{"id": "later", "interval": "1h", "initial_delay": "1h",
                            "action": {"exec": {"argv": ["true"]}}}]}
        r, elapsed, _ = self.run_due(config, budget="30s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(elapsed, 5)
