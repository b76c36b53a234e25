#!/usr/bin/env bash
# Runs the test tiers it is given, in that order, against the binaries in BUILD_DIR (e.g.
# build/san) and ends with one line "N passed, N failed" (the Makefile's TEST_TIERS lists what
# `make test` runs).  Exits non-zero when anything failed.
#   tests/run.sh BUILD_DIR TIER... [-- PYTEST_ARGS...]
# Tiers:
#   unit         the cmocka binaries BUILD_DIR/tests/test_*: their tests
#   webapp       node --test tests/webapp/: the web app's pure functions (web/assets), its tests
#   fuzz-smoke   `make fuzz-smoke`: one count per libFuzzer target
#   bench-smoke  `make bench-smoke`: no count when it passes, one failure when it does not
#   integration  pytest tests/integration (PYTEST_ARGS go here): its tests, skips not counted
#   scaleout     pytest tests/scaleout: three replicas of every service behind the gateway,
#                replicas killed and stopped under load (its own stack; under 2 minutes)
#   offline      pytest tests/offline: the same
# A tier that fails without reporting a failure of its own (a crash, a sanitizer report, a
# broken tool) counts as one failure.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { echo "usage: tests/run.sh BUILD_DIR TIER... [-- PYTEST_ARGS...]" >&2; exit 2; }
(($# >= 2)) || usage
BUILD=$1
shift
tiers=()
while (($#)) && [[ $1 != -- ]]; do
  tiers+=("$1")
  shift
done
(($#)) && shift # the --; what is left goes to the integration tier's pytest
for tier in "${tiers[@]}"; do
  case $tier in
    unit | webapp | fuzz-smoke | bench-smoke | integration | scaleout | offline) ;;
    *) echo "tests/run.sh: unknown tier $tier" >&2; usage ;;
  esac
done
cd "$ROOT" || exit 2
# The sanitizers' settings for the unit tests and for the services the pytest tiers start.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0
failed=0

# Adds one tier's counts: count PASSED FAILED RC (RC is the tier's exit status).
count() {
  local p=${1:-0} f=${2:-0}
  if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
}

unit_tier() {
  echo "== unit tests (cmocka) =="
  local t out rc p f
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1)
    rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/.*\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/.*\[  FAILED  \] \([0-9]*\) test(s), listed below:.*/\1/p' | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or sanitizer report
    if [ "$f" -ne 0 ]; then printf '%s\n' "$out"; fi
    printf '  %-28s %3d passed, %d failed\n' "$(basename "$t")" "$p" "$f"
    count "$p" "$f" 0
  done
}

webapp_tier() {
  echo "== web app unit tests (node --test tests/webapp/) =="
  local out rc p f c
  out=$(node --test --test-reporter=tap tests/webapp/ 2>&1)
  rc=$?
  p=$(printf '%s\n' "$out" | sed -n 's/^# pass \([0-9]*\)$/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/^# fail \([0-9]*\)$/\1/p' | tail -1)
  c=$(printf '%s\n' "$out" | sed -n 's/^# cancelled \([0-9]*\)$/\1/p' | tail -1)
  f=$((${f:-0} + ${c:-0}))
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then printf '%s\n' "$out"; fi
  printf '  %-28s %3d passed, %d failed\n' "tests/webapp" "${p:-0}" "$f"
  count "${p:-0}" "$f" "$rc"
}

# Runs one pytest tier (a directory) and adds its counts from the JUnit report.
pytest_tier() { # dir [pytest args…]
  local dir=$1 junit rc counts p f
  shift
  junit=$(mktemp /tmp/mr-junit-XXXXXX.xml)
  BIN_DIR="$ROOT/$BUILD/bin" /usr/bin/python3 -m pytest -p no:cacheprovider -q \
    --junitxml="$junit" "$@" "$dir"
  rc=$?
  counts=$(/usr/bin/python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 1"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad)
PY
)
  rm -f "$junit"
  read -r p f <<<"$counts"
  count "$p" "$f" "$rc"
}

fuzz_smoke_tier() {
  echo "== fuzz smoke (libFuzzer targets on the checked-in seed corpus) =="
  local out rc p f
  out=$(make --no-print-directory fuzz-smoke 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E '^(  |fuzz)' || true
  p=$(printf '%s\n' "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' | tail -1)
  if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then printf '%s\n' "$out" | tail -20; fi
  count "$p" "$f" "$rc"
}

bench_smoke_tier() {
  echo "== bench smoke (every scenario at tiny sizes, no unexpected error) =="
  make --no-print-directory bench-smoke
  count 0 0 $?
}

for tier in "${tiers[@]}"; do
  case $tier in
    unit) unit_tier ;;
    webapp) webapp_tier ;;
    fuzz-smoke) fuzz_smoke_tier ;;
    bench-smoke) bench_smoke_tier ;;
    integration)
      echo "== integration tests (pytest, real PostgreSQL / Kafka / OIDC provider / nginx) =="
      pytest_tier tests/integration "$@"
      ;;
    scaleout)
      echo "== scale-out (3 replicas of each service behind the gateway, replicas killed under load) =="
      pytest_tier tests/scaleout
      ;;
    offline)
      echo "== offline checks of the deployment files (nginx, Helm, manifests, workflow, Dockerfiles) =="
      pytest_tier tests/offline
      ;;
  esac
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
