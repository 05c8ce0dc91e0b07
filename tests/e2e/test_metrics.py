"""Metrics for fleets: the textfile mcpjobd writes after every run, scraped
by Debian's real prometheus-node-exporter (textfile collector, loopback
port), `mcpjobctl metrics`, and run counters that survive restarts."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest
import urllib.request

from harness import E2ETestCase, wait_until

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


def parse(text):
    """{(name, frozenset(labels)): value} of the samples in a text exposition."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds(rfc3339):
    from datetime import datetime
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


class MetricsTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.textdir = os.path.join(self.tmp, "node-exporter")
        os.makedirs(self.textdir)
        self.textfile = os.path.join(self.textdir, "mcpjobd.prom")
        self.exporter = None

    def tearDown(self):
        if self.exporter is not None:
            self.exporter.send_signal(signal.SIGTERM)
            self.exporter.wait(timeout=10)
        super().tearDown()

    def start(self, *jobs, **kw):
        return self.daemon({"metrics": {"textfile": self.textfile}, "jobs": list(jobs)}, **kw)

    def jobs(self):
        return (self.exec_job("backup", ["sh", "-c", "echo disk full; exit 3"]),
                self.exec_job("sync", ["sh", "-c", "echo synced"]),
                self.exec_job("off", ["true"], enabled=False),
                self.exec_job("slow", ["sleep", "60"]))

    def textfile_samples(self, pred, what):
        def ok():
            try:
                with open(self.textfile) as f:
                    s = parse(f.read())
            except FileNotFoundError:
                return None
            return s if pred(s) else None
        return wait_until(ok, timeout=20, what=what)

    def start_exporter(self):
        """node_exporter with only the textfile collector, on a free loopback port."""
        for _ in range(5):
            port = free_port()
            log = open(os.path.join(self.tmp, "node-exporter.log"), "ab")
            p = subprocess.Popen([NODE_EXPORTER, "--collector.disable-defaults",
                                  "--collector.textfile",
                                  "--collector.textfile.directory=" + self.textdir,
                                  "--web.listen-address=127.0.0.1:%d" % port],
                                 stdout=log, stderr=subprocess.STDOUT)
            log.close()
            url = "http://127.0.0.1:%d/metrics" % port

            def up():
                if p.poll() is not None:
                    return "exited"
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        return r.status == 200 and "ok"
                except OSError:
                    return None
            if wait_until(up, timeout=20, what="node_exporter on %s" % url) == "ok":
                self.exporter = p
                return url
            p.wait()  # lost the port to another test: try another one
        raise AssertionError("node_exporter did not start:\n" +
                             open(os.path.join(self.tmp, "node-exporter.log")).read())

    def scrape(self, url):
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    @unittest.skipUnless(NODE_EXPORTER, "LOUD SKIP: prometheus-node-exporter is not installed "
                                        "(tests/bootstrap.sh installs it)")
    def test_node_exporter_serves_every_series_with_the_runs_values(self):
        d = self.start(*self.jobs())
        d.ctl("run", "backup", "--wait")
        for _ in range(2):
            d.ctl("run", "sync", "--wait")
        self.textfile_samples(lambda s: value(s, "mcpjob_runs_total", job_id="sync",
                                              outcome="success") == 2, "2 successes of sync")
        url = self.start_exporter()
        text = self.scrape(url)
        s = parse(text)
        # node_exporter read the file without complaint.
        self.assertRegex(text, r"(?m)^node_textfile_scrape_error 0$")
        hist = {j: d.history(j) for j in ("backup", "sync")}
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="backup", outcome="failure"), 1)
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="backup", outcome="success"), 0)
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="sync", outcome="success"), 2)
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="off", outcome="success"), 0)
        self.assertAlmostEqual(value(s, "mcpjob_last_run_timestamp_seconds", job_id="sync"),
                               seconds(hist["sync"][0]["started_at"]), places=3)
        self.assertAlmostEqual(value(s, "mcpjob_last_success_timestamp_seconds", job_id="sync"),
                               seconds(hist["sync"][0]["started_at"]), places=3)
        self.assertEqual(value(s, "mcpjob_last_success_timestamp_seconds", job_id="backup"), 0)
        self.assertEqual(value(s, "mcpjob_last_run_timestamp_seconds", job_id="off"), 0)
        self.assertAlmostEqual(value(s, "mcpjob_last_run_duration_seconds", job_id="backup"),
                               hist["backup"][0]["duration_ms"] / 1000, places=3)
        self.assertEqual(value(s, "mcpjob_job_enabled", job_id="off"), 0)
        self.assertEqual(value(s, "mcpjob_job_enabled", job_id="sync"), 1)
        self.assertEqual(value(s, "mcpjob_job_state", job_id="off", state="disabled"), 1)
        self.assertEqual(value(s, "mcpjob_job_state", job_id="sync", state="scheduled"), 1)
        self.assertEqual(sum(value(s, "mcpjob_job_state", job_id="sync", state=st)
                             for st in ("disabled", "scheduled", "pending", "running", "backoff")), 1)
        self.assertIn("# TYPE mcpjob_runs_total counter", text)
        # A running job shows as running, and the file follows the next run.
        d.ctl("run", "slow")
        self.textfile_samples(lambda s: value(s, "mcpjob_job_state", job_id="slow",
                                              state="running") == 1, "slow to show as running")
        wait_until(lambda: value(parse(self.scrape(url)), "mcpjob_job_state", job_id="slow",
                                 state="running") == 1, what="node_exporter to serve running")
        d.ctl("cancel", "slow")
        self.textfile_samples(lambda s: value(s, "mcpjob_runs_total", job_id="slow",
                                              outcome="cancelled") == 1, "the cancelled run")
        # Written atomically: only the .prom file is left in the directory.
        self.assertEqual(os.listdir(self.textdir), ["mcpjobd.prom"])

    def test_mcpjobctl_metrics_prints_what_the_textfile_holds(self):
        d = self.start(*self.jobs())
        d.ctl("run", "sync", "--wait")
        self.textfile_samples(lambda s: value(s, "mcpjob_runs_total", job_id="sync",
                                              outcome="success") == 1, "the run of sync")
        r = d.ctl("metrics")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.textfile) as f:
            self.assertEqual(r.stdout, f.read())
        res = d.ctl_json("metrics")
        self.assertEqual(res["text"], r.stdout)
        self.assertEqual(res["textfile"], self.textfile)
        self.assertEqual(d.result("daemon.metrics"), res)
        # Without "metrics" in the configuration, the text is still there.
        d2 = self.daemon({"jobs": [self.exec_job("x", ["true"])]})
        r = d2.ctl("metrics")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('mcpjob_job_enabled{job_id="x"} 1', r.stdout)
        self.assertIsNone(d2.result("daemon.metrics")["textfile"])

    def test_runs_total_survives_restarts_kill9_and_a_lost_counter_file(self):
        d = self.start(*self.jobs())
        d.ctl("run", "sync", "--wait")
        d.ctl("run", "backup", "--wait")
        d.restart()
        d.ctl("run", "sync", "--wait")
        self.textfile_samples(lambda s: value(s, "mcpjob_runs_total", job_id="sync",
                                              outcome="success") == 2, "2 successes after restart")
        # Killed while slow runs: the run is recorded "interrupted" at the next
        # start, and counted though no run.finished event was ever sent.
        d.ctl("run", "slow")
        d.wait_state("slow", "running")
        d.kill9()
        d.start()
        s = self.textfile_samples(lambda s: value(s, "mcpjob_runs_total", job_id="slow",
                                                  outcome="interrupted") == 1, "the interrupted run")
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="sync", outcome="success"), 2)
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="backup", outcome="failure"), 1)
        # The counter file lost: rebuilt from the history, nothing counted twice.
        d.stop()
        os.unlink(os.path.join(d.state, "metrics.json"))
        d.start()
        s = parse(d.ctl("metrics").stdout)
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="sync", outcome="success"), 2)
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="slow", outcome="interrupted"), 1)
        d.restart()
        s = parse(d.ctl("metrics").stdout)
        self.assertEqual(value(s, "mcpjob_runs_total", job_id="sync", outcome="success"), 2)

    def test_bad_metrics_settings_name_the_key(self):
        for metrics, expected in (({"textfile": "relative.prom"}, r"metrics\.textfile: \"relative\.prom\" is not an absolute path"),
                                  ({"textfile": "/tmp/x.txt"}, r'metrics\.textfile: "/tmp/x\.txt" does not end in "\.prom"'),
                                  ({"textfil": "/tmp/x.prom"}, r'metrics\.textfil: unknown key \(did you mean "textfile"\?\)')):
            with self.subTest(metrics=metrics):
                d = self.daemon({"metrics": metrics, "jobs": []}, start=False)
                r = subprocess.run(d.cmdline() + ["--check-config"], capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertRegex(r.stderr, expected)

    def test_an_unwritable_textfile_is_logged_and_runs_go_on(self):
        self.textfile = os.path.join(self.tmp, "missing-dir", "mcpjobd.prom")
        d = self.start(self.exec_job("sync", ["true"]))
        r = d.ctl("run", "sync", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: "metrics textfile: cannot write %s" % self.textfile in d.log(),
                   what="the warning about the textfile")
        self.assertIn("create the directory", d.log())
