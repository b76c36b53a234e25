#!/usr/bin/env bash
# Installs the pinned tools the offline checks use into <repo>/.tools (git-ignored):
#   .tools/bin/helm         go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION
#   .tools/bin/actionlint   go install github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION
#   .tools/bin/promtool     go build ./cmd/promtool inside github.com/prometheus/prometheus@$PROMTOOL_VERSION
#                           as downloaded by `go mod download` (`go install` refuses the module: its
#                           go.mod has a replace directive).  Prometheus 3.x releases are the Go
#                           module's v0.3xx.y tags: v0.315.1 is Prometheus 3.15.1.  The first build
#                           downloads and compiles a large dependency tree (about 8 CPU minutes;
#                           14 minutes on a busy 2-core machine); later runs only check the stamp.
#   .tools/venv             /usr/bin/python3 venv with kubernetes-validate==$KV_VERSION (bundles the
#                           Kubernetes JSON schemas, so validation works offline)
# Idempotent: a stamp file per tool (.tools/stamps/NAME holding the pinned version) decides; when
# every tool is present it prints nothing and returns at once.  Everything comes from the Go module
# proxy, PyPI and (only when python3-venv is missing) Debian's packages.
set -euo pipefail

HELM_VERSION=v3.16.4
ACTIONLINT_VERSION=v1.7.7
KV_VERSION=1.31.0
PROMTOOL_VERSION=v0.315.1
PROMTOOL_LDFLAGS="-X github.com/prometheus/common/version.Version=3.15.1"
# What a release build of helm v3.16.4 sets with -ldflags: its version, and the default Kubernetes
# version (client-go v0.31 -> 1.31; a plain `go install` would default to 1.20).
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION
 -X helm.sh/helm/v3/internal/version.gitTreeState=clean
 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=31
 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=31"
# kubernetes-validate's dependencies, pinned too (bump KV_STAMP when this list changes).
KV_CONSTRAINTS="attrs==26.1.0
importlib_resources==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
packaging==26.3
PyYAML==6.0.3
referencing==0.37.0
rpds-py==2026.9.1
typing_extensions==4.16.0"
HELM_STAMP="$HELM_VERSION+ldflags-k8s1.31"
KV_STAMP="$KV_VERSION+deps-r1"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS="$ROOT/.tools"
STAMPS="$TOOLS/stamps"

fresh() { # fresh NAME VERSION FILE -> 0 when FILE exists and the stamp says VERSION
  [ -e "$3" ] && [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]
}

need_helm=1 need_actionlint=1 need_kv=1 need_promtool=1
check_all() {
  fresh helm "$HELM_STAMP" "$TOOLS/bin/helm" && need_helm=0
  fresh actionlint "$ACTIONLINT_VERSION" "$TOOLS/bin/actionlint" && need_actionlint=0
  fresh kubernetes-validate "$KV_STAMP" "$TOOLS/venv/bin/kubernetes-validate" && need_kv=0
  fresh promtool "$PROMTOOL_VERSION" "$TOOLS/bin/promtool" && need_promtool=0
  return 0
}
check_all
[ $((need_helm + need_actionlint + need_kv + need_promtool)) -eq 0 ] && exit 0

mkdir -p "$TOOLS/bin" "$STAMPS" "$TOOLS/logs"
# One installer at a time (e.g. two test runs starting together); the other waits, then re-checks.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS/.lock"
  flock 9
  check_all
  [ $((need_helm + need_actionlint + need_kv + need_promtool)) -eq 0 ] && exit 0
fi
start=$(date +%s)

go_tool() { # go_tool NAME VERSION PACKAGE STAMP [LDFLAGS]
  local log="$TOOLS/logs/$1.log"
  echo "tools.sh: installing $1 $2 (go install)"
  rm -f "$STAMPS/$1"
  if ! GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
       go install -ldflags "-s -w ${5:-}" "$3@$2" >"$log" 2>&1; then
    cat "$log" >&2
    echo "tools.sh: go install $3@$2 failed" >&2
    return 1
  fi
  echo "$4" >"$STAMPS/$1"
}

go_module_tool() { # go_module_tool NAME VERSION MODULE SUBDIR STAMP [LDFLAGS]
  local log="$TOOLS/logs/$1.log" dir
  echo "tools.sh: building $1 $2 (go mod download + go build)"
  rm -f "$STAMPS/$1"
  dir="$(go env GOMODCACHE)/$3@$2"
  if ! { (cd / && go mod download "$3@$2") &&
         (cd "$dir" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
            go build -trimpath -ldflags "-s -w ${6:-}" -o "$TOOLS/bin/$1" "./$4"); } >"$log" 2>&1; then
    cat "$log" >&2
    echo "tools.sh: building $3/$4@$2 failed" >&2
    return 1
  fi
  echo "$5" >"$STAMPS/$1"
}

kv_tool() {
  local log="$TOOLS/logs/kubernetes-validate.log"
  echo "tools.sh: installing kubernetes-validate $KV_VERSION (venv)"
  rm -f "$STAMPS/kubernetes-validate"
  if ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "tools.sh: python3-venv is missing; installing it from Debian"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } \
      >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  fi
  rm -rf "$TOOLS/venv"
  if ! { /usr/bin/python3 -m venv "$TOOLS/venv" &&
         printf '%s\n' "$KV_CONSTRAINTS" >"$TOOLS/venv/constraints.txt" &&
         "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check --no-cache-dir \
           -c "$TOOLS/venv/constraints.txt" "kubernetes-validate==$KV_VERSION"; } >>"$log" 2>&1; then
    cat "$log" >&2
    echo "tools.sh: installing kubernetes-validate failed" >&2
    return 1
  fi
  echo "$KV_STAMP" >"$STAMPS/kubernetes-validate"
}

# The pip install runs beside the Go builds; the Go builds share the module cache, one after another.
pids=()
if [ $need_kv -eq 1 ]; then kv_tool & pids+=($!); fi
rc=0
if [ $need_helm -eq 1 ]; then go_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$HELM_STAMP" "$HELM_LDFLAGS" || rc=1; fi
if [ $need_actionlint -eq 1 ]; then
  go_tool actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint \
    "$ACTIONLINT_VERSION" || rc=1
fi
if [ $need_promtool -eq 1 ]; then
  go_module_tool promtool "$PROMTOOL_VERSION" github.com/prometheus/prometheus cmd/promtool \
    "$PROMTOOL_VERSION" "$PROMTOOL_LDFLAGS" || rc=1
fi
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ $rc -eq 0 ] && echo "tools.sh: tools ready in $TOOLS ($(( $(date +%s) - start )) s)"
exit $rc
