#!/usr/bin/env bash
# `make run`: the whole suite in the foreground.  Starts (unless already given by the
# environment) a private PostgreSQL cluster with the three databases, the local OpenID Connect
# provider standing in for Google, Mailpit (an SMTP server keeping every message, with a web UI on
# MAILPIT_PORT, 8025), then the services and the nginx gateway on :8080.  Data lives
# in .run/ and survives restarts.  Ctrl-C (or SIGTERM) stops everything, leaves no process behind
# and exits 0; when a part dies on its own, everything is stopped and the exit status is 1, after
# a line naming that part.
#
# REPLICAS=N (1-9, default 1; `make run REPLICAS=3`) starts N instances of each service: replica k
# (0-based) of a service on its port + 10*k (user-service 5000, 5010, 5020; room-service 5001,
# 5011, ...), logging to .run/logs/<service>.log for the first and <service>-<k+1>.log after; the
# gateway balances across them (scripts/nginx.sh with port lists).  Each is watched like the rest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
RUN=$ROOT/.run
BIN=$ROOT/build/bin
mkdir -p "$RUN/logs"
chmod 755 "$RUN"

USER_PORT=${USER_PORT:-5000}
ROOM_PORT=${ROOM_PORT:-5001}
RESERVATION_PORT=${RESERVATION_PORT:-5002}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
MAILPIT_PORT=${MAILPIT_PORT:-8025}
REPLICAS=${REPLICAS:-1}
[[ $REPLICAS =~ ^[1-9]$ ]] || { echo "run.sh: REPLICAS must be 1-9, not '$REPLICAS'" >&2; exit 2; }
for port in "$USER_PORT" "$ROOM_PORT" "$RESERVATION_PORT"; do
  if ! port_valid "$port" || ! port_valid $((port + 10 * (REPLICAS - 1))); then
    echo "run.sh: bad service port $port (its last replica's must be 65535 or below)" >&2
    exit 2
  fi
done

pids=()         # the services, our children
watch_names=()  # every part started here, watched while the suite runs: its name,
watch_pids=()   # its pid
watch_logs=()   # and where its log is
sleeper=
started_pg=false
started_oidc=false
started_nginx=false
started_kafka=false
started_mailpit=false

watch() { # name pid log
  watch_names+=("$1")
  watch_pids+=("$2")
  watch_logs+=("$3")
}

stop_all() {
  trap - INT TERM EXIT
  echo "stopping…" >&2
  if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if $started_nginx; then "$ROOT/scripts/nginx.sh" stop "$RUN/nginx" || true; fi
  if $started_oidc; then "$ROOT/scripts/oidc.sh" stop "$RUN/oidc" || true; fi
  if $started_mailpit; then "$ROOT/scripts/mailpit.sh" stop "$RUN/mailpit" || true; fi
  if $started_kafka; then "$ROOT/kafka/kafka.sh" stop "$RUN/kafka" || true; fi
  if $started_pg; then "$ROOT/scripts/pg.sh" stop "$RUN/pg" || true; fi
  echo "stopped." >&2
}
# Ctrl-C and SIGTERM are how a healthy suite is stopped: exit 0.  Any other way out (a part that
# failed to start or died, an error in this script) keeps its non-zero status.
on_signal() { stop_all; exit 0; }
on_exit() {
  local rc=$?
  stop_all
  exit "$rc"
}
trap on_signal INT TERM
trap on_exit EXIT

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
  watch PostgreSQL "$(head -n 1 "$RUN/pg/postmaster.pid")" .run/pg/log
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
  watch Kafka "$(<"$RUN/kafka/kafka.pid")" .run/kafka/kafka.log
fi
export KAFKA_BROKER_URL

# Google: without GOOGLE_CLIENT_ID a local provider stands in, so sign-in works offline.
if [ -z "${GOOGLE_CLIENT_ID:-}" ]; then
  mkdir -p "$RUN/oidc"
  OIDC_PORT=$("$ROOT/scripts/freeport.sh")
  export GOOGLE_DISCOVERY_URL
  GOOGLE_DISCOVERY_URL=$("$ROOT/scripts/oidc.sh" start "$RUN/oidc" "$OIDC_PORT")
  started_oidc=true
  watch "the OpenID Connect provider" "$(<"$RUN/oidc/oidc.pid")" .run/oidc/oidc.log
  export GOOGLE_CLIENT_ID=local-dev-client GOOGLE_CLIENT_SECRET=local-dev-secret
  export GOOGLE_REDIRECT_URI=http://localhost:$GATEWAY_PORT/auth/google/callback
  export OIDC_ALLOW_HTTP_LOOPBACK=true
  export ADMIN_EMAILS=${ADMIN_EMAILS:-admin@example.com}
fi

