#!/bin/bash
# Runs once, when the primary's data directory is created (the official
# image's /docker-entrypoint-initdb.d): the application's role and the
# replication role, passwords read from the compose secrets, and a pg_hba
# line that lets the replicas stream (the image's own line, `host all all
# all`, does not match replication connections).
set -euo pipefail
app_password=$(cat "$FINANCE_DB_PASSWORD_FILE")
replication_password=$(cat "$REPLICATION_PASSWORD_FILE")
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set app_password="$app_password" --set replication_password="$replication_password" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'replication_password';
CREATE ROLE finance WITH LOGIN PASSWORD :'app_password';
-- the app's migrations create its tables: it owns its database (and, since
-- PostgreSQL 15, thereby the public schema)
ALTER DATABASE finance OWNER TO finance;
SQL
echo 'host replication replicator all scram-sha-256' >> "$PGDATA/pg_hba.conf"
