"""examples/client.py, the documented minimal client, against the real daemon."""
import json
import os
import subprocess
import sys

from harness import ROOT, E2ETestCase

CLIENT = os.path.join(ROOT, "examples", "client.py")


class ClientExampleTest(E2ETestCase):
    def run_client(self, d, *args, env=None):
        e = dict(os.environ)
        e.pop("MCPJOBD_SOCKET", None)
        e.update(env or {})
        return subprocess.run([sys.executable, CLIENT] + list(args), capture_output=True,
                              text=True, timeout=60, env=e)

    def test_successful_run_prints_events_and_record_and_exits_0(self):
        job = self.exec_job("hello", ["echo", "hello from a job"], initial_delay="1h")
        d = self.daemon({"jobs": [job]})
        r = self.run_client(d, "hello", d.socket)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "connected to mcpjobd 0.1.0 (admin access)")
        self.assertTrue(any(l.startswith("event run.started ") for l in lines), r.stdout)
        finished = [l for l in lines if l.startswith("event run.finished ")]
        self.assertEqual(len(finished), 1, r.stdout)
        ev = json.loads(finished[0].split(" ", 2)[2])
        record = json.loads(r.stdout[r.stdout.index("run {") + 4:])
        self.assertEqual(record["outcome"], "success")
        self.assertEqual(record["output"], "hello from a job\n")
        self.assertEqual(ev["run_id"], record["run_id"])
        # The record is the one the daemon keeps.
        self.assertEqual(d.history("hello", limit=1)[0], record)

    def test_failed_run_exits_1_and_socket_comes_from_the_environment(self):
        d = self.daemon({"jobs": [self.exec_job("broken", ["false"], initial_delay="1h")]})
        r = self.run_client(d, "broken", env={"MCPJOBD_SOCKET": d.socket})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('"outcome": "failure"', r.stdout)

    def test_unknown_job_exits_2_with_the_daemons_message(self):
        d = self.daemon({"jobs": []})
        r = self.run_client(d, "nope", d.socket)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        # It subscribes before it runs: the subscription already names the job.
        self.assertIn('events.subscribe failed: no such job "nope"', r.stderr)

    def test_missing_socket_is_one_clear_line_and_exit_1_not_a_traceback(self):
        missing = os.path.join(self.tmp, "no-daemon", "control.sock")
        for args, env in ((["hello", missing], None), (["hello"], {"MCPJOBD_SOCKET": missing})):
            with self.subTest(args=args):
                r = self.run_client(None, *args, env=env)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertNotIn("Traceback", r.stderr)
                self.assertEqual(r.stderr, "client.py: cannot connect to %s: No such file or "
                                 "directory (is mcpjobd running? the socket is given as the "
                                 "second argument or $MCPJOBD_SOCKET)\n" % missing)
                self.assertEqual(r.stdout, "")
        # A path that is no socket at all fails the same way, with its reason.
        r = self.run_client(None, "hello", CLIENT)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect to %s: Connection refused" % CLIENT, r.stderr)
