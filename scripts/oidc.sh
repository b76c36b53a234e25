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

start() {
  port_valid "$PORT" || die "bad port: $PORT"
  [[ -d $ROOT/tests/oidc/node_modules/oauth2-mock-server ]] ||
    die "tests/oidc/node_modules is missing (run scripts/deps.sh)"
  command -v node >/dev/null || die "node is not installed (run scripts/deps.sh)"

  local url=http://localhost:$PORT/.well-known/openid-configuration
  daemon_start "$DIR" oidc "$SERVER" "$url" 15 node "$SERVER" "$PORT" || exit 1
  echo "$url"
}

(($# >= 2)) || usage
cmd=$1
DIR=$2
case $cmd in
  start) (($# == 3)) || usage; PORT=$3; start ;;
  stop) (($# == 2)) || usage; daemon_stop "$DIR" oidc "$SERVER" ;;
  *) usage ;;
esac
