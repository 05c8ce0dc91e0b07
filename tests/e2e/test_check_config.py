"""mcpjobd --check-config looks at the host: what would fail only when a
job runs (a missing user, program or cwd) is an error with its file and key
path; a missing cleanup path is a warning that leaves the exit status 0."""
import json
import os
import subprocess

from harness import MCPJOBD, E2ETestCase


class CheckConfig(E2ETestCase):
    def run_check(self, cfg):
        path = os.path.join(self.tmp, "mcpjobd.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([MCPJOBD, "--user", "--check-config", "--config", path],
                           capture_output=True, text=True, timeout=30)
        return path, r

    def test_missing_cleanup_path_warns_and_still_passes(self):
        cache = os.path.join(self.tmp, "cache")
        path, r = self.run_check({"jobs": [{"id": "tidy", "interval": "1d", "action": {
            "cleanup": {"path": cache, "max_age": "7d"}}}]})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('%s: jobs[0] (tidy).action.cleanup.path: warning: "%s" does not exist yet'
                      % (path, cache), r.stderr)
        self.assertIn("configuration OK", r.stdout)
        os.mkdir(cache)
        path, r = self.run_check({"jobs": [{"id": "tidy", "interval": "1d", "action": {
            "cleanup": {"path": cache, "max_age": "7d"}}}]})
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_missing_program_and_cwd_fail_with_file_and_key(self):
        gone = os.path.join(self.tmp, "bin", "backup")
        path, r = self.run_check({"jobs": [{"id": "backup", "interval": "1h", "action": {
            "exec": {"argv": [gone, "--quiet"], "cwd": os.path.join(self.tmp, "nowhere")}}}]})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('%s: jobs[0] (backup).action.exec.argv[0]: "%s" does not exist'
                      % (path, gone), r.stderr)
        self.assertIn("%s: jobs[0] (backup).action.exec.cwd: " % path, r.stderr)
        self.assertIn("configuration has 2 errors", r.stderr)
