"""End-to-end harness: start the real mcpjobd on a private socket and state
dir, drive it with the real mcpjobctl and raw socket clients.

    from harness import Daemon, E2ETestCase
    class T(E2ETestCase):
        def test_x(self):
            d = self.daemon({"jobs": [...]})      # started, stopped at tearDown
            r = d.ctl("run", "job", "--wait")    # CompletedProcess
            resp = d.rpc("job.status", {"job": "job"})

MCPJOB_BUILD points at the build directory (build/ or build-san/).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("MCPJOB_BUILD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
BUILD = os.path.abspath(BUILD)
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# ASan keeps freed memory in quarantine: RSS figures mean nothing there.
SANITIZED = os.path.basename(BUILD) == "build-san"
MCPJOBD = os.path.join(BUILD, "mcpjobd")
MCPJOBCTL = os.path.join(BUILD, "mcpjobctl")
# The reference servers are installed by tests/bootstrap.sh into build/npm
# (shared by plain and sanitizer builds).
NPM_BIN = os.path.join(ROOT, "build", "npm", "node_modules", ".bin")


def wait_until(fn, timeout=10.0, interval=0.02, what="condition"):
    """Poll fn() until it returns a true value; return it, or fail."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


class RpcClient:
    """A raw JSON-RPC client on the control socket."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def recv_msg(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by mcpjobd")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        """Send a request; return the response (skipping event notifications)."""
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send_raw(json.dumps(msg).encode() + b"\n")
        while True:
            m = self.recv_msg()
            if m.get("id") == rid:
                return m

    def close(self):
        self.sock.close()


class Daemon:
    def __init__(self, config, platform="sim", args=(), env=None, tmp=None, dropins=None,
                 exact_config=False):
        # Run as root, mcpjobd runs jobs and servers without a "user" as
        # nobody, who cannot write the tests' private temp dirs: unless
        # exact_config, a config dict without "default_user" gets
        # "default_user": "root" so jobs run as the test does.
        self.exact_config = exact_config
        self.tmp = tmp or tempfile.mkdtemp(prefix="mcpjob-e2e-")
        self.etc = os.path.join(self.tmp, "etc")
        self.state = os.path.join(self.tmp, "state")
        self.socket = os.path.join(self.tmp, "control.sock")
        self.log_path = os.path.join(self.tmp, "mcpjobd.log")
        self.config_path = os.path.join(self.etc, "mcpjobd.json")
        os.makedirs(self.etc, exist_ok=True)
        self.platform = platform
        self.args = list(args)
        self.env = env
        self.proc = None
        self.prefix = []  # e.g. ["ip", "netns", "exec", NS]
        self.write_config(config, dropins)

    def write_config(self, config, dropins=None):
        with open(self.config_path, "w") as f:
            if isinstance(config, str):
                f.write(config)
            else:
                if os.geteuid() == 0 and not self.exact_config and "default_user" not in config:
                    config = dict(config, default_user="root")
                json.dump(config, f, indent=2)
        for name, body in (dropins or {}).items():
            os.makedirs(os.path.join(self.etc, "jobs.d"), exist_ok=True)
            with open(os.path.join(self.etc, "jobs.d", name), "w") as f:
                f.write(body if isinstance(body, str) else json.dumps(body, indent=2))

    def cmdline(self):
        return [MCPJOBD, "--config", self.config_path, "--state-dir", self.state,
                "--socket", self.socket, "--platform", self.platform, "--verbose"] + self.args

    def start(self, wait=True):
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("LISTEN_FDS", None)
        env.pop("JOURNAL_STREAM", None)
        if self.env:
            env.update(self.env)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.prefix + self.cmdline(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env)
        if wait:
            wait_until(self._answers, timeout=20, what="mcpjobd to answer on %s" % self.socket)
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("mcpjobd exited with %s:\n%s" % (self.proc.returncode, self.log()))
        try:
            c = RpcClient(self.socket, timeout=2)
            r = c.call("daemon.hello")
            c.close()
            return "result" in r
        except (OSError, EOFError):
            return False

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stop the daemon; return its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mcpjobd did not stop within %ss:\n%s" % (timeout, self.log()))
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.logf.close()

    def restart(self):
        self.stop()
        return self.start()

    def ctl(self, *args, check=False, timeout=60, env=None):
        e = dict(os.environ)
        e["MCPJOBD_SOCKET"] = self.socket
        if env:
            e.update(env)
        return subprocess.run([MCPJOBCTL] + list(args), capture_output=True, text=True,
                              timeout=timeout, check=check, env=e)

    def ctl_json(self, *args):
        r = self.ctl("--json", *args)
        if r.returncode != 0:
            raise AssertionError("mcpjobctl --json %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
        return json.loads(r.stdout)

    def client(self):
        return RpcClient(self.socket)

    def rpc(self, method, params=None):
        c = self.client()
        try:
            return c.call(method, params)
        finally:
            c.close()

    def result(self, method, params=None):
        r = self.rpc(method, params)
        if "result" not in r:
            raise AssertionError("%s failed: %r" % (method, r))
        return r["result"]

    def status(self, job):
        return self.result("job.status", {"job": job})

    def history(self, job, limit=None):
        p = {"job": job}
        if limit is not None:
            p["limit"] = limit
        return self.result("job.history", p)["runs"]

    def wait_state(self, job, state, timeout=10):
        return wait_until(lambda: self.status(job)["state"] == state and self.status(job),
                          timeout=timeout, what="job %s to be %s" % (job, state))

    def wait_runs(self, job, n, timeout=10, finished=True):
        def ok():
            runs = self.history(job)
            if finished:
                runs = [r for r in runs if r["outcome"] != "running"]
            return runs if len(runs) >= n else None
        return wait_until(ok, timeout=timeout, what="%d finished runs of %s" % (n, job))


class E2ETestCase(unittest.TestCase):
    def setUp(self):
        self._daemons = []
        self.tmp = tempfile.mkdtemp(prefix="mcpjob-e2e-")

    def tearDown(self):
        reports = []
        for d in self._daemons:
            try:
                if d.proc is not None:
                    d.stop()
            except AssertionError as e:
                reports.append(str(e))
            log = d.log()
            if "Sanitizer" in log or "runtime error:" in log:
                reports.append("sanitizer report in %s:\n%s" % (d.log_path, log[-6000:]))
        if os.environ.get("MCPJOB_KEEP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if reports:
            raise AssertionError("\n".join(reports))

    def daemon(self, config, start=True, **kw):
        kw.setdefault("tmp", os.path.join(self.tmp, "d%d" % len(self._daemons)))
        d = Daemon(config, **kw)
        self._daemons.append(d)
        if start:
            d.start()
        return d

    def exec_job(self, job_id, argv, **extra):
        """A job definition that runs argv, first one interval after start
        (24h unless given): new jobs otherwise run at once."""
        interval = extra.pop("interval", "24h")
        j = {"id": job_id, "name": job_id, "interval": interval,
             "initial_delay": extra.pop("initial_delay", interval),
             "action": {"exec": {"argv": argv}}}
        j.update(extra)
        return j
