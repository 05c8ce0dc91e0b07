"""Durability: a kill -9 of mcpjobd loses no record, duplicates none, and a
job never overlaps itself afterwards (the dead daemon's processes are
stopped at restart), also before batched mode's journal is folded into the
store; a journal left by an earlier boot is deleted unread; a full disk neither runs jobs unrecorded nor shows a run
that succeeded as interrupted, and the daemon starts and serves on it.

Each job's processes write start/end markers (run id from the environment
marker, pid, time in ns) to a file per job; the tests check those against
the history.
"""
import datetime
import os
import subprocess
import time

from harness import E2ETestCase, wait_until

MARK_SCRIPT = r"""#!/bin/sh
# $1: marker file, $2: seconds to sleep, $3: bytes of output
# The output pipe dies with the daemon: survive it, to write the end marker.
trap '' PIPE
exec 2>/dev/null
run=${MCPJOB_STORE_RUN##*/}
started=
# Stopped before it began: "A" (a point in time), else the end of what began.
trap 'if [ "$started" ]; then echo "E $run $$ $(date +%s%N) term" >> "$1";
      else echo "A $run $$ $(date +%s%N)" >> "$1"; fi; exit 143' TERM
echo "S $run $$ $(date +%s%N)" >> "$1"
started=1
if [ "${3:-0}" -gt 0 ]; then head -c "$3" /dev/zero | tr '\0' x; echo; fi
sleep "$2" &
wait $!
echo "E $run $$ $(date +%s%N)" >> "$1"
"""


def read_marks(path):
    """{run_id: {"S": (pid, ns), "E": (pid, ns)}} and the raw lines."""
    runs = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return runs
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or parts[0] not in ("S", "E", "A"):
            continue
        m = runs.setdefault(int(parts[1]), {})
        m[parts[0]] = (int(parts[2]), int(parts[3]))
        if parts[0] == "E":
            m["natural"] = len(parts) == 4  # not ended by a SIGTERM
    return runs


