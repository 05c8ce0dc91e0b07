"""Run every tests/e2e/test_*.py with unittest and print 'N passed, N failed'."""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
    suite = unittest.defaultTestLoader.discover(HERE, pattern=pattern, top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Result, stream=sys.stdout)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors)
    passed = res.testsRun - failed - len(res.skipped)
    print("e2e: %d passed, %d failed, %d skipped" % (passed, failed, len(res.skipped)))
    for t, why in res.skipped:
        print("SKIPPED %s: %s" % (t.id(), why))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
