"""mcpjobd end to end: the real daemon on a private socket and state dir,
driven by the real mcpjobctl and raw socket clients."""
import json
import os
import signal
import socket
import subprocess
import time

from harness import MCPJOBD, E2ETestCase, RpcClient, wait_until


def far(job_id, argv, **kw):
    """An exec job that does not run by itself for a day."""
    j = {"id": job_id, "interval": "24h", "initial_delay": "24h",
         "action": {"exec": {"argv": argv}}}
    j.update(kw)
    return j


class RunAndHistory(E2ETestCase):
    def test_run_now_waits_and_records_history(self):
        d = self.daemon({"jobs": [far("hello", ["sh", "-c", "echo first; echo all done"])]})
        r = d.ctl("run", "hello", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("success", r.stdout)
        self.assertIn("all done", r.stdout)
        runs = d.history("hello")
        self.assertEqual(len(runs), 1)
        run = runs[0]
        self.assertEqual(run["outcome"], "success")
        self.assertEqual(run["trigger"], "manual")
        self.assertEqual(run["message"], "all done")
        self.assertIn("first", run["output"])
        self.assertEqual(run["attempt"], 1)
        self.assertIsNotNone(run["finished_at"])
        self.assertGreaterEqual(run["duration_ms"], 0)
        st = d.status("hello")
        self.assertEqual(st["last_outcome"], "success")
        self.assertEqual(st["state"], "scheduled")
        hist = d.ctl("history", "hello", "-n", "5")
        self.assertEqual(hist.returncode, 0, hist.stderr)
        self.assertIn("all done", hist.stdout)

    def test_failing_run_exits_nonzero_and_says_why(self):
        d = self.daemon({"jobs": [far("bad", ["sh", "-c", "echo cannot reach host >&2; exit 3"])]})
        r = d.ctl("run", "bad", "--wait")
        self.assertEqual(r.returncode, 1)
        run = d.history("bad")[0]
        self.assertEqual(run["outcome"], "failure")
        self.assertEqual(run["message"], "cannot reach host")
        # Each run's lines on stderr: the program, the level when it is not
        # info, the job, then what happened, one line each.
        log = d.log()
        self.assertRegex(log, r"(?m)^mcpjobd: bad: run 1 started \(manual\)$")
        self.assertRegex(log, r"(?m)^mcpjobd: warning: bad: run 1: failure in \S+: cannot reach host$")

    def test_missing_program_is_a_recorded_failure(self):
        d = self.daemon({"jobs": [far("ghost", ["/nonexistent/program"])]})
        r = d.ctl("run", "ghost", "--wait")
        self.assertEqual(r.returncode, 1)
        run = d.history("ghost")[0]
        self.assertEqual(run["outcome"], "failure")
        self.assertIn("/nonexistent/program", run["message"])
        self.assertEqual(len(d.history("ghost")), 1)

    def test_scheduled_job_runs_on_its_interval(self):
        d = self.daemon({"jobs": [{"id": "tick", "interval": "1s",
                                   "action": {"exec": {"argv": ["true"]}}}]})
        runs = d.wait_runs("tick", 3, timeout=8)
        self.assertTrue(all(r["trigger"] == "schedule" for r in runs))
        starts = sorted(r["started_at"] for r in runs)
        self.assertEqual(len(set(starts)), len(starts))

    def test_unknown_job_is_a_clear_error(self):
        d = self.daemon({"jobs": [far("a", ["true"])]})
        r = d.ctl("status", "nope")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('no such job "nope"', r.stderr)
        resp = d.rpc("job.run", {"job": "nope"})
        self.assertEqual(resp["error"]["code"], -32001)
        self.assertEqual(resp["error"]["data"]["job"], "nope")


class Overlap(E2ETestCase):
    def test_overlapping_run_is_refused(self):
        d = self.daemon({"jobs": [far("slow", ["sleep", "5"])]})
        r = d.ctl("run", "slow")
        self.assertEqual(r.returncode, 0, r.stderr)
        d.wait_state("slow", "running")
        r2 = d.ctl("run", "slow")
        self.assertNotEqual(r2.returncode, 0)
        self.assertIn("already running", r2.stderr)
        resp = d.rpc("job.run", {"job": "slow"})
        self.assertEqual(resp["error"]["code"], -32002)
        c = d.ctl("cancel", "slow")
        self.assertEqual(c.returncode, 0, c.stderr)
        runs = d.wait_runs("slow", 1)
        self.assertEqual(runs[0]["outcome"], "cancelled")
        self.assertEqual(len(d.history("slow")), 1)

    def test_max_concurrent_queues_the_rest(self):
        jobs = [far("j%d" % i, ["sleep", "1"]) for i in range(3)]
        d = self.daemon({"max_concurrent": 1, "jobs": jobs})
        outs = [d.result("job.run", {"job": "j%d" % i}) for i in range(3)]
        self.assertFalse(outs[0]["queued"])
        self.assertTrue(outs[1]["queued"])
        self.assertTrue(outs[2]["queued"])
        st = d.status("j2")
        self.assertEqual(st["state"], "pending")
        self.assertIn("free run slot", st["pending_reason"])
        for i in range(3):
            d.wait_runs("j%d" % i, 1, timeout=10)
        runs = [d.history("j%d" % i)[0] for i in range(3)]
        # One at a time: each starts after the previous finished.
        runs.sort(key=lambda r: r["started_at"])
        for a, b in zip(runs, runs[1:]):
            self.assertLessEqual(a["finished_at"], b["started_at"])


class Timeouts(E2ETestCase):
    def test_timeout_kills_the_process_group(self):
        pidfile = os.path.join(self.tmp, "grandchild.pid")
        script = "sleep 300 & echo $! > %s; wait" % pidfile
        d = self.daemon({"jobs": [far("hang", ["sh", "-c", script], timeout="1s")]})
        r = d.ctl("run", "hang", "--wait")
        self.assertEqual(r.returncode, 1)
        run = d.history("hang")[0]
        self.assertEqual(run["outcome"], "timeout")
        self.assertIn("timed out after 1s", run["message"])
        gpid = int(open(pidfile).read())
        def gone():
            try:
                os.kill(gpid, 0)
            except ProcessLookupError:
                return True
            # A zombie not yet reaped by init counts as gone.
            try:
                with open("/proc/%d/stat" % gpid) as f:
                    return f.read().split()[2] == "Z"
            except OSError:
                return True
        wait_until(gone, timeout=8, what="the grandchild to be killed")


class Persistence(E2ETestCase):
    def test_disable_persists_across_restart(self):
        d = self.daemon({"jobs": [far("a", ["true"]), far("b", ["true"])]})
        r = d.ctl("disable", "a")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(d.status("a")["state"], "disabled")
        d.restart()
        st = d.status("a")
        self.assertFalse(st["enabled"])
        self.assertEqual(st["state"], "disabled")
        self.assertTrue(d.status("b")["enabled"])
        d.ctl("enable", "a", check=True)
        d.restart()
        self.assertTrue(d.status("a")["enabled"])

    def test_disable_survives_reload(self):
        d = self.daemon({"jobs": [far("a", ["true"])]})
        d.ctl("disable", "a", check=True)
        r = d.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(d.status("a")["enabled"])

    def test_sigkill_during_run_leaves_one_interrupted_record(self):
        d = self.daemon({"jobs": [far("long", ["sleep", "60"])]})
        d.ctl("run", "long", check=True)
        d.wait_state("long", "running")
        run_id = d.status("long")["run_id"]
        d.kill9()
        d.start()
        runs = d.history("long")
        self.assertEqual(len(runs), 1, runs)
        self.assertEqual(runs[0]["run_id"], run_id)
        self.assertEqual(runs[0]["outcome"], "interrupted")
        self.assertIsNotNone(runs[0]["finished_at"])
        self.assertEqual(d.status("long")["last_outcome"], "interrupted")
        d.restart()
        self.assertEqual(len(d.history("long")), 1)

    def test_sigterm_cancels_running_runs_and_exits_zero(self):
        d = self.daemon({"jobs": [far("long", ["sleep", "60"])]})
        d.ctl("run", "long", check=True)
        d.wait_state("long", "running")
        self.assertEqual(d.stop(), 0)
        d.start()
        runs = d.history("long")
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["outcome"], "cancelled")
        self.assertIn("stopping", runs[0]["message"])


