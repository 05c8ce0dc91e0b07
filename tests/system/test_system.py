"""mcpjobd under a real systemd: the Debian package installed in a booted
container (systemd as PID 1, tests/system/container.py), then what only a
real service manager shows - socket activation, Type=notify readiness and
STATUS=, reload, the watchdog, kill -9 and Restart=, the journal's fields,
the socket's group, the user units under a lingering user manager - and the
package upgraded and purged.

Run by tests/system/run.py (make check-system), which orders the classes:
the package is installed first and purged last.
"""
import json
import os
import time
import unittest

CT = None      # the Container, set by run.py
DEB = None     # the .deb on the host, set by run.py
DEB_IN = "/var/tmp/mcpjob-system/mcpjobd.deb"  # not /tmp: nspawn mounts a tmpfs there
SOCK = "/run/mcpjobd/control.sock"
CONF = "/etc/mcpjobd/mcpjobd.json"


def wait_until(pred, what, timeout=30, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def ctl(*args, user=None, check=True, per_user=False):
    argv = ["mcpjobctl"] + (["--user"] if per_user else []) + list(args)
    return CT.run(argv, user=user, check=check)


def ctl_json(*args, **kw):
    return json.loads(ctl("--json", *args, **kw).stdout)


def service(*props):
    return CT.show("mcpjobd.service", *props)


def write_config(jobs, servers=None):
    CT.write(CONF, json.dumps({"admin_group": "mcpjob", "mcpServers": servers or {},
                               "jobs": jobs}, indent=2))


def exec_job(id_, argv, **extra):
    job = {"id": id_, "interval": "1h", "initial_delay": "1h",
           "action": {"exec": {"argv": argv}}}
    job.update(extra)
    return job


def configure(jobs, servers=None):
    """Write the configuration, reload, and wait until the daemon has it."""
    write_config(jobs, servers)
    CT.run(["systemctl", "reload-or-restart", "mcpjobd.service"])
    ids = [j["id"] for j in jobs]
    wait_until(lambda: [j["id"] for j in ctl_json("list")["jobs"]] == ids, "the reload")


def assert_socket_listening(test):
    """The socket unit is up and its path is there (an upgrade must not lose it)."""
    test.assertEqual(CT.run(["systemctl", "is-active", "mcpjobd.socket"],
                            check=False).stdout.strip(), "active")
    test.assertEqual(CT.run(["stat", "-c", "%F", SOCK]).stdout.strip(), "socket")


def history(job_id):
    return ctl_json("history", job_id)["runs"]


class A_Install(unittest.TestCase):
    def test_1_package_installs_creates_the_group_and_starts_its_units(self):
        r = CT.run(["dpkg", "-i", DEB_IN])
        self.assertNotIn("policy-rc.d", r.stdout + r.stderr)
        self.assertIn("mcpjob:", CT.run(["getent", "group", "mcpjob"]).stdout)
        for unit in ("mcpjobd.socket", "mcpjobd.service"):
            self.assertEqual(CT.run(["systemctl", "is-enabled", unit]).stdout.strip(), "enabled")
        self.assertEqual(CT.run(["systemctl", "is-active", "mcpjobd.socket"]).stdout.strip(),
                         "active")
        wait_until(lambda: service("ActiveState")["ActiveState"] == "active", "the service")
        # the installed configuration runs on a fresh system: no jobs, no failure
        self.assertEqual(json.load(open(CT.path(CONF)))["jobs"], [])
        self.assertEqual(ctl_json("list")["jobs"], [])
        self.assertEqual(service("NRestarts")["NRestarts"], "0")

    def test_2_installed_binaries_carry_the_hardening_link_flags(self):
        # LDFLAGS from dpkg-buildflags (-z relro -z now) reached the link line.
        if CT.run(["sh", "-c", "command -v readelf"], check=False).returncode != 0:
            self.skipTest("NOT RUN: readelf (binutils) is not in the image")
        r = CT.run(["readelf", "-d", "/usr/sbin/mcpjobd", "/usr/bin/mcpjobctl"])
        self.assertEqual(r.stdout.count("BIND_NOW"), 2, r.stdout)


class B_Service(unittest.TestCase):
    def test_1_socket_activation_starts_the_stopped_service_on_first_connection(self):
        CT.run(["systemctl", "stop", "mcpjobd.service"])
        self.assertEqual(service("ActiveState")["ActiveState"], "inactive")
        self.assertEqual(CT.run(["systemctl", "is-active", "mcpjobd.socket"]).stdout.strip(),
                         "active")
        self.assertIn("jobs", ctl_json("list"))  # the connection is what starts it
        p = service("ActiveState", "TriggeredBy")
        self.assertEqual(p["ActiveState"], "active")
        self.assertIn("mcpjobd.socket", p["TriggeredBy"])

    def test_2_notify_readiness_and_status_line_follow_the_jobs(self):
        write_config([exec_job("hello", ["id", "-un"]), exec_job("nap", ["sleep", "300"])])
        CT.run(["systemctl", "restart", "mcpjobd.service"])
        # Type=notify: "restart" returns once READY=1 arrived
        p = service("Type", "ActiveState", "SubState", "StatusText", "NotifyAccess")
        self.assertEqual((p["Type"], p["NotifyAccess"]), ("notify", "main"))
        self.assertEqual((p["ActiveState"], p["SubState"]), ("active", "running"))
        self.assertTrue(p["StatusText"].startswith("2 jobs"), p)
        ctl("run", "nap")
        wait_until(lambda: "1 running" in service("StatusText")["StatusText"],
                   "STATUS= to show the running job")
        ctl("cancel", "nap")
        wait_until(lambda: "0 running" in service("StatusText")["StatusText"],
                   "STATUS= to show nothing running")

    def test_3_jobs_run_as_nobody_inside_the_sandbox(self):
        configure([exec_job("hello", ["id", "-un"])])
        r = ctl("run", "hello", "--wait")
        self.assertIn("success", r.stdout)
        self.assertEqual(history("hello")[0]["message"], "nobody")

    def test_4_systemctl_reload_rereads_the_configuration_in_the_same_process(self):
        pid = service("MainPID")["MainPID"]
        write_config([exec_job("hello", ["id", "-un"]), exec_job("nap", ["sleep", "300"]),
                      exec_job("third", ["true"])])
        CT.run(["systemctl", "reload", "mcpjobd.service"])
        wait_until(lambda: len(ctl_json("list")["jobs"]) == 3, "the third job after reload")
        p = service("MainPID", "StatusText")
        self.assertEqual(p["MainPID"], pid)
        wait_until(lambda: service("StatusText")["StatusText"].startswith("3 jobs"), "STATUS=")
        # A broken file is refused and the running configuration stays.
        self.addCleanup(configure, [exec_job("hello", ["id", "-un"])])
        CT.write(CONF, '{"jobs": [{"id": "x", "interval": "15x"}]}')
        CT.run(["systemctl", "reload", "mcpjobd.service"])
        wait_until(lambda: "15x" in CT.run(["journalctl", "-u", "mcpjobd", "-n", "20",
                                            "--no-pager"]).stdout, "the refusal in the journal")
        self.assertEqual(len(ctl_json("list")["jobs"]), 3)
        self.assertEqual(service("MainPID")["MainPID"], pid)

    def test_5_journal_messages_name_the_job_and_carry_its_fields(self):
        configure([exec_job("hello", ["id", "-un"])])
        ctl("run", "hello", "--wait")
        run = str(history("hello")[0]["run_id"])

        def entries():
            out = CT.run(["journalctl", "MCPJOB_ID=hello", "MCPJOB_RUN=" + run, "-o", "json",
                          "--no-pager"]).stdout
            return [json.loads(l) for l in out.splitlines() if l.strip()]
        found = wait_until(lambda: [e for e in entries() if e.get("MCPJOB_OUTCOME")],
                           "the run's end in the journal")
        e = found[0]
        self.assertEqual(e["_SYSTEMD_UNIT"], "mcpjobd.service")
        self.assertEqual(e["MCPJOB_OUTCOME"], "success")
        self.assertTrue(e["MESSAGE"].startswith("hello: run %s: success" % run), e["MESSAGE"])

    def test_6_watchdog_is_fed_and_a_hung_daemon_is_restarted(self):
        CT.write("/etc/systemd/system/mcpjobd.service.d/watchdog.conf",
                 "[Service]\nWatchdogSec=2s\n")
        CT.run(["systemctl", "daemon-reload"])
        CT.run(["systemctl", "restart", "mcpjobd.service"])
        p = service("WatchdogUSec", "WatchdogTimestampMonotonic", "NRestarts", "MainPID")
        self.assertEqual(p["WatchdogUSec"], "2s")
        first = int(p["WatchdogTimestampMonotonic"])
        wait_until(lambda: int(service("WatchdogTimestampMonotonic")
                               ["WatchdogTimestampMonotonic"]) > first, "a WATCHDOG=1 ping")
        # Stopped, it stops pinging: systemd aborts it and Restart= starts it again.
        restarts = int(p["NRestarts"])
        CT.run(["kill", "-STOP", p["MainPID"]])
        wait_until(lambda: int(service("NRestarts")["NRestarts"]) == restarts + 1,
                   "a restart after the watchdog fired", timeout=30)
        self.assertIn("watchdog", CT.run(["journalctl", "-u", "mcpjobd", "-n", "30",
                                          "--no-pager"]).stdout.lower())
        wait_until(lambda: service("ActiveState")["ActiveState"] == "active", "the new daemon")
        os.unlink(CT.path("/etc/systemd/system/mcpjobd.service.d/watchdog.conf"))
        CT.run(["systemctl", "daemon-reload"])
        CT.run(["systemctl", "restart", "mcpjobd.service"])

    def test_7_kill_9_restarts_the_daemon_and_records_the_run_interrupted(self):
        configure([exec_job("nap", ["sleep", "300"])])
        ctl("run", "nap")
        wait_until(lambda: history("nap") and history("nap")[0]["outcome"] == "running",
                   "the run to start")
        run = history("nap")[0]["run_id"]
        p = service("MainPID", "NRestarts")
        CT.run(["kill", "-9", p["MainPID"]])
        wait_until(lambda: service("NRestarts")["NRestarts"] == str(int(p["NRestarts"]) + 1),
                   "Restart=on-failure after SIGKILL")
        wait_until(lambda: service("ActiveState")["ActiveState"] == "active", "the new daemon")
        self.assertNotEqual(service("MainPID")["MainPID"], p["MainPID"])
        rec = [r for r in history("nap") if r["run_id"] == run]
        self.assertEqual(rec[0]["outcome"], "interrupted", rec)

    def test_8_demo_server_runs_under_the_unit_sandbox(self):
        # The demo server, started as nobody under ProtectSystem=strict, must
        # find a writable data dir by itself (the unit's private /tmp).
        demo = {"command": "/usr/libexec/mcpjobd/mcpjob-demo-server"}
        configure([{"id": "notes", "interval": "1h", "initial_delay": "1h",
                    "action": {"mcp": {"server": "demo", "tool": "getNotifications",
                                       "arguments": {}}}}], servers={"demo": demo})
        r = ctl("run", "notes", "--wait", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("3 new notifications", history("notes")[0]["message"])


class C_Socket(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for name, groups in (("member", ["-G", "mcpjob"]), ("outsider", [])):
            if CT.run(["id", name], check=False).returncode != 0:
                CT.run(["useradd", "-m"] + groups + [name])

    def test_a_member_of_group_mcpjob_controls_the_daemon(self):
        configure([exec_job("hello", ["id", "-un"])])
        r = ctl("--json", "list", user="member")
        self.assertEqual([j["id"] for j in json.loads(r.stdout)["jobs"]], ["hello"])
        r = ctl("run", "hello", "--wait", user="member", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_another_user_cannot_use_the_socket(self):
        st = CT.run(["stat", "-c", "%a %U %G", SOCK]).stdout.split()
        self.assertEqual(st, ["660", "root", "mcpjob"])
        r = ctl("list", user="outsider", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(SOCK, r.stderr)
        self.assertIn("ermission denied", r.stderr)


class D_UserUnits(unittest.TestCase):
    USER = "alice"

    @classmethod
    def setUpClass(cls):
        if CT.run(["id", cls.USER], check=False).returncode != 0:
            CT.run(["useradd", "-m", cls.USER])
        CT.run(["loginctl", "enable-linger", cls.USER])
        uid = CT.uid(cls.USER)
        wait_until(lambda: CT.run(["systemctl", "is-active", "user@%d.service" % uid],
                                  check=False).stdout.strip() == "active",
                   "the lingering user's manager")

    def user(self, *argv, check=True):
        return CT.run(list(argv), user=self.USER, check=check)

    def test_1_user_units_start_under_a_real_user_manager(self):
        CT.write("/home/alice/.config/mcpjobd/mcpjobd.json", json.dumps(
            {"jobs": [exec_job("mine", ["id", "-un"])]}))
        CT.run(["chown", "-R", "alice:", "/home/alice/.config"])
        self.user("systemctl", "--user", "enable", "--now", "mcpjobd.socket")
        r = ctl("run", "mine", "--wait", user=self.USER, per_user=True, check=False)
        p = CT.show("mcpjobd.service", "ActiveState", "ExecMainStatus", "NRestarts",
                    "StatusText", user=self.USER)
        self.assertEqual(r.returncode, 0, "%s%s\n%s" % (r.stdout, r.stderr, p))
        self.assertEqual((p["ActiveState"], p["NRestarts"]), ("active", "0"), p)
        self.assertTrue(p["StatusText"].startswith("1 job"), p)
        runs = ctl_json("history", "mine", user=self.USER, per_user=True)["runs"]
        self.assertEqual(runs[0]["message"], "alice")
        sock = "/run/user/%d/mcpjobd/control.sock" % CT.uid(self.USER)
        self.assertEqual(CT.run(["stat", "-c", "%a %U", sock]).stdout.split(), ["600", "alice"])

    def test_2_user_daemon_survives_without_a_session_thanks_to_lingering(self):
        self.assertIn("Linger=yes", CT.run(["loginctl", "show-user", self.USER,
                                            "-p", "Linger"]).stdout)
        self.assertEqual(CT.run(["loginctl", "list-sessions", "--no-legend"]).stdout.strip(), "")
        self.assertEqual(self.user("systemctl", "--user", "is-active",
                                   "mcpjobd.service").stdout.strip(), "active")


class E_Package(unittest.TestCase):
    def test_1_reinstall_keeps_the_edited_configuration_and_the_history(self):
        configure([exec_job("hello", ["id", "-un"])])
        ctl("run", "hello", "--wait")
        runs = len(history("hello"))
        before = open(CT.path(CONF)).read()
        pid = service("MainPID")["MainPID"]
        r = CT.run(["dpkg", "-i", DEB_IN])  # the same version again
        self.assertIn("Preparing to unpack", r.stdout)
        self.assertEqual(open(CT.path(CONF)).read(), before)
        wait_until(lambda: service("ActiveState")["ActiveState"] == "active", "the service")
        self.assertNotEqual(service("MainPID")["MainPID"], pid, "not restarted on upgrade")
        assert_socket_listening(self)
        self.assertEqual(len(history("hello")), runs)

    def test_2_upgrade_to_a_newer_version_restarts_and_keeps_state(self):
        # The same files under a higher version: dpkg's real upgrade path
        # (prerm upgrade, postinst configure OLD-VERSION).
        d = os.path.dirname(DEB_IN)
        CT.run(["dpkg-deb", "-R", DEB_IN, d + "/bump"])
        CT.run(["sed", "-i", "s/^Version: .*/&+systemtest1/", d + "/bump/DEBIAN/control"])
        CT.run(["dpkg-deb", "--root-owner-group", "-b", d + "/bump", d + "/bumped.deb"])
        configure([exec_job("hello", ["id", "-un"])])
        ctl("run", "hello", "--wait")
        before = open(CT.path(CONF)).read()
        runs = len(history("hello"))
        pid = service("MainPID")["MainPID"]
        CT.run(["dpkg", "-i", d + "/bumped.deb"])
        v = CT.run(["dpkg-query", "-W", "-f=${Version}", "mcpjobd"]).stdout
        self.assertTrue(v.endswith("+systemtest1"), v)
        self.assertEqual(open(CT.path(CONF)).read(), before)
        wait_until(lambda: service("ActiveState")["ActiveState"] == "active", "the service")
        self.assertNotEqual(service("MainPID")["MainPID"], pid, "not restarted on upgrade")
        assert_socket_listening(self)
        self.assertEqual(len(history("hello")), runs)
        self.assertEqual(ctl("run", "hello", "--wait", check=False).returncode, 0)

    def test_3_purge_removes_units_state_and_configuration(self):
        CT.run(["dpkg", "--purge", "mcpjobd"])
        st = CT.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "mcpjobd"], check=False)
        self.assertFalse(st.stdout.startswith("i") or st.stdout.startswith("r"), st.stdout)
        for p in ("/etc/mcpjobd", "/var/lib/mcpjobd", "/lib/systemd/system/mcpjobd.service",
                  "/usr/sbin/mcpjobd", "/etc/systemd/system/multi-user.target.wants/"
                  "mcpjobd.service", "/etc/systemd/system/sockets.target.wants/mcpjobd.socket",
                  SOCK):
            self.assertFalse(os.path.lexists(CT.path(p)), p + " is left after purge")
        r = CT.run(["systemctl", "is-active", "mcpjobd.service", "mcpjobd.socket"], check=False)
        self.assertNotIn("active", r.stdout.split())
        # (a user's own daemon, from the user units, runs until that user stops it)
        self.assertEqual(CT.run(["pgrep", "-x", "-u", "root", "mcpjobd"], check=False).stdout, "")
