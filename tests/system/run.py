#!/usr/bin/env python3
"""make check-system: boot a container with systemd as PID 1, install the
Debian package in it and run tests/system/test_system.py there.

    tests/system/run.py PATH/TO/mcpjobd_VERSION_ARCH.deb [TEST_NAME_PART]

Where the machine cannot boot a container at all (not root, no
systemd-nspawn, no overlayfs, nspawn refuses) it says so LOUDLY and exits
0: that is the machine's limit, not a failure of mcpjobd. Anything that goes
wrong after the container booted is a failure.
"""
import os
import shutil
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import container  # noqa: E402
import test_system  # noqa: E402

ORDER = ["A_Install", "B_Service", "C_Socket", "D_UserUnits", "E_Package"]


def loud_skip(why):
    bar = "!" * 78
    print("\n%s\n!!! SKIPPED: the system tests did NOT run: %s\n%s\n" % (bar, why, bar),
          file=sys.stderr)
    sys.exit(0)


def suite(only):
    loader = unittest.defaultTestLoader
    s = unittest.TestSuite()
    for name in ORDER:
        case = getattr(test_system, name)
        for t in loader.getTestCaseNames(case):
            if not only or only in name + "." + t or name == "A_Install":
                s.addTest(case(t))
    return s


def main():
    if len(sys.argv) < 2 or not sys.argv[1].endswith(".deb"):
        print(__doc__, file=sys.stderr)
        return 2
    deb = os.path.abspath(sys.argv[1])
    only = sys.argv[2] if len(sys.argv) > 2 else None
    if not os.path.isfile(deb):
        print("no package at %s (make deb builds it)" % deb, file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        loud_skip("needs root to mount an overlay and boot systemd-nspawn")
    for tool in ("systemd-nspawn", "nsenter", "pgrep"):
        if shutil.which(tool) is None:
            loud_skip("%s is not installed (package %s)" % (
                tool, "systemd-container" if tool == "systemd-nspawn" else "util-linux/procps"))
    ct = container.Container()
    t0 = time.monotonic()
    try:
        try:
            state = ct.boot()
        except container.CannotBoot as e:
            loud_skip("cannot boot a container here: %s" % e)
        print("system: container booted (%s) in %.1fs" % (state, time.monotonic() - t0))
        os.makedirs(os.path.dirname(ct.path(test_system.DEB_IN)), exist_ok=True)
        shutil.copy(deb, ct.path(test_system.DEB_IN))
        test_system.CT, test_system.DEB = ct, deb
        res = unittest.TextTestRunner(verbosity=2, failfast=False).run(suite(only))
        if not res.wasSuccessful():
            print("--- the container's journal (last lines) ---", file=sys.stderr)
            r = ct.run(["journalctl", "-b", "-n", "60", "--no-pager"], check=False)
            print(r.stdout, file=sys.stderr)
        print("system: %d run, %d failed, %d skipped in %.0fs" % (
            res.testsRun, len(res.failures) + len(res.errors), len(res.skipped),
            time.monotonic() - t0))
        return 0 if res.wasSuccessful() else 1
    finally:
        ct.stop()


if __name__ == "__main__":
    sys.exit(main())