class Cleanup(E2ETestCase):
    def test_cleanup_deletes_old_files_only_and_never_follows_symlinks(self):
        root = os.path.join(self.tmp, "cache")
        outside = os.path.join(self.tmp, "outside")
        os.makedirs(os.path.join(root, "sub"))
        os.makedirs(outside)
        old = time.time() - 10 * 86400

        def mk(path, age, size=10):
            with open(path, "wb") as f:
                f.write(b"x" * size)
            if age:
                os.utime(path, (age, age))
        mk(os.path.join(root, "old1"), old, 100)
        mk(os.path.join(root, "sub", "old2"), old, 50)
        mk(os.path.join(root, "new"), None)
        mk(os.path.join(outside, "precious"), old)
        os.symlink(outside, os.path.join(root, "link-out"))
        os.symlink(os.path.join(outside, "precious"), os.path.join(root, "file-link"))
        d = self.daemon({"jobs": [{"id": "clean", "interval": "24h", "initial_delay": "24h",
                                   "action": {"cleanup": {"path": root, "max_age": "7d"}}}]})
        r = d.ctl("run", "clean", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "old1")))
        self.assertFalse(os.path.exists(os.path.join(root, "sub", "old2")))
        self.assertTrue(os.path.exists(os.path.join(root, "new")))
        self.assertTrue(os.path.exists(os.path.join(outside, "precious")))
        self.assertTrue(os.path.islink(os.path.join(root, "link-out")))
        self.assertTrue(os.path.islink(os.path.join(root, "file-link")))
        msg = d.history("clean")[0]["message"]
        self.assertIn("deleted 2 files (150 bytes)", msg)


