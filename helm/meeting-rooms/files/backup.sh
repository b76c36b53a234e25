#!/bin/bash
# Backups of the three databases: one script for the chart's CronJob (helm/meeting-rooms,
# templates/backup/) and for `make backup` / `make restore` (scripts/backup.sh), so that what the
# tests run is what the cluster runs.  README "Backups" in the chart describes the procedure.
#
#   backup.sh dump DIR             pg_dump -Fc of each database into DIR/<database>.dump
#   backup.sh restore DIR          drops each database and recreates it from DIR/<database>.dump
#   backup.sh upload DIR           copies DIR/<database>.dump to s3://BUCKET/<prefix>, then prunes
#   backup.sh prune                deletes the dumps older than BACKUP_RETENTION_DAYS
#   backup.sh download PREFIX DIR  copies s3://BUCKET/PREFIX<database>.dump into DIR
#
# PostgreSQL: libpq's variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE, ...).  `dump`
# needs only the owner of the databases (the services' role); `restore` needs a role that may
# drop and create databases (the postgres superuser of the bundled server).
#   BACKUP_DATABASES      the databases, in the order they are dumped (default
#                         "reservation_db room_db user_db": a consumer's database before the
#                         producers', so that a copy in the backup is never newer than its source)
#   BACKUP_PG_RUNAS       run psql, pg_dump and pg_restore as this OS user (runuser): the local
#                         cluster's postgres superuser logs in by peer authentication
# S3 (aws CLI v2; credentials and region from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION as the CLI reads them):
#   BACKUP_S3_BUCKET      the bucket (required)
#   BACKUP_S3_PREFIX      where a run's dumps go, a date(1) format in UTC ending with /
#                         (default "meeting-rooms/%Y-%m-%d/"; the chart's default adds the
#                         release's namespace and name).  It must start with fixed text (no %
#                         first): pruning lists the text before the first %, and deletes only
#                         keys that the whole format could have produced (see prefix_regex)
#   BACKUP_S3_ENDPOINT    an S3-compatible service's URL (empty = AWS S3)
#   BACKUP_S3_PATH_STYLE  true = path-style requests (most S3-compatible services)
#   BACKUP_RETENTION_DAYS dumps whose object is older than this many days are deleted after
#                         each upload; 0 = keep every dump
#
# Bash before 4.4 (amazon/aws-cli's amazonlinux:2 base has 4.2) treats "${a[@]}" of an empty array
# as unbound under set -u: an array that may be empty is expanded as ${a[@]+"${a[@]}"}
# (tests/offline/test_helm_backup.py checks this); DATABASES is refused when empty.
set -euo pipefail

read -ra DATABASES <<<"${BACKUP_DATABASES:-reservation_db room_db user_db}"
PREFIX=${BACKUP_S3_PREFIX:-meeting-rooms/%Y-%m-%d/}

die() {
  echo "backup.sh: $*" >&2
  exit 1
}
note() { echo "backup.sh: $*" >&2; }

pg() {
  if [[ -n ${BACKUP_PG_RUNAS:-} ]]; then
    runuser -u "$BACKUP_PG_RUNAS" -- "$@"
  else
    "$@"
  fi
}

dump() {
  local dir=$1 db
  mkdir -p "$dir"
  for db in "${DATABASES[@]}"; do
    # To a temporary name first: a dump that fails half-way is never taken for a whole one.
    pg pg_dump --format=custom --no-password --dbname="$db" >"$dir/$db.dump.part" ||
      die "pg_dump of $db failed"
    mv "$dir/$db.dump.part" "$dir/$db.dump"
    note "dumped $db ($(stat -c %s "$dir/$db.dump") bytes)"
  done
}

# Every dump is checked before the first database is dropped, so a wrong DIR drops nothing.
# --create recreates each database as it was dumped (owner, encoding, locale, its grants).  The
# services must be stopped: a connected session makes the restore refuse before it drops anything.
restore() {
  local dir=$1 db busy
  for db in "${DATABASES[@]}"; do
    [[ -s $dir/$db.dump ]] || die "no dump $dir/$db.dump"
    pg pg_restore --list <"$dir/$db.dump" >/dev/null || die "$dir/$db.dump is not a pg_dump archive"
  done
  busy=$(pg psql --no-psqlrc --quiet --no-align --tuples-only --no-password --dbname=postgres \
    -v ON_ERROR_STOP=1 -v dbs="${DATABASES[*]}" <<<"SELECT string_agg(DISTINCT datname || ' (' ||
      coalesce(nullif(application_name, ''), usename::text) || ')', ', ') FROM pg_stat_activity
      WHERE datname = ANY (string_to_array(:'dbs', ' '))") || die "cannot reach PostgreSQL"
  [[ -z $busy ]] || die "sessions are connected to $busy: stop the services first (nothing was changed)"
  for db in "${DATABASES[@]}"; do
    pg psql --no-psqlrc --quiet --no-password --dbname=postgres -v ON_ERROR_STOP=1 -v db="$db" \
      <<<"SELECT format('DROP DATABASE IF EXISTS %I', :'db') \\gexec" ||
      die "could not drop $db (are the services still connected? stop them first: the chart's README, \"Backups\")"
    pg pg_restore --create --exit-on-error --no-password --dbname=postgres <"$dir/$db.dump" ||
      die "restoring $db failed"
    note "restored $db"
  done
}

s3() {
  local args=()
  [[ -n ${BACKUP_S3_ENDPOINT:-} ]] && args+=(--endpoint-url "$BACKUP_S3_ENDPOINT")
  aws ${args[@]+"${args[@]}"} "$@"
}

