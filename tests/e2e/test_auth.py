"""End-to-end: OAuth 2.1 authorization of a remote MCP server through the
real mcpjobd and mcpjobctl. The MCP server is the real server-everything
(streamableHttp) behind a proxy that wants a Bearer token; the tokens come
from a local authorization server (tests/e2e/oauth_server.py). The test
plays the person's browser: it GETs the authorization URL without following
the redirect and brings the redirect back, pasted (--no-browser) or to the
daemon's loopback listener."""
import json
import os
import re
import shutil
import stat
import subprocess
import threading
import urllib.error
import urllib.request

import sys

from harness import E2ETestCase, MCPJOBCTL, wait_until
from oauth_server import AuthServer, ResourceProxy
from test_mcp_http import EVERYTHING_JS, Everything
from test_permissions import NOGROUP, PEER, SETPRIV, need_root

HINT = "waiting for authorization: run `mcpjobctl auth login notes`"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def browser_authorize(url):
    """What the person's browser does at the authorization server: the
    redirect's Location, not followed."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        r = opener.open(url, timeout=30)
        raise AssertionError("the authorization server did not redirect (%d)" % r.status)
    except urllib.error.HTTPError as e:
        if e.code != 302:
            raise AssertionError("authorize answered %d: %s" % (e.code, e.read()[:300]))
        return e.headers["Location"]


class Events:
    """A subscriber collecting every event in a thread."""

    def __init__(self, d):
        self.client = d.client()
        self.client.sock.settimeout(None)
        r = self.client.call("events.subscribe", {})
        assert "result" in r, r
        self.events = []
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        try:
            while True:
                m = self.client.recv_msg()
                if m.get("method") == "event":
                    self.events.append(m["params"])
        except (OSError, EOFError, ValueError):
            pass

    def wait(self, pred, what, timeout=60):
        return wait_until(lambda: next((e for e in self.events if pred(e)), None),
                          timeout=timeout, what=what)

    def close(self):
        self.client.close()



def dump_regions(pid):
    """The readable private mappings of @pid with pages in memory, split into
    those a core dump holds and those marked MADV_DONTDUMP: ([(name, bytes)],
    [(name, bytes)]). Mappings over 4 GiB are address space reserved, not
    memory (ASan's shadow): left out."""
    dumped, secure = [], []
    regions, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" in head[3]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"lo": lo, "hi": hi, "perms": head[1], "rss": 0,
                       "name": head[5] if len(head) > 5 else "[anon]"}
            elif head[0] == "Rss:" and cur is not None:
                cur["rss"] = int(head[1])
            elif head[0] == "VmFlags:" and cur is not None:
                cur["dd"] = "dd" in head[1:]
                regions.append(cur)
                cur = None
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for r in regions:
            size = r["hi"] - r["lo"]
            if (not r["perms"].startswith("r") or r["name"].startswith("[v") or
                    r["rss"] == 0 or size > 4 << 30):
                continue
            chunks = []
            for off in range(0, size, 1 << 20):
                try:
                    mem.seek(r["lo"] + off)
                    chunks.append(mem.read(min(1 << 20, size - off)))
                except OSError:
                    chunks.append(b"")
            (secure if r["dd"] else dumped).append(
                ("%s %x-%x" % (r["name"], r["lo"], r["hi"]), b"".join(chunks)))
    return dumped, secure

