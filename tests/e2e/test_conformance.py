"""The official MCP conformance suite (@modelcontextprotocol/conformance,
installed with its Node 22 by tests/bootstrap.sh into build/npm-conformance)
against build/tests/mcpjob-conformance-client, which is the engine's own MCP
client. Every non-auth client scenario must pass; one that fails fails
make check."""
import os
import subprocess
import unittest

from harness import BUILD, ROOT, E2ETestCase

NPM_BIN = os.path.join(ROOT, "build", "npm-conformance", "node_modules", ".bin")
CONFORMANCE = os.path.join(NPM_BIN, "conformance")
CLIENT = os.path.join(BUILD, "tests", "mcpjob-conformance-client")
SCENARIOS = ["initialize", "tools_call", "sse-retry", "elicitation-sep1034-client-defaults"]


class Conformance(E2ETestCase):
    def setUp(self):
        super().setUp()
        if not os.access(CONFORMANCE, os.X_OK) or not os.access(os.path.join(NPM_BIN, "node"),
                                                                 os.X_OK):
            self.skipTest("SKIPPED: the MCP conformance suite is not installed: run "
                          "tests/bootstrap.sh")

    def scenario(self, name):
        env = dict(os.environ, PATH=NPM_BIN + os.pathsep + os.environ.get("PATH", ""))
        r = subprocess.run([CONFORMANCE, "client", "--command", CLIENT, "--scenario", name,
                            "--timeout", "60000", "-o", os.path.join(self.tmp, "results")],
                           capture_output=True, text=True, env=env, timeout=180)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out[-4000:])
        self.assertIn("OVERALL: PASSED", out, out[-4000:])
        self.assertNotIn("WARNING", out.split("Test Results:")[-1], out[-4000:])

    def test_initialize(self):
        self.scenario("initialize")

    def test_tools_call(self):
        self.scenario("tools_call")

    def test_sse_retry(self):
        self.scenario("sse-retry")

    def test_elicitation_sep1034_client_defaults(self):
        self.scenario("elicitation-sep1034-client-defaults")


if __name__ == "__main__":
    unittest.main()
