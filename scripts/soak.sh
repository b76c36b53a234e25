#!/usr/bin/env bash
# Soak run: builds the release binaries, starts the whole stack on free loopback ports the way
# the integration tests do (PostgreSQL, Kafka, OIDC provider, the three services, nginx), runs
# mixed load for SOAK_SECONDS (default 300) with SOAK_WORKERS (default 16) client threads,
# samples each service's RSS every 5 s and checks at the end: no overlapping confirmed
# reservations, reservation-service's rooms equal room-service's, RSS flat, no 5xx.
# Prints a summary table, writes build/reliability/soak.json, exits non-zero on a failed check.
#   SOAK_SECONDS=120 scripts/soak.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export SOAK_SECONDS=${SOAK_SECONDS:-300}
if ! [[ $SOAK_SECONDS =~ ^[0-9]+$ ]] || ((SOAK_SECONDS < 30)); then
  echo "soak.sh: SOAK_SECONDS must be a whole number of seconds >= 30" >&2
  exit 2
fi
make --no-print-directory all
export BIN_DIR=$ROOT/build/bin
exec /usr/bin/python3 "$ROOT/tests/soak/soak.py"
