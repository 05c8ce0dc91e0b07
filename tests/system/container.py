"""A throw-away container with systemd as PID 1, for tests/system/.

The host's root file system is the lower layer of an overlay whose upper and
work directories live on a private tmpfs, so nothing the container does
(dpkg, useradd, units) reaches the host, and it is gone at stop().
systemd-nspawn boots it with --private-network (loopback only), without
registering with machined or a host systemd (there may be none), and the
tests reach inside with nsenter(1) into the container's PID 1 namespaces.

`systemd-nspawn -D /` is refused and --volatile fails on the read-only
/usr bind here: see /work/shared/reference/real-parts.md.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

# Units of the host image that have no business in a test container: they
# slow the boot, and some would listen on ports or run timers.
MASK = ["cron.service", "e2scrub_reap.service", "postgresql.service",
        "prometheus-node-exporter.service", "stunnel4.service", "stunnel.target",
        "systemd-timesyncd.service", "systemd-pstore.service", "apt-daily.timer",
        "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
        "fstrim.timer", "man-db.timer", "getty@tty1.service", "console-getty.service",
        "systemd-networkd-wait-online.service"]

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CannotBoot(Exception):
    """The machine cannot boot a container at all (not a failure of mcpjobd)."""


class Container:
    def __init__(self, boot_timeout=90):
        self.boot_timeout = boot_timeout
        self.base = tempfile.mkdtemp(prefix="mcpjob-system-")
        self.root = os.path.join(self.base, "root")
        self.nspawn = None
        self.leader = None
        self.mounted = []
        self.console = os.path.join(self.base + "-console.log")

    # --- lifecycle -------------------------------------------------------
    def boot(self):
        try:
            self._mount()
        except subprocess.CalledProcessError as e:
            raise CannotBoot("cannot mount the overlay of /: %s" % (e.stderr or e))
        self._prepare()
        log = open(self.console, "w")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "--register=no", "--keep-unit",
             "--link-journal=no", "--private-network", "--quiet", "-b"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise CannotBoot("systemd-nspawn exited with %d:\n%s"
                                 % (self.nspawn.returncode, self.console_tail()))
            self.leader = self._find_leader()
            if self.leader is not None:
                r = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                             timeout=max(1, deadline - time.monotonic()))
                state = r.stdout.strip()
                if state in ("running", "degraded"):
                    return state
                if state not in ("initializing", "starting", ""):
                    raise CannotBoot("the container's systemd is %s:\n%s"
                                     % (state, self.console_tail()))
            time.sleep(0.2)
        raise CannotBoot("the container did not boot within %ds:\n%s"
                         % (self.boot_timeout, self.console_tail()))

    def _mount(self):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=2G", "tmpfs", self.base],
                       check=True, capture_output=True, text=True)
        self.mounted.append(self.base)
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(self.base, d))
        opts = "lowerdir=/,upperdir=%s/upper,workdir=%s/work" % (self.base, self.base)
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, self.root],
                       check=True, capture_output=True, text=True)
        self.mounted.append(self.root)

    def _prepare(self):
        etc = os.path.join(self.root, "etc/systemd/system")
        for unit in MASK:
            link = os.path.join(etc, unit)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink("/dev/null", link)
        # A container image's "never start services" policy would hide
        # whether the package starts its units.
        policy = os.path.join(self.root, "usr/sbin/policy-rc.d")
        if os.path.lexists(policy):
            os.unlink(policy)
        # Nothing of a previous install on the host may leak into the test.
        for p in ("etc/mcpjobd", "var/lib/mcpjobd"):
            shutil.rmtree(os.path.join(self.root, p), ignore_errors=True)

    def _find_leader(self):
        """PID (host view) of the container's systemd: the child of nspawn."""
        try:
            out = subprocess.run(["pgrep", "-P", str(self.nspawn.pid)], capture_output=True,
                                 text=True).stdout.split()
        except FileNotFoundError:
            return None
        for pid in out:
            try:
                with open("/proc/%s/comm" % pid) as f:
                    if f.read().strip() == "systemd":
                        return int(pid)
            except OSError:
                continue
        return None

    def stop(self):
        if self.nspawn is not None and self.nspawn.poll() is None:
            # nspawn turns SIGTERM into an orderly shutdown of the container.
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.nspawn.pid, signal.SIGKILL)
                self.nspawn.wait()
        for m in reversed(self.mounted):
            subprocess.run(["umount", m], capture_output=True)
        self.mounted = []
        shutil.rmtree(self.base, ignore_errors=True)
        if os.path.exists(self.console):
            os.unlink(self.console)

    def console_tail(self, n=30):
        try:
            with open(self.console, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # --- inside ----------------------------------------------------------
    def run(self, argv, user=None, input=None, check=True, timeout=120, env=None):
        """Run @argv inside the container (as root, or as @user with a login
        environment for the user manager: XDG_RUNTIME_DIR, HOME)."""
        inner = ["env", "-i", "PATH=" + PATH, "LANG=C.UTF-8", "TERM=dumb"]
        inner += ["%s=%s" % kv for kv in (env or {}).items()]
        if user is not None:
            uid = self.uid(user)
            inner = ["runuser", "-u", user, "--"] + inner + [
                "HOME=/home/%s" % user, "USER=%s" % user,
                "XDG_RUNTIME_DIR=/run/user/%d" % uid,
                "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%d/bus" % uid]
        cmd = ["nsenter", "-t", str(self.leader), "-a"] + inner + list(argv)
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("in the container, %s exited %d:\n%s%s"
                                 % (" ".join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def uid(self, user):
        r = self.run(["id", "-u", user])
        return int(r.stdout)

    def path(self, inside):
        """The host path of @inside (for files the test writes or reads)."""
        return os.path.join(self.root, inside.lstrip("/"))

    def write(self, inside, text, mode=0o644):
        p = self.path(inside)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)

    def show(self, unit, *props, user=None):
        args = ["systemctl"] + (["--user"] if user else []) + ["show", unit]
        for p in props:
            args += ["-p", p]
        out = self.run(args, user=user).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
