#!/usr/bin/env bash
# Mailpit, the SMTP server that `make run` and the integration tests deliver e-mail to: it keeps
# every message and shows it in a web UI and an HTTP API (/api/v1/messages).
#
# Usage:
#   scripts/mailpit.sh install       go install github.com/axllent/mailpit@$MAILPIT_VERSION into
#                                    .tools/bin (git-ignored); a no-op when the stamp
#                                    .tools/stamps/mailpit names that version.  scripts/deps.sh runs
#                                    it, so nothing is downloaded while tests run.  Cold (modules
#                                    and Go build cache empty) it downloads and compiles the module;
#                                    with Go's caches warm (a second clone) it only links (~1 s).
#   scripts/mailpit.sh start DIR SMTP_PORT HTTP_PORT [MAILPIT_ARGS…]
#                                    start in the background on 127.0.0.1 (pid DIR/mailpit.pid, log
#                                    DIR/mailpit.log), wait until /readyz answers (max 15 s), print
#                                    one line: http://127.0.0.1:HTTP_PORT (the web UI and the API).
#                                    Messages are kept in DIR/mailpit.db, so they survive a restart.
#                                    Any SMTP user name and password is accepted (also without TLS).
#   scripts/mailpit.sh stop DIR      SIGTERM (SIGKILL after 5 s); no-op when not running
set -euo pipefail

MAILPIT_VERSION=v1.33.1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/.tools
BIN=$TOOLS/bin/mailpit
STAMP=$TOOLS/stamps/mailpit
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

die() { echo "mailpit.sh: $*" >&2; exit 1; }
usage() { die "usage: mailpit.sh install | start DIR SMTP_PORT HTTP_PORT [ARGS…] | stop DIR"; }

fresh() { [[ -x $BIN && -f $STAMP && $(<"$STAMP") == "$MAILPIT_VERSION" ]]; }

install() {
  fresh && return 0
  command -v go >/dev/null || die "go is not installed (needed once to build Mailpit $MAILPIT_VERSION)"
  mkdir -p "$TOOLS/bin" "$TOOLS/stamps" "$TOOLS/logs"
  # One installer at a time (two runs starting together); the other waits, then re-checks.
  exec 8>"$TOOLS/.mailpit.lock"
  flock 8
  fresh && return 0
  local start log=$TOOLS/logs/mailpit.log
  start=$(date +%s)
  echo "mailpit.sh: installing Mailpit $MAILPIT_VERSION (go install)" >&2
  rm -f "$STAMP"
  if ! GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install -ldflags \
      "-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
      "github.com/axllent/mailpit@$MAILPIT_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    die "go install github.com/axllent/mailpit@$MAILPIT_VERSION failed"
  fi
  echo "$MAILPIT_VERSION" >"$STAMP"
  echo "mailpit.sh: Mailpit ready in .tools/bin ($(($(date +%s) - start)) s)" >&2
}

# Prints the pid from DIR/mailpit.pid when that process is our Mailpit and alive.
running_pid() {
  local pid
  [[ -f $DIR/mailpit.pid ]] || return 1
  pid=$(<"$DIR/mailpit.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$BIN" || return 1
  echo "$pid"
}

start() {
  local port
  for port in "$SMTP_PORT" "$HTTP_PORT"; do
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then die "bad port: $port"; fi
  done
  fresh || die "Mailpit $MAILPIT_VERSION is not installed (run scripts/deps.sh)"
  mkdir -p "$DIR"
  running_pid >/dev/null && die "already running (pid $(<"$DIR/mailpit.pid")); stop it first"

  # No reverse DNS and no release check: nothing leaves the machine.
  local url=http://127.0.0.1:$HTTP_PORT pid
  "$BIN" --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$HTTP_PORT" \
    --database "$DIR/mailpit.db" --disable-version-check --smtp-disable-rdns \
    --smtp-auth-accept-any --smtp-auth-allow-insecure "$@" >>"$DIR/mailpit.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/mailpit.pid"
  if wait_http "$url/readyz" 15 "$pid"; then
    echo "$url"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  rm -f "$DIR/mailpit.pid"
  tail -n 20 "$DIR/mailpit.log" >&2 || true
  die "Mailpit did not answer on port $HTTP_PORT"
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/mailpit.pid"
}

(($# >= 1)) || usage
cmd=$1
case $cmd in
  install) (($# == 1)) || usage; install ;;
  start)
    (($# >= 4)) || usage
    DIR=$2 SMTP_PORT=$3 HTTP_PORT=$4
    shift 4
    start "$@"
    ;;
  stop) (($# == 2)) || usage; DIR=$2; stop ;;
  *) usage ;;
esac
