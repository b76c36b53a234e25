#!/bin/bash
# Runs once, when the postgres image initialises an empty data directory
# (/docker-entrypoint-initdb.d): creates the application role and the three databases it owns,
# and btree_gist in the reservation database (its exclusion constraint needs it).
# Environment: APP_DB_USER, APP_DB_PASSWORD, APP_DATABASES (space-separated), RESERVATION_DB.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v app_user="$APP_DB_USER" -v app_password="$APP_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') \gexec
SQL

for db in $APP_DATABASES; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v db="$db" -v app_user="$APP_DB_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'app_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
done

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$RESERVATION_DB" <<'SQL'
CREATE EXTENSION IF NOT EXISTS btree_gist;
SQL
