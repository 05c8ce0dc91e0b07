"""Library hygiene, checked on the built tree: libmcpjob.a is linked into
apps, so every global symbol carries its module's prefix, and the layers
stay in order (nothing in the library's platform/ includes daemon/).

A module's prefix comes from its file name: daemon/store.c exports store_*,
platform/linux/net.c linux_net_* (or net_*), platform/linux/linux.c
linux_* or platform_linux_*. A few modules have an established shorter
prefix (ALIASES). PENDING lists modules whose owners rename their symbols
on other branches; an entry that is no longer needed fails the test, so the
list only shrinks.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT

NM = shutil.which("nm")

# Established prefixes that are not the file name (see CONVENTIONS.md).
ALIASES = {
    "xmalloc": ["x"],           # tmux's xmalloc, xstrdup, xasprintf
    "timeutil": ["time_"],
    "jsonrpc": ["rpc_"],
    "embed": ["mcpjob_"],       # the embedding API apps link: mcpjob.h
    "schedule": ["sched_"],
    # It stands in for libcurl and libcrypto, which it loads on demand: their
    # own names, forwarding to them (common/netlib.h).
    "netlib": ["curl_", "BIO_", "BN_", "CRYPTO_", "ECDSA_", "EVP_", "OPENSSL_", "PEM_",
               "RAND_", "SHA256", "d2i_"],
    # It stands in for libsystemd, which it loads on demand (common/sdlib.h).
    "sdlib": ["sd_"],
}

# Module -> why its names may still be unprefixed in this tree.
PENDING = {
    "mcp_proto": "http: mcp_call_result_clear, mcp_protocol_versions",
}

# The library's sources, as the Makefile collects them (COMMON, ENGINE, PLATFORM).
LIB_GLOBS = ["common/*.c", "daemon/*.c", "daemon/*/*.c", "platform/*.c", "platform/linux/*.c",
             "platform/sim/*.c"]


def lib_sources():
    """Object basename -> source path relative to the tree."""
    out = {}
    for g in LIB_GLOBS:
        for path in glob.glob(os.path.join(ROOT, g)):
            rel = os.path.relpath(path, ROOT)
            if rel == "daemon/main.c":
                continue
            out[os.path.splitext(os.path.basename(rel))[0]] = rel
    return out


def prefixes(rel):
    """The prefixes a module may use, from its path: the file name, joined
    with its folders from the nearest out (linux/linux.c counts once)."""
    parts = os.path.splitext(rel)[0].split("/")
    parts = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
    out = ["_".join(parts[i:]) + "_" for i in range(len(parts))]
    return out + ALIASES.get(parts[-1], [])


def bad_symbols(lib, sources):
    """Module -> its global symbols that carry none of its prefixes."""
    nm = subprocess.run([NM, "-A", "-g", "--defined-only", lib], capture_output=True,
                        text=True, check=True).stdout
    bad = {}
    for line in nm.splitlines():
        m = re.match(r"^[^:]+:([^:]+)\.o:\s*\S*\s+[A-Za-z]\s+(\S+)$", line)
        if not m:
            continue
        module, name = m.group(1), m.group(2)
        if name.startswith("__odr_asan."):  # ASan's one-definition markers
            continue
        rel = sources.get(module)
        if rel is None:
            bad.setdefault(module, []).append(name + " (no source found)")
            continue
        stem = os.path.splitext(os.path.basename(rel))[0]
        if name == stem or any(name.startswith(p) for p in prefixes(rel)):
            continue
        bad.setdefault(module, []).append(name)
    return bad


class LibraryHygieneTest(unittest.TestCase):
    def setUp(self):
        self.lib = os.path.join(BUILD, "libmcpjob.a")
        if not os.path.exists(self.lib):
            self.skipTest("%s is not built (make all)" % self.lib)
        if NM is None:
            self.skipTest("nm is not installed (binutils)")

    def test_prefix_rule_reads_modules_from_file_names(self):
        self.assertEqual(prefixes("daemon/store.c"), ["daemon_store_", "store_"])
        self.assertEqual(prefixes("platform/linux/net.c"),
                         ["platform_linux_net_", "linux_net_", "net_"])
        self.assertEqual(prefixes("platform/linux/linux.c"), ["platform_linux_", "linux_"])
        self.assertIn("x", prefixes("common/xmalloc.c"))

    def test_every_global_symbol_has_its_module_prefix(self):
        bad = bad_symbols(self.lib, lib_sources())
        unexpected = {m: names for m, names in bad.items() if m not in PENDING}
        self.assertEqual(unexpected, {}, "global symbols without their module's prefix "
                         "(module -> names); rename them <module>_...")
        done = sorted(m for m in PENDING if m not in bad)
        self.assertEqual(done, [], "these modules are clean now: remove them from PENDING")


class LayerOrderTest(unittest.TestCase):
    def test_platform_providers_include_no_daemon_header(self):
        offenders = []
        for g in ["platform/*.[ch]", "platform/linux/*.[ch]", "platform/sim/*.[ch]"]:
            for path in sorted(glob.glob(os.path.join(ROOT, g))):
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        if re.match(r'\s*#\s*include\s+"daemon/', line):
                            offenders.append("%s:%d: %s" % (os.path.relpath(path, ROOT), n,
                                                           line.strip()))
        self.assertEqual(offenders, [])

    def test_only_providers_include_the_provider_header(self):
        offenders = []
        for path in sorted(glob.glob(os.path.join(ROOT, "*", "**", "*.[ch]"), recursive=True)):
            rel = os.path.relpath(path, ROOT)
            if rel.startswith(("platform/", "tests/", "build")):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                if '#include "platform/provider.h"' in f.read():
                    offenders.append(rel)
        self.assertEqual(offenders, [])


class ModuleMapTest(unittest.TestCase):
    """README's Layout lists every module (a .c or .h stem) once, and no
    module that is gone."""

    def test_readme_module_map_matches_the_tree(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        layout = readme[readme.index("## Layout"):]
        listed = set(re.findall(r"(?m)^- `([a-z_/]+)` - ", layout))
        modules = set()
        for d in ("common", "daemon", "platform", "ctl"):
            for path in glob.glob(os.path.join(ROOT, d, "**", "*.[ch]"), recursive=True):
                modules.add(os.path.splitext(os.path.relpath(path, ROOT))[0])
        self.assertEqual(sorted(modules - listed), [], "modules missing from README's Layout")
        self.assertEqual(sorted(listed - modules), [], "README's Layout lists modules that are gone")


@unittest.skipIf(shutil.which("git") is None, "git is not installed")
class CheckCleanTest(unittest.TestCase):
    """tests/check-clean.sh, which ends make check, in a scratch repository."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mcpjob-clean-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@localhost",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@localhost")
        self.env = env
        subprocess.run(["git", "init", "-q"], cwd=self.dir, check=True, env=env)
        with open(os.path.join(self.dir, "tracked"), "w") as f:
            f.write("a\n")
        with open(os.path.join(self.dir, ".gitignore"), "w") as f:
            f.write("/build/\n")
        subprocess.run(["git", "add", "."], cwd=self.dir, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", "x"], cwd=self.dir, check=True, env=env)
        self.state = os.path.join(self.dir, "build", "before")
        self.script = os.path.join(ROOT, "tests", "check-clean.sh")

    def run_script(self, mode):
        return subprocess.run([self.script, mode, self.state], cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=30)

    def test_clean_run_passes_and_ignored_output_is_fine(self):
        self.assertEqual(self.run_script("before").returncode, 0)
        with open(os.path.join(self.dir, "build", "out.o"), "w") as f:
            f.write("ignored\n")
        r = self.run_script("after")
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_untracked_file_or_changed_tracked_file_fails(self):
        self.assertEqual(self.run_script("before").returncode, 0)
        with open(os.path.join(self.dir, "stray.log"), "w") as f:
            f.write("left behind\n")
        r = self.run_script("after")
        self.assertEqual(r.returncode, 1)
        self.assertIn("?? stray.log", r.stdout)
        os.unlink(os.path.join(self.dir, "stray.log"))
        with open(os.path.join(self.dir, "tracked"), "a") as f:
            f.write("b\n")
        r = self.run_script("after")
        self.assertEqual(r.returncode, 1)
        self.assertIn(" M tracked", r.stdout)


if __name__ == "__main__":
    unittest.main()
