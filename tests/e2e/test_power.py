"""The linux platform's charging and battery state from a fake power_supply
tree (device.power_supply_path), with the real daemon: jobs wait for
charging / battery not low and run when the tree says so. Without udev
events for a tree outside /sys, a reload re-reads it at once."""
import os
import socket

from harness import E2ETestCase, wait_until


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


class FakePowerSupply(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.ps = os.path.join(self.tmp, "power_supply")
        write(os.path.join(self.ps, "AC", "type"), "Mains")
        write(os.path.join(self.ps, "AC", "online"), "0")
        write(os.path.join(self.ps, "BAT0", "type"), "Battery")
        write(os.path.join(self.ps, "BAT0", "status"), "Discharging")
        write(os.path.join(self.ps, "BAT0", "capacity"), "10")

    def daemon_with(self, constraints):
        cfg = {"device": {"power_supply_path": self.ps},
               "jobs": [{"id": "job", "interval": "1h", "initial_delay": "100ms",
                         "constraints": constraints,
                         "action": {"exec": {"argv": ["true"]}}}]}
        return self.daemon(cfg, platform="linux")

    def test_job_waits_for_charging_and_runs_when_plugged_in(self):
        d = self.daemon_with({"charging": True})
        st = d.wait_state("job", "pending", timeout=5)
        self.assertEqual(st["pending_reason"], "waiting for charging (now: on battery)")
        state = d.result("device.status")["state"]
        self.assertIs(state["charging"], False)
        self.assertIs(state["battery_low"], True)
        write(os.path.join(self.ps, "AC", "online"), "1")
        write(os.path.join(self.ps, "BAT0", "status"), "Charging")
        d.ctl("reload", check=True)
        runs = d.wait_runs("job", 1, timeout=5)
        self.assertEqual(runs[0]["outcome"], "success")
        self.assertIs(d.result("device.status")["state"]["charging"], True)

    def test_job_waits_while_the_battery_is_low(self):
        d = self.daemon_with({"battery_not_low": True})
        st = d.wait_state("job", "pending", timeout=5)
        self.assertEqual(st["pending_reason"], "waiting for battery not low (now: low)")
        write(os.path.join(self.ps, "BAT0", "capacity"), "80")
        d.ctl("reload", check=True)
        d.wait_runs("job", 1, timeout=5)
        self.assertIs(d.result("device.status")["state"]["battery_low"], False)


UEVENT_AC = (b"change@/devices/virtual/power_supply/AC\0ACTION=change\0"
             b"DEVPATH=/devices/virtual/power_supply/AC\0SUBSYSTEM=power_supply\0"
             b"POWER_SUPPLY_NAME=AC\0POWER_SUPPLY_TYPE=Mains\0POWER_SUPPLY_ONLINE=0\0SEQNUM=1\0")
NETLINK_KOBJECT_UEVENT = 15


def uevent_sockets(pid):
    """(port, groups) of each NETLINK_KOBJECT_UEVENT socket process @pid holds."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    with open("/proc/net/netlink") as f:
        next(f)
        for line in f:
            w = line.split()
            if int(w[1]) == NETLINK_KOBJECT_UEVENT and w[9] in inodes:
                found.append((int(w[2]), int(w[3], 16)))
    return found


class KernelUevents(E2ETestCase):
    """Without udevd, the real /sys/class/power_supply is watched through the
    kernel's uevents: a netlink socket in group 1, no poll, forged messages
    refused. (This VM has no power_supply device, so no real power uevent can
    be made here; tests/unit/test_platform.c classifies one.)"""

    def setUp(self):
        super().setUp()
        if os.path.exists("/run/udev/control"):
            self.skipTest("NOT RUN: udevd runs here, so power changes come from udev")
        with open("/proc/self/uid_map") as f:
            if f.read().split() != ["0", "0", "4294967295"]:
                self.skipTest("NOT RUN: in a user namespace the kernel sends no uevents")

    def test_without_udevd_power_comes_from_kernel_uevents_not_a_poll(self):
        d = self.daemon({"jobs": [{"id": "job", "interval": "1h", "initial_delay": "1h",
                                   "constraints": {"charging": True},
                                   "action": {"exec": {"argv": ["true"]}}}]},
                        platform="linux")
        log = d.log()
        self.assertIn("power: kernel uevents (NETLINK_KOBJECT_UEVENT) for "
                      "/sys/class/power_supply, no udevd: no poll", log)
        self.assertNotIn("re-reading /sys/class/power_supply every", log)
        socks = uevent_sockets(d.proc.pid)
        self.assertEqual(len(socks), 1, socks)
        port, groups = socks[0]
        self.assertNotEqual(port, 0)
        self.assertEqual(groups, 1)  # the kernel's multicast group, not udevd's (2)

    def test_forged_power_supply_uevent_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("NOT RUN: only root may send to a uevent socket")
        d = self.daemon({"jobs": []}, platform="linux")
        (port, _), = uevent_sockets(d.proc.pid)
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        try:
            s.sendto(UEVENT_AC, (port, 0))
        finally:
            s.close()
        wait_until(lambda: "uevent ignored: not sent by the kernel" in d.log(), timeout=10,
                   what="the daemon to refuse the forged uevent")
