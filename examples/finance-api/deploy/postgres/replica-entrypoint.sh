#!/bin/bash
# A streaming replica from an empty volume: a base backup of the primary
# (pg_basebackup -R writes primary_conninfo and standby.signal), then the
# official entrypoint, which finds a data directory and starts the server
# as a hot standby. A volume that already holds a replica restarts as one.
set -euo pipefail
PRIMARY_PORT=${PRIMARY_PORT:-5432}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # The primary listens on TCP only after its init scripts (roles, pg_hba)
  # have run: the image's temporary init server has listen_addresses=''.
  until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do sleep 1; done
  PGPASSWORD=$(cat "$REPLICATION_PASSWORD_FILE") pg_basebackup \
    --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --username=replicator --no-password \
    --pgdata="$PGDATA" --wal-method=stream --write-recovery-conf --checkpoint=fast
  chmod 0700 "$PGDATA"
fi
exec docker-entrypoint.sh postgres -c hot_standby=on -c max_connections=200
