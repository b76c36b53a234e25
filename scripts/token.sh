#!/usr/bin/env bash
# `make token EMAIL=… [ROLE=admin] [NAME=…]`: prints an access token for the stack that
# `make run` started (same database, same JWT secret), creating the user if needed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
email=${1:-}
role=${2:-}
name=${3:-}
if [ -z "$email" ]; then
  echo "usage: make token EMAIL=someone@example.com [ROLE=admin|employee] [NAME=…]" >&2
  exit 2
fi
if [ ! -f "$ROOT/.run/env" ]; then
  echo "no running stack found: start it with 'make run' first" >&2
  exit 1
fi
# shellcheck disable=SC1091
. "$ROOT/.run/env"
args=(token --email "$email")
[ -n "$role" ] && args+=(--role "$role")
[ -n "$name" ] && args+=(--name "$name")
DATABASE_URL=$USER_DATABASE_URL JWT_SECRET_KEY=$JWT_SECRET_KEY LOG_LEVEL=warn \
  exec "$ROOT/build/bin/user-service" "${args[@]}"
