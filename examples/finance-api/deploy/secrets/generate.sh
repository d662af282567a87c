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
# prometheus 65534, grafana 472).
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
write grafana_admin_password "$(random)"
pw=$(cat finance_db_password)
write database_url "postgres://finance:$pw@postgres-primary:5432/finance"
write database_replica_urls "postgres://finance:$pw@postgres-replica-1:5432/finance,postgres://finance:$pw@postgres-replica-2:5432/finance"
# nginx's certificate: self-signed for localhost (put a real one in tls/ for a
# real host name); nginx reads the key as root before dropping privileges
if [ ! -s tls/tls.crt ]; then
  mkdir -p tls
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout tls/tls.key -out tls/tls.crt 2>/dev/null
  chmod 0600 tls/tls.key
  echo "wrote tls/tls.crt, tls/tls.key (self-signed)"
fi