class Reload(E2ETestCase):
    def test_reload_with_broken_config_keeps_old_jobs(self):
        d = self.daemon({"jobs": [far("a", ["true"])]})
        d.write_config('{"jobs": [ {"id": "b", "interval": "15x", "action": {"exec": {"argv": ["true"]}}} ]}')
        r = d.ctl("reload")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("interval", r.stderr)
        resp = d.rpc("daemon.reload")
        self.assertEqual(resp["error"]["code"], -32005)
        self.assertTrue(any("15x" in e for e in resp["error"]["data"]["errors"]))
        ids = [j["id"] for j in d.result("jobs.list")["jobs"]]
        self.assertEqual(ids, ["a"])
        # SIGHUP takes the same path and the daemon keeps serving.
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        self.assertEqual([j["id"] for j in d.result("jobs.list")["jobs"]], ["a"])
        self.assertIn("refused", d.log())

    def test_reload_adds_and_removes_jobs(self):
        d = self.daemon({"jobs": [far("a", ["true"]), far("b", ["true"])]})
        d.write_config({"jobs": [far("b", ["true"]), far("c", ["true"])]})
        res = d.result("daemon.reload")
        self.assertEqual(res["added"], ["c"])
        self.assertEqual(res["removed"], ["a"])
        ids = sorted(j["id"] for j in d.result("jobs.list")["jobs"])
        self.assertEqual(ids, ["b", "c"])


