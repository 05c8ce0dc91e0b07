#!/usr/bin/env bash
# Build the libFuzzer targets with clang (ASan+UBSan) into build-fuzz/ and
# run each for FUZZ_SECONDS (default 10) from its seed corpus. New inputs
# go to a temporary directory, never into the tree. Exit non-zero on any
# crash, leak or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-10}
B=build-fuzz
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null; then
  echo "fuzz: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1
fi
PKGS="libevent libevent_pthreads jansson lmdb libsystemd libcrypto libcurl"
# -fvisibility=hidden as the Makefile builds the library: common/netlib.c's
# libcurl/libcrypto and common/sdlib.c's libsystemd functions must not be
# exported to (and called by) the real ones.
CFLAGS="-std=c11 -D_GNU_SOURCE -DMCPJOB_VERSION=\"fuzz\" -I. -g -O1 -fno-omit-frame-pointer -fvisibility=hidden
        -fsanitize=address,undefined -fno-sanitize-recover=undefined $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread"
mkdir -p $B/obj
objs=()
for src in common/*.c $(ls daemon/*.c daemon/*/*.c | grep -v daemon/main.c) platform/*.c platform/linux/*.c platform/sim/*.c; do
  o=$B/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
  if [ ! -e "$o" ] || [ "$src" -nt "$o" ]; then
    $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$o"
  fi
  objs+=("$o")
done
rc=0
for t in tests/fuzz/fuzz_*.c; do
  name=$(basename "$t" .c)
  $CC $CFLAGS -fsanitize=fuzzer "$t" "${objs[@]}" $LIBS -o "$B/$name"
  work=$(mktemp -d)
  seeds=tests/fuzz/corpus/${name#fuzz_}
  if ASAN_OPTIONS=detect_leaks=1 "$B/$name" -max_total_time="$SECS" -print_final_stats=0 \
       -artifact_prefix="$B/$name-" "$work" "$seeds" > "$B/$name.log" 2>&1; then
    echo "fuzz: $name: $(grep -oE '#[0-9]+' "$B/$name.log" | tail -1 | tr -d '#') inputs, no crash"
  else
    echo "fuzz: $name FAILED; reproducer and log in $B/:" >&2
    tail -40 "$B/$name.log" >&2
    rc=1
  fi
  rm -rf "$work"
done
exit $rc
