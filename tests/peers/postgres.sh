#!/usr/bin/env bash
# A PostgreSQL for the store tests. Prints a URL for MHG_TEST_PG.
# - When the machine's own server answers on 127.0.0.1:5432 with a `test` database (CI and the
#   developers' machines), that one.
# - Otherwise a throwaway cluster of the project's own in ${MHG_CACHE:-$HOME/.cache/mhg}/pg
#   (trust auth on loopback, port 54329), started if not running; PostgreSQL is installed from
#   Debian's packages first when missing and this runs as root.
set -euo pipefail
CACHE=${MHG_CACHE:-$HOME/.cache/mhg}
PORT=54329
DATA="$CACHE/pg/data"

if command -v psql >/dev/null && psql "postgres://postgres@127.0.0.1:5432/test" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "postgres://postgres@127.0.0.1:5432/test"
  exit 0
fi
if psql "postgres://postgres@127.0.0.1:$PORT/test" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "postgres://postgres@127.0.0.1:$PORT/test"
  exit 0
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "postgres.sh: installing PostgreSQL from Debian's packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  else
    echo "postgres.sh: no PostgreSQL: install it, or set MHG_TEST_PG to a server's URL" >&2
    exit 2
  fi
fi
# PostgreSQL refuses to run as root: run the throwaway cluster as the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$CACHE/pg"
[ "$(id -u)" = 0 ] && chown postgres "$CACHE/pg" && chmod o+x "$CACHE" "$(dirname "$CACHE")" 2>/dev/null || true
if [ ! -f "$DATA/PG_VERSION" ]; then
  as_pg "$bindir/initdb" -D "$DATA" -U postgres --auth=trust >/dev/null
fi
as_pg "$bindir/pg_ctl" -D "$DATA" -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1" -l "$CACHE/pg/log" -w start >/dev/null
as_pg "$bindir/createdb" -h 127.0.0.1 -p "$PORT" -U postgres test 2>/dev/null || true
echo "postgres://postgres@127.0.0.1:$PORT/test"
