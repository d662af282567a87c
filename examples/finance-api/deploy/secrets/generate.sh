#!/bin/sh
# Writes the compose stack's secrets into this directory, once: random
# passwords and tokens, and the database URLs that carry the application's
# password. Existing files are kept (re-running never rotates a password the
# database already has). The files are never committed (.gitignore) and never
# enter the image (Dockerfile.dockerignore).
#
# The directory is 0700 (other users of the machine cannot read it); the
# files are 0644 because compose mounts them into containers as they are,
# and the readers there are unprivileged users (node 1000, postgres 999,
# prometheus 65534).
set -eu
cd "$(dirname "$0")"
chmod 0700 .
random () { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
write () { [ -s "$1" ] || { printf '%s' "$2" > "$1"; chmod 0644 "$1"; echo "wrote $1"; }; }
write postgres_password "$(random)"
write replication_password "$(random)"
write finance_db_password "$(random)"
write session_secret "$(random)"
write metrics_token "$(random)"
pw=$(cat finance_db_password)
write database_url "postgres://finance:$pw@postgres-primary:5432/finance"
write database_replica_urls "postgres://finance:$pw@postgres-replica-1:5432/finance,postgres://finance:$pw@postgres-replica-2:5432/finance"
