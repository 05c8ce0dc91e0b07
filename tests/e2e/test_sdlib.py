"""End-to-end: libsystemd is loaded only when something needs it
(common/sdlib.h). A daemon systemd did not start (no $NOTIFY_SOCKET), logging
to stderr, with no system bus to talk to, never maps libsystemd nor the
libraries it links (/proc/PID/maps of the real daemon, running jobs on the
linux platform); one with a $NOTIFY_SOCKET or told to log to the journal
loads it and works (READY=1 arrives; jobs run); and a libsystemd that
cannot be loaded when needed is a start-up error naming the library and
the Debian package, not a crash."""
import os

import shutil

import test_netlib
import test_notify
import test_systemd
from harness import E2ETestCase
from test_netlib import mapped

# libsystemd and what it links (libsystemd0's Depends on Debian 12) but for
# libcap, which glibc's NSS module libnss_systemd (nsswitch.conf) maps in
# any process that looks up a user, cron too.
SD_LIBS = ("libsystemd", "libgcrypt", "libgpg-error", "liblzma", "libzstd", "liblz4")
NotifySocket = test_systemd.NotifySocket


def sd_mapped(pid):
    return sorted(n for n in mapped(pid) if n.startswith(SD_LIBS))


class Sdlib(E2ETestCase):
    stdio_config = test_netlib.Netlib.stdio_config

    def run_jobs(self, d):
        for job in ("hello", "call"):
            r = d.ctl("run", job, "--wait")
            self.assertEqual(r.returncode, 0, r.stderr + d.log()[-3000:])
        self.assertEqual(d.history("call")[0]["message"], "Echo: hi")

    def test_daemon_not_under_systemd_logging_to_stderr_maps_no_libsystemd(self):
        # The harness starts it without NOTIFY_SOCKET, LISTEN_FDS, JOURNAL_STREAM.
        if os.path.exists("/run/dbus/system_bus_socket"):
            self.skipTest("a system bus runs here: the linux platform talks to it (sd-bus)")
        d = self.daemon(self.stdio_config(), platform="linux")
        self.run_jobs(d)
        # The probe reads the real maps: the libraries it does link are there.
        self.assertTrue(any(n.startswith("libjansson.so") for n in mapped(d.proc.pid)))
        self.assertEqual(sd_mapped(d.proc.pid), [])

    def test_notify_socket_loads_libsystemd_and_ready_arrives(self):
        ns = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(ns.close)
        d = self.daemon(self.stdio_config(), env={"NOTIFY_SOCKET": ns.path})
        ns.wait_for(lambda m: "READY=1" in m.split("\n"), "READY=1")
        self.run_jobs(d)
        self.assertTrue(any(n.startswith("libsystemd.so") for n in sd_mapped(d.proc.pid)),
                        sd_mapped(d.proc.pid))

    def test_log_target_journal_loads_libsystemd_and_runs_jobs(self):
        d = self.daemon(self.stdio_config(), args=["--log-target", "journal"])
        self.run_jobs(d)
        self.assertTrue(any(n.startswith("libsystemd.so") for n in sd_mapped(d.proc.pid)),
                        sd_mapped(d.proc.pid))

    def test_libsystemd_that_cannot_be_loaded_under_systemd_is_a_startup_error(self):
        gone = os.path.join(self.tmp, "no", "libsystemd.so.0")
        ns = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(ns.close)
        d = self.daemon(self.stdio_config(), start=False,
                        env={"NOTIFY_SOCKET": ns.path, "MCPJOB_LIBSYSTEMD": gone})
        d.start(wait=False)
        self.assertEqual(d.proc.wait(30), 1, d.log())
        self.assertIn("cannot load libsystemd (%s: cannot open shared object file" % gone,
                      d.log())
        self.assertIn("install the Debian package libsystemd0 (needed: $NOTIFY_SOCKET is set)",
                      d.log())
        d.proc = None
        # Told to log to the journal: the same error, on stderr.
        d = self.daemon(self.stdio_config(), start=False, args=["--log-target", "journal"],
                        env={"MCPJOB_LIBSYSTEMD": gone})
        d.start(wait=False)
        self.assertEqual(d.proc.wait(30), 1, d.log())
        self.assertIn("install the Debian package libsystemd0 (needed: logging to the journal)",
                      d.log())
        d.proc = None
        # Not under systemd, the same missing library is no error: nothing needs it.
        d = self.daemon(self.stdio_config(), env={"MCPJOB_LIBSYSTEMD": gone})
        self.run_jobs(d)

    def test_libsystemd_that_cannot_be_loaded_for_the_session_bus_is_no_bus_logged(self):
        missing = [p for p in test_notify.NEEDED if shutil.which(p) is None]
        if missing:
            self.skipTest("NOT RUN: needs %s (tests/bootstrap.sh installs them)" % ", ".join(missing))
        desk = test_notify.DesktopSession(self.tmp)
        self.addCleanup(desk.close)
        gone = os.path.join(self.tmp, "no", "libsystemd.so.0")
        job = self.exec_job("sync", ["true"], notify={"on": ["success"]})
        d = self.daemon({"jobs": [job]}, args=["--user"],
                        env=dict(desk.env, MCPJOB_LIBSYSTEMD=gone))
        r = d.ctl("run", "sync", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr + d.log())
        self.assertEqual(d.history("sync")[0]["outcome"], "success")
        self.assertIn("warning: cannot load libsystemd (%s: cannot open shared object file" % gone,
                      d.log())
        self.assertIn("install the Debian package libsystemd0: what needs it (the system and "
                      "session bus, udev) is off", d.log())
        self.assertIn("no session bus (Can not access a needed shared library", d.log())
        self.assertEqual(desk.count(), 0)
        self.assertEqual(d.proc.poll(), None, "the daemon is still running")
