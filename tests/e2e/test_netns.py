"""The linux provider's network state against real kernel networking, and
its system-bus path (NetworkManager's Metered, logind's IdleHint) against a
private dbus-daemon with tests/servers/fakebus standing in for both.

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

import tempfile

from harness import BUILD

NETSTATE = os.path.join(BUILD, "tests", "servers", "netstate")
FAKEBUS = os.path.join(BUILD, "tests", "servers", "fakebus")
BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""
CHANGE_WITHIN = 1.0   # seconds: a change must show this fast (event driven)
# The kernel's linkwatch batches carrier changes for up to a second before it
# updates operstate and tells rtnetlink listeners; a carrier change may take
# that long to exist at all.
LINKWATCH_DELAY = 1.0
START_WITHIN = 10.0   # the first line, sanitizer builds start slowly


def sh(*args):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r.stdout


class Probe:
    """netstate running in a namespace; its stdout lines arrive on a queue."""

    def __init__(self, ns, *args, env=None):
        prefix = ["ip", "netns", "exec", ns] if ns else []
        self.proc = subprocess.Popen(prefix + [NETSTATE] + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
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


class NetnsCase(unittest.TestCase):
    """Two namespaces of our own per test, and the helpers to wire them."""

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
        self.probe = Probe(self.ns, "--no-bus", *args)
        return self.probe.next_state(START_WITHIN)

    def expect(self, state, within=CHANGE_WITHIN):
        self.assertEqual(self.probe.next_state(within), state,
                         "states so far: %s" % self.probe.seen)



class NetnsTest(NetnsCase):
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
        self.expect("none", CHANGE_WITHIN + LINKWATCH_DELAY)
        sh("ip", "-n", self.peer, "link", "set", "peer0", "up")
        self.expect("unmetered", CHANGE_WITHIN + LINKWATCH_DELAY)

    def test_ipv6_default_route_counts(self):
        self.assertEqual(self.start_probe(), "none")
        self.add_veth("veth0test")
        sh("ip", "-n", self.ns, "-6", "route", "add", "default", "dev", "veth0test")
        self.expect("unmetered")
        sh("ip", "-n", self.ns, "-6", "route", "del", "default", "dev", "veth0test")
        self.expect("none")


class PrivateBus:
    """A dbus-daemon of our own, and fakebus on it as NetworkManager and logind."""

    def __init__(self, tmp, metered, idle):
        path = os.path.join(tmp, "bus")
        conf = os.path.join(tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF % path)
        self.daemon = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork",
                                        "--print-address=1"], stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True)
        self.daemon.stdout.readline()  # listening once it prints its address
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + path)
        self.fake = subprocess.Popen([FAKEBUS, str(metered), str(idle)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=self.env)
        assert self.fake.stdout.readline().strip() == "ready", "fakebus did not start"

    def send(self, cmd):
        self.fake.stdin.write(cmd + "\n")
        self.fake.stdin.flush()
        answer = self.fake.stdout.readline().strip()
        assert answer == "ok", "fakebus: %s: %s" % (cmd, answer)

    def kill_daemon(self):
        if self.daemon.poll() is None:
            self.daemon.terminate()
        self.daemon.wait()
        self.daemon.stdout.close()

    def close(self):
        self.fake.stdin.close()
        self.fake.wait(timeout=10)
        self.fake.stdout.close()
        self.kill_daemon()


class BusTest(NetnsCase):
    """The sd-bus path; network cases run in namespaces like NetnsTest."""

    def setUp(self):
        if shutil.which("dbus-daemon") is None:
            self.skipTest("NOT RUN: the system-bus tests need dbus-daemon (apt-get install dbus-daemon)")
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="mcpjob-bus-")
        self.bus = None

    def tearDown(self):
        super().tearDown()
        if self.bus is not None:
            self.bus.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_bus_probe(self, metered, idle, *args):
        self.bus = PrivateBus(self.tmp, metered, idle)
        self.probe = Probe(self.ns, *args, env=self.bus.env)
        return self.probe.next_state(START_WITHIN)

    def test_networkmanager_metered_overrides_names_while_it_runs(self):
        self.add_veth("wwan0test")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        # NM_METERED_NO wins over the wwan* name from the very first state:
        # a job held back for metered networks must not slip through while
        # NetworkManager is being asked.
        self.assertEqual(self.start_bus_probe(2, 1), "unmetered")
        self.bus.send("metered 1")  # NM_METERED_YES
        self.expect("metered")
        self.bus.send("metered 4")  # NM_METERED_GUESS_NO
        self.expect("unmetered")
        self.bus.send("nm-exit")    # NetworkManager gone: the name decides again
        self.expect("metered")
        self.bus.send("metered 2")  # unseen: nobody owns NetworkManager's name
        self.bus.send("nm-start")   # back: asked again, and it says NM_METERED_NO
        self.expect("unmetered")

    def test_losing_the_bus_falls_back_to_names(self):
        self.add_veth("wwan0test")
        sh("ip", "-n", self.ns, "route", "add", "default", "via", "10.200.0.2")
        self.assertEqual(self.start_bus_probe(2, 1), "unmetered")
        self.bus.kill_daemon()
        self.expect("metered")
        rc, err = self.probe.stop()
        self.probe = None
        self.assertEqual(rc, 0, err)
        self.assertIn("system bus connection lost", err)

    def test_logind_idle_hint_is_followed(self):
        self.assertEqual(self.start_bus_probe(2, 1, "--field", "idle"), "true")
        self.bus.send("idle 0")
        self.expect("false")
        self.bus.send("idle 1")
        self.expect("true")


if __name__ == "__main__":
    unittest.main()