def started_at(run):
    t = datetime.datetime.strptime(run["started_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class DurabilityCase(E2ETestCase):
    def script(self):
        path = os.path.join(self.tmp, "mark.sh")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(MARK_SCRIPT)
            os.chmod(path, 0o755)
        return path

    def mark_job(self, job_id, seconds, interval="1s", out_bytes=0, **extra):
        marks = os.path.join(self.tmp, job_id + ".marks")
        j = {"id": job_id, "name": job_id, "interval": interval, "initial_delay": "0s",
             "history": {"max_runs": 100000},
             "action": {"exec": {"argv": [self.script(), marks, str(seconds), str(out_bytes)]}}}
        j.update(extra)
        return j, marks

    def assert_no_overlap(self, job, marks, d=None):
        """Every run that started ended, and no two runs of @job overlap."""
        intervals = []
        def about(rid):
            if d is None:
                return ""
            return "\n" + "\n".join(l for l in d.log().splitlines()
                                     if "run %d " % rid in l or "run %d:" % rid in l
                                     or "did not stop" in l or "stopped" in l)
        for rid, m in marks.items():
            if "A" in m and "S" not in m:  # stopped before it began its work
                intervals.append((m["A"][1], m["A"][1], rid))
                continue
            self.assertIn("S", m, "run %d of %s ended without starting: %r" % (rid, job, m))
            end = m.get("E") or m.get("A")  # A: stopped between its start marker and its flag
            since = getattr(self, "restarted_at", None)
            if end is None and since is not None and m["S"][1] >= since * 1e9:
                end = (None, float("inf"))  # begun by the daemon running now: in progress
            self.assertIsNotNone(end, "run %d of %s never ended (still running?): %r%s" %
                                 (rid, job, m, about(rid)))
            intervals.append((m["S"][1], end[1], rid))
        intervals.sort()
        for a, b in zip(intervals, intervals[1:]):
            self.assertLessEqual(a[1], b[0], "%s overlaps itself: run %d (until %d) and run %d "
                                 "(from %d)" % (job, a[2], a[1], b[2], b[0]))

    def restart(self, d):
        """Stop and start @d; note when, so runs of the new daemon are told apart."""
        d.stop()
        self.restarted_at = time.time()
        d.start()

    def assert_one_record_per_run(self, d, job, marks):
        runs = d.history(job, limit=1000)
        self.assertLess(len(runs), 1000, "more runs than one page of history shows")
        ids = [r["run_id"] for r in runs]
        self.assertEqual(len(ids), len(set(ids)), "duplicate records of %s: %r" % (job, ids))
        # Runs the restarted daemon began (catch-up) may be running: not the old ones.
        since = getattr(self, "restarted_at", None)
        still = [r for r in runs if r["outcome"] == "running" and
                 (since is None or started_at(r) < since)]
        self.assertEqual(still, [], "runs of %s left running" % job)
        by_id = {r["run_id"]: r for r in runs}
        for rid in marks:
            self.assertIn(rid, by_id, "run %d of %s ran with no record (%d records)" %
                          (rid, job, len(runs)))
        return by_id

    def assert_successes_shown(self, by_id, marks):
        """A run that ended by itself (exit 0) is recorded as a success."""
        for rid, m in marks.items():
            if m.get("natural"):
                self.assertEqual(by_id[rid]["outcome"], "success",
                                 "run %d succeeded but is shown %r" % (rid, by_id[rid]))


class KillNine(DurabilityCase):
    def test_kill9_while_a_run_runs_stops_its_processes_at_restart_and_it_never_overlaps(self):
        long_job, long_marks = self.mark_job("long", 60)
        short_job, short_marks = self.mark_job("short", 0.3)
        d = self.daemon({"jobs": [long_job, short_job]})
        first = wait_until(lambda: read_marks(long_marks), timeout=20, what="the long run")
        (rid, m), = first.items()
        pid = m["S"][0]
        self.assertTrue(pid_alive(pid))
        d.kill9()
        # The daemon is gone; its run's processes are not.
        self.assertTrue(pid_alive(pid), "the run died with the daemon: nothing to test")
        d.start()
        # Stopped before the daemon served anything.
        self.assertFalse(pid_alive(pid), "the dead daemon's run %d (pid %d) still runs" % (rid, pid))
        old = [r for r in d.history("long") if r["run_id"] == rid]
        self.assertEqual(len(old), 1)
        self.assertEqual(old[0]["outcome"], "interrupted")
        self.assertEqual(old[0]["message"],
                         "mcpjobd died while this ran; its processes were stopped at restart")
        wait_until(lambda: len(read_marks(long_marks)) >= 2, timeout=20, what="a new long run")
        d.wait_runs("short", 3, timeout=30)
        self.restart(d)
        for job, path in (("long", long_marks), ("short", short_marks)):
            marks = read_marks(path)
            self.assert_no_overlap(job, marks)
        for job, path in (("long", long_marks), ("short", short_marks)):
            self.assert_one_record_per_run(d, job, read_marks(path))

    def test_kill9_while_a_group_of_records_is_committed_loses_and_duplicates_none(self):
        # 24 jobs due every second start and finish together: their records
        # share commits, and the kills land while groups are in flight.
        jobs, marks = [], {}
        for i in range(24):
            j, m = self.mark_job("g%02d" % i, 0.05)
            jobs.append(j)
            marks[j["id"]] = m
        d = self.daemon({"max_concurrent": 32, "jobs": jobs})
        for k in range(8):
            time.sleep(0.4 + (k * 0.37) % 1.1)
            d.kill9()
            d.start()
        wait_until(lambda: all(len(read_marks(m)) >= 2 for m in marks.values()), timeout=30,
                   what="every job to run")
        self.restart(d)
        all_ids = []
        for job, path in marks.items():
            m = read_marks(path)
            self.assert_no_overlap(job, m)
            by_id = self.assert_one_record_per_run(d, job, m)
            all_ids += list(by_id)
        self.assertEqual(len(all_ids), len(set(all_ids)), "run ids are not unique")


class Journal(DurabilityCase):
    """Batched mode: commits go to a journal (no device sync) and are folded
    into the store later. A kill -9 before the fold loses nothing; a journal
    of an earlier boot (power loss) is deleted unread and the store opens."""

    NO_FOLD = {"MCPJOB_STORE_FOLD_MS": "600000"}  # nothing is folded while it runs

    def test_kill9_before_the_journal_is_folded_loses_and_duplicates_none(self):
        job, marks = self.mark_job("j", 0.05)
        d = self.daemon({"jobs": [job]}, env=dict(self.NO_FOLD))
        d.wait_runs("j", 3, timeout=30)
        d.kill9()
        d.start()
        self.assertIn("taken from its journal", d.log())
        wait_until(lambda: len(read_marks(marks)) >= 5, timeout=30, what="more runs")
        self.restart(d)
        m = read_marks(marks)
        self.assert_no_overlap("j", m)
        by_id = self.assert_one_record_per_run(d, "j", m)
        self.assertGreaterEqual(len(by_id), 5)

    def test_a_journal_of_an_earlier_boot_is_deleted_unread_and_the_store_opens(self):
        job, marks = self.mark_job("p", 0.05)
        boot_a = dict(self.NO_FOLD, MCPJOB_STORE_BOOT_ID="aaaaaaaa-0000-0000-0000-000000000001")
        d = self.daemon({"jobs": [job]}, env=boot_a)
        d.wait_runs("p", 2, timeout=30)
        kept = {r["run_id"] for r in d.history("p", limit=1000)}
        self.assertGreaterEqual(len(kept), 2)
        d.stop()  # a clean stop folds everything into the store
        d.start()
        wait_until(lambda: len(read_marks(marks)) >= len(kept) + 2, timeout=30,
                   what="runs that only the journal holds")
        d.kill9()
        # The next boot: the journal may be torn, so it is never read.
        d.env = dict(self.NO_FOLD, MCPJOB_STORE_BOOT_ID="bbbbbbbb-0000-0000-0000-000000000002")
        d.start()
        self.assertIn("deleted unread", d.log())
        journals = [f for f in os.listdir(d.state) if f.startswith("journal-")]
        self.assertEqual([f for f in journals if "aaaaaaaa" in f], [])
        ids = {r["run_id"] for r in d.history("p", limit=1000)}
        self.assertTrue(kept <= ids, "runs folded before the power loss are gone")
        # It serves, and runs go on being recorded.
        self.assertIn(d.status("p")["state"], ("scheduled", "running"))
        wait_until(lambda: len({r["run_id"] for r in d.history("p", limit=1000)}) > len(ids),
                   timeout=30, what="a new run recorded")


class FullDisk(DurabilityCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        self.mnt = os.path.join(self.tmp, "small")
        os.makedirs(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.strip())
        self.filler = os.path.join(self.mnt, "filler")

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)

    def fill(self):
        """Fill the tmpfs to the last byte."""
        try:
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            return  # already full
        try:
            for chunk in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def free(self):
        os.unlink(self.filler)

    def test_full_disk_never_runs_unrecorded_never_mislabels_and_recovers(self):
        job, marks_path = self.mark_job("busy", 0.1, out_bytes=8000)
        d = self.daemon({"jobs": [job]}, start=False)
        d.state = os.path.join(self.mnt, "state")
        d.start()
        d.wait_runs("busy", 2, timeout=20)
        self.fill()

        def waiting():
            s = d.status("busy")
            r = s.get("pending_reason") or ""
            return s["state"] == "backoff" and "could not be recorded" in r and s

        s = wait_until(waiting, timeout=30, what="the job to wait for the store")
        self.assertIn(d.state, s["pending_reason"])
        self.assertIn("free space", s["pending_reason"])
        # While full: reads are served; no run starts unrecorded.
        before = set(read_marks(marks_path))
        time.sleep(3)
        self.assertEqual(set(read_marks(marks_path)), before, "runs started on a full disk")
        by_id = {r["run_id"]: r for r in d.history("busy", limit=1000)}
        for rid in read_marks(marks_path):
            self.assertIn(rid, by_id, "run %d has no record" % rid)
        self.assert_successes_shown(by_id, read_marks(marks_path))
        # Space comes back: it runs again, and every run has exactly one true record.
        self.free()
        n = len(read_marks(marks_path))
        wait_until(lambda: len(read_marks(marks_path)) >= n + 3, timeout=30,
                   what="runs once there is space")
        self.restart(d)
        marks = read_marks(marks_path)
        self.assert_no_overlap("busy", marks)
        by_id = self.assert_one_record_per_run(d, "busy", marks)
        self.assert_successes_shown(by_id, marks)
        # Full again, and restarted on the full disk: it starts and serves reads.
        self.fill()
        wait_until(waiting, timeout=30, what="the job to wait for the store again")
        d.stop()
        d.start()
        self.assertIn(d.status("busy")["state"], ("backoff", "scheduled", "pending", "running"))
        self.assertGreater(len(d.history("busy")), 0)
        d.stop()
        self.free()
