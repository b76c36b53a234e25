#!/usr/bin/env bash
# Runs every test tier against the binaries in BUILD (e.g. build/san) and ends with one line
# "N passed, N failed".  Exits non-zero when anything failed.
#   tests/run.sh BUILD_DIR [pytest args…]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:?usage: tests/run.sh BUILD_DIR [pytest args]}
shift
cd "$ROOT"
passed=0
failed=0

echo "== unit tests (cmocka) =="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
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
  passed=$((passed + p))
  failed=$((failed + f))
done

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
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
}

echo "== fuzz smoke (libFuzzer targets on the checked-in seed corpus) =="
fuzz_out=$(make --no-print-directory fuzz-smoke 2>&1)
fuzz_rc=$?
printf '%s\n' "$fuzz_out" | grep -E '^(  |fuzz)' || true
fp=$(printf '%s\n' "$fuzz_out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' | tail -1)
ff=$(printf '%s\n' "$fuzz_out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' | tail -1)
fp=${fp:-0}
ff=${ff:-0}
if [ "$fuzz_rc" -ne 0 ] && [ "$ff" -eq 0 ]; then printf '%s\n' "$fuzz_out" | tail -20; ff=1; fi
passed=$((passed + fp))
failed=$((failed + ff))

echo "== integration tests (pytest, real PostgreSQL / Kafka / OIDC provider / nginx) =="
pytest_tier tests/integration "$@"

echo "== offline checks of the deployment files (nginx, Helm, manifests, workflow, Dockerfiles) =="
pytest_tier tests/offline

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
