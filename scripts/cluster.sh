#!/usr/bin/env bash
# Starts and stops a throwaway Ferry cluster on 127.0.0.1: PostgreSQL
# (scripts/pg.sh), optionally Ceph RGW (scripts/ceph.sh), N ferryd instances
# sharing them, and HAProxy in front (contrib/haproxy.cfg as the template).
# For the docs (docs/deploy.md), the benchmark and the e2e cluster tier.
#
#   scripts/cluster.sh start DIR N [PORT] [--s3] [-- FERRYD-ARGS...]
#       DIR is created (it must be empty or absent); PORT (default: a free one) is HAProxy's. Chunks go
#       to DIR/chunks, shared by the instances, or with --s3 to a bucket on
#       a Ceph started in DIR/ceph. FERRYD-ARGS go to every instance
#       (default: --registration open). Prints eval-able lines, also
#       written to DIR/env:
#         FERRY_CLUSTER_URL=http://127.0.0.1:PORT   (HAProxy)
#         FERRY_CLUSTER_INSTANCES="http://127.0.0.1:P1 ..."  (direct)
#         FERRY_CLUSTER_PG=postgresql://...         (--metadata)
#         FERRY_CLUSTER_BLOBS=DIR/chunks | s3://... (--blobs)
#       and, with --s3, the FERRY_S3_* lines of scripts/ceph.sh.
#   scripts/cluster.sh stop DIR          stop everything started in DIR
#   scripts/cluster.sh kill DIR K        SIGKILL instance K (1..N)
#   scripts/cluster.sh restart DIR K     start instance K again (same port)
#   scripts/cluster.sh user DIR NAME EMAIL   create an account (password
#                                        on stdin), like `ferryd user add`
#
# Instance K: data in DIR/iK, log DIR/iK.log, pid DIR/iK.pid, instance id
# iK. The ferryd binary is $FERRYD (default build/src/server/ferryd), at
# start; the other commands use the one the cluster was started with.
# On a failure the script stops what it started and shows the log's tail.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ferryd=${FERRYD:-$root/build/src/server/ferryd}
cmd=${1:-}
dir=${2:-}
usage() {
  echo "usage: scripts/cluster.sh start DIR N [PORT] [--s3] [-- FERRYD-ARGS...]" >&2
  echo "       scripts/cluster.sh stop DIR | kill DIR K | restart DIR K" >&2
  echo "       scripts/cluster.sh user DIR NAME EMAIL  (password on stdin)" >&2
  exit 2
}
[ -n "$cmd" ] && [ -n "$dir" ] || usage

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL/api/v1/health answers 200, for up to $2 seconds.
wait_health() {
  local url=$1 t=$2 i
  for ((i = 0; i < t * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url/api/v1/health" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Starts instance K from DIR/env and DIR/iK.port.
start_instance() {
  local k=$1 port
  port=$(cat "$dir/i$k.port")
  # shellcheck disable=SC1091
  (
    set -a
    . "$dir/env"
    set +a
    read -r -a extra <"$dir/ferryd-args"
    exec "$ferryd" --data "$dir/i$k" --metadata "$FERRY_CLUSTER_PG" \
      --blobs "$FERRY_CLUSTER_BLOBS" --listen "127.0.0.1:$port" --instance-id "i$k" \
      "${extra[@]}" >>"$dir/i$k.log" 2>&1
  ) &
  echo $! >"$dir/i$k.pid"
  if ! wait_health "http://127.0.0.1:$port" 30; then
    echo "cluster.sh: instance i$k did not come up; its log:" >&2
    tail -20 "$dir/i$k.log" >&2
    return 1
  fi
}

stop_all() {
  local f pid
  if [ -f "$dir/haproxy.pid" ]; then
    kill "$(cat "$dir/haproxy.pid")" 2>/dev/null || true
    rm -f "$dir/haproxy.pid"
  fi
  for f in "$dir"/i*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  if [ -d "$dir/ceph" ]; then
    "$root/scripts/ceph.sh" stop "$dir/ceph" >/dev/null 2>&1 || true
  fi
  if [ -d "$dir/pg/data" ]; then
    "$root/scripts/pg.sh" stop "$dir/pg" >/dev/null 2>&1 || true
  fi
}

# Later commands use the binary the cluster was started with.
if [ "$cmd" != start ] && [ -f "$dir/ferryd-bin" ]; then
  ferryd=$(cat "$dir/ferryd-bin")
fi

case $cmd in
start)
  n=${3:-}
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || usage
  shift 3
  port=
  s3=0
  extra=(--registration open)
  while [ $# -gt 0 ]; do
    case $1 in
    --s3) s3=1 ;;
    --) shift; extra=("$@"); break ;;
    *) [[ "$1" =~ ^[0-9]+$ ]] && [ -z "$port" ] || usage; port=$1 ;;
    esac
    shift
  done
  port=${port:-$(free_port)}
  [ -x "$ferryd" ] || { echo "cluster.sh: no ferryd at $ferryd (set FERRYD)" >&2; exit 3; }
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "cluster.sh: $dir is not empty (a cluster of an earlier run?): stop it, remove it" >&2
    exit 2
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  trap 'stop_all' ERR
  pg=$("$root/scripts/pg.sh" start "$dir/pg")
  {
    echo "FERRY_CLUSTER_URL=http://127.0.0.1:$port"
    echo "FERRY_CLUSTER_PG=$pg"
  } >"$dir/env"
  if [ "$s3" = 1 ]; then
    "$root/scripts/ceph.sh" start "$dir/ceph" >"$dir/s3.env"
    cat "$dir/s3.env" >>"$dir/env"
    # shellcheck disable=SC1091
    . "$dir/s3.env"
    echo "FERRY_CLUSTER_BLOBS=\"s3://ferry?endpoint=$FERRY_S3_ENDPOINT&region=$FERRY_S3_REGION\"" \
      >>"$dir/env"
  else
    echo "FERRY_CLUSTER_BLOBS=$dir/chunks" >>"$dir/env"
  fi
  echo "${extra[*]}" >"$dir/ferryd-args"
  echo "$ferryd" >"$dir/ferryd-bin"
  # Once, before the instances, so that they do not all migrate at once.
  (
    set -a
    . "$dir/env"
    set +a
    "$ferryd" --metadata "$FERRY_CLUSTER_PG" --blobs "$FERRY_CLUSTER_BLOBS" migrate
  ) >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; false; }
  urls=
  servers=
  for ((k = 1; k <= n; k++)); do
    p=$(free_port)
    echo "$p" >"$dir/i$k.port"
    start_instance "$k"
    urls="$urls${urls:+ }http://127.0.0.1:$p"
    servers="$servers    server i$k 127.0.0.1:$p check\n"
  done
  echo "FERRY_CLUSTER_INSTANCES=\"$urls\"" >>"$dir/env"
  # The sample configuration with this bind address and these servers.
  sed -e "s|^\(\s*\)bind :8700|\1bind 127.0.0.1:$port|" -e '/^\s*server /d' \
    "$root/contrib/haproxy.cfg" >"$dir/haproxy.cfg"
  printf "%b" "$servers" >>"$dir/haproxy.cfg"
  haproxy -q -f "$dir/haproxy.cfg" -D -p "$dir/haproxy.pid"
  if ! wait_health "http://127.0.0.1:$port" 10; then
    echo "cluster.sh: haproxy on port $port does not answer" >&2
    false
  fi
  trap - ERR
  cat "$dir/env"
  ;;
stop)
  dir=$(cd "$dir" 2>/dev/null && pwd) || exit 0
  stop_all
  ;;
kill)
  k=${3:-}
  [ -f "$dir/i$k.pid" ] || usage
  kill -9 "$(cat "$dir/i$k.pid")"
  ;;
restart)
  k=${3:-}
  [ -f "$dir/i$k.port" ] || usage
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/i$k.pid" ]; then
    kill "$(cat "$dir/i$k.pid")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$dir/i$k.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  start_instance "$k"
  ;;
user)
  [ $# -eq 4 ] || usage
  (
    set -a
    . "$dir/env"
    set +a
    "$ferryd" --metadata "$FERRY_CLUSTER_PG" --blobs "$FERRY_CLUSTER_BLOBS" \
      user add "$3" --email "$4"
  )
  ;;
*)
  usage
  ;;
esac