class BadInput(E2ETestCase):
    def test_malformed_requests_get_errors_and_the_connection_goes_on(self):
        d = self.daemon({"jobs": [far("a", ["true"])]})
        c = d.client()
        c.send_raw(b"this is not json\n")
        self.assertEqual(c.recv_msg()["error"]["code"], -32700)
        c.send_raw(b'{"jsonrpc":"2.0","id":1}\n')
        self.assertEqual(c.recv_msg()["error"]["code"], -32600)
        c.send_raw(b'[1,2,3]\n')
        self.assertEqual(c.recv_msg()["error"]["code"], -32600)
        r = c.call("no.such.method")
        self.assertEqual(r["error"]["code"], -32601)
        r = c.call("job.status", {})
        self.assertEqual(r["error"]["code"], -32602)
        self.assertIn('"job"', r["error"]["message"])
        r = c.call("job.status", {"job": 5})
        self.assertEqual(r["error"]["code"], -32602)
        r = c.call("job.status", {"job": "a", "junk": 1})
        self.assertEqual(r["error"]["code"], -32602)
        self.assertIn("junk", r["error"]["message"])
        r = c.call("job.history", {"job": "a", "limit": 0})
        self.assertEqual(r["error"]["code"], -32602)
        r = c.call("job.status", {"job": "a"})
        self.assertEqual(r["result"]["id"], "a")
        c.close()

    def test_oversized_line_closes_only_that_connection(self):
        d = self.daemon({"jobs": [far("a", ["true"])]})
        other = d.client()
        big = d.client()
        try:
            big.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"jobs.list","params":{"x":"' +
                         b"y" * (2 * 1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass
        msg = big.recv_msg()
        self.assertEqual(msg["error"]["code"], -32008)
        with self.assertRaises((EOFError, ConnectionResetError)):
            big.recv_msg()
        self.assertEqual(other.call("job.status", {"job": "a"})["result"]["id"], "a")
        other.close()

    def test_client_vanishing_mid_request_costs_nothing(self):
        d = self.daemon({"jobs": [far("slow", ["sleep", "1"])]})
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"job.run","params":{"job":"slow","wait":true}}\n')
        s.close()
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"jobs.li')
        s.close()
        runs = d.wait_runs("slow", 1, timeout=5)
        self.assertEqual(runs[0]["outcome"], "success")
        self.assertEqual(d.result("daemon.hello")["name"], "mcpjobd")

    def test_protocol_version_mismatch_is_clear(self):
        d = self.daemon({"jobs": []})
        r = d.rpc("daemon.hello", {"protocol": 99})
        self.assertEqual(r["error"]["code"], -32010)
        self.assertIn("99", r["error"]["message"])
        ok = d.result("daemon.hello", {"protocol": 1, "client": "test"})
        self.assertEqual(ok["protocol"], 1)


class CommandLine(E2ETestCase):
    def test_check_config_reports_every_error_with_position(self):
        path = os.path.join(self.tmp, "bad.json")
        with open(path, "w") as f:
            f.write('{"jobs": [\n  {"id": "x", "interval": "15x", "action": {"exec": {"argv": ["true"]}}},\n'
                    '  {"id": "y", "interval": "1m", "flex": "5m", "action": {"exec": {"argv": ["true"]}}}\n]}\n')
        r = subprocess.run([MCPJOBD, "--check-config", "--config", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr)
        self.assertIn("interval", r.stderr)
        self.assertIn("flex", r.stderr)
        with open(path, "w") as f:
            f.write('{"jobs": [\n  {"id": "x",, }\n]}\n')
        r = subprocess.run([MCPJOBD, "--check-config", "--config", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(path + ":2:", r.stderr)
        with open(path, "w") as f:
            f.write('{"jobs": [{"id": "x", "interval": "1m", "action": {"exec": {"argv": ["true"]}}}]}')
        r = subprocess.run([MCPJOBD, "--check-config", "--config", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_daemon_refuses_to_start_on_a_bad_config(self):
        d = self.daemon('{"jobs": [{"id": "x"}]}', start=False)
        d.start(wait=False)
        rc = d.proc.wait(timeout=10)
        self.assertEqual(rc, 1)
        self.assertIn("interval", d.log())

    def test_ctl_says_when_the_daemon_is_not_running(self):
        d = self.daemon({"jobs": []}, start=False)
        r = d.ctl("list")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot connect to %s" % d.socket, r.stderr)
        self.assertIn("is mcpjobd running?", r.stderr)

    def test_help_and_version(self):
        r = subprocess.run([MCPJOBD, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)
        r = subprocess.run([MCPJOBD, "--version"], capture_output=True, text=True)
        self.assertTrue(r.stdout.startswith("mcpjobd "))
        r = subprocess.run([MCPJOBD, "--bogus"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
