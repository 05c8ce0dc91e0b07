#!/usr/bin/env bash
# Compile org.mcpjob.Engine and the JVM test, run it against
# BUILD/libmcpjob_jni.so (over BUILD/libmcpjob.so) with -Xcheck:jni.
# Usage: run-jvm-test.sh BUILD JAVA_BIN_DIR
set -u
B=$1 J=${2:-}
javac=${J}javac java=${J}java
out=$B/java
tmp=$(mktemp -d /tmp/mcpjob-jvm-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out" && mkdir -p "$out"
"$javac" -Xlint:all -Werror -d "$out" platform/android/java/org/mcpjob/*.java tests/embed/java/EngineTest.java || exit 1
"$java" -Xcheck:jni -Djava.library.path="$B" -cp "$out" EngineTest "$B/tests/servers/mcp-fault" "$tmp" 2>"$tmp.err"
rc=$?
if [ $rc -ne 0 ] || grep -q "WARNING in native method\|FATAL ERROR in native method\|Handler was modified" "$tmp.err"; then
  cat "$tmp.err" >&2; rm -f "$tmp.err"; echo "jvm test FAILED" >&2; exit 1
fi
rm -f "$tmp.err"
