#!/usr/bin/env bash
# Install what `make check-arm64` cross-builds with: Debian's aarch64 cross
# compiler, qemu-user, and the :arm64 multiarch development packages of our
# dependencies. Exit 0 when everything is there, 2 (after saying why, loudly)
# when it cannot be installed - the caller then SKIPS the ARM64 check.
set -u
PKGS="gcc-aarch64-linux-gnu qemu-user libc6-dev:arm64 libevent-dev:arm64 libjansson-dev:arm64
liblmdb-dev:arm64 check:arm64 libsystemd-dev:arm64 libsubunit-dev:arm64"
missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
skip() {
  echo "############################################################" >&2
  echo "SKIP check-arm64: $*" >&2
  echo "SKIP check-arm64: missing: ${missing[*]}" >&2
  echo "############################################################" >&2
  exit 2
}
[ "$(id -u)" -eq 0 ] || skip "not root; install them with: sudo dpkg --add-architecture arm64 && sudo apt-get update && sudo apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64 || skip "dpkg --add-architecture arm64 failed"
fi
apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null || skip "apt-get update failed"
apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}" \
  || skip "apt-get install failed"
exit 0
