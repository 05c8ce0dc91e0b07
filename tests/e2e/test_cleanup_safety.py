"""Cleanup paths a hostile user could redirect: a path through a directory
someone else may write (who could swap the next component for a symlink),
or through a symlink, is refused by --check-config and at run time, and
nothing outside is deleted. A tree deeper than the walk's limit says so."""
import os
import pwd
import subprocess
import time
import unittest

from harness import MCPJOBD, E2ETestCase

OLD = time.time() - 30 * 86400


def old_file(path):
    with open(path, "wb") as f:
        f.write(b"precious")
    os.utime(path, (OLD, OLD))


def cleanup_job(path):
    return {"id": "clean", "interval": "24h", "initial_delay": "24h",
            "action": {"cleanup": {"path": path, "max_age": "7d"}}}


@unittest.skipUnless(os.geteuid() == 0, "needs root: a directory owned by nobody")
class CleanupSafety(E2ETestCase):
    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.nobody = pwd.getpwnam("nobody").pw_uid
        # /tmp/x/victim: root's files; /tmp/x/home: nobody's directory
        self.victim = os.path.join(self.tmp, "victim")
        os.makedirs(self.victim)
        for i in range(3):
            old_file(os.path.join(self.victim, "root-file-%d" % i))
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        os.chown(self.home, self.nobody, self.nobody)
        self.cache = os.path.join(self.home, "cache")

    def check_config(self, d):
        return subprocess.run([MCPJOBD, "--check-config", "--config", d.config_path],
                              capture_output=True, text=True, timeout=30)

    def assert_victim_intact(self):
        self.assertEqual(sorted(os.listdir(self.victim)),
                         ["root-file-0", "root-file-1", "root-file-2"])

    def test_path_through_a_directory_another_user_owns_is_refused(self):
        os.makedirs(self.cache)
        old_file(os.path.join(self.cache, "stale"))
        d = self.daemon({"jobs": [cleanup_job(self.cache)]}, start=False)
        r = self.check_config(d)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("%s belongs to nobody" % self.home, r.stderr)
        self.assertIn("unsafe path transition", r.stderr)
        d.start()
        # What nobody could do between the check and the walk: swap the path.
        os.rename(self.cache, self.cache + ".old")
        os.symlink(self.victim, self.cache)
        os.lchown(self.cache, self.nobody, self.nobody)
        r = d.ctl("run", "clean", "--wait")
        self.assertEqual(r.returncode, 1, r.stdout)
        run = d.history("clean")[0]
        self.assertEqual(run["outcome"], "failure")
        self.assertIn("refused", run["message"])
        self.assertIn(self.home, run["message"])
        self.assert_victim_intact()

    def test_path_through_a_symlink_is_refused_naming_the_real_directory(self):
        link = os.path.join(self.tmp, "link")
        os.symlink(self.victim, link)
        d = self.daemon({"jobs": [cleanup_job(link)]}, start=False)
        r = self.check_config(d)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("%s is a symlink" % link, r.stderr)
        self.assertIn(self.victim, r.stderr)
        d.start()
        r = d.ctl("run", "clean", "--wait")
        self.assertEqual(r.returncode, 1)
        self.assertIn("is a symlink", d.history("clean")[0]["message"])
        self.assert_victim_intact()

    def test_safe_path_under_sticky_tmp_still_cleans(self):
        safe = os.path.join(self.tmp, "safe")
        os.makedirs(safe)
        old_file(os.path.join(safe, "stale"))
        d = self.daemon({"jobs": [cleanup_job(safe)]}, start=False)
        r = self.check_config(d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        d.start()
        r = d.ctl("run", "clean", "--wait")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(os.listdir(safe), [])

    def test_tree_deeper_than_the_limit_says_so(self):
        deep = os.path.join(self.tmp, "deep")
        os.makedirs(deep)
        fd = os.open(deep, os.O_RDONLY)
        try:
            for _ in range(140):  # the walk stops at 128 levels
                os.mkdir("d", dir_fd=fd)
                nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = nfd
        finally:
            os.close(fd)
        d = self.daemon({"jobs": [cleanup_job(deep)]})
        d.ctl("run", "clean", "--wait")
        msg = d.history("clean")[0]["message"]
        self.assertIn("deeper than 128 levels", msg)
        self.assertNotIn("Too many levels of symbolic links", msg)
