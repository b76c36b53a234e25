#!/usr/bin/env bash
# The local OpenID Connect provider standing in for Google (tests/oidc/server.js).
#
# Usage:
#   scripts/oidc.sh start DIR PORT   start in the background (pid DIR/oidc.pid, log DIR/oidc.log),
#                                    wait until discovery answers (max 15 s), print one line:
#                                    http://localhost:PORT/.well-known/openid-configuration
#   scripts/oidc.sh stop DIR         SIGTERM (SIGKILL after 5 s); no-op when not running
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVER=$ROOT/tests/oidc/server.js
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

die() { echo "oidc.sh: $*" >&2; exit 1; }
usage() { die "usage: oidc.sh start DIR PORT | stop DIR"; }

# Prints the pid from DIR/oidc.pid when that process is our server and alive.
running_pid() {
  local pid
  [[ -f $DIR/oidc.pid ]] || return 1
  pid=$(<"$DIR/oidc.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$SERVER" || return 1
  echo "$pid"
}

start() {
  if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then die "bad port: $PORT"; fi
  [[ -d $ROOT/tests/oidc/node_modules/oauth2-mock-server ]] ||
    die "tests/oidc/node_modules is missing (run scripts/deps.sh)"
  command -v node >/dev/null || die "node is not installed (run scripts/deps.sh)"
  mkdir -p "$DIR"
  running_pid >/dev/null && die "already running (pid $(<"$DIR/oidc.pid")); stop it first"

  local url=http://localhost:$PORT/.well-known/openid-configuration pid
  node "$SERVER" "$PORT" >>"$DIR/oidc.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/oidc.pid"
  if wait_http "$url" 15 "$pid"; then
    echo "$url"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  rm -f "$DIR/oidc.pid"
  tail -n 20 "$DIR/oidc.log" >&2 || true
  die "provider did not answer on port $PORT"
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/oidc.pid"
}

(($# >= 2)) || usage
cmd=$1
DIR=$2
case $cmd in
  start) (($# == 3)) || usage; PORT=$3; start ;;
  stop) (($# == 2)) || usage; stop ;;
  *) usage ;;
esac
