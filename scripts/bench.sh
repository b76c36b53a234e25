#!/usr/bin/env bash
# make bench / make bench-smoke: the release build (build/bin, as `make` builds it), then
# bench/bench.py with those binaries.  Settings come from the environment (see bench/bench.py):
# BENCH_SCALE (full|smoke), BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_CHECK, BENCH_KEEP,
# BENCH_BASELINE (a commit to measure first into bench/baseline.json), BENCH_REPLICAS (replicas
# of each service), BENCH_ONLY (one part: utilisation, find_a_room, replicas), …
# The whole run is bounded by BENCH_TIMEOUT seconds (default: 3600 full, 900 smoke).
# Reports: build/bench/bench-<time>-<scale>.json, latest-<scale>.json and latest-<scale>.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ $(id -u) -ne 0 ]]; then
  echo "bench.sh: run as root (PostgreSQL and nginx start as in make test)" >&2
  exit 1
fi
for tool in wrk nginx /usr/lib/postgresql/15/bin/pgbench; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is missing (make deps)" >&2; exit 1; }
done

make --no-print-directory all
export BIN_DIR=$ROOT/build/bin
scale=${BENCH_SCALE:-full}
default_timeout=3600
[[ $scale == smoke ]] && default_timeout=900
exec timeout --signal=TERM --kill-after=60 "${BENCH_TIMEOUT:-$default_timeout}" \
  /usr/bin/python3 "$ROOT/bench/bench.py"
