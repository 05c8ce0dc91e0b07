#!/usr/bin/env bash
# platform/android/CMakeLists.txt builds the same engine as the Makefile:
# its source list (between the mcpjob-sources markers) is the Makefile's
# LIB_SRC, and its version is the Makefile's VERSION. A new module added to
# one and not the other fails here, with the difference.
set -u
cm=platform/android/CMakeLists.txt
fail() { echo "check-cmake-sources: $*" >&2; exit 1; }
want=$(make --no-print-directory -s print-lib-src | sort)
have=$(sed -n '/# mcpjob-sources: begin/,/# mcpjob-sources: end/p' "$cm" |
       grep -E '^\s+[a-z].*\.c\s*$' | sed 's/^\s*//; s/\s*$//' | sort)
[ -n "$have" ] || fail "$cm has no source list between the mcpjob-sources markers"
if [ "$want" != "$have" ]; then
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$have") | sed 's/^</only in the Makefile:/; s/^>/only in CMakeLists.txt:/' | grep only >&2
  fail "$cm and the Makefile build different sources (update the list in $cm)"
fi
for f in $have; do [ -f "$f" ] || fail "$cm lists $f, which does not exist"; done
mv=$(sed -n 's/^VERSION := //p' Makefile)
cv=$(sed -n 's/^set(MCPJOB_VERSION "\(.*\)")/\1/p' "$cm")
[ "$mv" = "$cv" ] || fail "$cm says version $cv, the Makefile $mv"
echo "check-cmake-sources: $cm lists the Makefile's $(printf '%s\n' "$have" | wc -l) sources, version $cv"
