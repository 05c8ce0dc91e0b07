"""Who may do what on the control socket, and who jobs run as (root only).

Peers are real processes under other credentials (setpriv); the socket's
access rules come from SO_PEERCRED/SO_PEERGROUPS, not from its file mode, so
the test opens the socket file to everyone (chmod 0666) and the directories
on its path (0755) to reach the daemon as "nobody".
"""
import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
import unittest
import uuid

from harness import BUILD, MCPJOBD, E2ETestCase, wait_until

SETPRIV = shutil.which("setpriv")
NOBODY = pwd.getpwnam("nobody").pw_uid if "nobody" in [p.pw_name for p in pwd.getpwall()] else None
NOGROUP = "nogroup" if "nogroup" in [g.gr_name for g in grp.getgrall()] else "nobody"
FAULT = os.path.join(BUILD, "tests", "servers", "mcp-fault")

# Runs as the peer: one connection, requests from argv, responses as JSON.
PEER = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("r")
out = []
for i, (method, params) in enumerate(json.loads(sys.argv[2]), 1):
    s.sendall((json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                           "params": params}) + "\n").encode())
    while True:
        m = json.loads(f.readline())
        if m.get("id") == i:
            out.append(m)
            break
print(json.dumps(out))
'''


def need_root(test):
    if os.geteuid() != 0:
        return unittest.skip("needs root (starts the daemon as root, peers as other users)")(test)
    if SETPRIV is None:
        return unittest.skip("setpriv is not installed (Debian package util-linux)")(test)
    if NOBODY is None:
        return unittest.skip("there is no user \"nobody\"")(test)
    return test


@need_root
class PermissionTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.group = "mcpjt" + uuid.uuid4().hex[:8]
        subprocess.run(["groupadd", self.group], check=True, timeout=30)
        self.addCleanup(subprocess.run, ["groupdel", self.group], timeout=30)
        self.gid = grp.getgrnam(self.group).gr_gid
        self.peer_py = os.path.join(self.tmp, "peer.py")
        with open(self.peer_py, "w") as f:
            f.write(PEER)
        os.chmod(self.peer_py, 0o644)

    def open_daemon(self, jobs, **cfg):
        cfg.setdefault("admin_group", self.group)
        cfg["jobs"] = jobs
        d = self.daemon(cfg, start=False, exact_config=True)
        os.makedirs(d.tmp, exist_ok=True)
        os.chmod(d.tmp, 0o755)
        d.start()
        os.chmod(d.socket, 0o666)
        return d

    def as_peer(self, d, calls, groups=None, gid=NOGROUP):
        argv = [SETPRIV, "--reuid=nobody", "--regid=%s" % gid]
        argv += ["--groups=%s" % groups] if groups else ["--clear-groups"]
        argv += [sys.executable, self.peer_py, d.socket, json.dumps(calls)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_other_users_may_read_but_not_change(self):
        d = self.open_daemon([self.exec_job("j", ["true"], initial_delay="1h")])
        hello, jobs, status, history, device, sub = self.as_peer(d, [
            ["daemon.hello", {}], ["jobs.list", {}], ["job.status", {"job": "j"}],
            ["job.history", {"job": "j"}], ["device.status", {}], ["events.subscribe", {}]])
        self.assertEqual(hello["result"]["access"], "read-only")
        self.assertEqual([j["id"] for j in jobs["result"]["jobs"]], ["j"])
        for r in (status, history, device, sub):
            self.assertIn("result", r)
        denied = self.as_peer(d, [
            ["job.disable", {"job": "j"}], ["job.run", {"job": "j"}],
            ["device.set", {"network": "none"}], ["job.enable", {"job": "j"}],
            ["job.cancel", {"job": "j"}], ["daemon.reload", {}]])
        for r, method in zip(denied, ["job.disable", "job.run", "device.set", "job.enable",
                                      "job.cancel", "daemon.reload"]):
            self.assertEqual(r["error"]["code"], -32003, r)
            self.assertIn("permission denied", r["error"]["message"])
            self.assertEqual(r["error"]["data"], {"method": method, "group": self.group})
        self.assertTrue(d.status("j")["enabled"], "a refused job.disable changed the job")

    def test_admin_group_members_may_change(self):
        d = self.open_daemon([self.exec_job("j", ["true"], initial_delay="1h")])
        hello, disabled = self.as_peer(d, [["daemon.hello", {}], ["job.disable", {"job": "j"}]],
                                       groups=str(self.gid))
        self.assertEqual(hello["result"]["access"], "admin")
        self.assertFalse(disabled["result"]["enabled"], disabled)
        # The admin group as the primary group counts as well.
        hello, run = self.as_peer(d, [["daemon.hello", {}],
                                      ["job.run", {"job": "j", "wait": True}]], gid=self.gid)
        self.assertEqual(hello["result"]["access"], "admin")
        self.assertEqual(run["result"]["outcome"], "success", run)

    def test_root_daemon_gives_its_socket_to_the_admin_group(self):
        d = self.open_daemon([])
        st = os.stat(d.socket)
        self.assertEqual(st.st_gid, self.gid)

    def test_job_user_owns_what_the_job_writes(self):
        out = os.path.join(self.tmp, "shared")
        os.makedirs(out)
        os.chmod(out, 0o777)
        target = os.path.join(out, "written")
        d = self.open_daemon([self.exec_job("w", ["sh", "-c", "echo hi > " + target],
                                            initial_delay="1h", user="nobody")])
        d.ctl("run", "w", "--wait", check=True)
        st = os.stat(target)
        self.assertEqual((st.st_uid, st.st_gid), (NOBODY, grp.getgrnam(NOGROUP).gr_gid))

    def test_root_daemon_runs_unnamed_jobs_as_nobody_and_root_only_when_asked(self):
        d = self.open_daemon([self.exec_job("plain", ["id", "-u"], initial_delay="1h"),
                              self.exec_job("asroot", ["id", "-u"], initial_delay="1h",
                                            user="root")])
        self.assertEqual(d.result("job.run", {"job": "plain", "wait": True})["output"],
                         "%d\n" % NOBODY)
        self.assertEqual(d.result("job.run", {"job": "asroot", "wait": True})["output"], "0\n")

    def test_configured_default_user_overrides_nobody(self):
        d = self.open_daemon([self.exec_job("plain", ["id", "-u"], initial_delay="1h")],
                             default_user="root")
        self.assertEqual(d.result("job.run", {"job": "plain", "wait": True})["output"], "0\n")

    def test_child_environment_has_nothing_of_the_daemon(self):
        job = self.exec_job("env", ["env"], initial_delay="1h", user="nobody")
        d = self.daemon({"jobs": [job]}, start=False, env={"MCPJOB_TEST_MARKER": "leak"},
                        exact_config=True)
        d.start()
        run = d.result("job.run", {"job": "env", "wait": True})
        self.assertEqual(run["outcome"], "success", run)
        env = dict(line.split("=", 1) for line in run["output"].splitlines())
        self.assertEqual(sorted(env), ["HOME", "LANG", "LOGNAME", "MCPJOB_STORE_RUN", "PATH",
                                       "USER"], run["output"])
        # The marker that finds a dead daemon's processes: store id / run id.
        self.assertRegex(env["MCPJOB_STORE_RUN"], r"^[0-9a-f]{32}/%d$" % run["run_id"])
        self.assertEqual(env["USER"], "nobody")
        self.assertEqual(env["HOME"], pwd.getpwnam("nobody").pw_dir)
        hist = d.history("env", limit=1)[0]
        self.assertNotIn("MCPJOB_TEST_MARKER", hist["output"])

    def test_mcp_servers_run_as_the_default_user(self):
        if not os.path.exists(FAULT):
            self.skipTest("%s is not built" % FAULT)
        shared = os.path.join(self.tmp, "pids")
        os.makedirs(shared)
        os.chmod(shared, 0o777)
        pidfile = os.path.join(shared, "pids")
        d = self.open_daemon(
            [{"id": "m", "name": "m", "interval": "24h", "initial_delay": "1h",
              "action": {"mcp": {"server": "fault", "tool": "echo",
                                 "arguments": {"message": "hi"}}}}],
            mcpServers={"fault": {"command": FAULT, "args": ["--mode", "ok", "--pidfile", pidfile],
                                  "idle_timeout": "60s"}})
        run = d.result("job.run", {"job": "m", "wait": True})
        self.assertEqual(run["outcome"], "success", run)
        pid = int(open(pidfile).read().split()[-1])
        with open("/proc/%d/status" % pid) as f:
            uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
        self.assertEqual(set(map(int, uids)), {NOBODY})

    def test_non_root_config_naming_another_user_is_refused(self):
        cfg = os.path.join(self.tmp, "cfg.json")
        with open(cfg, "w") as f:
            json.dump({"jobs": [self.exec_job("x", ["true"], user="root"),
                                self.exec_job("y", ["true"], user="nobody")]}, f)
        os.chmod(cfg, 0o644)
        r = subprocess.run([SETPRIV, "--reuid=nobody", "--regid=" + NOGROUP, "--clear-groups",
                            MCPJOBD, "--check-config", "--config", cfg],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('%s: jobs[0] (x).user: "root": only root can run jobs as another user; '
                      'remove "user" or run mcpjobd as root' % cfg, r.stderr)
        self.assertNotIn("(y)", r.stderr, "naming yourself is fine")


if __name__ == "__main__":
    unittest.main()
