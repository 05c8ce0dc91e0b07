"""Chaos: 100 kill -9s of mcpjobd at random moments while exec and MCP jobs
run (fast intervals, manual runs, long and short runs). After every kill the
store opens and the dead daemon's processes (job runs and MCP servers) are
gone before the new daemon serves; at the end every run has exactly one
record, none stays running, run ids are unique and no job overlapped itself
(checked from the start/end markers its processes wrote).

Bounded: about a minute on a 2-core machine. MCPJOB_CHAOS_SEED replays a run.
"""
import os
import random
import time

from harness import BUILD, RpcClient, wait_until
from test_durability import DurabilityCase, pid_alive, read_marks, started_at

FAULT = os.path.join(BUILD, "tests", "servers", "mcp-fault")
KILLS = int(os.environ.get("MCPJOB_CHAOS_KILLS", "100"))


class Chaos(DurabilityCase):
    def test_hundred_kill9s_lose_nothing_duplicate_nothing_and_never_overlap(self):
        seed = int(os.environ.get("MCPJOB_CHAOS_SEED", str(int(time.time()))))
        rnd = random.Random(seed)
        pidfile = os.path.join(self.tmp, "server.pids")
        exec_jobs = {}
        for job_id, seconds, interval in (("short", 0.05, "1s"), ("medium", 0.4, "1s"),
                                          ("long", 5, "1s")):
            j, marks = self.mark_job(job_id, seconds, interval=interval)
            exec_jobs[job_id] = (j, marks)
        manual, manual_marks = self.mark_job("manual", 0.2, interval="24h", initial_delay="24h")
        exec_jobs["manual"] = (manual, manual_marks)
        mcp_jobs = [
            {"id": "mcp-echo", "name": "mcp-echo", "interval": "1s", "initial_delay": "0s",
             "history": {"max_runs": 100000},
             "action": {"mcp": {"server": "fault", "tool": "echo",
                                "arguments": {"message": "chaos"}}}},
            {"id": "mcp-slow", "name": "mcp-slow", "interval": "1s", "initial_delay": "0s",
             "history": {"max_runs": 100000},
             "action": {"mcp": {"server": "fault", "tool": "slow",
                                "arguments": {"seconds": 1, "steps": 2}}}},
        ]
        cfg = {"max_concurrent": 16,
               "mcpServers": {"fault": {"command": FAULT,
                                        "args": ["--mode", "ok", "--pidfile", pidfile]}},
               "jobs": [j for j, _ in exec_jobs.values()] + mcp_jobs}
        d = self.daemon(cfg)
        deadline = time.monotonic() + 150
        for k in range(KILLS):
            self.assertLess(time.monotonic(), deadline, "chaos run over its time bound "
                            "(seed %d, %d kills)" % (seed, k))
            if rnd.random() < 0.3:
                try:  # a manual run, not waited for
                    c = RpcClient(d.socket, timeout=2)
                    c.call("job.run", {"job": "manual"})
                    c.close()
                except (OSError, EOFError):
                    pass
            time.sleep(rnd.uniform(0, 0.5))
            d.kill9()
            try:
                d.start()  # the store opens, or this fails
            except AssertionError as e:
                raise AssertionError("restart %d failed (seed %d); store.lock held by %r\n%s" %
                                     (k, seed, self.lock_holders(d), e))
            # The dead daemon's MCP servers are gone before the new one serves.
            try:
                with open(pidfile) as f:
                    pids = [int(x) for x in f.read().split()]
            except FileNotFoundError:
                pids = []
            survivors = [p for p in pids if pid_alive(p) and self.server_of(d, p) is None]
            self.assertEqual(survivors, [], "MCP servers of a dead daemon still run "
                             "(seed %d, kill %d)" % (seed, k))
        wait_until(lambda: len(read_marks(exec_jobs["short"][1])) > 0, timeout=20,
                   what="a short run")
        self.restart(d)
        all_ids = []
        for job_id, (_, marks_path) in exec_jobs.items():
            marks = read_marks(marks_path)
            self.assert_no_overlap(job_id, marks, d)
            all_ids += list(self.assert_one_record_per_run(d, job_id, marks))
        for j in mcp_jobs:
            runs = d.history(j["id"], limit=1000)
            self.assertEqual([r for r in runs if r["outcome"] == "running" and
                              started_at(r) < self.restarted_at], [])
            all_ids += [r["run_id"] for r in runs]
        self.assertEqual(len(all_ids), len(set(all_ids)), "run ids not unique (seed %d)" % seed)
        self.assertGreater(len(all_ids), KILLS // 2, "too few runs to prove anything")

    @staticmethod
    def lock_holders(d):
        lock = os.path.join(d.state, "store.lock")
        found = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                for fd in os.listdir("/proc/%s/fd" % p):
                    if os.readlink("/proc/%s/fd/%s" % (p, fd)) == lock:
                        info = {}
                        for name in ("cmdline", "stat", "wchan", "stack"):
                            try:
                                with open("/proc/%s/%s" % (p, name)) as f:
                                    info[name] = f.read().replace("\0", " ")[:400]
                            except OSError:
                                pass
                        info["threads"] = len(os.listdir("/proc/%s/task" % p))
                        found.append((int(p), info))
            except OSError:
                pass
        return found

    @staticmethod
    def server_of(d, pid):
        """The pid's parent if it is the running daemon (a live server of it), else None."""
        try:
            with open("/proc/%d/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return ppid if d.proc is not None and ppid == d.proc.pid else None
