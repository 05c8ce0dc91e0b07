#!/bin/sh
# bench/run.sh - run the benchmarks (make bench sets MCPJOB_BUILD).
#   bench/run.sh [load|rpc|idle|lateness|device|mcp|spawn|runs|store ...]
# Knobs: BENCH_LOAD_JOBS BENCH_LOAD_REPS BENCH_RPC_SECONDS BENCH_IDLE_SECONDS
# BENCH_LATENESS_RUNS BENCH_PENDING_JOBS BENCH_SPAWN_RUNS BENCH_STORE_RECORDS
# BENCH_HISTORY_RUNS BENCH_KEEP BENCH_PIN_CPU (see bench/README.md). The idle baselines
# need Debian's cron (and busybox-static), as tests/bootstrap.sh installs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${MCPJOB_BUILD:=$here/../build}"
export MCPJOB_BUILD
exec python3 "$here/bench.py" "$@"
