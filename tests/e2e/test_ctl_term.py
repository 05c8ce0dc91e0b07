"""mcpjobctl on a terminal, as people see it: colours for states and
outcomes (and none in pipes, with NO_COLOR or --no-color), tables fitted to
the terminal's width, time zones on absolute times, list-timers' LAST and
PASSED, glob patterns, --no-legend. The terminal is a real pty whose size
is set with TIOCSWINSZ, so mcpjobctl reads it as it would from xterm."""
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios

from harness import MCPJOBCTL, E2ETestCase

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RED_FAILURE = "\x1b[1;31mfailure\x1b[0m"
GREEN_SUCCESS = "\x1b[32msuccess\x1b[0m"


def on_pty(d, *args, cols=200, rows=50, env=None):
    """Run mcpjobctl with its stdout on a pty of cols x rows; (rc, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.pop("COLUMNS", None)
    e["TERM"] = "xterm-256color"
    e["MCPJOBD_SOCKET"] = d.socket
    if env:
        e.update(env)
    p = subprocess.Popen([MCPJOBCTL] + list(args), stdin=slave, stdout=slave,
                         stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            p.kill()
            raise AssertionError("mcpjobctl %s printed nothing for 30s" % (args,))
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the slave side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(timeout=30)
    p.stderr.close()
    # The pty's line discipline turns \n into \r\n.
    return rc, out.decode().replace("\r\n", "\n")


def plain(text):
    return ANSI.sub("", text)


class CtlTerminalTest(E2ETestCase):
    def start(self, *jobs, env=None):
        return self.daemon({"jobs": list(jobs)}, env=env)

    def jobs(self):
        return (self.exec_job("sync-data", ["sh", "-c", "echo synced 3"]),
                self.exec_job("sync-mail", ["sh", "-c", "echo boom; exit 3"]),
                self.exec_job("cleanup-cache", ["true"], enabled=False))

    def test_terminal_output_paints_states_and_outcomes(self):
        d = self.start(*self.jobs())
        d.ctl("run", "sync-data", "--wait")
        d.ctl("run", "sync-mail", "--wait")
        rc, out = on_pty(d, "list")
        self.assertEqual(rc, 0, out)
        self.assertIn(RED_FAILURE, out)
        self.assertIn(GREEN_SUCCESS, out)
        self.assertIn("\x1b[2mdisabled\x1b[0m", out)
        # Escape sequences do not count as width: columns still line up.
        lines = plain(out).splitlines()
        col = lines[0].index("RESULT")
        for row in lines[1:4]:
            self.assertIn(row[col:].split()[0], ("success", "failure", "-"), row)
        rc, out = on_pty(d, "history", "sync-mail")
        self.assertIn(RED_FAILURE, out)
        rc, out = on_pty(d, "status", "sync-mail")
        self.assertRegex(out, r"Last run: .*\): %s: boom" % re.escape(RED_FAILURE))
        rc, out = on_pty(d, "logs", "sync-mail")
        self.assertIn(RED_FAILURE, out)

    def test_no_color_and_pipes_print_no_escape_sequences(self):
        d = self.start(*self.jobs())
        d.ctl("run", "sync-mail", "--wait")
        for args, env in ((["list"], {"NO_COLOR": "1"}), (["--no-color", "list"], None),
                          (["list", "--no-color"], None), (["--json", "list"], None)):
            with self.subTest(args=args, env=env):
                rc, out = on_pty(d, *args, env=env)
                self.assertEqual(rc, 0, out)
                self.assertNotIn("\x1b", out)
                self.assertIn("failure", out)
        for verb in (["list"], ["status", "sync-mail"], ["history", "sync-mail"],
                     ["logs", "sync-mail"]):
            with self.subTest(piped=verb):
                r = d.ctl(*verb)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("failure", r.stdout)
                self.assertNotIn("\x1b", r.stdout)

    def test_list_fits_the_terminal_width_and_full_shows_all(self):
        d = self.start(self.exec_job("a-job-with-a-rather-long-identifier", ["true"]),
                       *self.jobs())
        d.ctl("run", "sync-mail", "--wait")
        rc, wide = on_pty(d, "list", cols=220)
        wide = plain(wide)
        self.assertNotIn("…", wide)
        self.assertIn("a-job-with-a-rather-long-identifier", wide)
        self.assertGreater(max(len(l) for l in wide.splitlines()), 80)
        rc, narrow = on_pty(d, "list", cols=80)
        narrow = plain(narrow)
        for line in narrow.splitlines():
            self.assertLessEqual(len(line), 80, line)
        # LAST and NEXT go first (PASSED and LEFT remain), then long ids are cut.
        self.assertEqual(narrow.splitlines()[0].split(),
                         ["ID", "STATE", "ENABLED", "LEFT", "PASSED", "RESULT"])
        self.assertIn("a-job-with-a-rath", narrow)
        self.assertNotIn("a-job-with-a-rather-long-identifier", narrow)
        self.assertRegex(narrow, r"(?m)^a-job-with-\S*…\s+scheduled")
        self.assertRegex(narrow, r"(?m)^sync-mail\s+scheduled\s+yes\s+\d+h \d+min left\s+"
                                 r"(now|\d+s ago)\s+failure$")
        # Between the two: only LAST gives way.
        rc, mid = on_pty(d, "list", cols=max(len(l) for l in wide.splitlines()) - 1)
        self.assertEqual(plain(mid).splitlines()[0].split(),
                         ["ID", "STATE", "ENABLED", "NEXT", "LEFT", "PASSED", "RESULT", "SCHEDULE"])
        rc, full = on_pty(d, "list", "-l", cols=80)
        self.assertEqual(plain(full), wide)
        rc, full = on_pty(d, "--full", "list", cols=80)
        self.assertEqual(plain(full), wide)

    def test_history_messages_use_the_whole_terminal_width(self):
        d = self.start(self.exec_job("chatty", ["sh", "-c", "echo " + "x" * 300]))
        d.ctl("run", "chatty", "--wait")
        rc, out = on_pty(d, "history", "chatty", cols=220)
        row = plain(out).splitlines()[1]
        self.assertEqual(len(row), 220, row)
        self.assertTrue(row.endswith("x…"), row)
        rc, out = on_pty(d, "history", "chatty", cols=60)
        row = plain(out).splitlines()[1]
        self.assertLessEqual(len(row), 60, row)
        # In a pipe: $COLUMNS, else 100 columns; -l never cuts.
        self.assertEqual(len(d.ctl("history", "chatty", env={"COLUMNS": "150"})
                             .stdout.splitlines()[1]), 150)
        message = d.history("chatty")[0]["message"]
        self.assertGreater(len(message), 150)
        self.assertTrue(d.ctl("history", "chatty", "-l").stdout.splitlines()[1]
                        .endswith("  " + message))

    def test_absolute_times_name_their_time_zone(self):
        d = self.start(*self.jobs())
        d.ctl("run", "sync-data", "--wait")
        for tz, name in (("UTC", "UTC"), ("Europe/Berlin", "CE[S]?T"), ("America/New_York", "E[SD]T")):
            with self.subTest(tz=tz):
                r = d.ctl("list", env={"TZ": tz})
                self.assertRegex(r.stdout, r"\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d %s  " % name)
                r = d.ctl("status", "sync-data", env={"TZ": tz})
                self.assertRegex(r.stdout, r"Next run: \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d %s "
                                           % name)
                r = d.ctl("history", "sync-data", env={"TZ": tz})
                self.assertRegex(r.stdout, r"\d\d:\d\d:\d\d %s  " % name)

    def test_list_shows_last_and_passed_as_list_timers_does(self):
        d = self.start(*self.jobs())
        d.ctl("run", "sync-data", "--wait")
        lines = d.ctl("list", env={"TZ": "UTC"}).stdout.splitlines()
        self.assertEqual(lines[0].split(),
                         ["ID", "STATE", "ENABLED", "NEXT", "LEFT", "LAST", "PASSED", "RESULT", "SCHEDULE"])
        row = next(l for l in lines if l.startswith("sync-data "))
        self.assertRegex(row, r"\d\d:\d\d:\d\d UTC\s+(23h 59min|1 day|\d+h( \d+min)?) left\s+"
                              r"\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\s+(now|\d+s ago)\s+"
                              r"success\s+every \S+$")
        never = next(l for l in lines if l.startswith("sync-mail "))
        self.assertRegex(never, r"left\s+-\s+-\s+-\s+every \S+$")

    def test_list_patterns_are_shell_globs_on_job_ids(self):
        d = self.start(*self.jobs())
        ids = lambda *p: d.ctl("list", "--names", *p).stdout.split()
        self.assertEqual(sorted(ids("sync-*")), ["sync-data", "sync-mail"])
        self.assertEqual(ids("*cache", "sync-[d]ata"), ["sync-data", "cleanup-cache"]
                         if ids()[0] == "sync-data" else ["cleanup-cache", "sync-data"])
        self.assertEqual(ids("nothing*"), [])
        r = d.ctl("list", "sync-?ail")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1], "1 job listed.")
        self.assertEqual([j["id"] for j in d.ctl_json("list", "sync-m*")["jobs"]], ["sync-mail"])

    def test_no_legend_prints_only_the_rows(self):
        d = self.start(*self.jobs())
        d.ctl("run", "sync-data", "--wait")
        d.ctl("run", "sync-data", "--wait")
        lines = d.ctl("list", "--no-legend").stdout.splitlines()
        self.assertEqual(sorted(l.split()[0] for l in lines),
                         ["cleanup-cache", "sync-data", "sync-mail"])
        # Without the header, columns are as wide as their widest cell.
        self.assertTrue(all("  " in l and not l.startswith(" ") for l in lines))
        hist = d.ctl("history", "sync-data", "--no-legend").stdout.splitlines()
        self.assertEqual(len(hist), 2)
        self.assertTrue(all(re.match(r"^\d+ ", l) for l in hist), hist)
