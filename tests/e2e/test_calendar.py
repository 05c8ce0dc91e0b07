"""mcpjobctl calendar: the normalised form and next elapse times of
calendar expressions agree with systemd-analyze calendar, line for line,
in several local time zones - and it needs no daemon."""
import os
import shutil
import subprocess
import unittest

from harness import MCPJOBCTL

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

EXPRESSIONS = [
    "Sat *-*-* 01:30",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "Mon..Fri *-*-* 03:00",
    "Mon..Fri 03:00 Europe/Berlin",
    "*-*-* 02:30 Europe/Berlin",
    "*:0/20 Europe/Berlin",
    "*-*~01 18:00",
    "Mon *-05~07/1",
    "*-02-29 12:00",
    "*:2/3",
    "Wed,Sat *-1/2-1,3 *:30:45",
    "05:40:23.4200004/3.1700005",
    "daily Asia/Kolkata",
    "*-*-* 01:45 Australia/Lord_Howe",
    "weekly Pacific/Chatham",
    "2003-03-05 05:40 UTC",
    "12..14:10,20,30",
]
# Local zones to run in: plain UTC, one with DST either side, a 30-minute one.
LOCAL_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Adelaide"]
BASES = [("2026-03-28T00:00:00Z", "2026-03-28 00:00:00 UTC"),
         ("2026-10-24T12:00:00Z", "2026-10-24 12:00:00 UTC")]


def significant(out):
    """Every line but "From now" (it depends on when the test runs)."""
    return [l for l in out.splitlines() if l.strip() and not l.strip().startswith("From now:")]


class CalendarCommand(unittest.TestCase):
    def run_ctl(self, *args, tz="UTC"):
        env = dict(os.environ, TZ=tz)
        env.pop("MCPJOBD_SOCKET", None)
        return subprocess.run([MCPJOBCTL, *args], capture_output=True, text=True, env=env,
                              timeout=30)

    @unittest.skipUnless(SYSTEMD_ANALYZE, "systemd-analyze is not installed: cannot compare")
    def test_calendar_agrees_with_systemd_analyze(self):
        for tz in LOCAL_ZONES:
            for ours_base, sd_base in BASES:
                with self.subTest(tz=tz, base=ours_base):
                    sd = subprocess.run(
                        [SYSTEMD_ANALYZE, "calendar", "--iterations=5", "--base-time=" + sd_base,
                         *EXPRESSIONS], capture_output=True, text=True,
                        env={"TZ": tz, "PATH": os.environ["PATH"]}, timeout=60)
                    self.assertEqual(sd.returncode, 0, sd.stderr)
                    ours = self.run_ctl("calendar", "-n", "5", "--from", ours_base, *EXPRESSIONS,
                                        tz=tz)
                    self.assertEqual(ours.returncode, 0, ours.stderr)
                    self.assertEqual(significant(ours.stdout), significant(sd.stdout))

    def test_calendar_needs_no_daemon_and_names_the_error_column(self):
        r = self.run_ctl("--socket", "/nonexistent/sock", "calendar", "Mon..Fry 03:00")
        self.assertEqual(r.returncode, 1)
        self.assertIn('"Mon..Fry 03:00": unknown weekday "Fry" at column 6', r.stderr)
        r = self.run_ctl("calendar", "every day at 03:00")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown weekday", r.stderr)

    def test_calendar_cron_lines_with_a_time_zone(self):
        r = self.run_ctl("calendar", "--cron", "--timezone", "Europe/Berlin", "-n", "3",
                         "--from", "2026-03-27T00:00:00Z", "0 3 * * 1-5")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = significant(r.stdout)
        self.assertIn("Normalized form: Mon..Fri *-*-* 03:00:00 Europe/Berlin", lines)
        # Fri 03:00 CET, then Mon and Tue 03:00 CEST (summer time from Sun 29th).
        self.assertIn("    Next elapse: Fri 2026-03-27 02:00:00 UTC", lines)
        self.assertIn("       Iter. #2: Mon 2026-03-30 01:00:00 UTC", lines)
        self.assertIn("       Iter. #3: Tue 2026-03-31 01:00:00 UTC", lines)

    def test_calendar_json_lists_the_times(self):
        import json
        r = self.run_ctl("--json", "calendar", "-n", "2", "--from", "2026-01-01T00:00:00Z",
                         "daily UTC")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc, [{"expression": "daily UTC", "normalized": "*-*-* 00:00:00 UTC",
                                "next": ["2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]}])

    def test_calendar_refuses_a_bad_base_time(self):
        r = self.run_ctl("calendar", "--from", "yesterday", "daily")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--from wants an RFC 3339 time", r.stderr)


if __name__ == "__main__":
    unittest.main()
