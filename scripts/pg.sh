#!/usr/bin/env bash
# A private PostgreSQL 15 cluster in its own directory, on its own port.
#
# Usage:
#   scripts/pg.sh start DIR PORT   init DIR on first use, start, ensure role `app` and the
#                                  databases user_db, room_db, reservation_db (btree_gist);
#                                  prints one line: postgresql://app:PASSWORD@127.0.0.1:PORT
#   scripts/pg.sh stop DIR         fast shutdown; no-op when not running
#   scripts/pg.sh kill DIR         immediate shutdown (simulated crash); `start` recovers
#
# DIR is an absolute path; it becomes the data directory (owner postgres, mode 700) and
# holds the Unix socket, the server log (DIR/log) and the app password (DIR/app-password).
# Parent directories that the postgres user cannot enter get o+x (noted on stderr).
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
DATABASES=(user_db room_db reservation_db)

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() { die "usage: pg.sh start DIR PORT | stop DIR | kill DIR"; }
as_pg() { runuser -u postgres -- "$@"; }

is_running() { [[ -d $DIR ]] && as_pg "$PGBIN/pg_ctl" status -D "$DIR" >/dev/null 2>&1; }

# Let the postgres user reach DIR: add search permission where it is missing.
open_parents() {
  local d
  d=$(dirname "$DIR")
  while [[ $d != / ]]; do
    if ! as_pg test -x "$d" 2>/dev/null; then
      chmod o+x "$d"
      echo "pg.sh: note: chmod o+x $d so that postgres can reach $DIR" >&2
    fi
    d=$(dirname "$d")
  done
}

write_config() {
  cat >"$DIR/suite.conf" <<EOF
# Written by scripts/pg.sh on every start.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 200
shared_buffers = 128MB
# An idle client that vanished without closing its connection (its host died or was cut off)
# loses its session within 5 + 2 x 3 = 11 s, and with it the locks it held: the same moderate
# settings as the chart's postgresql.deadClientDetection.  The outbox publisher's session asks
# for 1 s probes and a 3 s tcp_user_timeout itself (common/src/outbox.c); no server-wide
# tcp_user_timeout, which would cut off stalled readers, replication and every session of a
# short network blip (docs/operations.md#a-node-that-vanishes).
# idle_session_timeout stays off: it would end the pools' idle sessions.
tcp_keepalives_idle = 5
tcp_keepalives_interval = 2
tcp_keepalives_count = 3
client_connection_check_interval = 2000
EOF
  chown postgres:postgres "$DIR/suite.conf"
}

init_cluster() {
  local out
  out=$(as_pg "$PGBIN/initdb" -D "$DIR" --username=postgres --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 2>&1) || {
    echo "$out" >&2; die "initdb failed in $DIR"; }
  echo "include = 'suite.conf'" >>"$DIR/postgresql.conf"
}

ensure_databases() {
  local password=$1 db
  {
    cat <<EOF
SET client_min_messages = warning;
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') AS need_role \gset
\if :need_role
CREATE ROLE app LOGIN;
\endif
ALTER ROLE app WITH LOGIN PASSWORD '$password';
EOF
    for db in "${DATABASES[@]}"; do
      printf '%s\n' "SELECT 'CREATE DATABASE $db OWNER app' WHERE NOT EXISTS" \
        "  (SELECT 1 FROM pg_database WHERE datname = '$db') \\gexec"
    done
    printf '%s\n' '\connect reservation_db' 'SET client_min_messages = warning;' \
      'CREATE EXTENSION IF NOT EXISTS btree_gist;'
  } | as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres >/dev/null
}

start() {
  if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then die "bad port: $PORT"; fi
  # A Unix socket path is limited to 107 bytes: DIR/.s.PGSQL.PORT must fit.
  ((${#DIR} <= 90)) || die "DIR is too long for a Unix socket path (max 90 chars): $DIR"
  [[ -x $PGBIN/postgres ]] || die "PostgreSQL 15 is not installed (run scripts/deps.sh)"

  umask 022
  mkdir -p "$DIR"
  chown postgres:postgres "$DIR"
  chmod 700 "$DIR"
  open_parents

  [[ -f $DIR/PG_VERSION ]] || init_cluster

  if is_running; then
    local running_port
    running_port=$(sed -n 4p "$DIR/postmaster.pid")
    [[ $running_port == "$PORT" ]] || die "already running in $DIR on port $running_port"
  else
    write_config
    if ! as_pg "$PGBIN/pg_ctl" start -D "$DIR" -l "$DIR/log" -w -t 60 >/dev/null 2>&1; then
      tail -n 20 "$DIR/log" >&2 || true
      die "could not start PostgreSQL in $DIR on port $PORT"
    fi
  fi

  local pwfile=$DIR/app-password password
  [[ -s $pwfile ]] || (umask 077; openssl rand -hex 16 >"$pwfile")
  password=$(<"$pwfile")
  ensure_databases "$password"
  echo "postgresql://app:$password@127.0.0.1:$PORT"
}

stop() {
  local mode=$1
  is_running || return 0
  as_pg "$PGBIN/pg_ctl" stop -D "$DIR" -m "$mode" -w -t 60 >/dev/null
}

cd /
[[ $(id -u) -eq 0 ]] || die "must run as root"
(($# >= 2)) || usage
cmd=$1
DIR=$2
[[ $DIR == /* ]] || die "DIR must be an absolute path: $DIR"
DIR=${DIR%/}

case $cmd in
  start) (($# == 3)) || usage; PORT=$3; start ;;
  stop) (($# == 2)) || usage; stop fast ;;
  kill) (($# == 2)) || usage; stop immediate ;;
  *) usage ;;
esac
