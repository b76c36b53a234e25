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

start() {
  local port
  for port in "$SMTP_PORT" "$HTTP_PORT"; do port_valid "$port" || die "bad port: $port"; done
  fresh || die "Mailpit $MAILPIT_VERSION is not installed (run scripts/deps.sh)"

  # No reverse DNS and no release check: nothing leaves the machine.
  local url=http://127.0.0.1:$HTTP_PORT
  daemon_start "$DIR" mailpit "$BIN" "$url/readyz" 15 \
    "$BIN" --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$HTTP_PORT" \
    --database "$DIR/mailpit.db" --disable-version-check --smtp-disable-rdns \
    --smtp-auth-accept-any --smtp-auth-allow-insecure "$@" || exit 1
  echo "$url"
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
  stop) (($# == 2)) || usage; daemon_stop "$2" mailpit "$BIN" ;;
  *) usage ;;
esac
