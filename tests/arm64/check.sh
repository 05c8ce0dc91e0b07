#!/usr/bin/env bash
# make check-arm64: cross-build the library and the unit tests for ARM64
# (aarch64-linux-gnu-gcc, Debian's :arm64 multiarch -dev packages) into
# build-arm64/, prove they are ARM64 code, and run every unit test under
# qemu-user. SKIPS loudly (exit 0) when the packages cannot be installed.
#
# qemu-user 7.2 (Debian 12) deadlocks in the child of a fork() of these
# test binaries: the child never reaches exec (seen with strace: qemu's own
# threads wait on a futex). So the unit tests whose code forks - exec
# actions, cleanup children, stdio MCP servers, the identity checks - are
# SKIPPED here, loudly. The embedding tests are skipped too: in the no-spawn
# build (which never forks; cleanup walks on a thread) the first thread
# creation hangs under this qemu as well, and so do the tests that open a
# store (its writer thread). That build's ARM64 library is still
# built and checked (exports, no process calls). Every other unit test runs
# as it does natively. Tests run with
# CK_FORK=no (Check's own per-test fork hits the same deadlock) and a
# time limit each.
set -u
cd "$(dirname "$0")/../.."
tests/arm64/deps.sh
rc=$?
[ $rc -eq 2 ] && exit 0
[ $rc -eq 0 ] || exit 1
for t in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v $t >/dev/null || { echo "SKIP check-arm64: $t not found" >&2; exit 0; }
done
B=build-arm64
BN=build-nosystemd-nospawn-arm64
J=${JOBS:-2}
FORKING="test_actions test_mcp test_config_identity test_embed"
# These open a store, whose writer thread (group commit) hangs in
# pthread_create under this qemu, as the no-spawn test_embed does.
THREADED="test_engine test_store test_embed_hooks"
units=()
for t in tests/unit/test_*.c; do
  b=${t##*/}; b=${b%.c}
  case " $FORKING $THREADED " in *" $b "*) continue ;; esac
  units+=("$B/tests/$b")
done
make --no-print-directory -j"$J" ARCH=arm64 "$B/libmcpjob.so" "$B/libmcpjob.a" "${units[@]}" || exit 1
make --no-print-directory -j"$J" ARCH=arm64 MCPJOB_NO_SPAWN=1 WITH_SYSTEMD=0 "$BN/libmcpjob.so" \
  "$BN/tests/test_embed" || exit 1

fail() { echo "check-arm64: $*" >&2; exit 1; }
for so in "$B/libmcpjob.so" "$BN/libmcpjob.so"; do
  file -L "$so" | grep -q 'ARM aarch64' || fail "$so is not ARM64: $(file -L "$so")"
  tests/embed/check-exports.sh "$so" || exit 1
done
tests/embed/check-variant.sh "$BN" 0 1 || exit 1
bins=("${units[@]}")
for t in "${bins[@]}"; do
  file "$t" | grep -q 'ARM aarch64' || fail "$t is not ARM64"
done
echo "############################################################"
echo "SKIP on ARM64 (qemu-user 7.2 deadlocks in forked children): $FORKING"
echo "SKIP on ARM64 (their first pthread_create hangs under this qemu): $THREADED"
echo "     and the no-spawn ARM64 test_embed, and test_config's tests tagged \"threads\""
echo "     (1,024 jobs and more in a file are parsed on a second thread)"
echo "############################################################"
# Each test binary runs as qemu-aarch64 -L /usr/aarch64-linux-gnu TEST.
wrapdir=$(mktemp -d /tmp/mcpjob-arm64-XXXXXX)
trap 'rm -rf "$wrapdir"' EXIT
wrapped=()
for t in "${bins[@]}"; do
  w="$wrapdir/$(basename "$(dirname "$(dirname "$t")")")-$(basename "$t")"
  printf '#!/bin/sh\nCK_FORK=no CK_EXCLUDE_TAGS=threads exec timeout -s KILL 300 qemu-aarch64 -L /usr/aarch64-linux-gnu %s "$@"\n' \
    "$PWD/$t" > "$w"
  chmod +x "$w"
  wrapped+=("$w")
done
echo "check-arm64: running ${#wrapped[@]} ARM64 unit tests under $(qemu-aarch64 --version | head -1)"
tests/run-unit.sh "${wrapped[@]}"
