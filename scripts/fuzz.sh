#!/usr/bin/env bash
# Runs the libFuzzer targets built by mk/fuzz.mk and prints one line per target: PASS/FAIL,
# inputs executed, executions per second, coverage (cov: edges, ft: features) and corpus size.
# Exits non-zero when any target crashed, leaked, hit a sanitizer report, timed out or ran out
# of memory; the input that did it stays in build/fuzz/crashes/.
#
#   scripts/fuzz.sh run   SECONDS JOBS NAME…   new inputs kept in build/fuzz/corpus/NAME/
#   scripts/fuzz.sh smoke SECONDS JOBS NAME…   from the seeds only; new inputs thrown away
#
# Seeds (fuzz/corpus/NAME/) are read, never written.  JOBS targets run at a time.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
MODE=${1:?usage: scripts/fuzz.sh run|smoke SECONDS JOBS NAME...}
SECONDS_EACH=${2:?seconds}
JOBS=${3:?jobs}
shift 3
[[ $MODE == run || $MODE == smoke ]] || { echo "fuzz.sh: mode is run or smoke" >&2; exit 2; }
(($# > 0)) || { echo "fuzz.sh: no targets" >&2; exit 2; }

OUT=build/fuzz
mkdir -p "$OUT/crashes" "$OUT/logs"
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# Runs one target; writes its summary line to logs/NAME.result and returns 0 when it passed.
fuzz_one() { # name
  local name=$1 bin=$OUT/bin/fuzz_$1 log=$OUT/logs/$1.log corpus seeds=fuzz/corpus/$1
  local -a opts=(-max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -detect_leaks=1
    -print_final_stats=1 -artifact_prefix="$OUT/crashes/$name-")
  [[ -f fuzz/$name.dict ]] && opts+=(-dict="fuzz/$name.dict")
  if [[ $MODE == run ]]; then
    corpus=$OUT/corpus/$name
  else
    corpus=$OUT/smoke/$name
    rm -rf "$corpus"
  fi
  mkdir -p "$corpus"
  if [[ ! -x $bin ]]; then
    printf '%-22s FAIL  (no binary %s)\n' "fuzz_$name" "$bin" >"$OUT/logs/$name.result"
    return 1
  fi
  "$bin" "${opts[@]}" "$corpus" "$seeds" >"$log" 2>&1
  local rc=$?
  local runs execs cov ft corp verdict=PASS
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o ' cov: [0-9]*' "$log" | tail -1 | tr -dc 0-9)
  ft=$(grep -o ' ft: [0-9]*' "$log" | tail -1 | tr -dc 0-9)
  corp=$(grep -o ' corp: [0-9]*' "$log" | tail -1 | tr -dc 0-9)
  if ((rc != 0)) || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|invariant failed' "$log"; then
    verdict=FAIL
  fi
  printf '%-22s %s  runs %-10s exec/s %-7s cov %-5s ft %-6s corpus %s\n' "fuzz_$name" "$verdict" \
    "${runs:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" >"$OUT/logs/$name.result"
  if [[ $verdict == FAIL ]]; then
    {
      grep -E 'SUMMARY:|invariant failed|runtime error:|ERROR:' "$log" | head -5 | sed 's/^/    /'
      grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to /    input kept: /'
      echo "    log: $log"
    } >>"$OUT/logs/$name.result"
    return 1
  fi
  return 0
}

echo "fuzz ($MODE): $# target(s), ${SECONDS_EACH}s each, $JOBS at a time"
running=0
for name in "$@"; do
  if ((running >= JOBS)); then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$name" &
  running=$((running + 1))
done
wait

failed=0
for name in "$@"; do
  cat "$OUT/logs/$name.result"
  grep -q '^fuzz_[a-z_]* *FAIL' "$OUT/logs/$name.result" && failed=$((failed + 1))
done
echo "fuzz: $(($# - failed)) passed, $failed failed"
((failed == 0))
