"""End-to-end tests of mcpjobctl against the real mcpjobd: what users and
scripts see (tables, --json, exit codes, one-line errors)."""
import json
import os
import re
import select
import shutil
import subprocess
import time
import unittest

from harness import MCPJOBCTL, ROOT, E2ETestCase

COLUMNS = ["ID", "STATE", "ENABLED", "NEXT", "LEFT", "LAST", "PASSED", "RESULT", "SCHEDULE"]


def table_verbs():
    """(name, usage) of every row of ctl/mcpjobctl.c's verb table, in order."""
    with open(os.path.join(ROOT, "ctl", "mcpjobctl.c"), encoding="utf-8") as f:
        src = f.read()
    table = src[src.index("ctl_verbs[] = {"):]
    table = table[:table.index("};")]
    return re.findall(r'\{"([a-z-]+)", ctl_cmd_\w+, [^"]*"([^"]+)"', table)


class LineReader:
    """Lines from a pipe with a timeout (select on the raw fd, no buffering)."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""

    def lines_until(self, pred, timeout):
        """Lines read until one satisfies pred (all of them), or [] on timeout."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                got.append(line.decode())
                if pred(got[-1]):
                    return got
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return []
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError("watch ended; it printed %r" % got)
            self.buf += chunk


def ctl_alone(*args, env=None):
    """mcpjobctl with no daemon anywhere: MCPJOBD_SOCKET points nowhere."""
    e = dict(os.environ)
    e["MCPJOBD_SOCKET"] = "/nonexistent/mcpjobd-e2e/control.sock"
    if env:
        e.update(env)
    return subprocess.run([MCPJOBCTL] + list(args), capture_output=True, text=True,
                          timeout=30, env=e)


