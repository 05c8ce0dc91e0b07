"""Jobs that apps add at runtime (job.add / job.update / job.remove), through
the real daemon: validated like a file's jobs, kept across restarts, each
running as whoever added it, with the rules of a personal crontab under one
system daemon (root only for the other-user parts)."""
import json
import os
import pwd
import subprocess
import sys

from harness import MCPJOBCTL, E2ETestCase
from test_permissions import NOBODY, PEER, need_root

NOBODY_NAME = pwd.getpwuid(NOBODY).pw_name if NOBODY is not None else "nobody"


def job(job_id, argv=("true",), **extra):
    j = {"id": job_id, "interval": "1h", "initial_delay": "1h",
         "action": {"exec": {"argv": list(argv)}}}
    j.update(extra)
    return j


class AddedJobs(E2ETestCase):
    def add(self, d, j, *args):
        """mcpjobctl add -, the job on its standard input."""
        return subprocess.run([MCPJOBCTL, "add", "-", *args], input=json.dumps(j),
                              capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, MCPJOBD_SOCKET=d.socket))

    def test_an_added_job_runs_and_survives_a_restart_and_a_reload(self):
        d = self.daemon({"jobs": [job("from-file")]})
        r = self.add(d, job("mine", ["echo", "hello from an app"]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "mine: added")
        st = d.status("mine")
        self.assertEqual((st["origin"], st["owner_uid"]), ("socket", os.geteuid()))
        self.assertEqual(d.status("from-file")["origin"], "config")
        self.assertIn("Origin: added over the socket by uid %d" % os.geteuid(),
                      d.ctl("status", "mine").stdout)
        self.assertIn("Origin: %s" % d.config_path, d.ctl("status", "from-file").stdout)
        run = d.ctl("run", "mine", "--wait")
        self.assertEqual(run.returncode, 0, run.stderr)
        d.restart()
        self.assertEqual(d.status("mine")["origin"], "socket")
        self.assertEqual(len(d.history("mine")), 1)
        self.assertEqual(d.result("daemon.reload")["jobs"], 2)
        self.assertIn("mine", [j["id"] for j in d.result("jobs.list")["jobs"]])

    def test_a_bad_job_is_refused_with_the_same_messages_as_a_file(self):
        d = self.daemon({"jobs": []})
        r = self.add(d, job("bad", interval="15x"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("job (bad).interval: \"15x\" is not a duration", r.stderr)
        resp = d.rpc("job.add", {"job": job("bad", intervall="1h")})
        self.assertEqual(resp["error"]["code"], -32005)
        self.assertTrue(any("intervall: unknown key" in e and "did you mean" in e
                            for e in resp["error"]["data"]["errors"]), resp)
        self.assertFalse(any(j["id"] == "bad" for j in d.result("jobs.list")["jobs"]))
        resp = d.rpc("job.add", {"job": "not an object"})
        self.assertEqual(resp["error"]["code"], -32602)

    def test_a_file_job_cannot_be_added_updated_or_removed_over_the_socket(self):
        d = self.daemon({"jobs": [job("fixed")]})
        for method, params in (("job.add", {"job": job("fixed"), "if_exists": "replace"}),
                               ("job.remove", {"job": "fixed"})):
            resp = d.rpc(method, params)
            self.assertEqual(resp["error"]["code"], -32003, resp)
            self.assertIn("is defined in %s" % d.config_path, resp["error"]["message"])
        resp = d.rpc("job.update", {"job": job("fixed")})
        self.assertEqual(resp["error"]["code"], -32001)

    def test_a_one_off_added_in_ten_seconds_keeps_its_time_across_restarts(self):
        d = self.daemon({"jobs": []})
        j = job("later")
        del j["interval"], j["initial_delay"]
        j["at"] = "10s"
        st = d.result("job.add", {"job": j})["status"]
        self.assertTrue(st["schedule"].startswith("once at "), st)
        due = st["next_run"]
        self.assertIsNotNone(due)
        d.restart()
        self.assertEqual(d.status("later")["next_run"], due)

    def test_if_exists_keep_update_and_replace(self):
        d = self.daemon({"jobs": []})
        self.assertEqual(d.result("job.add", {"job": job("w")})["result"], "added")
        again = d.rpc("job.add", {"job": job("w")})
        self.assertEqual(again["error"]["code"], -32011)
        self.assertIn("say if_exists", again["error"]["message"])
        kept = d.result("job.add", {"job": job("w", name="other"), "if_exists": "keep"})
        self.assertEqual(kept["result"], "kept")
        self.assertEqual(d.status("w")["name"], "w")
        d.result("job.disable", {"job": "w"})
        upd = d.result("job.add", {"job": job("w", name="updated"), "if_exists": "update"})
        self.assertEqual(upd["result"], "updated")
        self.assertEqual((d.status("w")["name"], d.status("w")["enabled"]), ("updated", False))
        rep = d.result("job.add", {"job": job("w", name="replaced"), "if_exists": "replace"})
        self.assertEqual(rep["result"], "replaced")
        self.assertEqual((d.status("w")["name"], d.status("w")["enabled"]), ("replaced", True))
        r = d.ctl("remove", "w")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(any(j["id"] == "w" for j in d.result("jobs.list")["jobs"]))
        d.restart()
        self.assertFalse(any(j["id"] == "w" for j in d.result("jobs.list")["jobs"]))


@need_root
class AddedByOtherUsers(E2ETestCase):
    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.peer_py = os.path.join(self.tmp, "peer.py")
        with open(self.peer_py, "w") as f:
            f.write(PEER)
        os.chmod(self.peer_py, 0o644)

    def open_daemon(self, **cfg):
        cfg.setdefault("jobs", [])
        cfg.setdefault("admin_group", "root")
        d = self.daemon(cfg, start=False, exact_config=True)
        os.makedirs(d.tmp, exist_ok=True)
        os.chmod(d.tmp, 0o755)
        d.start()
        os.chmod(d.socket, 0o666)
        return d

    def as_nobody(self, d, calls):
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                sys.executable, self.peer_py, d.socket, json.dumps(calls)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_a_user_adds_a_job_that_runs_as_that_user_and_survives_a_restart(self):
        d = self.open_daemon()
        added, ran = self.as_nobody(d, [
            ["job.add", {"job": job("theirs", ["id", "-u"])}],
            ["job.run", {"job": "theirs", "wait": True}]])
        self.assertEqual(added["result"]["result"], "added", added)
        self.assertEqual(added["result"]["status"]["owner_uid"], NOBODY)
        runs = d.wait_runs("theirs", 1, timeout=20)
        self.assertEqual(runs[0]["outcome"], "success", runs)
        self.assertEqual(runs[0]["output"].strip(), str(NOBODY))
        d.restart()
        os.chmod(d.socket, 0o666)
        self.assertEqual(d.status("theirs")["owner_uid"], NOBODY)
        disabled, = self.as_nobody(d, [["job.disable", {"job": "theirs"}]])
        self.assertIn("result", disabled)

    def test_a_user_cannot_add_as_root_touch_others_jobs_or_pass_the_quota(self):
        d = self.open_daemon(max_jobs_per_uid=2, mcpServers={
            "private": {"command": "/bin/true"},
            "open": {"command": "/bin/true", "shared": True}})
        d.result("job.add", {"job": job("roots")})
        as_root, remove, run, other, private, shared = self.as_nobody(d, [
            ["job.add", {"job": job("sneaky", user="root")}],
            ["job.remove", {"job": "roots"}],
            ["job.run", {"job": "roots"}],
            ["job.add", {"job": job("roots"), "if_exists": "replace"}],
            ["job.add", {"job": job("p", action={"mcp": {"server": "private", "tool": "t"}})}],
            ["job.add", {"job": job("s", action={"mcp": {"server": "open", "tool": "t"}})}]])
        self.assertEqual(as_root["error"]["code"], -32003, as_root)
        self.assertTrue(any('job (sneaky).user: "root" is not you' in e
                            for e in as_root["error"]["data"]["errors"]), as_root)
        for r in (remove, run, other):
            self.assertEqual(r["error"]["code"], -32003, r)
        self.assertTrue(any('server "private" is not shared' in e
                            for e in private["error"]["data"]["errors"]), private)
        self.assertIn("result", shared)
        more, = self.as_nobody(d, [["job.add", {"job": job("n2")}]])
        self.assertIn("result", more)
        over, = self.as_nobody(d, [["job.add", {"job": job("n3")}]])
        self.assertEqual(over["error"]["code"], -32012, over)
        self.assertIn("max_jobs_per_uid", over["error"]["message"])
        ids = [j["id"] for j in d.result("jobs.list")["jobs"]]
        self.assertEqual(sorted(ids), ["n2", "roots", "s"])


class RegisterExample(E2ETestCase):
    """examples/register.py, the app side of job.add, against the real daemon."""

    def run_example(self, d, *args):
        from harness import ROOT
        return subprocess.run([sys.executable, os.path.join(ROOT, "examples", "register.py"),
                               *args], capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, MCPJOBD_SOCKET=d.socket))

    def test_an_app_schedules_and_cancels_its_own_job(self):
        d = self.daemon({"jobs": []})
        r = self.run_example(d, "schedule", "app-sync", "15m", "/bin/true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("app-sync: added, next run ", r.stdout)
        st = d.status("app-sync")
        self.assertEqual((st["origin"], st["constraints"]["network"]), ("socket", "connected"))
        again = self.run_example(d, "schedule", "app-sync", "15m", "/bin/true")
        self.assertIn("app-sync: kept", again.stdout)
        bad = self.run_example(d, "schedule", "other", "15x", "/bin/true")
        self.assertEqual(bad.returncode, 1)
        self.assertIn('job (other).interval: "15x" is not a duration', bad.stderr)
        r = self.run_example(d, "cancel", "app-sync")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "app-sync: removed"))
        self.assertEqual(d.result("jobs.list")["jobs"], [])

    def test_the_example_says_when_the_daemon_is_not_running(self):
        from harness import ROOT
        r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "register.py"),
                            "cancel", "x"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, MCPJOBD_SOCKET=os.path.join(self.tmp, "nosock")))
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot reach mcpjobd at", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
