"""mcpjobctl logs and the output tail of mcpjobctl status: the output the
daemon keeps of each run, shown oldest run first, cut with -n, followed
live with -f."""
import os
import re
import subprocess

from harness import MCPJOBCTL, E2ETestCase
from test_ctl import LineReader

HEAD = re.compile(r"^-- run (\d+) \((\w+)\) \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+: (\w+) in \S+"
                  r"(, no output)? --$")


class CtlLogsTest(E2ETestCase):
    def counting_job(self, job_id="count", lines=12, code=0):
        # Each run prints its own number (from a counter file) so the test
        # can tell runs apart.
        counter = os.path.join(self.tmp, job_id + ".n")
        script = ('n=$(($(cat %s 2>/dev/null || echo 0) + 1)); echo $n > %s; '
                  'i=1; while [ $i -le %d ]; do echo "run $n line $i"; i=$((i+1)); done; '
                  'exit %d' % (counter, counter, lines, code))
        return self.exec_job(job_id, ["sh", "-c", script])

    def test_logs_prints_each_runs_output_oldest_first(self):
        d = self.daemon({"jobs": [self.counting_job(lines=3), self.exec_job("quiet", ["true"])]})
        for _ in range(2):
            d.ctl("run", "count", "--wait")
        r = d.ctl("logs", "count")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        runs = d.history("count")
        self.assertEqual(len(lines), 8, lines)
        m0, m1 = HEAD.match(lines[0]), HEAD.match(lines[4])
        self.assertTrue(m0 and m1, lines)
        self.assertEqual([int(m0.group(1)), int(m1.group(1))],
                         [runs[1]["run_id"], runs[0]["run_id"]])
        self.assertEqual(m0.group(2), "manual")
        self.assertEqual(m0.group(3), "success")
        self.assertEqual(lines[1:4], ["run 1 line 1", "run 1 line 2", "run 1 line 3"])
        self.assertEqual(lines[5:8], ["run 2 line 1", "run 2 line 2", "run 2 line 3"])
        # Exactly what the history keeps.
        self.assertEqual("\n".join(lines[5:8]) + "\n", runs[0]["output"])
        d.ctl("run", "quiet", "--wait")
        self.assertRegex(d.ctl("logs", "quiet").stdout, r"^-- run \d+ .*: success in \S+, no output --\n$")

    def test_logs_n_keeps_the_last_lines_across_runs(self):
        d = self.daemon({"jobs": [self.counting_job(lines=3)]})
        for _ in range(3):
            d.ctl("run", "count", "--wait")
        lines = d.ctl("logs", "count", "-n", "4").stdout.splitlines()
        self.assertTrue(HEAD.match(lines[0]) and HEAD.match(lines[2]), lines)
        self.assertEqual([l for l in lines if not l.startswith("-- ")],
                         ["run 2 line 3", "run 3 line 1", "run 3 line 2", "run 3 line 3"])
        self.assertEqual(d.ctl("logs", "count", "-n", "0").returncode, 2)

    def test_logs_of_a_job_that_never_ran_and_of_an_unknown_job(self):
        d = self.daemon({"jobs": [self.counting_job()]})
        r = d.ctl("logs", "count")
        self.assertEqual((r.returncode, r.stdout), (0, "count has not run yet.\n"))
        r = d.ctl("logs", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope", r.stderr)

    def test_logs_follow_prints_each_run_as_it_finishes(self):
        d = self.daemon({"jobs": [self.counting_job(lines=2)]})
        d.ctl("run", "count", "--wait")
        e = dict(os.environ, MCPJOBD_SOCKET=d.socket)
        p = subprocess.Popen([MCPJOBCTL, "logs", "count", "-f"], stdout=subprocess.PIPE, env=e)
        try:
            r = LineReader(p.stdout)
            first = r.lines_until(lambda l: l == "run 1 line 2", timeout=20)
            self.assertTrue(first, "logs -f did not print the first run")
            d.ctl("run", "count", "--wait")
            more = r.lines_until(lambda l: l == "run 2 line 2", timeout=20)
            self.assertTrue(more, "logs -f did not print the run that finished later")
            self.assertTrue(HEAD.match(more[0]), more)
            self.assertEqual(more[1:], ["run 2 line 1", "run 2 line 2"])
            self.assertIsNone(p.poll())
        finally:
            p.terminate()
            p.wait(timeout=10)
            p.stdout.close()

    def test_status_ends_with_the_last_lines_of_the_last_run(self):
        d = self.daemon({"jobs": [self.counting_job(lines=15, code=3)]})
        r = d.ctl("status", "count")
        self.assertNotIn("Output of run", r.stdout)
        d.ctl("run", "count", "--wait")
        d.ctl("run", "count", "--wait")
        out = d.ctl("status", "count").stdout
        run_id = d.history("count")[0]["run_id"]
        tail = out.split("\nOutput of run %d:\n" % run_id, 1)
        self.assertEqual(len(tail), 2, out)
        self.assertEqual(tail[1].splitlines(), ["  run 2 line %d" % i for i in range(6, 16)])
        self.assertRegex(tail[0], r"Last run: .*: failure: run 2 line 15")