class AuthE2E(E2ETestCase):
    expires_in = 3600

    def setUp(self):
        super().setUp()
        if not os.path.exists(EVERYTHING_JS) or shutil.which("node") is None:
            self.skipTest("SKIPPED: server-everything not installed: run tests/bootstrap.sh")
        self.srv = Everything("streamableHttp", self.tmp).start()
        self.addCleanup(self.srv.stop)
        self.auth = AuthServer(expires_in=self.expires_in)
        self.addCleanup(self.auth.stop)
        self.proxy = ResourceProxy(self.auth, self.srv.port)
        self.addCleanup(self.proxy.stop)

    def notes_daemon(self, interval="1h", clock=False, **server):
        srv = {"type": "http", "url": self.proxy.url, "idle_timeout": "10m"}
        srv.update(server)
        job = {"id": "fetch", "name": "fetch", "interval": interval,
               "action": {"mcp": {"server": "notes", "tool": "echo",
                                  "arguments": {"message": "authorized"}}}}
        jobs = [job]
        if clock:
            jobs.append(self.exec_job("tick", ["true"], interval=interval, initial_delay="0s"))
        d = self.daemon({"mcpServers": {"notes": srv}, "jobs": jobs})
        self.ev = Events(d)
        self.addCleanup(self.ev.close)
        return d

    def wait_pending_for_login(self, d):
        return wait_until(lambda: (lambda s: s["state"] == "pending" and
                                   s.get("pending_reason") == HINT and s)(d.status("fetch")),
                          timeout=60, what="fetch pending with the login hint")

    def start_login(self, d, *extra, env=None):
        e = dict(os.environ, MCPJOBD_SOCKET=d.socket)
        e.pop("DISPLAY", None)
        e.pop("WAYLAND_DISPLAY", None)
        e.update(env or {})
        p = subprocess.Popen([MCPJOBCTL, "auth", "login", "notes"] + list(extra),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=e)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        url = p.stdout.readline().strip()
        self.assertTrue(url.startswith(self.auth.issuer + "/authorize?"),
                        "mcpjobctl printed %r; stderr: %s" % (url, p.stderr.read()
                                                              if p.poll() is not None else ""))
        return p, url

    def login_headless(self, d):
        p, url = self.start_login(d, "--no-browser")
        location = browser_authorize(url)
        out, err = p.communicate(location + "\n", timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("logged in to notes", out)
        return url, location

    def auth_status(self, d):
        st = d.ctl_json("auth", "status", "notes")["servers"]
        self.assertEqual(len(st), 1)
        return st[0]

    def grant_file(self, d):
        return os.path.join(d.state, "auth", "notes.json")

    def assert_no_secret_anywhere(self, d):
        """No code or token the authorization server handed out is in the
        daemon's log, the history, the events or any --json output."""
        places = {"log": d.log(),
                  "history": json.dumps(d.history("fetch", limit=100)),
                  "events": json.dumps(self.ev.events),
                  "status --json": d.ctl("--json", "status", "fetch").stdout,
                  "list --json": d.ctl("--json", "list").stdout,
                  "history --json": d.ctl("--json", "history", "fetch").stdout,
                  "logs": d.ctl("logs", "fetch").stdout,
                  "auth status --json": d.ctl("--json", "auth", "status").stdout,
                  "auth status": d.ctl("auth", "status").stdout}
        self.assertTrue(self.auth.secrets, "the authorization server handed nothing out")
        for secret in self.auth.secrets:
            for where, text in places.items():
                self.assertNotIn(secret, text, "a token or code is in the %s" % where)
        for where, text in places.items():
            self.assertIsNone(re.search(r"e2e(AT|RT|CODE)-", text),
                              "something token-shaped is in the %s" % where)


class LoginAndRun(AuthE2E):
    def test_job_waits_for_login_is_not_failed_every_interval_then_runs(self):
        d = self.notes_daemon(interval="2s", clock=True)
        self.wait_pending_for_login(d)
        runs = d.history("fetch")
        self.assertEqual(len(runs), 1, runs)
        self.assertEqual(runs[0]["outcome"], "failure")
        self.assertEqual(runs[0]["message"], HINT)
        # Two more due times pass while it waits (the clock job "tick", due at the
        # same times, runs twice more): no new run, no retry.
        ticks = len(d.history("tick"))
        d.wait_runs("tick", ticks + 2, timeout=60)
        self.assertEqual(len(d.history("fetch")), 1, "the job ran again while waiting")
        self.assertEqual(d.status("fetch")["state"], "pending")
        # A manual run waits too: it would only meet the same 401.
        r = d.ctl("run", "fetch")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(HINT, r.stdout)
        self.assertEqual(len(d.history("fetch")), 1)
        st = self.auth_status(d)
        self.assertFalse(st["authorized"])
        # The person logs in from elsewhere and pastes the redirect back.
        self.login_headless(d)
        self.ev.wait(lambda e: e["type"] == "auth.authorized" and e["server"] == "notes",
                     "auth.authorized")
        runs = d.wait_runs("fetch", 2, timeout=60)
        self.assertEqual(runs[0]["outcome"], "success", runs[0])
        self.assertEqual(runs[0]["message"], "Echo: authorized")
        st = self.auth_status(d)
        self.assertTrue(st["authorized"])
        self.assertEqual(st["scope"], "mcp")
        self.assertEqual(st["issuer"].rstrip("/"), self.auth.issuer)
        self.assertTrue(st["refreshable"])
        self.assertIsNotNone(st["expires_at"])
        mode = stat.S_IMODE(os.stat(self.grant_file(d)).st_mode)
        self.assertEqual(mode, 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.grant_file(d))).st_mode),
                         0o700)
        self.assert_no_secret_anywhere(d)

    def test_login_through_the_loopback_listener(self):
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        p, url = self.start_login(d)
        location = browser_authorize(url)
        self.assertRegex(location, r"^http://127\.0\.0\.1:\d+/callback\?")
        # The browser follows the redirect to the daemon's listener.
        with urllib.request.urlopen(location, timeout=60) as page:
            html = page.read().decode()
        self.assertIn("mcpjobd is authorized on notes", html)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("logged in to notes", out)
        # One use: the listener is gone.
        with self.assertRaises(OSError):
            urllib.request.urlopen(location, timeout=10)
        runs = d.wait_runs("fetch", 2, timeout=60)
        self.assertEqual(runs[0]["outcome"], "success", runs[0])
        self.assertTrue(os.path.exists(self.grant_file(d)))
        # A restart keeps the grant: the job runs without another login.
        d.restart()
        self.assertTrue(self.auth_status(d)["authorized"])
        run = d.result("job.run", {"job": "fetch", "wait": True})
        self.assertEqual(run["outcome"], "success", run)
        self.assert_no_secret_anywhere(d)

    def test_logout_forgets_the_grant(self):
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        self.login_headless(d)
        d.wait_runs("fetch", 2, timeout=60)
        r = d.ctl("auth", "logout", "notes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("logged out of notes", r.stdout)
        self.assertFalse(os.path.exists(self.grant_file(d)))
        self.assertFalse(self.auth_status(d)["authorized"])
        self.ev.wait(lambda e: e["type"] == "auth.logged_out", "auth.logged_out")
        # The session that holds the old token is let go (idle_timeout is 10m):
        # its DELETE is the last request that carries that token.
        wait_until(lambda: any(m == "DELETE" for m, _ in self.proxy.requests), timeout=30,
                   what="the logged-out server's session deleted")
        r = d.ctl("auth", "logout", "notes")
        self.assertIn("notes was not logged in", r.stdout)
        # Its jobs wait for the next login again, without another failed run.
        runs = len(d.history("fetch"))
        d.ctl("run", "fetch")
        self.wait_pending_for_login(d)
        self.assertEqual(len(d.history("fetch")), runs)

    def test_login_opens_the_browser_with_xdg_open_on_a_desktop(self):
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        # An xdg-open that does what a browser does: authorize, then follow the
        # redirect to the daemon's listener (and note the URL it was given).
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        opened = os.path.join(self.tmp, "opened")
        with open(os.path.join(bindir, "xdg-open"), "w") as f:
            f.write("#!%s\nimport sys, urllib.request\nsys.path.insert(0, %r)\n"
                    "from test_auth import browser_authorize\n"
                    "open(%r, 'w').write(sys.argv[1])\n"
                    "urllib.request.urlopen(browser_authorize(sys.argv[1]), timeout=60).read()\n"
                    % (sys.executable, os.path.dirname(os.path.abspath(__file__)), opened))
        os.chmod(os.path.join(bindir, "xdg-open"), 0o755)
        p, url = self.start_login(d, env={"DISPLAY": ":e2e",
                                          "PATH": bindir + ":" + os.environ["PATH"]})
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("opened with xdg-open", err)
        with open(opened) as f:
            self.assertEqual(f.read(), url)
        self.assertTrue(self.auth_status(d)["authorized"])
        r = d.ctl("auth", "status")
        self.assertRegex(r.stdout, r"notes\s+yes\s+mcp")


class Refresh(AuthE2E):
    # Shorter than the client's renew-early margin: every call renews first.
    expires_in = 20

    def test_access_token_expiry_is_refreshed_without_the_job_failing(self):
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        self.login_headless(d)
        d.wait_runs("fetch", 2, timeout=60)
        refreshes = self.auth.token_requests.count("refresh_token")
        for _ in range(2):
            run = d.result("job.run", {"job": "fetch", "wait": True})
            self.assertEqual(run["outcome"], "success", run)
        self.assertGreater(self.auth.token_requests.count("refresh_token"), refreshes)
        # An access token the resource server no longer takes (expired there): the 401 is
        # answered by a refresh and the call retried, the run does not fail.
        self.auth.expire_access_tokens()
        run = d.result("job.run", {"job": "fetch", "wait": True})
        self.assertEqual(run["outcome"], "success", run)
        self.assertTrue(all(r["outcome"] == "success" for r in d.history("fetch")[:-1]),
                        d.history("fetch"))
        self.assert_no_secret_anywhere(d)

    def test_tokens_in_memory_sit_only_where_a_core_dump_does_not_reach(self):
        """After a login and runs that carried the token, the daemon's memory
        that a core dump would hold (every mapping not marked MADV_DONTDUMP,
        VmFlags "dd" in smaps) has neither the access nor the refresh token:
        the live copies are in the secure heap, freed ones were cleansed."""
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        self.login_headless(d)
        d.wait_runs("fetch", 2, timeout=60)
        run = d.result("job.run", {"job": "fetch", "wait": True})
        self.assertEqual(run["outcome"], "success", run)
        live = [t for t in self.auth.secrets if t.startswith(("e2eAT-", "e2eRT-"))]
        self.assertTrue(live, "no token was handed out")
        dumped, secure = dump_regions(d.proc.pid)
        self.assertTrue(secure, "no mapping of the daemon is marked MADV_DONTDUMP")
        in_secure = False
        for token in live:
            needle = token.encode()
            for where, data in dumped:
                at = data.find(needle)
                self.assertEqual(at, -1, "token in dumpable memory: %s, after %r" % (
                    where, data[max(0, at - 48):at]))
            in_secure = in_secure or any(needle in data for _, data in secure)
        self.assertTrue(in_secure, "the live token is not in the never-dumped memory either: "
                        "is the scan reading the right process?")

    def test_revoked_refresh_token_returns_the_job_to_pending_with_an_event(self):
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        self.login_headless(d)
        d.wait_runs("fetch", 2, timeout=60)
        self.auth.revoke()
        run = d.result("job.run", {"job": "fetch", "wait": True})
        self.assertEqual(run["outcome"], "failure", run)
        self.assertEqual(run["message"], HINT)
        ev = self.ev.wait(lambda e: e["type"] == "auth.revoked" and e["server"] == "notes",
                          "auth.revoked")
        self.assertIn("refused", ev["message"])
        self.wait_pending_for_login(d)
        self.ev.wait(lambda e: e["type"] == "job.state" and e.get("job") == "fetch" and
                     e["state"] == "pending" and e.get("reason") == HINT,
                     "job.state pending with the hint")
        self.assertFalse(os.path.exists(self.grant_file(d)))
        self.assertFalse(self.auth_status(d)["authorized"])
        # Logging in again brings it back.
        self.login_headless(d)
        runs = d.wait_runs("fetch", 4, timeout=60)
        self.assertEqual(runs[0]["outcome"], "success", runs[0])
        self.assert_no_secret_anywhere(d)


class Hostile(AuthE2E):
    def paste(self, d, *lines):
        p, url = self.start_login(d, "--no-browser")
        location = browser_authorize(url)
        text = "".join(l(location) + "\n" for l in lines)
        out, err = p.communicate(text, timeout=60)
        return p.returncode, out, err, location

    def assert_nothing_stored(self, d):
        self.assertFalse(os.path.exists(self.grant_file(d)))
        self.assertFalse(self.auth_status(d)["authorized"])
        self.assertEqual(d.status("fetch")["state"], "pending")

    def test_state_mismatch_and_foreign_redirect_are_refused(self):
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        forged = lambda loc: re.sub(r"state=[^&]+", "state=forged0state", loc)
        foreign = lambda loc: loc.replace("http://127.0.0.1:", "http://evil.example:", 1)
        rc, out, err, loc = self.paste(d, forged, foreign)
        self.assertEqual(rc, 1)
        self.assertIn("state is not this login's", err)
        self.assertIn("not to this login's redirect URI", err)
        self.assertIn("the login on notes is not finished", err)
        self.assert_nothing_stored(d)
        # The same forged state at the loopback listener gets a page saying so.
        p, url = self.start_login(d)
        loc = browser_authorize(url)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(forged(loc), timeout=30)
        self.assertEqual(cm.exception.code, 400)
        self.assertIn("state is not this login", cm.exception.read().decode())
        # ... and the login goes on: the right redirect still works.
        with urllib.request.urlopen(loc, timeout=60) as page:
            self.assertIn("authorized", page.read().decode())
        p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assert_no_secret_anywhere(d)

    def test_oversized_and_malformed_token_responses_store_nothing(self):
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        for mode in ("oversized", "malformed"):
            self.auth.token_mode = mode
            rc, out, err, loc = self.paste(d, lambda loc: loc)
            self.assertEqual(rc, 1, "%s: %s" % (mode, out))
            self.assertIn("token", err.lower(), mode)
            self.assert_nothing_stored(d)
            self.ev.wait(lambda e: e["type"] == "auth.failed", "auth.failed after %s" % mode)
        self.assert_no_secret_anywhere(d)

    def test_login_on_an_unknown_server_and_bad_auth_usage_are_refused(self):
        d = self.notes_daemon()
        r = d.ctl("auth", "login", "nosuch", "--no-browser")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no http or sse server \"nosuch\"", r.stderr)
        r = d.ctl("auth", "complete", "notes")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown subcommand \"complete\"", r.stderr)
        r = d.ctl("auth", "status", "--no-browser")
        self.assertEqual(r.returncode, 2)


