#!/usr/bin/env bash
# Stops what scripts/services-up.sh started and removes its data (idempotent).
set -euo pipefail
dir=${SERVICES_DIR:-${TMPDIR:-/tmp}/assembly-services}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$pgbin" ] && [ -f "$dir/pg/postmaster.pid" ]; then
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null || true
  else
    "$pgbin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null || true
  fi
fi
if [ -f "$dir/redis.pid" ]; then
  pid=$(cat "$dir/redis.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -rf "$dir"
