"""Schedules people think in, through the real daemon: calendar events,
cron lines, time zones, fixed random delays and one-off jobs."""
import datetime
import json
import os
import subprocess
import time

from harness import MCPJOBD, E2ETestCase, wait_until


def exec_job(job_id, out, **timing):
    job = {"id": job_id,
           "action": {"exec": {"argv": ["/bin/sh", "-c", "date +%s.%N >> " + out]}}}
    job.update(timing)
    return job


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace(
        "+00:00", "Z")


class CalendarJobs(E2ETestCase):
    def test_calendar_job_is_due_on_its_calendar_and_runs_there(self):
        out = os.path.join(self.tmp, "runs")
        d = self.daemon({"jobs": [exec_job("tick", out, schedule="*:*:0/2")]})
        st = d.status("tick")
        self.assertEqual(st["schedule"], "*-*-* *:*:00/2")
        self.assertIsNone(st["interval"])
        due = parse_time(st["next_run"])
        self.assertEqual(due % 2, 0, "due at an even second, on the calendar: %s" % st["next_run"])
        runs = d.wait_runs("tick", 2, timeout=20)
        for r in runs:
            self.assertEqual(r["trigger"], "schedule")
            self.assertEqual(r["outcome"], "success")
        # Each run started at (or just after) an even second.
        starts = sorted(parse_time(r["started_at"]) for r in runs)
        for s in starts:
            self.assertEqual(int(s) % 2, 0, "run started off the calendar at %s" % rfc3339(s))

    def test_cron_line_in_a_time_zone_is_due_at_its_wall_time(self):
        d = self.daemon({"jobs": [exec_job("report", "/dev/null", cron="30 3 * * *",
                                           timezone="Asia/Kolkata")]})
        st = d.status("report")
        self.assertEqual(st["schedule"], "*-*-* 03:30:00 Asia/Kolkata")
        self.assertEqual(st["timezone"], "Asia/Kolkata")
        due = datetime.datetime.fromisoformat(st["next_run"].replace("Z", "+00:00"))
        # 03:30 IST is 22:00 UTC.
        self.assertEqual((due.hour, due.minute, due.second), (22, 0, 0))
        self.assertLess(due.timestamp() - time.time(), 86400 + 1)
        r = d.ctl("status", "report")
        self.assertIn("*-*-* 03:30:00 Asia/Kolkata", r.stdout)
        # list shows it too, as its last column (a pipe: nothing is cut).
        row = d.ctl("list").stdout.splitlines()[1]
        self.assertTrue(row.startswith("report "), row)
        self.assertTrue(row.endswith("  *-*-* 03:30:00 Asia/Kolkata"), row)

    def test_randomized_delay_is_fixed_per_job_across_restarts(self):
        jobs = [exec_job("a", "/dev/null", schedule="daily UTC", randomized_delay="6h"),
                exec_job("b", "/dev/null", schedule="daily UTC", randomized_delay="6h")]
        d = self.daemon({"jobs": jobs})
        a1, b1 = d.status("a")["next_run"], d.status("b")["next_run"]
        now = time.time()
        for v in (a1, b1):
            # Each from its own day's midnight: early in a UTC day one job's
            # slot may have passed (due tomorrow) while the other's is ahead.
            t = parse_time(v)
            off = t - t // 86400 * 86400
            self.assertTrue(0 <= off < 6 * 3600, "offset %s outside [0, 6h)" % off)
            self.assertTrue(now - 1 < t < now + 86400 + 6 * 3600, "%s is not the next run" % v)
        self.assertNotEqual(a1, b1, "two jobs, one machine: their delays differ")
        d.restart()
        self.assertEqual(d.status("a")["next_run"], a1)
        self.assertEqual(d.status("b")["next_run"], b1)

    def test_missed_calendar_runs_are_caught_up_once(self):
        out = os.path.join(self.tmp, "runs")
        d = self.daemon({"catchup_spread": "1s",
                         "jobs": [exec_job("t", out, schedule="*:*:0/10")]})
        d.wait_runs("t", 1, timeout=30)  # its due time is on record from here on
        d.stop()
        stopped = time.time()
        # Down across at least two due times of the calendar.
        time.sleep(21)
        d.start()
        started = time.time()
        wait_until(lambda: [r for r in d.history("t")
                                   if parse_time(r["started_at"]) >= stopped] or None,
                          timeout=20, what="a run after the restart")
        # Everything that started after the stop: one catch-up, then the calendar.
        after = sorted((r for r in d.history("t") if parse_time(r["started_at"]) >= stopped),
                       key=lambda r: r["run_id"])
        self.assertEqual(after[0]["trigger"], "catch-up", after)
        self.assertLess(parse_time(after[0]["started_at"]) - started, 5)
        self.assertEqual([r["trigger"] for r in after[1:]], ["schedule"] * (len(after) - 1))
        self.assertEqual(parse_time(d.status("t")["next_run"]) % 10, 0)

    def test_bad_schedules_are_config_errors_with_key_paths(self):
        cfg = {"jobs": [
            exec_job("a", "/dev/null", schedule="Mon..Fry 03:00"),
            exec_job("b", "/dev/null", cron="0 3 * * Fry"),
            exec_job("c", "/dev/null", schedule="daily", timezone="Europe/Berln"),
            exec_job("d", "/dev/null", interval="1h", schedule="daily"),
            exec_job("e", "/dev/null", at="tomorrow"),
            exec_job("f", "/dev/null", interval="1h", timezone="UTC"),
        ]}
        path = os.path.join(self.tmp, "bad.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([MCPJOBD, "--check-config", "--config", path], capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr
        self.assertIn('jobs[0] (a).schedule: "Mon..Fry 03:00": unknown weekday "Fry" at column 6',
                      err)
        self.assertIn('jobs[1] (b).cron: "0 3 * * Fry": unknown name "Fry" in the day of week '
                      'field at column 9', err)
        self.assertIn('jobs[2] (c).timezone: unknown time zone "Europe/Berln"', err)
        self.assertIn('jobs[3] (d): has more than one of "interval", "schedule"', err)
        self.assertIn('jobs[4] (e).at: "tomorrow" is not a time', err)
        self.assertIn('jobs[5] (f).timezone: applies to "schedule" and "cron" only', err)


class OneOffJobs(E2ETestCase):
    def test_at_job_runs_once_then_is_done_across_restarts(self):
        out = os.path.join(self.tmp, "runs")
        when = rfc3339(time.time() + 2)
        d = self.daemon({"jobs": [exec_job("once", out, at=when)]})
        self.assertEqual(d.status("once")["state"], "scheduled")
        d.wait_runs("once", 1, timeout=20)
        st = d.wait_state("once", "done")
        self.assertIsNone(st["next_run"])
        self.assertTrue(st["schedule"].startswith("once at "))
        d.restart()
        self.assertEqual(d.status("once")["state"], "done")
        time.sleep(1)
        self.assertEqual(len(d.history("once")), 1)
        with open(out) as f:
            self.assertEqual(len(f.read().splitlines()), 1)

    def test_at_job_missed_while_down_runs_at_start_unless_expired(self):
        past = rfc3339(time.time() - 3600)
        d = self.daemon({"catchup_spread": "1s", "jobs": [
            exec_job("late", os.path.join(self.tmp, "late"), at=past),
            exec_job("stale", os.path.join(self.tmp, "stale"), at=past, expire_after="10m")]})
        runs = d.wait_runs("late", 1, timeout=20)
        self.assertEqual(runs[0]["trigger"], "catch-up")
        self.assertEqual(d.status("stale")["state"], "done")
        self.assertEqual(d.history("stale"), [])
        self.assertIn("stale: its one-off time passed", d.log())

    def test_reboot_cron_runs_once_per_start(self):
        out = os.path.join(self.tmp, "runs")
        d = self.daemon({"jobs": [exec_job("boot", out, cron="@reboot")]})
        d.wait_runs("boot", 1, timeout=20)
        self.assertIsNone(d.wait_state("boot", "scheduled")["next_run"])
        d.restart()
        d.wait_runs("boot", 2, timeout=20)