# An anchored ERE matching every key the date(1) format $1 can produce: each conversion becomes
# its digits, every other character stands for itself.  A conversion without a fixed form here
# is refused (values.schema.json accepts the same set).
prefix_regex() {
  local fmt=$1 re='' c i
  for ((i = 0; i < ${#fmt}; i++)); do
    c=${fmt:i:1}
    if [[ $c == % ]]; then
      i=$((i + 1))
      case ${fmt:i:1} in
      Y | G) re+='[0-9]{4}' ;;
      m | d | H | M | S | I | y | C | V | U | W) re+='[0-9]{2}' ;;
      e) re+='[ 0-9][0-9]' ;;
      j) re+='[0-9]{3}' ;;
      u) re+='[1-7]' ;;
      w) re+='[0-6]' ;;
      s) re+='[0-9]+' ;;
      F) re+='[0-9]{4}-[0-9]{2}-[0-9]{2}' ;;
      T) re+='[0-9]{2}:[0-9]{2}:[0-9]{2}' ;;
      %) re+='%' ;;
      *) die "BACKUP_S3_PREFIX: unsupported conversion %${fmt:i:1} in $fmt" ;;
      esac
    else
      re+=$(literal_regex "$c")
    fi
  done
  printf '%s' "$re"
}

# One character as an ERE that matches only itself.
literal_regex() {
  case $1 in
  [[:alnum:]_]) printf '%s' "$1" ;;
  "\\" | '^') printf '\\%s' "$1" ;;
  ']') printf '[]]' ;;
  *) printf '[%s]' "$1" ;;
  esac
}

need_bucket() {
  [[ -n ${BACKUP_S3_BUCKET:-} ]] || die "BACKUP_S3_BUCKET is not set"
  [[ $PREFIX == */ && $PREFIX != /* ]] || die "BACKUP_S3_PREFIX must end with / and not start with one: $PREFIX"
  [[ $PREFIX != %* ]] || die "BACKUP_S3_PREFIX must start with fixed text, not a %: $PREFIX"
  prefix_regex "$PREFIX" >/dev/null
  if [[ ${BACKUP_S3_PATH_STYLE:-false} == true && -z ${AWS_CONFIG_FILE:-} ]]; then
    export AWS_CONFIG_FILE
    AWS_CONFIG_FILE=$(mktemp)
    printf '[default]\ns3 =\n  addressing_style = path\n' >"$AWS_CONFIG_FILE"
  fi
}

upload() {
  local dir=$1 db prefix
  need_bucket
  prefix=$(date -u +"$PREFIX")
  for db in "${DATABASES[@]}"; do
    [[ -s $dir/$db.dump ]] || die "no dump $dir/$db.dump"
  done
  for db in "${DATABASES[@]}"; do
    s3 s3 cp --only-show-errors "$dir/$db.dump" "s3://$BACKUP_S3_BUCKET/$prefix$db.dump" ||
      die "uploading $db.dump failed"
    note "uploaded s3://$BACKUP_S3_BUCKET/$prefix$db.dump"
  done
  prune
}

# Lists the objects under the prefix's fixed part and deletes those whose key the whole prefix
# format could have produced followed by <database>.dump, and whose last modification is older
# than the retention.  Nothing else in the bucket is touched (another release's or application's
# keys under the same fixed part, a hand-kept copy), and a listing that fails deletes nothing.
prune() {
  local days=${BACKUP_RETENTION_DAYS:-0} base re cutoff listing key modified db deleted=0
  need_bucket
  [[ $days =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a whole number of days: $days"
  ((days > 0)) || return 0
  base=${PREFIX%%%*}
  re=$(prefix_regex "$PREFIX")
  cutoff=$(($(date -u +%s) - days * 86400))
  listing=$(s3 s3api list-objects-v2 --bucket "$BACKUP_S3_BUCKET" --prefix "$base" \
    --query 'Contents[].[Key, LastModified]' --output text) || die "listing s3://$BACKUP_S3_BUCKET/$base failed"
  while IFS=$'\t' read -r key modified; do
    [[ -n $key && -n ${modified:-} && $key != None ]] || continue
    for db in "${DATABASES[@]}"; do
      [[ $key =~ ^$re$(prefix_regex "$db")[.]dump$ ]] || continue
      modified=$(date -u -d "$modified" +%s) || die "unreadable time for $key: $modified"
      if ((modified < cutoff)); then
        s3 s3api delete-object --bucket "$BACKUP_S3_BUCKET" --key "$key" >/dev/null ||
          die "deleting $key failed"
        deleted=$((deleted + 1))
      fi
      break
    done
  done <<<"$listing"
  note "pruned $deleted dump(s) older than $days day(s) under s3://$BACKUP_S3_BUCKET/$base"
}

download() {
  local prefix=$1 dir=$2 db
  need_bucket
  mkdir -p "$dir"
  for db in "${DATABASES[@]}"; do
    s3 s3 cp --only-show-errors "s3://$BACKUP_S3_BUCKET/$prefix$db.dump" "$dir/$db.dump" ||
      die "downloading $prefix$db.dump failed"
  done
  note "downloaded ${DATABASES[*]} from s3://$BACKUP_S3_BUCKET/$prefix into $dir"
}

usage() { die "usage: backup.sh dump DIR | restore DIR | upload DIR | prune | download PREFIX DIR"; }

(($# >= 1)) || usage
((${#DATABASES[@]} > 0)) || die "BACKUP_DATABASES names no database"
case $1 in
dump | restore | upload) (($# == 2)) || usage; "$1" "$2" ;;
prune) (($# == 1)) || usage; prune ;;
download) (($# == 3)) || usage; download "$2" "$3" ;;
*) usage ;;
esac
