#!/usr/bin/env bash
# Start a PostgreSQL server on loopback for the Postgres-instance tests.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_lsclusters -h | grep -q "^$ver main" || pg_createcluster "$ver" main >/dev/null
pg_ctlcluster "$ver" main start 2>/dev/null || true
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='weathervane'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE weathervane LOGIN SUPERUSER PASSWORD 'weathervane'\""
echo "PostgreSQL $ver running on 127.0.0.1:5432 (role weathervane)"
