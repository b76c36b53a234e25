#!/usr/bin/env bash
# `make backup` and `make restore FILE=DIR` against the local cluster of `make run` (.run/pg),
# with the chart's script (helm/meeting-rooms/files/backup.sh), so the two cannot drift apart.
#
#   scripts/backup.sh backup        dumps user_db, room_db and reservation_db into
#                                   backups/<UTC time>/<database>.dump (git-ignored, mode 700)
#   scripts/backup.sh restore DIR   drops the three databases and recreates them from DIR
#
# Both work whether or not `make run` is up: a cluster that is not running is started for the
# command and stopped afterwards.  A restore needs the services stopped (stop `make run` with
# Ctrl-C first); while they are connected the restore refuses before changing anything.  The
# client tools run as the cluster's postgres superuser over its Unix socket (peer
# authentication), as scripts/pg.sh does.  A cluster given to `make run` by DATABASE_URL is not
# handled here: run the chart's script with libpq's variables against it (its README, "Backups").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGDIR=$ROOT/.run/pg
BACKUP=$ROOT/helm/meeting-rooms/files/backup.sh

die() { echo "backup: $*" >&2; exit 1; }
usage() { die "usage: make backup | make restore FILE=backups/<time>"; }

(($# >= 1)) || usage
cmd=$1
case $cmd in
  backup) (($# == 1)) || usage ;;
  restore)
    (($# == 2)) || usage
    [[ -n $2 ]] || usage
    FROM=$(cd "$2" 2>/dev/null && pwd) || die "no directory $2"
    ;;
  *) usage ;;
esac
[[ $(id -u) -eq 0 ]] || die "must run as root (like make run: the cluster belongs to the postgres user)"
[[ -f $PGDIR/PG_VERSION ]] || die "no local cluster in .run/pg: start the suite once with make run"

# The cluster's port: the running server's (postmaster.pid, line 4), or a free one for a start.
started=false
if runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl status -D "$PGDIR" >/dev/null 2>&1; then
  port=$(sed -n 4p "$PGDIR/postmaster.pid")
else
  port=$("$ROOT/scripts/freeport.sh")
  "$ROOT/scripts/pg.sh" start "$PGDIR" "$port" >/dev/null
  started=true
  trap '"$ROOT/scripts/pg.sh" stop "$PGDIR"' EXIT
fi
export PGHOST=$PGDIR PGPORT=$port PGUSER=postgres BACKUP_PG_RUNAS=postgres
cd / # the postgres user may not be allowed into the caller's directory

case $cmd in
  backup)
    dir=$ROOT/backups/$(date -u +%Y%m%dT%H%M%SZ)
    # The dumps hold the users' e-mail addresses and token hashes: only root may read them.
    (umask 077; mkdir -p "$dir")
    (umask 077; bash "$BACKUP" dump "$dir")
    echo "backup: ${dir#"$ROOT"/} (restore: make restore FILE=${dir#"$ROOT"/})"
    ;;
  restore)
    bash "$BACKUP" restore "$FROM"
    echo "backup: restored from $FROM; start the suite with make run"
    ;;
esac
if $started; then echo "backup: (the cluster was started for this and is stopped again)" >&2; fi
