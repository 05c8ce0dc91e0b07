#!/usr/bin/env bash
# make check-arm64: cross-build the library and the unit tests for ARM64
# (aarch64-linux-gnu-gcc, Debian's :arm64 multiarch -dev packages) into
# build-arm64/, prove they are ARM64 code, and run every unit test under
# qemu-user. SKIPS loudly (exit 0) when the packages cannot be installed.
#
# The programs the tests start as children (sleep, true, python3, the
# mcp-fault test server) are the host's: qemu-user runs the test binary, and
# without binfmt_misc the kernel cannot exec an ARM64 child. The code under
# test - libmcpjob and the test itself - is ARM64.
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
J=${JOBS:-2}
make --no-print-directory -j"$J" ARCH=arm64 "$B/libmcpjob.so" "$B/libmcpjob.a" \
  $(for t in tests/unit/test_*.c; do b=${t##*/}; echo "$B/tests/${b%.c}"; done) || exit 1
make --no-print-directory -j"$J" build/tests/servers/mcp-fault >/dev/null || exit 1
mkdir -p "$B/tests/servers" && cp build/tests/servers/mcp-fault "$B/tests/servers/mcp-fault"

fail() { echo "check-arm64: $*" >&2; exit 1; }
file -L "$B/libmcpjob.so" | grep -q 'ARM aarch64' || fail "$B/libmcpjob.so is not ARM64: $(file -L $B/libmcpjob.so)"
tests/embed/check-exports.sh "$B/libmcpjob.so" || exit 1
bins=()
for t in "$B"/tests/test_*; do
  [ -x "$t" ] || continue
  file "$t" | grep -q 'ARM aarch64' || fail "$t is not ARM64"
  bins+=("$t")
done
[ ${#bins[@]} -gt 0 ] || fail "no unit tests were built"
# Each test binary runs as qemu-aarch64 -L /usr/aarch64-linux-gnu TEST.
wrapdir=$(mktemp -d /tmp/mcpjob-arm64-XXXXXX)
trap 'rm -rf "$wrapdir"' EXIT
wrapped=()
for t in "${bins[@]}"; do
  w="$wrapdir/$(basename "$t")"
  printf '#!/bin/sh\nexec qemu-aarch64 -L /usr/aarch64-linux-gnu %s "$@"\n' "$PWD/$t" > "$w"
  chmod +x "$w"
  wrapped+=("$w")
done
echo "check-arm64: running ${#wrapped[@]} ARM64 unit tests under $(qemu-aarch64 --version | head -1)"
CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60} tests/run-unit.sh "${wrapped[@]}"
