#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL 15 cluster on 127.0.0.1 for the
# scale-out tests and benchmarks (docs/deploy.md shows a real deployment).
#
#   scripts/pg.sh start DIR [PORT]   initdb in DIR (created), start, print the
#                                    conninfo URI of its "postgres" database
#   scripts/pg.sh stop DIR           stop it (fast shutdown); DIR stays
#   scripts/pg.sh restart DIR        stop and start again on the same port
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# postgres user: DIR and each parent must then be enterable by it (mktemp -d
# makes 0700 folders), which this script arranges for DIR's parents.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ]; then
  echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql-15)" >&2
  exit 3
fi

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: scripts/pg.sh start|stop|restart DIR [PORT]" >&2
  exit 2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local port=$1
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/sock" \
    start >/dev/null
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
}

case $cmd in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    port=${3:-$(free_port)}
    if [ "$(id -u)" -eq 0 ]; then
      # The postgres user must reach DIR: open the parents for traversal.
      p=$dir
      while [ "$p" != "/" ]; do
        chmod o+x "$p" 2>/dev/null || true
        p=$(dirname "$p")
      done
      chown postgres: "$dir"
    fi
    as_pg mkdir -p "$dir/sock"
    # trust on 127.0.0.1 only: a test cluster that lives for one run.
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 64MB
CONF
    echo "$port" >"$dir/port"
    start "$port"
    ;;
  stop)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
    ;;
  restart)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null || true
    start "$(cat "$dir/port")"
    ;;
  *)
    echo "usage: scripts/pg.sh start|stop|restart DIR [PORT]" >&2
    exit 2
    ;;
esac
