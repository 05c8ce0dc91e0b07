"""Desktop notifications from a job's "notify", shown by a real notification
server: Debian's dunst on a private session bus (its own dbus-daemon) and
a private X display (Xvfb), read back with `dunstctl history`.

The per-user daemon (--user) calls org.freedesktop.Notifications.Notify;
the system daemon sends "notification" events only."""
import json
import os
import re
import shutil
import signal
import subprocess
import unittest

from harness import BUILD, ROOT, E2ETestCase, wait_until
from test_ctl import LineReader

DEMO = os.path.join(BUILD, "mcpjob-demo-server")
NEEDED = ("dbus-daemon", "Xvfb", "dunst", "dunstctl")


class DesktopSession:
    """dbus-daemon + Xvfb + dunst, each on private addresses under @tmp."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        bus = os.path.join(tmp, "session-bus")
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=" + bus)
        self.spawn(["dbus-daemon", "--session", "--nofork", "--nosyslog",
                    "--address=unix:path=" + bus])
        wait_until(lambda: os.path.exists(bus), what="the private session bus")
        # Xvfb picks a free display itself and writes its number to the fd.
        r, w = os.pipe()
        self.spawn(["Xvfb", "-displayfd", str(w), "-nolisten", "tcp"], pass_fds=(w,))
        os.close(w)
        with os.fdopen(r) as f:
            display = f.readline().strip()
        if not display:
            raise AssertionError("Xvfb did not start (no display number)")
        self.env["DISPLAY"] = ":" + display
        self.spawn(["dunst"])
        wait_until(lambda: self.dunstctl("count", "displayed", check=False).returncode == 0,
                   timeout=20, what="dunst to own org.freedesktop.Notifications")

    def spawn(self, argv, pass_fds=()):
        log = open(os.path.join(self.tmp, os.path.basename(argv[0]) + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=getattr(self, "env", None),
                             pass_fds=pass_fds)
        log.close()
        self.procs.append(p)
        return p

    def dunstctl(self, *args, check=True):
        return subprocess.run(["dunstctl"] + list(args), capture_output=True, text=True,
                              env=self.env, timeout=20, check=check)

    def count(self):
        return sum(int(self.dunstctl("count", what).stdout.strip() or 0)
                   for what in ("displayed", "waiting", "history"))

    def history(self, n):
        """The first n notifications shown, oldest first, as dicts of plain values."""
        wait_until(lambda: self.count() >= n, timeout=20,
                   what="%d notifications at dunst (have %d)" % (n, self.count()))
        self.dunstctl("close-all")
        hist = json.loads(self.dunstctl("history").stdout)["data"][0]
        notes = [{k: v["data"] for k, v in h.items()} for h in hist]
        return sorted(notes, key=lambda h: h["id"])

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@unittest.skipUnless(all(shutil.which(x) for x in NEEDED),
                     "LOUD SKIP: dbus-daemon, Xvfb, dunst or dunstctl missing "
                     "(tests/bootstrap.sh installs dbus, xvfb, dunst)")
class NotifyTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.desk = DesktopSession(self.tmp)

    def tearDown(self):
        self.desk.close()
        super().tearDown()

    def user_daemon(self, jobs, servers=None, user=True):
        cfg = {"jobs": jobs}
        if servers:
            cfg["mcpServers"] = servers
        return self.daemon(cfg, args=["--user"] if user else [], env=self.desk.env)

    def example(self):
        """The example's fetch-notifications job and its server, as shipped,
        with the server from this build and a private data dir."""
        with open(os.path.join(ROOT, "examples", "mcpjobd.json")) as f:
            ex = json.load(f)
        job = next(j for j in ex["jobs"] if j["id"] == "fetch-notifications")
        srv = dict(ex["mcpServers"][job["action"]["mcp"]["server"]])
        srv["command"] = DEMO
        srv["args"] = ["--data-dir", os.path.join(self.tmp, "demo-data")]
        job = dict(job, initial_delay="1h")  # runs when the test says
        return job, {job["action"]["mcp"]["server"]: srv}

    def test_demo_fetch_notifications_shows_each_item_on_the_desktop(self):
        job, servers = self.example()
        self.assertEqual(job["notify"]["items"], "/notifications")
        self.assertIn("result", job["notify"]["on"])
        d = self.user_daemon([job], servers)
        r = d.ctl("run", "fetch-notifications", "--wait")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())
        items = d.history("fetch-notifications")[0]["structured_content"]["notifications"]
        self.assertEqual(len(items), 3)
        shown = self.desk.history(3)
        self.assertEqual([(n["summary"], n["body"]) for n in shown],
                         [(i["title"], i["body"]) for i in items])
        self.assertEqual({n["appname"] for n in shown}, {"mcpjobd"})
        self.assertEqual(shown[0]["summary"], "Welcome")
        # A second run finds nothing newer (since: last success): nothing more shown.
        self.assertEqual(d.ctl("run", "fetch-notifications", "--wait").returncode, 0)
        self.assertEqual(d.history("fetch-notifications")[0]["structured_content"],
                         {"notifications": []})
        self.assertEqual(self.desk.count(), 3)

    def test_failure_and_success_show_the_runs_message(self):
        d = self.user_daemon([
            self.exec_job("backup", ["sh", "-c", "echo disk full >&2; exit 3"],
                          name="Nightly backup", notify={"on": ["failure"]}),
            self.exec_job("sync", ["sh", "-c", "echo synced 3"], name="Data sync",
                          notify={"on": ["success", "failure"]}),
            self.exec_job("quiet", ["true"], notify={"on": ["failure"]}),
        ])
        d.ctl("run", "backup", "--wait")
        d.ctl("run", "quiet", "--wait")  # succeeds: on failure only, so nothing
        d.ctl("run", "sync", "--wait")
        shown = self.desk.history(2)
        self.assertEqual([(n["summary"], n["body"]) for n in shown],
                         [("Nightly backup failed", "disk full"), ("Data sync succeeded", "synced 3")])
        # dunst's history has no urgency field, but its default timeouts
        # follow it: a critical notification never expires (0), a normal one does.
        self.assertEqual(shown[0]["timeout"], 0)
        self.assertGreater(shown[1]["timeout"], 0)
        self.assertEqual(self.desk.count(), 2)

    def test_notification_events_carry_the_payload_and_the_system_daemon_sends_only_them(self):
        job, servers = self.example()
        d = self.user_daemon([job], servers, user=False)
        w = subprocess.Popen([os.path.join(BUILD, "mcpjobctl"), "--json", "watch"],
                             stdout=subprocess.PIPE, env=dict(os.environ, MCPJOBD_SOCKET=d.socket))
        try:
            # watch is subscribed once it prints the first event (any).
            reader = LineReader(w.stdout)
            d.ctl("device", "set", "network=unmetered")
            d.ctl("device", "set", "network=metered")
            self.assertTrue(reader.lines_until(lambda l: '"device.changed"' in l, timeout=20))
            self.assertEqual(d.ctl("run", "fetch-notifications", "--wait").returncode, 0)
            lines = reader.lines_until(lambda l: json.loads(l).get("title") == "Storage almost full",
                                       timeout=20)
        finally:
            w.terminate()
            w.wait(timeout=10)
            w.stdout.close()
        evs = [e for e in map(json.loads, lines) if e["type"] == "notification"]
        self.assertEqual([e["title"] for e in evs], ["Welcome", "Sync finished", "Storage almost full"])
        self.assertEqual(evs[2]["payload"], {"kind": "storage", "free_percent": 9})
        self.assertEqual({e["reason"] for e in evs}, {"result"})
        self.assertEqual({e["job"] for e in evs}, {"fetch-notifications"})
        # watch shows them as one line each.
        w = subprocess.Popen([os.path.join(BUILD, "mcpjobctl"), "watch", "fetch-notifications"],
                             stdout=subprocess.PIPE, env=dict(os.environ, MCPJOBD_SOCKET=d.socket))
        try:
            reader = LineReader(w.stdout)
            lines = []
            for _ in range(20):  # until watch has subscribed and seen one whole run
                with open(os.path.join(self.tmp, "demo-data", "notifications.json")) as f:
                    notes = json.load(f)
                notes.append({"time": "2099-01-01T00:00:00Z", "title": "Late news",
                              "body": "from the future", "payload": None})
                with open(os.path.join(self.tmp, "demo-data", "notifications.json"), "w") as f:
                    json.dump(notes, f)
                d.ctl("run", "fetch-notifications", "--wait")
                lines = reader.lines_until(lambda l: "notification (result): Late news" in l,
                                           timeout=2)
                if lines:
                    break
        finally:
            w.terminate()
            w.wait(timeout=10)
            w.stdout.close()
        self.assertRegex(lines[-1], r"^\d\d:\d\d:\d\d fetch-notifications notification "
                                    r"\(result\): Late news: from the future$")
        # No --user: nothing reached the desktop.
        self.assertEqual(self.desk.count(), 0)


class NotifyConfigTest(E2ETestCase):
    """A bad "notify" is refused with its key path, before anything runs."""

    def check(self, notify, action=None):
        job = {"id": "j", "name": "j", "interval": "1h",
               "action": action or {"exec": {"argv": ["true"]}}, "notify": notify}
        d = self.daemon({"jobs": [job]}, start=False)
        return subprocess.run(d.cmdline() + ["--check-config"], capture_output=True, text=True,
                              timeout=30)

    def test_bad_notify_values_name_the_key_path(self):
        cases = [
            ({"on": ["failure", "sucess"]}, r'jobs\[0\] \(j\)\.notify\.on\[1\]: "sucess" is not one of'),
            ({"on": []}, r"jobs\[0\] \(j\)\.notify\.on: expected a non-empty array"),
            ({}, r'jobs\[0\] \(j\)\.notify: missing "on"'),
            ({"on": ["result"], "items": "/x"},
             r'jobs\[0\] \(j\)\.notify\.on\[0\]: "result" is for mcp jobs'),
            ({"on": ["failure"], "items": "notifications"},
             r'jobs\[0\] \(j\)\.notify\.items: "notifications" is not a JSON pointer'),
            ({"on": ["failure"], "when": "x"}, r"jobs\[0\] \(j\)\.notify\.when: unknown key"),
        ]
        for notify, expected in cases:
            with self.subTest(notify=notify):
                r = self.check(notify)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertRegex(r.stderr, expected)
        r = self.check({"on": ["failure", "success"]})
        self.assertEqual(r.returncode, 0, r.stderr)
