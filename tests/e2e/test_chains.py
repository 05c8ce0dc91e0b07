"""Chains (on_success / on_failure) and the input a manual run carries
(job.run "arguments" / "env"), through the real daemon."""
import json
import os
import subprocess

from harness import BUILD, MCPJOBD, E2ETestCase, wait_until

FAULT = os.path.join(BUILD, "tests", "servers", "mcp-fault")


def exec_job(job_id, script, **extra):
    j = {"id": job_id, "interval": "24h", "initial_delay": "24h",
         "retry": {"max_attempts": 1},
         "action": {"exec": {"argv": ["/bin/sh", "-c", script]}}}
    j.update(extra)
    return j


class Chains(E2ETestCase):
    def test_a_chain_runs_in_order_each_run_naming_the_one_before(self):
        log = os.path.join(self.tmp, "order")
        d = self.daemon({"jobs": [
            exec_job("a", "echo a >> " + log, on_success=["b"]),
            exec_job("b", "echo b >> " + log, on_success=["c"], on_failure=["never"]),
            exec_job("c", "echo c >> " + log),
            exec_job("never", "echo never >> " + log)]})
        r = d.ctl("run", "a", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        c = d.wait_runs("c", 1, timeout=20)[0]
        a = d.history("a")[0]
        b = d.history("b")[0]
        self.assertEqual(b["trigger"], "after:a:%d" % a["run_id"])
        self.assertEqual(c["trigger"], "after:b:%d" % b["run_id"])
        with open(log) as f:
            self.assertEqual(f.read().split(), ["a", "b", "c"])
        self.assertEqual(d.history("never"), [])

    def test_on_failure_runs_after_a_failure_that_is_not_retried(self):
        d = self.daemon({"jobs": [
            exec_job("flaky", "exit 3", on_success=["ok"], on_failure=["alert"]),
            exec_job("ok", "true"),
            exec_job("alert", "echo alerted")]})
        d.ctl("run", "flaky", "--wait")
        runs = d.wait_runs("alert", 1, timeout=20)
        self.assertTrue(runs[0]["trigger"].startswith("after:flaky:"), runs)
        self.assertEqual(d.history("ok"), [])

    def test_a_chained_job_waits_for_its_own_constraints(self):
        d = self.daemon({"jobs": [
            exec_job("first", "true", on_success=["needs-net"]),
            exec_job("needs-net", "true", constraints={"network": "connected"})]})
        d.ctl("device", "set", "network=none")
        d.ctl("run", "first", "--wait")
        st = d.wait_state("needs-net", "pending")
        self.assertIn("network", st["pending_reason"])
        d.ctl("device", "set", "network=unmetered")
        runs = d.wait_runs("needs-net", 1, timeout=20)
        self.assertTrue(runs[0]["trigger"].startswith("after:first:"))

    def check_config(self, jobs):
        path = os.path.join(self.tmp, "c.json")
        with open(path, "w") as f:
            json.dump({"jobs": jobs}, f)
        return subprocess.run([MCPJOBD, "--check-config", "--config", path],
                              capture_output=True, text=True, timeout=30)

    def test_a_cycle_or_an_unknown_job_in_a_chain_is_a_config_error(self):
        r = self.check_config([exec_job("a", "true", on_success=["b"]),
                               exec_job("b", "true", on_failure=["c"]),
                               exec_job("c", "true", on_success=["a"])])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("jobs[2] (c).on_success: the jobs it starts come back to it "
                      "(a -> b -> c -> a): a chain must not be a cycle", r.stderr)
        r = self.check_config([exec_job("a", "true", on_success=["nope"])])
        self.assertIn('jobs[0] (a).on_success[0]: there is no job "nope"', r.stderr)


class RunInput(E2ETestCase):
    def test_env_given_to_a_manual_run_reaches_it_and_is_recorded(self):
        d = self.daemon({"jobs": [exec_job("greet", 'echo "$GREETING, $WHO"',
                                           **{"action": {"exec": {
                                               "argv": ["/bin/sh", "-c", 'echo "$GREETING, $WHO"'],
                                               "env": {"GREETING": "hello", "WHO": "job"}}}})]})
        r = d.result("job.run", {"job": "greet", "wait": True, "env": {"WHO": "world"}})
        self.assertEqual(r["outcome"], "success", r)
        run = d.history("greet")[0]
        self.assertEqual(run["output"].strip(), "hello, world")
        self.assertEqual(run["input"], {"env": {"WHO": "world"}})
        plain = d.result("job.run", {"job": "greet", "wait": True})
        self.assertEqual(d.history("greet")[0]["output"].strip(), "hello, job")
        self.assertNotIn("input", d.history("greet")[0])
        self.assertEqual(plain["outcome"], "success")

    def test_arguments_are_merged_over_an_mcp_jobs_own(self):
        d = self.daemon({
            "mcpServers": {"srv": {"command": FAULT, "args": ["--mode", "ok"]}},
            "jobs": [{"id": "say", "interval": "24h", "initial_delay": "24h",
                      "action": {"mcp": {"server": "srv", "tool": "echo",
                                         "arguments": {"message": "from the job"}}}}]})
        r = d.result("job.run", {"job": "say", "wait": True,
                                 "arguments": {"message": "from the request"}})
        self.assertEqual(r["outcome"], "success", r)
        self.assertEqual(d.history("say")[0]["message"], "Echo: from the request")
        self.assertEqual(d.history("say")[0]["input"],
                         {"arguments": {"message": "from the request"}})

    def test_input_of_the_wrong_kind_is_refused(self):
        d = self.daemon({"jobs": [exec_job("x", "true")]})
        resp = d.rpc("job.run", {"job": "x", "arguments": {"a": 1}})
        self.assertEqual(resp["error"]["code"], -32602)
        self.assertIn('"arguments" are for mcp jobs', resp["error"]["message"])
        resp = d.rpc("job.run", {"job": "x", "env": {"BAD=NAME": "v"}})
        self.assertEqual(resp["error"]["code"], -32602)
        self.assertEqual(d.history("x"), [])
