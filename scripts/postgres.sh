#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests: `start DIR` initialises one in DIR
# on a free loopback port and prints its URL; `stop DIR` stops it.
# `halt DIR` stops the server keeping its data and `resume DIR` starts it
# again on the same port (the fault tests' PostgreSQL outage).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cmd=${1:?usage: postgres.sh start|stop|halt|resume DIR}
dir=${2:?usage: postgres.sh start|stop|halt|resume DIR}
bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")

# PostgreSQL refuses to run as root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(free_port)
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # fsync off: a test cluster is thrown away, durability buys nothing here.
    echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" >"$dir/options"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "$(cat "$dir/options")" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  halt)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  resume)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "$(cat "$dir/options")" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    ;;
  stop)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
  *) echo "usage: postgres.sh start|stop|halt|resume DIR" >&2; exit 2 ;;
esac