@need_root
class ReadOnlyPeer(AuthE2E):
    def test_read_only_peer_sees_auth_status_without_secrets_and_cannot_log_in_or_out(self):
        os.chmod(self.tmp, 0o755)
        d = self.notes_daemon()
        self.wait_pending_for_login(d)
        self.login_headless(d)
        os.chmod(d.socket, 0o666)
        peer_py = os.path.join(self.tmp, "peer.py")
        with open(peer_py, "w") as f:
            f.write(PEER)
        os.chmod(peer_py, 0o644)
        calls = [["auth.status", {}], ["auth.status", {"server": "notes"}],
                 ["auth.login", {"server": "notes"}],
                 ["auth.complete", {"server": "notes", "code": "x"}],
                 ["auth.logout", {"server": "notes"}]]
        r = subprocess.run([SETPRIV, "--reuid=nobody", "--regid=%s" % NOGROUP, "--clear-groups",
                            sys.executable, peer_py, d.socket, json.dumps(calls)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        every, one, login, complete, logout = json.loads(r.stdout)
        self.assertEqual(every["result"], one["result"])
        st = one["result"]["servers"][0]
        self.assertTrue(st["authorized"])
        self.assertEqual(st["scope"], "mcp")
        self.assertEqual(sorted(st), ["authorized", "expires_at", "issuer", "login",
                                      "obtained_at", "refreshable", "scope", "server"])
        for secret in self.auth.secrets:
            self.assertNotIn(secret, r.stdout)
        for denied, method in ((login, "auth.login"), (complete, "auth.complete"),
                               (logout, "auth.logout")):
            self.assertEqual(denied["error"]["code"], -32003, denied)
            self.assertEqual(denied["error"]["data"]["method"], method)
        self.assertTrue(os.path.exists(self.grant_file(d)), "a refused logout removed the grant")
        # The grant file is the daemon's alone.
        self.assertEqual(os.stat(self.grant_file(d)).st_uid, os.geteuid())
