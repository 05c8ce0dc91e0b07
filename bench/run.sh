#!/bin/sh
# bench/run.sh - run the benchmarks (make bench sets MCPJOB_BUILD).
#   bench/run.sh [load|rpc|idle|lateness|device|mcp|spawn ...]
# Knobs: BENCH_LOAD_JOBS BENCH_LOAD_REPS BENCH_RPC_SECONDS BENCH_IDLE_SECONDS
# BENCH_LATENESS_RUNS BENCH_PENDING_JOBS BENCH_KEEP (see bench/README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${MCPJOB_BUILD:=$here/../build}"
export MCPJOB_BUILD
exec python3 "$here/bench.py" "$@"
