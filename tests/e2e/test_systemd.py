"""mcpjobd under systemd: sd_notify messages on a real datagram socket, the
watchdog, socket activation through systemd-socket-activate, and refusing a
socket another instance listens on.
"""
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import MCPJOBD, E2ETestCase, RpcClient, wait_until

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


class NotifySocket:
    """The manager's end of NOTIFY_SOCKET: collects datagrams."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []

    def drain(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return self.messages
            self.messages.append(data.decode())

    def wait_for(self, pred, what, timeout=10):
        def found():
            self.drain()
            return [m for m in self.messages if pred(m)]
        return wait_until(found, timeout=timeout, what=what)

    def close(self):
        self.sock.close()


def fields(msg):
    return dict(line.split("=", 1) for line in msg.split("\n") if "=" in line)


class SdNotifyTest(E2ETestCase):
    def notify_daemon(self, extra_env=None, wrap=None):
        ns = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(ns.close)
        env = {"NOTIFY_SOCKET": ns.path}
        env.update(extra_env or {})
        job = self.exec_job("j", ["true"], initial_delay="1h")
        d = self.daemon({"jobs": [job]}, start=False, env=env)
        if wrap:
            base = d.cmdline
            d.cmdline = lambda: wrap(base())
        d.start()
        return d, ns

    def test_ready_status_reloading_stopping_in_order(self):
        d, ns = self.notify_daemon()
        ns.wait_for(lambda m: "READY=1" in m.split("\n"), "READY=1")
        status = ns.wait_for(lambda m: m.startswith("STATUS="), "STATUS=")
        self.assertIn("1 job", status[0])
        ns.messages.clear()

        before_us = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        d.proc.send_signal(signal.SIGHUP)
        ns.wait_for(lambda m: m == "READY=1", "READY=1 after the reload")
        after_us = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        reloading = [i for i, m in enumerate(ns.messages) if "RELOADING=1" in m]
        ready = [i for i, m in enumerate(ns.messages) if m == "READY=1"]
        self.assertTrue(reloading, ns.messages)
        self.assertLess(reloading[0], ready[0], "RELOADING=1 must come before READY=1")
        usec = int(fields(ns.messages[reloading[0]])["MONOTONIC_USEC"])
        self.assertTrue(before_us <= usec <= after_us,
                        "MONOTONIC_USEC %d is not CLOCK_MONOTONIC now" % usec)

        ns.messages.clear()
        self.assertEqual(d.stop(), 0)
        ns.drain()
        self.assertIn("STOPPING=1", ns.messages)

    def test_reload_over_the_socket_notifies_too(self):
        d, ns = self.notify_daemon()
        ns.wait_for(lambda m: "READY=1" in m.split("\n"), "READY=1")
        ns.messages.clear()
        self.assertIn("jobs", d.result("daemon.reload"))
        ns.wait_for(lambda m: m == "READY=1", "READY=1 after daemon.reload")
        self.assertTrue(any("RELOADING=1" in m for m in ns.messages), ns.messages)

    def test_watchdog_pings_at_half_the_interval_for_its_own_pid(self):
        # WATCHDOG_PID must be the daemon's own pid: sh sets it, then execs.
        wrap = lambda argv: ["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh"] + argv
        d, ns = self.notify_daemon({"WATCHDOG_USEC": "400000"}, wrap=wrap)
        ns.wait_for(lambda m: "READY=1" in m.split("\n"), "READY=1")
        ns.messages.clear()
        time.sleep(1.1)
        pings = [m for m in ns.drain() if m == "WATCHDOG=1"]
        # Every 200 ms: about 5 in 1.1 s; allow for a loaded machine.
        self.assertGreaterEqual(len(pings), 3, ns.messages)
        self.assertLessEqual(len(pings), 7, ns.messages)

    def test_no_watchdog_pings_when_watchdog_pid_is_another_process(self):
        d, ns = self.notify_daemon({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        ns.wait_for(lambda m: "READY=1" in m.split("\n"), "READY=1")
        time.sleep(0.6)
        self.assertNotIn("WATCHDOG=1", ns.drain())


class SocketTest(E2ETestCase):
    def test_second_daemon_on_the_same_socket_refuses_to_start(self):
        first = self.daemon({"jobs": []})
        second = self.daemon({"jobs": []}, start=False)
        second.socket = first.socket
        second.start(wait=False)
        try:
            rc = second.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("the second mcpjobd kept running:\n" + second.log())
        second.proc = None
        second.logf.close()
        self.assertEqual(rc, 1)
        self.assertIn("another mcpjobd is already listening on %s" % first.socket, second.log())
        # The first one still owns and answers on its socket.
        self.assertEqual(first.result("daemon.hello")["name"], "mcpjobd")

    def test_stale_socket_file_is_replaced(self):
        d = self.daemon({"jobs": []}, start=False)
        os.makedirs(os.path.dirname(d.socket), exist_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(d.socket)  # bound, never listening: what a crashed daemon leaves
        s.close()
        d.start()
        self.assertEqual(d.result("daemon.hello")["name"], "mcpjobd")

    def test_socket_activation_answers_on_the_passed_socket(self):
        if SOCKET_ACTIVATE is None:
            self.skipTest("systemd-socket-activate is not installed (Debian package systemd)")
        job = self.exec_job("j", ["true"], initial_delay="1h")
        d = self.daemon({"jobs": [job]}, start=False)
        activated = os.path.join(self.tmp, "activated.sock")
        own = d.socket  # --socket still names this one; it must not be created
        log = open(d.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS")}
        proc = subprocess.Popen([SOCKET_ACTIVATE, "-l", activated] + d.cmdline(),
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(lambda: os.path.exists(activated), what="the activation socket")
            c = RpcClient(activated, timeout=10)  # the first connection starts mcpjobd
            hello = c.call("daemon.hello")
            self.assertEqual(hello["result"]["name"], "mcpjobd", hello)
            jobs = c.call("jobs.list")["result"]["jobs"]
            self.assertEqual([j["id"] for j in jobs], ["j"])
            c.close()
            self.assertFalse(os.path.exists(own), "mcpjobd created its own socket as well")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=15), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        with open(d.log_path) as f:
            self.assertIn("ready", f.read())
