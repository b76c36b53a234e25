#!/usr/bin/env bash
# `make run`: the whole suite in the foreground.  Starts (unless already given by the
# environment) a private PostgreSQL cluster with the three databases, the local OpenID Connect
# provider standing in for Google, then the services and the nginx gateway on :8080.  Data lives
# in .run/ and survives restarts.  Ctrl-C stops everything and leaves no process behind.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=$ROOT/.run
BIN=$ROOT/build/bin
mkdir -p "$RUN/logs"
chmod 755 "$RUN"

USER_PORT=${USER_PORT:-5000}
ROOM_PORT=${ROOM_PORT:-5001}
RESERVATION_PORT=${RESERVATION_PORT:-5002}
GATEWAY_PORT=${GATEWAY_PORT:-8080}

pids=()
started_pg=false
started_oidc=false
started_nginx=false
started_kafka=false

stop_all() {
  trap - INT TERM EXIT
  echo "stopping…" >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  $started_nginx && "$ROOT/scripts/nginx.sh" stop "$RUN/nginx" || true
  $started_oidc && "$ROOT/scripts/oidc.sh" stop "$RUN/oidc" || true
  $started_kafka && "$ROOT/kafka/kafka.sh" stop "$RUN/kafka" || true
  $started_pg && "$ROOT/scripts/pg.sh" stop "$RUN/pg" || true
  echo "stopped." >&2
  exit 0
}
trap stop_all INT TERM EXIT

# The JWT secret is generated once and kept (private) so tokens survive restarts.
if [ ! -s "$RUN/jwt-secret" ]; then
  (umask 077; openssl rand -hex 32 > "$RUN/jwt-secret")
fi
export JWT_SECRET_KEY=${JWT_SECRET_KEY:-$(cat "$RUN/jwt-secret")}

# PostgreSQL: DATABASE_URL (a server URL without database name) replaces the local cluster.
if [ -n "${DATABASE_URL:-}" ]; then
  PG_BASE=${DATABASE_URL%/}
else
  PG_PORT=$("$ROOT/scripts/freeport.sh")
  PG_BASE=$("$ROOT/scripts/pg.sh" start "$RUN/pg" "$PG_PORT")
  started_pg=true
fi
USER_DATABASE_URL=${USER_DATABASE_URL:-$PG_BASE/user_db}
ROOM_DATABASE_URL=${ROOM_DATABASE_URL:-$PG_BASE/room_db}
RESERVATION_DATABASE_URL=${RESERVATION_DATABASE_URL:-$PG_BASE/reservation_db}

# Kafka: KAFKA_BROKER_URL replaces the local single-node KRaft broker.
if [ -z "${KAFKA_BROKER_URL:-}" ]; then
  mkdir -p "$RUN/kafka"
  KAFKA_PORT=$(cat "$RUN/kafka/port" 2>/dev/null || "$ROOT/scripts/freeport.sh")
  started_kafka=true
  KAFKA_BROKER_URL=$("$ROOT/kafka/kafka.sh" start "$RUN/kafka" "$KAFKA_PORT")
  echo "$KAFKA_PORT" > "$RUN/kafka/port"
fi
export KAFKA_BROKER_URL

# Google: without GOOGLE_CLIENT_ID a local provider stands in, so sign-in works offline.
if [ -z "${GOOGLE_CLIENT_ID:-}" ]; then
  mkdir -p "$RUN/oidc"
  OIDC_PORT=$("$ROOT/scripts/freeport.sh")
  export GOOGLE_DISCOVERY_URL
  GOOGLE_DISCOVERY_URL=$("$ROOT/scripts/oidc.sh" start "$RUN/oidc" "$OIDC_PORT")
  started_oidc=true
  export GOOGLE_CLIENT_ID=local-dev-client GOOGLE_CLIENT_SECRET=local-dev-secret
  export GOOGLE_REDIRECT_URI=http://localhost:$GATEWAY_PORT/auth/google/callback
  export OIDC_ALLOW_HTTP_LOOPBACK=true
  export ADMIN_EMAILS=${ADMIN_EMAILS:-admin@example.com}
fi

# What `make token` needs to reach the same database with the same secret.
(umask 077; printf 'USER_DATABASE_URL=%q\nJWT_SECRET_KEY=%q\n' "$USER_DATABASE_URL" \
  "$JWT_SECRET_KEY" > "$RUN/env")

start_service() { # name port database_url
  local name=$1 port=$2 url=$3
  PORT=$port DATABASE_URL=$url "$BIN/$name" >>"$RUN/logs/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "$name failed to start; last lines of .run/logs/$name.log:" >&2
      tail -n 20 "$RUN/logs/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$name is not ready after 10 s (see .run/logs/$name.log)" >&2
  exit 1
}

start_service user-service "$USER_PORT" "$USER_DATABASE_URL"
start_service room-service "$ROOM_PORT" "$ROOM_DATABASE_URL"
start_service reservation-service "$RESERVATION_PORT" "$RESERVATION_DATABASE_URL"

"$ROOT/scripts/nginx.sh" start "$RUN/nginx" "$GATEWAY_PORT" "$USER_PORT" "$ROOM_PORT" \
  "$RESERVATION_PORT" >/dev/null
started_nginx=true

echo "Ready: the suite is at http://localhost:$GATEWAY_PORT (user-service :$USER_PORT, room-service :$ROOM_PORT, reservation-service :$RESERVATION_PORT, Kafka $KAFKA_BROKER_URL). Logs in .run/logs/. Next: make token EMAIL=a@example.com ROLE=admin, then curl -H \"Authorization: Bearer \$TOKEN\" localhost:$USER_PORT/users/profile — Ctrl-C stops everything."

# Stay in the foreground until Ctrl-C or until a service dies.
wait -n "${pids[@]}" || true
echo "a service exited; see .run/logs/" >&2
