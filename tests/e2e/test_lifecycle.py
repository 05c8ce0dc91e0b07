"""Device constraints, the job lifecycle, retries and live events, end to
end on the sim platform (device state set over the socket)."""
import json
import os
import socket
import time

from harness import SANITIZED, E2ETestCase, RpcClient, wait_until


def job(job_id, argv, **kw):
    j = {"id": job_id, "interval": "24h", "initial_delay": "24h",
         "action": {"exec": {"argv": argv}}}
    j.update(kw)
    return j


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Events:
    """A subscribed raw connection collecting events."""

    def __init__(self, d, jobs=None):
        self.c = d.client()
        r = self.c.call("events.subscribe", {"jobs": jobs} if jobs else {})
        assert r["result"]["subscribed"] is True, r
        self.seen = []

    def next(self, timeout=10):
        self.c.sock.settimeout(timeout)
        m = self.c.recv_msg()
        assert m["method"] == "event", m
        self.seen.append(m["params"])
        return m["params"]

    def wait_for(self, pred, timeout=10, what="event"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.next(timeout=max(0.05, deadline - time.monotonic()))
            if pred(p):
                return p
        raise AssertionError("no %s within %ss; saw %r" % (what, timeout, self.seen[-10:]))


class Constraints(E2ETestCase):
    def test_due_job_waits_for_network_and_runs_within_a_second(self):
        d = self.daemon({"jobs": [job("sync", ["true"], initial_delay="1500ms",
                                      constraints={"network": "connected"})]})
        d.result("device.set", {"network": "none"})
        st = d.wait_state("sync", "pending", timeout=5)
        self.assertEqual(st["pending_reason"], "waiting for network (now: none)")
        self.assertIsNotNone(st["pending_since"])
        self.assertEqual(d.history("sync"), [])
        lst = d.ctl("list")
        self.assertIn("sync: pending since", lst.stdout)
        self.assertIn("waiting for network (now: none)", lst.stdout)
        status = d.ctl("status", "sync")
        self.assertIn("waiting for network (now: none)", status.stdout)
        ev = Events(d, ["sync"])
        t0 = time.monotonic()
        d.result("device.set", {"network": "unmetered"})
        ev.wait_for(lambda p: p["type"] == "run.started", timeout=1.0, what="run.started")
        self.assertLess(time.monotonic() - t0, 1.0)
        runs = d.wait_runs("sync", 1)
        self.assertEqual(runs[0]["outcome"], "success")
        self.assertEqual(runs[0]["trigger"], "schedule")

    def test_unmetered_job_waits_while_metered(self):
        d = self.daemon({"jobs": [job("big", ["true"], initial_delay="1s",
                                      constraints={"network": "unmetered"})]})
        d.result("device.set", {"network": "metered"})
        st = d.wait_state("big", "pending", timeout=5)
        self.assertEqual(st["pending_reason"], "waiting for unmetered network (now: metered)")
        d.result("device.set", {"network": "none"})
        time.sleep(0.2)
        self.assertEqual(d.status("big")["state"], "pending")
        d.result("device.set", {"network": "unmetered"})
        d.wait_runs("big", 1, timeout=3)

    def test_every_constraint_names_itself_while_pending(self):
        cases = [("charging", {"charging": True}, {"charging": False},
                  "waiting for charging (now: on battery)"),
                 ("battery", {"battery_not_low": True}, {"battery_low": True},
                  "waiting for battery not low (now: low)"),
                 ("idle", {"idle": True}, {"idle": False}, "waiting for device idle (now: in use)"),
                 ("storage", {"storage_not_low": True}, {"storage_low": True},
                  "waiting for storage not low (now: low)")]
        d = self.daemon({"jobs": [job(n, ["true"], constraints=c) for n, c, _, _ in cases]})
        for name, _, state, reason in cases:
            d.result("device.set", state)
            r = d.result("job.run", {"job": name, "when_allowed": True})
            self.assertTrue(r["queued"])
            self.assertEqual(d.status(name)["pending_reason"], reason)
        d.result("device.set", {"charging": True, "battery_low": False, "idle": True,
                                "storage_low": False})
        for name, _, _, _ in cases:
            self.assertEqual(d.wait_runs(name, 1)[0]["trigger"], "manual")

    def test_manual_run_bypasses_constraints(self):
        d = self.daemon({"jobs": [job("sync", ["true"], constraints={"network": "connected"})]})
        d.result("device.set", {"network": "none"})
        r = d.ctl("run", "sync", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = d.ctl("run", "sync", "--when-allowed")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(d.status("sync")["state"], "pending")
        self.assertEqual(len(d.history("sync")), 1)
        d.result("device.set", {"network": "metered"})
        d.wait_runs("sync", 2)

    def test_running_job_is_stopped_when_its_constraint_drops_and_waits_again(self):
        d = self.daemon({"jobs": [job("sync", ["sleep", "30"], initial_delay="500ms",
                                      constraints={"network": "connected"})]})
        d.wait_state("sync", "running", timeout=5)
        d.result("device.set", {"network": "none"})
        runs = d.wait_runs("sync", 1, timeout=10)
        self.assertEqual(runs[0]["outcome"], "cancelled")
        self.assertIn("constraints no longer hold", runs[0]["message"])
        self.assertIn("waiting for network", runs[0]["message"])
        st = d.wait_state("sync", "pending")
        self.assertEqual(st["pending_reason"], "waiting for network (now: none)")
        d.result("device.set", {"network": "unmetered"})
        d.wait_state("sync", "running", timeout=3)

    def test_stop_when_unmet_false_lets_the_run_finish(self):
        d = self.daemon({"jobs": [job("sync", ["sleep", "1"], initial_delay="300ms",
                                      stop_when_unmet=False,
                                      constraints={"network": "connected"})]})
        d.wait_state("sync", "running", timeout=5)
        d.result("device.set", {"network": "none"})
        runs = d.wait_runs("sync", 1, timeout=5)
        self.assertEqual(runs[0]["outcome"], "success")

    def test_reload_while_pending_applies_the_new_constraints(self):
        cfg = {"jobs": [job("sync", ["true"], initial_delay="300ms",
                            constraints={"network": "unmetered"})]}
        d = self.daemon(cfg)
        d.result("device.set", {"network": "metered"})
        d.wait_state("sync", "pending", timeout=5)
        cfg["jobs"][0]["constraints"] = {"network": "connected"}
        d.write_config(cfg)
        d.ctl("reload", check=True)
        d.result("device.set", {"charging": False})  # any change re-evaluates
        runs = d.wait_runs("sync", 1, timeout=5)
        self.assertEqual(runs[0]["outcome"], "success")

    def test_device_set_is_refused_off_the_sim_platform(self):
        d = self.daemon({"jobs": []}, platform="linux")
        r = d.rpc("device.set", {"network": "none"})
        self.assertEqual(r["error"]["code"], -32006)
        self.assertIn("--platform sim", r["error"]["message"])
        st = d.result("device.status")
        self.assertEqual(st["platform"], "linux")
        self.assertIn("network", st["state"])

    def test_bad_device_values_are_clear_errors(self):
        d = self.daemon({"jobs": []})
        r = d.rpc("device.set", {"network": "wifi"})
        self.assertEqual(r["error"]["code"], -32602)
        self.assertIn("none, metered, unmetered", r["error"]["message"])
        r = d.rpc("device.set", {"temperature": True})
        self.assertEqual(r["error"]["code"], -32602)
        self.assertIn("temperature", r["error"]["message"])


class Retries(E2ETestCase):
    def test_backoff_state_shows_the_next_attempt(self):
        d = self.daemon({"jobs": [job("flaky", ["sh", "-c", "exit 75"], initial_delay="100ms",
                                      retry={"max_attempts": 2, "initial": "30s"})]})
        st = d.wait_state("flaky", "backoff", timeout=5)
        self.assertEqual(st["attempt"], 1)
        self.assertIsNotNone(st["backoff_until"])
        self.assertIn("backoff", d.ctl("status", "flaky").stdout)

    def test_success_after_retry_resets_the_attempts(self):
        marker = os.path.join(self.tmp, "once")
        script = "if [ -e %s ]; then echo ok; else touch %s; exit 75; fi" % (marker, marker)
        d = self.daemon({"jobs": [job("once", ["sh", "-c", script], initial_delay="100ms",
                                      retry={"max_attempts": 3, "initial": "1s"})]})
        runs = d.wait_runs("once", 2, timeout=10)
        self.assertEqual(sorted(r["outcome"] for r in runs), ["retry", "success"])
        self.assertEqual(d.status("once")["attempt"], 0)


class LiveEvents(E2ETestCase):
    def test_events_arrive_in_order(self):
        d = self.daemon({"jobs": [job("a", ["sh", "-c", "echo hi"])]})
        ev = Events(d)
        d.result("job.run", {"job": "a"})
        types = []
        while "run.finished" not in types:
            p = ev.next()
            if p.get("job") == "a":
                types.append(p["type"] if p["type"] != "job.state" else "state:" + p["state"])
        self.assertEqual(types, ["run.started", "state:running", "run.finished"])
        fin = ev.seen[-1]
        self.assertEqual(fin["outcome"], "success")
        self.assertEqual(fin["message"], "hi")
        self.assertEqual(fin["run"]["run_id"], fin["run_id"])
        # And the state returns to scheduled.
        p = ev.wait_for(lambda p: p["type"] == "job.state")
        self.assertEqual((p["previous"], p["state"]), ("running", "scheduled"))
        d.result("device.set", {"network": "none"})
        p = ev.wait_for(lambda p: p["type"] == "device.changed")
        self.assertEqual(p["state"]["network"], "none")
        self.assertEqual(p["previous"]["network"], "unmetered")

    def test_subscription_filters_by_job(self):
        d = self.daemon({"jobs": [job("a", ["true"]), job("b", ["true"])]})
        ev = Events(d, ["b"])
        d.result("job.run", {"job": "a"})
        d.result("job.run", {"job": "b"})
        p = ev.wait_for(lambda p: p["type"] == "run.finished")
        self.assertEqual(p["job"], "b")
        self.assertTrue(all(e.get("job") in (None, "b") for e in ev.seen))

    def test_a_subscriber_that_does_not_read_is_dropped_and_memory_stays_bounded(self):
        d = self.daemon({"jobs": [job("a", ["true"])]})
        s = socket.socket(socket.AF_UNIX)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(d.socket)
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe"}\n')
        time.sleep(0.2)
        base = rss_kb(d.proc.pid)
        admin = d.client()
        # Each device change is an event of ~300 bytes; 20k of them is ~6 MB.
        for i in range(10000):
            admin.call("device.set", {"charging": i % 2 == 0})
        wait_until(lambda: "dropping an event subscriber" in d.log(), timeout=10,
                   what="the slow subscriber to be dropped")
        grown = rss_kb(d.proc.pid) - base
        if not SANITIZED:  # ASan's quarantine holds freed memory
            self.assertLess(grown, 8 * 1024, "daemon grew by %d kB" % grown)
        self.assertEqual(admin.call("daemon.hello")["result"]["name"], "mcpjobd")
        s.close()
        admin.close()
