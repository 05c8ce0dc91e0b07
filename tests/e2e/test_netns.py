"""The linux provider's network state against real kernel networking.

Each test builds two network namespaces of its own (one for the probe, one
for the far end of a veth pair), runs build/tests/servers/netstate inside the
first with `ip netns exec`, changes links and routes there, and reads the
state lines netstate prints. Only addresses in 10.200.0.0/24 (and an IPv6 device route)
inside those namespaces are used, no packet is sent, and the host's own
interfaces and routes are never touched. Needs root and iproute2's `ip`.
"""
import os
import queue
import shutil
import subprocess
import threading
import time
import unittest

from harness import BUILD

NETSTATE = os.path.join(BUILD, "tests", "servers", "netstate")
CHANGE_WITHIN = 1.0   # seconds: a change must show this fast (event driven)
START_WITHIN = 10.0   # the first line, sanitizer builds start slowly


def sh(*args):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r.stdout


class Probe:
    """netstate running in a namespace; its stdout lines arrive on a queue."""

    def __init__(self, ns, *args):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, NETSTATE, "--no-bus"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_state(self, timeout):
        """The next state netstate prints, within timeout seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("netstate printed nothing within %.1fs (so far: %s)"
                                 % (timeout, self.seen))
        if line is None:
            raise AssertionError("netstate exited (%s): %s" % (self.proc.wait(), self.proc.stderr.read()))
        self.seen.append(line)
        return line

    def stop(self):
        """SIGTERM; return (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, err


class NetnsTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("NOT RUN: test_netns needs root to create network namespaces "
                          "(run `sudo make e2e` to cover the linux network provider)")
        if shutil.which("ip") is None:
            self.skipTest("NOT RUN: test_netns needs iproute2's `ip` (apt-get install iproute2)")
        self.assertTrue(os.access(NETSTATE, os.X_OK), "%s is not built (make)" % NETSTATE)
        tag = "%d%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        self.ns = "mcpjobtest" + tag
        self.peer = "mcpjobpeer" + tag
        self.made = []
        self.probe = None
        for ns in (self.ns, self.peer):
            r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
            if r.returncode != 0:
                self.skipTest("NOT RUN: cannot create a network namespace here (%s); "
                              "run test_netns on a host or a privileged container" % r.stderr.strip())
            self.made.append(ns)
        self.run_in(self.ns, "ip", "link", "set", "lo", "up")

    def tearDown(self):
        if self.probe is not None:
            rc, err = self.probe.stop()
            if rc != 0 or "Sanitizer" in err:
                self.fail("netstate did not end cleanly on SIGTERM (%s):\n%s" % (rc, err))
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def run_in(self, ns, *args):
        return sh("ip", "netns", "exec", ns, *args)

    def add_veth(self, name):
        """A veth pair: @name in the probe's namespace, up, 10.200.0.1/24; its
        peer up in the peer namespace so the link has carrier."""
        sh("ip", "-n", self.ns, "link", "add", name, "type", "veth", "peer", "name", "peer0",
           "netns", self.peer)
        sh("ip", "-n", self.ns, "addr", "add", "10.200.0.1/24", "dev", name)
        sh("ip", "-n", self.ns, "link", "set", name, "up")
        sh("ip", "-n", self.peer, "link", "set", "peer0", "up")

    def start_probe(self, *args):
        self.probe = Probe(self.ns, *args)
        return self.probe.next_state(START_WITHIN)

    def expect(self, state):
        self.assertEqual(self.probe.next_state(CHANGE_WITHIN), state,
                         "states so far: %s" % self.probe.seen)

    def test_only_loopback_means_no_network(self):
        self.assertEqual(self.start_probe(), "none")

    def test_default_route_comes_and_goes(self):
        self.assertEqual(self.start_probe(), "none")
        self.add_veth("veth0test")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        self.expect("unmetered")
        sh("ip", "-n", self.ns, "route", "del", "default")
        self.expect("none")

    def test_default_route_on_wwan_interface_is_metered(self):
        self.assertEqual(self.start_probe(), "none")
        self.add_veth("wwan0test")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        self.expect("metered")

    def test_renaming_into_a_metered_pattern(self):
        self.add_veth("veth0test")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        self.assertEqual(self.start_probe(), "unmetered")
        sh("ip", "-n", self.ns, "link", "set", "veth0test", "down")  # drops the route
        self.expect("none")
        sh("ip", "-n", self.ns, "link", "set", "veth0test", "name", "wwan0test")
        sh("ip", "-n", self.ns, "link", "set", "wwan0test", "up")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        self.expect("metered")

    def test_metered_patterns_come_from_settings(self):
        self.add_veth("veth0test")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        self.assertEqual(self.start_probe("--metered", "veth*"), "metered")

    def test_lost_carrier_means_no_network(self):
        self.add_veth("veth0test")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        self.assertEqual(self.start_probe(), "unmetered")
        sh("ip", "-n", self.peer, "link", "set", "peer0", "down")  # route stays, link not running
        self.expect("none")
        sh("ip", "-n", self.peer, "link", "set", "peer0", "up")
        self.expect("unmetered")

    def test_ipv6_default_route_counts(self):
        self.assertEqual(self.start_probe(), "none")
        self.add_veth("veth0test")
        sh("ip", "-n", self.ns, "-6", "route", "add", "default", "dev", "veth0test")
        self.expect("unmetered")
        sh("ip", "-n", self.ns, "-6", "route", "del", "default", "dev", "veth0test")
        self.expect("none")


if __name__ == "__main__":
    unittest.main()
