#!/usr/bin/env bash
# Run each Check unit-test binary; print a summary line and fail if any failed.
set -u
pass=0; fail=0; failed=()
for t in "$@"; do
  if out=$("$t" 2>&1); then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); failed+=("$(basename "$t")")
  fi
  printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks' | sed "s|^|$(basename "$t"): |"
  [ -n "${failed[*]:-}" ] && [ "${failed[-1]}" = "$(basename "$t")" ] && printf '%s\n' "$out" | grep -vE '^(Running suite|[0-9]+%: Checks)' | head -40
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
