"""make install / uninstall into a DESTDIR, and what is installed: the file
list, the systemd units (systemd-analyze security and verify) and the man
pages (mandoc -Tlint, man -l).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
MANDOC = shutil.which("mandoc")
MAN = shutil.which("man")
MAKE = shutil.which("make")
UNITDIR = "/usr/lib/systemd/system"
USERUNITDIR = "/usr/lib/systemd/user"
# The offline analysis scores a user unit as if it ran as root with every
# capability: the options that brought the user unit to 3.0
# (CapabilityBoundingSet=, PrivateDevices=) cannot work in a user manager
# (status=218/CAPABILITIES; tests/system/ starts the unit under a real
# "systemctl --user"), and its processes hold no capabilities anyway.
SECURITY_LIMITS = {UNITDIR: 4.0, USERUNITDIR: 4.5}


def man_pages():
    return sorted(glob.glob(os.path.join(ROOT, "man", "*.[0-9]")))


def expected_files():
    files = [
        "etc/mcpjobd/jobs.d/",
        "etc/mcpjobd/mcpjobd.json",
        "usr/bin/mcpjobctl",
        "usr/lib/systemd/system/mcpjobd.service",
        "usr/lib/systemd/system/mcpjobd.socket",
        "usr/lib/systemd/user/mcpjobd.service",
        "usr/lib/systemd/user/mcpjobd.socket",
        "usr/lib/sysusers.d/mcpjobd.conf",
        "usr/libexec/mcpjobd/mcpjob-demo-server",
        "usr/sbin/mcpjobd",
        "usr/share/doc/mcpjobd/examples/client.py",
        "usr/share/doc/mcpjobd/examples/register.py",
        "usr/share/doc/mcpjobd/examples/mcpjobd.json",
        # the embedding library (make install-lib, part of install)
        "usr/include/mcpjob.h",
        "usr/lib/libmcpjob.a",
        "usr/lib/libmcpjob.so",
        "usr/lib/libmcpjob.so.0",
        "usr/lib/libmcpjob.so.0.1.0",
        "usr/lib/pkgconfig/mcpjob.pc",
    ]
    for page in man_pages():
        name = os.path.basename(page)
        files.append("usr/share/man/man%s/%s" % (name.rsplit(".", 1)[1], name))
    # Written on another branch; installed when present.
    if os.path.exists(os.path.join(ROOT, "ctl", "mcpjobctl.bash-completion")):
        files.append("usr/share/bash-completion/completions/mcpjobctl")
    return sorted(files)


def tree(root):
    """Files, and empty directories with a trailing slash, relative to root."""
    out = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        out += [os.path.normpath(os.path.join(rel, f)) for f in files]
        if not dirs and not files and d != root:
            out.append(rel + "/")
    return sorted(out)


def make(*args, timeout=600):
    extra = ["SANITIZE=1"] if os.path.basename(BUILD) == "build-san" else []
    return subprocess.run([MAKE, "-s", "-C", ROOT] + extra + list(args),
                          capture_output=True, text=True, timeout=timeout)


@unittest.skipIf(MAKE is None, "make is not installed")
class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="mcpjob-install-")
        cls.vars = ["DESTDIR=" + cls.dest, "PREFIX=/usr", "systemdsystemunitdir=" + UNITDIR,
                    "systemduserunitdir=" + USERUNITDIR, "sysusersdir=/usr/lib/sysusers.d"]
        r = make("install", *cls.vars)
        if r.returncode != 0:
            raise AssertionError("make install failed:\n" + r.stdout + r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def path(self, rel):
        return os.path.join(self.dest, rel)

    def test_installs_exactly_the_expected_files(self):
        self.assertEqual(tree(self.dest), expected_files())

    def test_units_name_the_installed_binary(self):
        for d in (UNITDIR, USERUNITDIR):
            with open(self.path(d.lstrip("/") + "/mcpjobd.service")) as f:
                text = f.read()
            self.assertNotRegex(text, r"@[a-z]+dir@")
            execs = re.findall(r"^ExecStart=(\S+)", text, flags=re.M)
            self.assertEqual(execs, ["/usr/sbin/mcpjobd"])
        self.assertTrue(os.access(self.path("usr/sbin/mcpjobd"), os.X_OK))

    def test_installed_config_has_no_jobs_and_is_valid(self):
        # A fresh system has no demo server data dir nor /var/cache/example:
        # the configuration that starts with the unit must not need them.
        cfg = self.path("etc/mcpjobd/mcpjobd.json")
        with open(cfg) as f:
            conf = json.load(f)
        self.assertEqual(conf.get("jobs"), [])
        self.assertFalse(conf.get("mcpServers"))
        r = subprocess.run([self.path("usr/sbin/mcpjobd"), "--check-config", "--config", cfg],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_doc_example_config_is_valid_and_names_the_installed_server(self):
        cfg = self.path("usr/share/doc/mcpjobd/examples/mcpjobd.json")
        with open(cfg) as f:
            text = f.read()
        self.assertIn('"/usr/libexec/mcpjobd/mcpjob-demo-server"', text)
        self.assertGreater(len(json.loads(text)["jobs"]), 0)
        # the demo server the example names must exist: check it where installed
        text = text.replace('"/usr/libexec/', '"%s/usr/libexec/' % self.dest)
        local = os.path.join(self.dest, "example.json")
        with open(local, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, local)
        # --user: checked as whoever runs the test (nobody cannot enter the temp dir)
        r = subprocess.run([self.path("usr/sbin/mcpjobd"), "--user", "--check-config",
                            "--config", local],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_reinstall_keeps_an_edited_configuration(self):
        cfg = self.path("etc/mcpjobd/mcpjobd.json")
        with open(cfg, "w") as f:
            f.write('{"jobs": []}\n')
        r = make("install", *self.vars)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(cfg) as f:
            self.assertEqual(f.read(), '{"jobs": []}\n')

    def test_uninstall_removes_everything_but_the_configuration(self):
        dest = tempfile.mkdtemp(prefix="mcpjob-uninstall-")
        self.addCleanup(shutil.rmtree, dest, True)
        vars_ = ["DESTDIR=" + dest] + self.vars[1:]
        self.assertEqual(make("install", *vars_).returncode, 0)
        r = make("uninstall", *vars_)
        self.assertEqual(r.returncode, 0, r.stderr)
        left = [f for f in tree(dest) if not f.endswith("/")]
        self.assertEqual(left, ["etc/mcpjobd/mcpjobd.json"])

    def test_build_honours_packager_flags_and_werror_is_only_a_default(self):
        # make -n into a scratch build dir: every compile line gets CPPFLAGS,
        # every link line LDFLAGS; -Werror unless WERROR=0.
        scratch = tempfile.mkdtemp(prefix="mcpjob-flags-")
        self.addCleanup(shutil.rmtree, scratch, True)
        targets = [scratch + "/mcpjobd", scratch + "/mcpjobctl", scratch + "/mcpjob-demo-server",
                   scratch + "/tests/test_duration"]
        def dry(*extra):
            r = subprocess.run([MAKE, "-n", "-C", ROOT, "B=" + scratch] + list(extra) + targets,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [l for l in r.stdout.splitlines() if " -o " + scratch in l]
            compiles = [l for l in lines if " -c " in l]
            links = [l for l in lines if " -c " not in l]
            self.assertGreater(len(compiles), 10)
            self.assertEqual(len(links), len(targets), links)
            return compiles, links
        compiles, links = dry("WERROR=0", "CPPFLAGS=-DPKG_TEST_CPP", "CFLAGS=-O1 -DPKG_TEST_C",
                              "LDFLAGS=-Wl,-z,now")
        for l in compiles:
            self.assertIn("-DPKG_TEST_CPP", l)
            self.assertIn("-DPKG_TEST_C", l)
            self.assertIn("-I.", l)  # the project's own CPPFLAGS stay
            self.assertNotIn("-Werror", l)
        for l in links:
            self.assertIn("-Wl,-z,now", l)
        compiles, _ = dry()
        for l in compiles:
            self.assertIn("-Werror", l)

    def test_user_unit_has_no_option_a_user_manager_cannot_apply(self):
        # Each made every start fail with 218/CAPABILITIES under a real user
        # manager: shrinking the bounding set needs CAP_SETPCAP.
        with open(self.path(USERUNITDIR.lstrip("/") + "/mcpjobd.service")) as f:
            options = re.findall(r"^(\w+)=", f.read(), flags=re.M)
        for bad in ("CapabilityBoundingSet", "PrivateDevices", "User", "DynamicUser"):
            self.assertNotIn(bad, options)

    @unittest.skipIf(SYSTEMD_ANALYZE is None, "systemd-analyze is not installed (package systemd)")
    def test_security_exposure_within_limits(self):
        for d, limit in SECURITY_LIMITS.items():
            unit = self.path(d.lstrip("/") + "/mcpjobd.service")
            env = dict(os.environ, XDG_RUNTIME_DIR=tempfile.mkdtemp(dir=self.dest))
            args = [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager"]
            if d == USERUNITDIR:
                args.append("--user")
            r = subprocess.run(args + [unit], capture_output=True, text=True, timeout=60, env=env)
            m = re.search(r"Overall exposure level for mcpjobd\.service: ([0-9.]+)", r.stdout)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            self.assertLessEqual(float(m.group(1)), limit, "%s:\n%s" % (unit, r.stdout))

    @unittest.skipIf(SYSTEMD_ANALYZE is None, "systemd-analyze is not installed (package systemd)")
    def test_units_verify_clean(self):
        # verify wants ExecStart= to exist: point the copies at the DESTDIR binary.
        documented = {"mcpjobd.8", "mcpjobd.json.5", "mcpjobd-protocol.7"}
        missing = documented - {os.path.basename(p) for p in man_pages()}
        man_args = ["--man=no"] if missing else []
        if missing:
            print("\nNOTE: checking units without their man pages: %s not in man/ yet"
                  % ", ".join(sorted(missing)))
        for d, user in ((UNITDIR, False), (USERUNITDIR, True)):
            work = tempfile.mkdtemp(dir=self.dest)
            units = []
            for name in ("mcpjobd.service", "mcpjobd.socket"):
                with open(self.path(d.lstrip("/") + "/" + name)) as f:
                    text = f.read().replace("ExecStart=/usr/sbin/",
                                            "ExecStart=%s/usr/sbin/" % self.dest)
                units.append(os.path.join(work, name))
                with open(units[-1], "w") as f:
                    f.write(text)
            env = dict(os.environ, MANPATH=self.path("usr/share/man"),
                       XDG_RUNTIME_DIR=tempfile.mkdtemp(dir=self.dest))
            args = [SYSTEMD_ANALYZE, "verify"] + man_args + (["--user"] if user else [])
            r = subprocess.run(args + units, capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stderr.strip(), "", r.stderr)

    @unittest.skipIf(MANDOC is None, "mandoc is not installed (package mandoc)")
    def test_man_pages_lint_clean(self):
        pages = glob.glob(self.path("usr/share/man/man*/*"))
        self.assertGreaterEqual(len(pages), 2)
        for page in pages:
            r = subprocess.run([MANDOC, "-Tlint", "-W", "warning", page],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @unittest.skipIf(MAN is None, "man is not installed (package man-db)")
    def test_man_pages_render(self):
        for page in glob.glob(self.path("usr/share/man/man*/*")):
            env = dict(os.environ, MANWIDTH="80")
            r = subprocess.run([MAN, "-l", page], capture_output=True, text=True, timeout=30,
                               env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", "%s: %s" % (page, r.stderr))
            text = re.sub(".\b", "", r.stdout)  # overstrike bold and underline
            self.assertIn("NAME", text)
            self.assertIn("SEE ALSO", text)


if __name__ == "__main__":
    unittest.main()
