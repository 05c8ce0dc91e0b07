#!/usr/bin/env bash
# What a build variant leaves out is really out:
#   WITH_SYSTEMD=0     the library (and mcpjobd) need no libsystemd, and the
#                      daemon built that way still runs what is due
#   MCPJOB_NO_SPAWN=1  the library calls nothing that starts a process
#                      (fork, vfork, execve, posix_spawn, system, popen)
# Usage: check-variant.sh BUILD_DIR WITH_SYSTEMD MCPJOB_NO_SPAWN
set -u
B=$1 with_systemd=$2 no_spawn=$3
so=$B/libmcpjob.so
fail() { echo "check-variant: $B: $*" >&2; exit 1; }
if [ "$with_systemd" = 0 ]; then
  for f in "$so" "$B/mcpjobd"; do
    [ -e "$f" ] || continue
    readelf -d "$f" | grep -q 'NEEDED.*libsystemd' && fail "$f still needs libsystemd"
    nm -D --undefined-only "$f" | grep -q ' sd_' && fail "$f still calls sd_* functions"
  done
  echo "check-variant: $B: no libsystemd in the library or mcpjobd"
  if [ -x "$B/mcpjobd" ]; then
    tmp=$(mktemp -d /tmp/mcpjob-variant-XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/cache" && echo old > "$tmp/cache/old.tmp" && touch -d '10 days ago' "$tmp/cache/old.tmp"
    printf '{"jobs": [{"id": "tidy", "interval": "1h", "action": {"cleanup": {"path": "%s", "max_age": "1d"}}}]}\n' \
      "$tmp/cache" > "$tmp/mcpjobd.json"
    out=$("$B/mcpjobd" --user --config "$tmp/mcpjobd.json" --state-dir "$tmp/state" \
          --socket "$tmp/control.sock" --run-due --budget 20s 2>&1) || fail "mcpjobd --run-due failed: $out"
    [ ! -e "$tmp/cache/old.tmp" ] || fail "mcpjobd --run-due did not run the cleanup: $out"
    echo "check-variant: $B: mcpjobd without systemd ran the due cleanup job"
  fi
fi
if [ "$no_spawn" = 1 ]; then
  spawners=$(nm -D --undefined-only "$so" | awk '{print $2}' | sed 's/@.*//' |
             grep -x -E 'fork|vfork|_Fork|execve|execv|execvp|execvpe|fexecve|posix_spawn|posix_spawnp|system|popen|clone|clone3' || true)
  [ -z "$spawners" ] || fail "the no-spawn library still calls: $spawners"
  echo "check-variant: $B: the library calls nothing that starts a process"
fi
exit 0
