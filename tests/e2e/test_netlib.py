"""End-to-end: libcurl and libcrypto are loaded only when something needs
them (common/netlib.h). A daemon whose servers are all stdio ones, running
MCP and exec jobs, never maps them (/proc/PID/maps of the real daemon); an
http server in the configuration loads libcurl, a job with randomized_delay
libcrypto (not libcurl); a library that cannot be loaded is a configuration
error naming the key, the library and the Debian package to install."""
import os
import subprocess

from harness import BUILD, MCPJOBD, E2ETestCase

FAULT = os.path.join(BUILD, "tests", "servers", "mcp-fault")
NET_LIBS = ("libcurl", "libcrypto", "libssl", "libgnutls", "libnghttp2", "libssh2", "libkrb5")


def mapped(pid):
    """The basenames of the shared objects @pid has mapped."""
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) > 5}


def net_mapped(pid):
    return sorted(n for n in mapped(pid) if n.startswith(NET_LIBS))


class Netlib(E2ETestCase):
    def stdio_config(self):
        return {"mcpServers": {"good": {"command": FAULT, "args": ["--mode", "ok"]}},
                "jobs": [self.exec_job("hello", ["/bin/echo", "hello"]),
                         {"id": "call", "interval": "24h", "initial_delay": "24h",
                          "action": {"mcp": {"server": "good", "tool": "echo",
                                             "arguments": {"message": "hi"}}}}]}

    def check_config(self, cfg, env=None):
        d = self.daemon(cfg, start=False)
        r = subprocess.run([MCPJOBD, "--check-config", "--config", d.config_path],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, **(env or {})))
        return d.config_path, r

    def test_stdio_only_daemon_running_jobs_maps_no_network_library(self):
        d = self.daemon(self.stdio_config(), platform="linux")
        for job in ("hello", "call"):
            r = d.ctl("run", job, "--wait")
            self.assertEqual(r.returncode, 0, r.stderr + d.log()[-3000:])
        self.assertEqual(d.history("call")[0]["message"], "Echo: hi")
        self.assertEqual(d.history("hello")[0]["outcome"], "success")
        # The probe reads the real maps: the libraries it does link are there.
        self.assertTrue(any(n.startswith("libjansson.so") for n in mapped(d.proc.pid)))
        self.assertEqual(net_mapped(d.proc.pid), [])

    def test_http_server_in_config_loads_libcurl(self):
        cfg = dict(self.stdio_config())
        cfg["mcpServers"] = dict(cfg["mcpServers"], remote={"url": "http://127.0.0.1:9/mcp"})
        d = self.daemon(cfg)
        libs = net_mapped(d.proc.pid)
        self.assertTrue(any(n.startswith("libcurl.so") for n in libs), libs)

    def test_randomized_delay_loads_libcrypto_not_libcurl(self):
        cfg = {"jobs": [self.exec_job("spread", ["/bin/true"], randomized_delay="10m")]}
        d = self.daemon(cfg)
        libs = net_mapped(d.proc.pid)
        self.assertTrue(any(n.startswith("libcrypto.so") for n in libs), libs)
        self.assertFalse(any(n.startswith("libcurl") for n in libs), libs)

    def test_libcurl_that_cannot_be_loaded_is_a_config_error_naming_key_and_package(self):
        cfg = {"mcpServers": {"remote": {"url": "http://127.0.0.1:9/mcp"}}}
        gone = os.path.join(self.tmp, "no", "libcurl.so.4")
        path, r = self.check_config(cfg, env={"MCPJOB_LIBCURL": gone})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("%s: mcpServers.remote.url: an http server needs libcurl: cannot load "
                      "libcurl (%s: cannot open shared object file" % (path, gone), r.stderr)
        self.assertIn("install the Debian package libcurl4", r.stderr)
        # The daemon itself refuses to start with the same error, without a crash.
        d = self.daemon(cfg, start=False, env={"MCPJOB_LIBCURL": gone})
        d.start(wait=False)
        self.assertEqual(d.proc.wait(30), 1, d.log())
        self.assertIn("install the Debian package libcurl4", d.log())
        d.proc = None
        # And the real library passes.
        path, r = self.check_config(cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_libcrypto_that_cannot_be_loaded_is_a_config_error_at_randomized_delay(self):
        cfg = {"jobs": [self.exec_job("spread", ["/bin/true"], randomized_delay="10m")]}
        gone = os.path.join(self.tmp, "no", "libcrypto.so.3")
        path, r = self.check_config(cfg, env={"MCPJOB_LIBCRYPTO": gone})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("%s: jobs[0] (spread).randomized_delay: the job's fixed delay is a SHA-256 "
                      "from libcrypto: cannot load libcrypto (%s: cannot open shared object file"
                      % (path, gone), r.stderr)
        self.assertIn("install the Debian package libssl3", r.stderr)
