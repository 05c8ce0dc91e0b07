"""The linux platform's charging and battery state from a fake power_supply
tree (device.power_supply_path), with the real daemon: jobs wait for
charging / battery not low and run when the tree says so. Without udev
events for a tree outside /sys, a reload re-reads it at once."""
import os

from harness import E2ETestCase


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
