#!/usr/bin/env bash
# Install what `make check-arm64` cross-builds with: Debian's aarch64 cross
# compiler, qemu-user, and the :arm64 multiarch development packages of our
# dependencies. Exit 0 when everything is there, 2 (after saying why, loudly)
# when it cannot be installed - the caller then SKIPS the ARM64 check.
#
# Debian 12's libevent-dev is not Multi-Arch: same (it conflicts with its own
# amd64 build). Its headers are the same on both architectures, so we install
# the :arm64 runtime libraries and unpack libevent-dev:arm64 (apt-get
# download + dpkg-deb -x) into build-arm64/sysroot for its pkg-config files
# and link symlinks - nothing is installed over the host's libevent-dev.
set -u
cd "$(dirname "$0")/../.."
SYSROOT=build-arm64/sysroot
PKGS="gcc-aarch64-linux-gnu qemu-user file libc6-dev:arm64 libjansson-dev:arm64 liblmdb-dev:arm64
check:arm64 libsubunit-dev:arm64 libsystemd-dev:arm64 libevent-2.1-7:arm64 libevent-core-2.1-7:arm64
libevent-pthreads-2.1-7:arm64 libssl-dev:arm64 libcurl4-openssl-dev:arm64"
missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
skip() {
  echo "############################################################" >&2
  echo "SKIP check-arm64: $*" >&2
  [ ${#missing[@]} -gt 0 ] && echo "SKIP check-arm64: missing: ${missing[*]}" >&2
  echo "############################################################" >&2
  exit 2
}
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || skip "not root; install them with: sudo dpkg --add-architecture arm64 && sudo apt-get update && sudo apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64 || skip "dpkg --add-architecture arm64 failed"
  fi
  apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null || skip "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}" \
    || skip "apt-get install failed"
  missing=()
fi
if ! dpkg-query -W -f='${Status}' libevent-dev:arm64 2>/dev/null | grep -q 'ok installed' &&
   [ ! -e "$SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig/libevent.pc" ]; then
  tmp=$(mktemp -d /tmp/mcpjob-arm64-deb-XXXXXX)
  (cd "$tmp" && apt-get download libevent-dev:arm64 >/dev/null 2>&1) || { rm -rf "$tmp"; skip "apt-get download libevent-dev:arm64 failed"; }
  mkdir -p "$SYSROOT" && dpkg-deb -x "$tmp"/libevent-dev_*_arm64.deb "$SYSROOT" || skip "cannot unpack libevent-dev:arm64"
  rm -rf "$tmp"
  # Its libevent*.so link symlinks name the runtime libraries, which are installed.
  for l in "$SYSROOT"/usr/lib/aarch64-linux-gnu/*.so; do
    t=$(readlink "$l") && ln -sfn "/usr/lib/aarch64-linux-gnu/$t" "$l"
  done
  echo "check-arm64: libevent-dev:arm64 unpacked into $SYSROOT (it cannot be co-installed with libevent-dev)"
fi
exit 0