# Mail: without SMTP_URL, Mailpit receives it (SMTP on a free port, web UI on MAILPIT_PORT); the
# messages are kept in .run/mailpit/ across restarts.
if [ -z "${SMTP_URL:-}" ]; then
  SMTP_PORT=$("$ROOT/scripts/freeport.sh")
  MAILPIT_URL=$("$ROOT/scripts/mailpit.sh" start "$RUN/mailpit" "$SMTP_PORT" "$MAILPIT_PORT")
  started_mailpit=true
  watch Mailpit "$(<"$RUN/mailpit/mailpit.pid")" .run/mailpit/mailpit.log
  export SMTP_URL=smtp://127.0.0.1:$SMTP_PORT
  export SMTP_FROM=${SMTP_FROM:-rooms@localhost}
  mail="Mailpit $MAILPIT_URL (SMTP $SMTP_URL)"
else
  mail="mail via $SMTP_URL"
fi

# What `make token` needs to reach the same database with the same secret.
(umask 077; printf 'USER_DATABASE_URL=%q\nJWT_SECRET_KEY=%q\n' "$USER_DATABASE_URL" \
  "$JWT_SECRET_KEY" > "$RUN/env")

start_service() { # name port database_url log (under .run/logs/)
  local name=$1 port=$2 url=$3 log=$4 pid
  PORT=$port DATABASE_URL=$url "$BIN/$name" >>"$RUN/logs/$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  watch "$name :$port" "$pid" ".run/logs/$log"
  wait_http "http://127.0.0.1:$port/ready" 10 "$pid" && return 0
  if alive "$pid"; then
    echo "$name is not ready after 10 s (see .run/logs/$log)" >&2
  else
    echo "$name failed to start; last lines of .run/logs/$log:" >&2
    tail -n 20 "$RUN/logs/$log" >&2
  fi
  exit 1
}

# Replica by replica (the first of each service applies its migrations); each service's ports,
# comma-separated, for the gateway and the ready line.
user_ports="" room_ports="" reservation_ports="" suffix=""
for ((k = 0; k < REPLICAS; k++)); do
  if ((k > 0)); then suffix=-$((k + 1)); fi
  # The local gateway reaches user-service from 127.0.0.1: believe its X-Real-IP (the client).
  TRUSTED_GATEWAYS=${TRUSTED_GATEWAYS:-127.0.0.1} start_service user-service \
    $((USER_PORT + 10 * k)) "$USER_DATABASE_URL" "user-service$suffix.log"
  start_service room-service $((ROOM_PORT + 10 * k)) "$ROOM_DATABASE_URL" \
    "room-service$suffix.log"
  # Webhook receivers tried out locally listen on loopback, which is refused by default.
  WEBHOOK_ALLOW_LOOPBACK=${WEBHOOK_ALLOW_LOOPBACK:-true} start_service reservation-service \
    $((RESERVATION_PORT + 10 * k)) "$RESERVATION_DATABASE_URL" "reservation-service$suffix.log"
  user_ports+=${user_ports:+,}$((USER_PORT + 10 * k))
  room_ports+=${room_ports:+,}$((ROOM_PORT + 10 * k))
  reservation_ports+=${reservation_ports:+,}$((RESERVATION_PORT + 10 * k))
done

"$ROOT/scripts/nginx.sh" start "$RUN/nginx" "$GATEWAY_PORT" "$user_ports" "$room_ports" \
  "$reservation_ports" >/dev/null
started_nginx=true
watch "the nginx gateway" "$(<"$RUN/nginx/nginx.pid")" .run/nginx/error.log

echo "Ready: the web app is at http://localhost:$GATEWAY_PORT/ and the API behind the same gateway (user-service :$user_ports, room-service :$room_ports, reservation-service :$reservation_ports, Kafka $KAFKA_BROKER_URL, $mail). Logs in .run/logs/. Next: make token EMAIL=a@example.com ROLE=admin, then curl -H \"Authorization: Bearer \$TOKEN\" localhost:$USER_PORT/users/profile — Ctrl-C stops everything."

# Stay in the foreground until Ctrl-C or until a part dies (checked every second; `wait` on a
# background sleep lets the signal traps run at once).
while :; do
  for i in "${!watch_pids[@]}"; do
    if ! alive "${watch_pids[$i]}"; then
      how=exited
      if [[ " ${pids[*]} " == *" ${watch_pids[$i]} "* ]]; then # our child: reap it for its status
        rc=0
        wait "${watch_pids[$i]}" || rc=$?
        how="exited with status $rc"
      fi
      echo "make run: ${watch_names[$i]} (pid ${watch_pids[$i]}) $how; log: ${watch_logs[$i]}" >&2
      exit 1
    fi
  done
  sleep 1 &
  sleeper=$!
  wait "$sleeper" || true
  sleeper=
done
