#!/usr/bin/env bash
# The shared library exports the mcpjob_* API and nothing else: every
# dynamic symbol it defines is mcpjob_*, under the version node MCPJOB_0
# (the node itself shows as the absolute symbol MCPJOB_0), every function
# the header declares is exported, and the soname is versioned.
set -u
so=$1
hdr=daemon/embed.h
fail() { echo "check-exports: $so: $*" >&2; exit 1; }
[ -e "$so" ] || fail "not built"
syms=$(nm -D --defined-only "$so" | awk '{print $3}')
[ -n "$syms" ] || fail "exports nothing"
bad=$(printf '%s\n' "$syms" | grep -v -E '^(mcpjob_[a-z0-9_]+@@MCPJOB_0|MCPJOB_0)$' || true)
[ -z "$bad" ] || fail "exports symbols outside the mcpjob_* API: $(echo $bad | head -c 600)"
for f in $(grep -oE 'MCPJOB_API [^(]*\b(mcpjob_[a-z0-9_]+)\(' "$hdr" | grep -oE 'mcpjob_[a-z0-9_]+'); do
  printf '%s\n' "$syms" | grep -qx "$f@@MCPJOB_0" || fail "$f is declared in $hdr but not exported"
done
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libmcpjob.so.0" ] || fail "soname is '$soname', not libmcpjob.so.0"
n=$(printf '%s\n' "$syms" | grep -c '^mcpjob_')
echo "check-exports: $so exports only the mcpjob_* API ($n functions, version MCPJOB_0, soname $soname)"
