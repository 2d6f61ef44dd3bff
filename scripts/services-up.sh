#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster and a Redis server on loopback for the service tests
# (idempotent: does nothing for a server that already answers). Installs them from Debian when
# they are missing. Prints the environment the tests read; use it with
#   eval "$(bash scripts/services-up.sh)"
# PG_PORT (default 54329), REDIS_PORT (default 63799), SERVICES_DIR (default
# ${TMPDIR:-/tmp}/assembly-services) override the defaults. scripts/services-down.sh stops both.
set -euo pipefail
pg_port=${PG_PORT:-54329}
redis_port=${REDIS_PORT:-63799}
dir=${SERVICES_DIR:-${TMPDIR:-/tmp}/assembly-services}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)

if [ -z "$pgbin" ] || ! command -v redis-server >/dev/null 2>&1; then
  echo "== apt-get install postgresql redis-server" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql \
    redis-server) >&2
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
mkdir -p "$dir"

# PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pgdata="$dir/pg"
if ! "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"
    [ "$(id -u)" = 0 ] && chown postgres "$dir" "$pgdata"
    as_pg "$pgbin/initdb" -D "$pgdata" -U assembly --auth=trust -E UTF8 >/dev/null
  fi
  # fsync off: a test cluster that is thrown away (durability is PostgreSQL's, not ours)
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $pg_port -k $pgdata -c fsync=off -c max_connections=300" start >&2
fi

if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

echo "export ASSEMBLY_TEST_PG_URL=postgresql://assembly@127.0.0.1:$pg_port/postgres"
echo "export ASSEMBLY_TEST_REDIS_URL=redis://127.0.0.1:$redis_port"