class CtlWithoutDaemonTest(E2ETestCase):
    """What mcpjobctl decides on its own, before or without a daemon."""

    def test_cannot_connect_names_the_socket_and_the_likely_cause(self):
        path = os.path.join(self.tmp, "no-such.sock")
        r = ctl_alone("--socket", path, "list")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "mcpjobctl: cannot connect to %s: No such file or directory"
                                   " (is mcpjobd running?)\n" % path)

    def test_socket_comes_from_env_when_no_option(self):
        path = os.path.join(self.tmp, "from-env.sock")
        r = ctl_alone("list", env={"MCPJOBD_SOCKET": path})
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect to %s:" % path, r.stderr)

    def test_user_socket_is_under_xdg_runtime_dir(self):
        r = ctl_alone("--user", "list", env={"MCPJOBD_SOCKET": "", "XDG_RUNTIME_DIR": self.tmp})
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect to %s/mcpjobd/control.sock:" % self.tmp, r.stderr)

    def test_user_socket_without_xdg_runtime_dir_is_where_the_daemon_listens(self):
        # mcpjobd --user falls back to /run/user/UID; mcpjobctl used to give up.
        r = ctl_alone("--user", "list", env={"MCPJOBD_SOCKET": "", "XDG_RUNTIME_DIR": ""})
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect to /run/user/%d/mcpjobd/control.sock:" % os.getuid(),
                      r.stderr)

    def test_unknown_command_exits_2_with_a_hint(self):
        r = ctl_alone("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn('unknown command "frobnicate"', r.stderr)
        self.assertIn("--help", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_usage_errors_exit_2_before_connecting(self):
        for args in (["status"], ["run"], ["history", "j", "-n", "zero"], ["list", "--wait"],
                     ["--no-such-option", "list"], [], ["device", "set", "network"]):
            with self.subTest(args=args):
                r = ctl_alone(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertNotIn("cannot connect", r.stderr)

    def test_help_exits_0_and_names_every_command(self):
        r = ctl_alone("--help")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "")
        verbs = table_verbs()
        self.assertGreaterEqual(len(verbs), 10)
        for verb, usage in verbs:
            self.assertRegex(r.stdout, r"(?m)^  %s\s+\S" % re.escape(usage))

    def test_every_verb_of_the_table_is_in_the_man_page(self):
        with open(os.path.join(ROOT, "man", "mcpjobctl.1"), encoding="utf-8") as f:
            man = f.read()
        for verb, _ in table_verbs():
            self.assertRegex(man, r"(?m)^\.It Cm %s\b" % verb)

    @unittest.skipIf(shutil.which("bash") is None, "bash is not installed")
    def test_bash_completion_offers_every_verb_of_the_table(self):
        script = ('source "$1"; COMP_LINE="$2 "; COMP_POINT=${#COMP_LINE}; _mcpjobctl;'
                  ' printf "%s\\n" "${COMPREPLY[@]}"')
        r = subprocess.run(["bash", "-c", script, "bash",
                            os.path.join(ROOT, "ctl", "mcpjobctl.bash-completion"), MCPJOBCTL],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), [v for v, _ in table_verbs()])

    def test_version_exits_0(self):
        r = ctl_alone("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^mcpjobctl \d+\.\d+\.\d+ \(protocol \d+\)\n$")


class CtlTest(E2ETestCase):
    def start(self, *jobs):
        return self.daemon({"jobs": list(jobs)})

    def ok_job(self, job_id="ok", message="synced 3"):
        return self.exec_job(job_id, ["sh", "-c", "echo %s" % message])

    def failing_job(self, job_id="bad"):
        return self.exec_job(job_id, ["sh", "-c", "echo boom; exit 3"])

    def test_list_prints_table_columns_and_footer(self):
        d = self.start(self.ok_job("alpha"), self.ok_job("beta"))
        r = d.ctl("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), COLUMNS)
        rows = {l.split()[0]: l for l in lines[1:3]}
        self.assertEqual(set(rows), {"alpha", "beta"})
        for row in rows.values():
            self.assertRegex(row, r"\bscheduled\s+yes\s+\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+")
        self.assertEqual(lines[-1], "2 jobs listed.")
        # Columns line up: every row's STATE starts where the header's does.
        col = lines[0].index("STATE")
        for row in rows.values():
            self.assertEqual(row[col:col + 9], "scheduled")

    def test_list_shows_last_result_after_a_run(self):
        d = self.start(self.failing_job())
        d.ctl("run", "bad", "--wait")
        row = d.ctl("list").stdout.splitlines()[1]
        self.assertTrue(row.startswith("bad "), row)
        self.assertRegex(row, r"(ago|now)\s+failure\s+every 1d$")

    def test_list_names_prints_only_ids(self):
        d = self.start(self.ok_job("alpha"), self.ok_job("beta"))
        r = d.ctl("list", "--names")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.split("\n")[:-1]), ["alpha", "beta"])

    def test_json_passes_results_unchanged(self):
        d = self.start(self.ok_job("alpha"), self.ok_job("beta"))
        self.assertEqual(d.ctl_json("list"), d.result("jobs.list"))
        self.assertEqual(d.ctl_json("status", "alpha"), d.status("alpha"))
        self.assertEqual(d.ctl_json("device"), d.result("device.status"))

    def test_status_shows_the_job(self):
        d = self.start(self.exec_job("sync", ["true"], name="Data Sync", interval="15m",
                                     constraints={"network": "unmetered", "charging": True}))
        r = d.ctl("status", "sync")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("sync - Data Sync\n"), r.stdout)
        self.assertRegex(r.stdout, r"(?m)^ +State: scheduled$")
        self.assertRegex(r.stdout, r"(?m)^ +Enabled: yes$")
        self.assertRegex(r.stdout, r"(?m)^ +Schedule: every 15m")
        self.assertRegex(r.stdout, r"(?m)^ +Constraints: network unmetered, charging$")
        self.assertRegex(r.stdout, r"(?m)^ +Last run: never$")

    def test_status_of_unknown_job_exits_1_with_the_daemons_message(self):
        d = self.start(self.ok_job())
        expected = d.rpc("job.status", {"job": "nope"})["error"]["message"]
        r = d.ctl("status", "nope")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "mcpjobctl: %s\n" % expected)
        self.assertIn("nope", expected)

    def test_run_wait_success_exits_0_with_the_outcome_line(self):
        d = self.start(self.ok_job())
        r = d.ctl("run", "ok", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^ok run \d+: success in [\d.]+m?s: synced 3\n$")

    def test_run_wait_failing_job_exits_1(self):
        d = self.start(self.failing_job())
        r = d.ctl("run", "bad", "--wait")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"^bad run \d+: failure in [\d.]+m?s: boom\n$")

    def test_run_wait_json_is_the_run_record_and_keeps_the_exit_code(self):
        d = self.start(self.failing_job())
        r = d.ctl("--json", "run", "bad", "--wait")
        self.assertEqual(r.returncode, 1)
        run = json.loads(r.stdout)
        self.assertEqual(run["outcome"], "failure")
        self.assertEqual(d.history("bad")[0], run)

    def test_run_without_wait_reports_the_run_number(self):
        d = self.start(self.ok_job())
        r = d.ctl("run", "ok")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.match(r"^started run (\d+) of ok\n$", r.stdout)
        self.assertTrue(m, r.stdout)
        runs = d.wait_runs("ok", 1)
        self.assertEqual(runs[0]["run_id"], int(m.group(1)))

    def test_history_n_limits_the_rows(self):
        d = self.start(self.ok_job())
        for _ in range(3):
            self.assertEqual(d.ctl("run", "ok", "--wait").returncode, 0)
        r = d.ctl("history", "ok", "-n", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["RUN", "STARTED", "DURATION", "TRIGGER", "ATTEMPT",
                                            "OUTCOME", "MESSAGE"])
        self.assertEqual(len(lines), 3)
        runs = d.history("ok")
        self.assertEqual([int(l.split()[0]) for l in lines[1:]], [x["run_id"] for x in runs[:2]])
        self.assertRegex(lines[1], r"\bmanual\s+1\s+success\s+synced 3$")
        self.assertEqual(len(d.ctl("history", "ok").stdout.splitlines()), 4)
        self.assertEqual(len(d.ctl_json("history", "ok", "-n", "1")["runs"]), 1)

    def test_history_keeps_rows_within_100_columns(self):
        d = self.start(self.ok_job("chatty", "x" * 300))
        d.ctl("run", "chatty", "--wait")
        for line in d.ctl("history", "chatty").stdout.splitlines():
            self.assertLessEqual(len(line), 100, line)

    def test_disable_and_enable_several_jobs(self):
        d = self.start(self.ok_job("a"), self.ok_job("b"))
        r = d.ctl("disable", "a", "b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "disabled a\ndisabled b\n")
        self.assertFalse(d.status("a")["enabled"])
        self.assertFalse(d.status("b")["enabled"])
        r = d.ctl("enable", "a", "b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(d.status("a")["enabled"] and d.status("b")["enabled"])

    def test_enable_tries_every_job_and_fails_if_one_fails(self):
        d = self.start(self.ok_job("a"), self.ok_job("b"))
        d.ctl("disable", "a", "b")
        r = d.ctl("enable", "a", "nope", "b")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "enabled a\nenabled b\n")
        self.assertEqual(len(r.stderr.splitlines()), 1)
        self.assertIn("nope", r.stderr)
        self.assertTrue(d.status("a")["enabled"] and d.status("b")["enabled"])

    def test_json_enable_of_several_jobs_is_an_array_in_order(self):
        d = self.start(self.ok_job("a"), self.ok_job("b"))
        r = d.ctl("--json", "disable", "b", "nope", "a")
        self.assertEqual(r.returncode, 1)
        out = json.loads(r.stdout)
        self.assertEqual([x.get("id", x.get("job")) for x in out], ["b", "nope", "a"])
        self.assertEqual(out[0], d.status("b"))
        self.assertIn("error", out[1])

    def test_cancel_of_an_idle_job_fails_with_the_daemons_message(self):
        d = self.start(self.ok_job())
        expected = d.rpc("job.cancel", {"job": "ok"})["error"]["message"]
        r = d.ctl("cancel", "ok")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "mcpjobctl: %s\n" % expected)

    def test_cancel_stops_a_running_job(self):
        d = self.start(self.exec_job("slow", ["sleep", "30"]))
        self.assertEqual(d.ctl("run", "slow").returncode, 0)
        d.wait_state("slow", "running")
        r = d.ctl("cancel", "slow")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^cancelled run \d+ of slow\n$")
        self.assertEqual(d.wait_runs("slow", 1)[0]["outcome"], "cancelled")

    def test_cancel_of_a_queued_run_says_so_and_answers_the_waiting_run(self):
        d = self.daemon({"max_concurrent": 1,
                         "jobs": [self.exec_job("slow", ["sleep", "30"]), self.ok_job("w")]})
        self.assertEqual(d.ctl("run", "slow").returncode, 0)
        d.wait_state("slow", "running")
        waiting = subprocess.Popen([MCPJOBCTL, "run", "w", "--when-allowed", "--wait"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, MCPJOBD_SOCKET=d.socket))
        try:
            d.wait_state("w", "pending")
            r = d.ctl("cancel", "w")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "cancelled the queued run of w\n")
            out, err = waiting.communicate(timeout=10)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.communicate()
        self.assertEqual(waiting.returncode, 1, err)
        self.assertEqual(out, "w: cancelled: the queued run was cancelled before it started\n")
        self.assertEqual(d.status("w")["state"], "scheduled")
        self.assertEqual(d.history("w"), [])

    def test_a_refused_reload_lists_each_error_once(self):
        d = self.start(self.ok_job("a"))
        d.write_config({"jobs": [{"id": "a", "interval": "15x",
                                  "action": {"exec": {"argv": ["true"]}}},
                                 {"id": "b", "interval": "1h", "action": {}}]})
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 1)
        errors = d.rpc("daemon.reload")["error"]["data"]["errors"]
        self.assertGreaterEqual(len(errors), 2, errors)
        for e in errors:
            self.assertEqual(r.stderr.count(e), 1, r.stderr)

    def test_watch_of_an_unknown_job_exits_1_naming_it(self):
        d = self.start(self.ok_job())
        r = d.ctl("watch", "ok", "nosuch", timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, 'mcpjobctl: no such job "nosuch" (mcpjobctl list shows '
                                   'the jobs)\n')
        err = d.rpc("events.subscribe", {"jobs": ["ok", "nosuch"]})["error"]
        self.assertEqual(err["code"], -32602)
        self.assertIn('"nosuch"', err["message"])

    def test_run_wait_of_a_retry_says_it_is_not_retried_not_a_delay(self):
        d = self.start(self.exec_job("flaky", ["sh", "-c", "echo later; exit 75"]))
        r = d.ctl("run", "flaky", "--wait")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"^flaky run \d+: retry, not retried \(a manual run is "
                                   r"not\); it ran in [\d.]+m?s: later\n$")

    def test_device_set_and_show_on_the_sim_platform(self):
        d = self.start(self.ok_job())
        r = d.ctl("device", "set", "network=metered", "charging=false")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = d.ctl("device")
        self.assertIn("network: metered\n", r.stdout)
        self.assertIn("charging: false\n", r.stdout)
        state = d.result("device.status")["state"]
        self.assertIs(state["charging"], False)

    def test_pending_job_gets_a_note_under_the_list(self):
        d = self.start(self.exec_job("sync", ["true"], interval="1s",
                                     constraints={"network": "unmetered"}))
        d.ctl("device", "set", "network=metered")
        job = d.wait_state("sync", "pending")
        out = d.ctl("list").stdout
        self.assertRegex(out, r"(?m)^sync: pending since \d\d:\d\d: %s$"
                         % re.escape(job["pending_reason"]))
        self.assertTrue(out.endswith("\n1 job listed.\n"), out)

    def test_reload_reports_the_job_count(self):
        d = self.start(self.ok_job("a"))
        d.write_config({"jobs": [self.ok_job("a"), self.ok_job("b")]})
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^reloaded: 2 jobs; added: b\n$")

    def watch(self, d, *args):
        """A running `mcpjobctl ARGS`; stopped before the daemon is."""
        w = subprocess.Popen([MCPJOBCTL] + list(args), stdout=subprocess.PIPE,
                             env=dict(os.environ, MCPJOBD_SOCKET=d.socket))
        self._watchers.append(w)
        return LineReader(w.stdout)

    def setUp(self):
        super().setUp()
        self._watchers = []

    def tearDown(self):
        for w in self._watchers:
            w.terminate()
            w.wait(timeout=10)
            w.stdout.close()
        super().tearDown()

    def test_watch_prints_one_line_per_event_as_it_happens(self):
        d = self.start(self.ok_job())
        w = self.watch(d, "watch", "ok")
        # No way to see the subscription land (it may land between a run's
        # start and its end): run until watch shows one run from start to end.
        seen = []
        whole = None
        for _ in range(20):
            self.assertEqual(d.ctl("run", "ok", "--wait").returncode, 0)
            seen += w.lines_until(lambda l: " finished: " in l, timeout=1)
            for l in seen:
                m = re.match(r"^\d\d:\d\d:\d\d ok run (\d+) finished: ", l)
                if m and any(" run %s started " % m.group(1) in x for x in seen):
                    whole = m.group(1)
            if whole:
                break
        self.assertTrue(whole, seen)
        started = [l for l in seen if " run %s started " % whole in l]
        finished = [l for l in seen if " run %s finished: " % whole in l]
        self.assertRegex(started[0], r"^\d\d:\d\d:\d\d ok run \d+ started \(manual\)$")
        self.assertRegex(finished[0], r"^\d\d:\d\d:\d\d ok run \d+ finished: success in \S+: "
                                      r"synced 3$")
        self.assertLess(seen.index(started[0]), seen.index(finished[0]))

    def test_watch_json_prints_event_params_one_per_line(self):
        d = self.start(self.ok_job())
        w = self.watch(d, "--json", "watch")
        lines = []
        for i in range(20):
            d.ctl("device", "set", "network=%s" % ("none" if i % 2 == 0 else "metered"))
            lines = w.lines_until(lambda l: '"device.changed"' in l, timeout=1)
            if lines:
                break
        ev = json.loads(lines[-1])
        self.assertEqual(ev["type"], "device.changed")
        self.assertIn(ev["state"]["network"], ("none", "metered"))
        self.assertIn("time", ev)

    def test_socket_option_beats_the_environment(self):
        d = self.start(self.ok_job())
        r = d.ctl("--socket", d.socket, "list", "--names",
                  env={"MCPJOBD_SOCKET": os.path.join(self.tmp, "elsewhere.sock")})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "ok\n")


if __name__ == "__main__":
    unittest.main()
