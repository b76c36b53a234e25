#!/usr/bin/env bash
# `make lint`: the tree's style checks.  Every check runs; each prints what it finds, and the
# script exits non-zero when any of them failed.
#   c    clang-format --dry-run -Werror (.clang-format) over the C of common/, the services,
#        tests/unit and fuzz/
#   sh   shellcheck (.shellcheckrc) on every shell script: *.sh and files starting with a sh or
#        bash #! line
#   py   ruff check (ruff.toml) over the Python code: tests/, bench/, kafka/, tools/
#   js   node --check of the web app's modules (web/**/*.js, read as ES modules) and of the
#        node tests (tests/webapp/*.mjs): syntax errors, before any browser loads them
# clang-format, shellcheck and node are Debian's (scripts/deps.sh installs them); ruff is pinned
# (RUFF_VERSION) and installed from PyPI into .tools/ruff (git-ignored) on first use, with a
# stamp file like tests/offline/tools.sh.
#   scripts/lint.sh [c|sh|py|js]...   only those checks (default: all four)
set -uo pipefail

RUFF_VERSION=0.17.5

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
TOOLS=$ROOT/.tools
RUFF=$TOOLS/ruff/bin/ruff

# Directories no check looks into: build output, local state, downloaded code.
prune=(-name .git -o -name build -o -name .run -o -name .tools -o -name node_modules
  -o -name __pycache__ -o -path ./kafka/libs -o -path ./fuzz/corpus)

need() { # need COMMAND: 0 when it is installed, else a note
  command -v "$1" >/dev/null && return 0
  echo "lint: $1 is not installed (run scripts/deps.sh)" >&2
  return 1
}

lint_c() {
  echo "== clang-format =="
  need clang-format || return 1
  local files
  mapfile -t files < <(find ./common ./*-service ./tests/unit ./fuzz \( "${prune[@]}" \) -prune -o \
    -type f \( -name '*.c' -o -name '*.h' \) -print | sort)
  clang-format --dry-run -Werror "${files[@]}"
}

lint_sh() {
  echo "== shellcheck =="
  need shellcheck || return 1
  local f line files=()
  while IFS= read -r f; do
    if [[ $f == *.sh ]]; then
      files+=("$f")
    else
      IFS= read -r line <"$f" || true
      [[ $line =~ ^\#!.*[/\ ](ba)?sh([[:space:]]|$) ]] && files+=("$f")
    fi
  done < <(find . \( "${prune[@]}" \) -prune -o -type f -print | sort)
  shellcheck "${files[@]}"
}

# ruff into its own venv, once per RUFF_VERSION (concurrent callers wait for the first).
ensure_ruff() {
  local stamp=$TOOLS/stamps/ruff log=$TOOLS/logs/ruff.log
  fresh() { [[ -x $RUFF && -f $stamp && $(<"$stamp") == "$RUFF_VERSION" ]]; }
  fresh && return 0
  mkdir -p "$TOOLS/stamps" "$TOOLS/logs"
  exec 9>"$TOOLS/.ruff.lock"
  flock 9
  fresh && return 0
  echo "lint: installing ruff $RUFF_VERSION into .tools/ruff (PyPI)"
  rm -rf "$TOOLS/ruff" "$stamp"
  if ! { /usr/bin/python3 -m venv "$TOOLS/ruff" &&
         "$TOOLS/ruff/bin/pip" install -q --disable-pip-version-check --no-cache-dir \
           "ruff==$RUFF_VERSION"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "lint: installing ruff failed" >&2
    return 1
  fi
  echo "$RUFF_VERSION" >"$stamp"
}

lint_py() {
  echo "== ruff =="
  ensure_ruff || return 1
  "$RUFF" check --no-cache --quiet .
}

lint_js() {
  echo "== node --check =="
  need node || return 1
  local f rc=0 files
  mapfile -t files < <(find ./web ./tests/webapp \( "${prune[@]}" \) -prune -o -type f \
    \( -name '*.js' -o -name '*.mjs' \) -print | sort)
  # A file that is not .mjs is read as a script by default, and a script's parse accepts
  # nothing of a module (import, export) and checks less: every file is read as a module, from
  # stdin (--input-type; --experimental-default-type would need Node 20.10).
  for f in "${files[@]}"; do
    node --input-type=module --check <"$f" || { echo "lint: $f: not a valid module" >&2; rc=1; }
  done
  return "$rc"
}

checks=("$@")
((${#checks[@]})) || checks=(c sh py js)
failed=()
for check in "${checks[@]}"; do
  case $check in
    c) lint_c || failed+=(clang-format) ;;
    sh) lint_sh || failed+=(shellcheck) ;;
    py) lint_py || failed+=(ruff) ;;
    js) lint_js || failed+=("node --check") ;;
    *) echo "usage: scripts/lint.sh [c|sh|py|js]..." >&2; exit 2 ;;
  esac
done
if ((${#failed[@]})); then
  echo "lint: ${failed[*]} failed" >&2
  exit 1
fi
echo "lint: clean"
