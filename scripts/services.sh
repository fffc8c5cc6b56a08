#!/usr/bin/env bash
# Starts and stops the real services of the scale-out test tier once per
# test run: a throwaway PostgreSQL 15 (scripts/pg.sh) and a throwaway Ceph
# cluster with its RADOS Gateway (scripts/ceph.sh), both on 127.0.0.1, both
# under DIR. Not mocks: the unit tests' PostgreSQL and S3 variants and the
# cluster end-to-end tier (tests/e2e, FERRY_E2E_CLUSTER=1) run against them.
#
#   scripts/services.sh start DIR   start both (in parallel), write DIR/env
#   scripts/services.sh stop DIR    stop whatever was started, remove DIR
#
# DIR/env holds KEY=VALUE lines, to be loaded with `set -a; . DIR/env`:
#   FERRY_TEST_PG        conninfo URI of the cluster's "postgres" database
#   FERRY_TEST_SERVICES  DIR itself (the scale tests restart services in it)
#   FERRY_S3_ENDPOINT, FERRY_S3_REGION, FERRY_S3_ACCESS_KEY,
#   FERRY_S3_SECRET_KEY  the gateway and the credentials of its S3 user
#
# When a service cannot start, a loud "SCALE-OUT TESTS NOT RUN" banner says
# which one and why, and the exit status is 1; DIR/env still lists the
# services that did start (so the PostgreSQL unit variants can run without
# Ceph), and `stop DIR` must be called either way.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: scripts/services.sh start|stop DIR" >&2
  exit 2
}

banner() {
  {
    echo
    echo "######################################################################"
    echo "##"
    echo "##  SCALE-OUT TESTS NOT RUN: $1"
    echo "##  because:"
    sed 's/^/##    /' <<<"$2"
    echo "##"
    echo "######################################################################"
    echo
  } >&2
}

start() {
  local t0 pg_rc ceph_rc failed=0 pg_uri
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  rm -f "$dir/env"
  t0=$(date +%s.%N)
  # PostgreSQL takes ~1 s, Ceph ~6-10 s: start them side by side.
  bash scripts/pg.sh start "$dir/pg" >"$dir/pg.out" 2>"$dir/pg.err" &
  local pg_pid=$!
  bash scripts/ceph.sh start "$dir/ceph" >"$dir/ceph.out" 2>"$dir/ceph.err" &
  local ceph_pid=$!
  wait "$pg_pid"
  pg_rc=$?
  wait "$ceph_pid"
  ceph_rc=$?
  {
    echo "FERRY_TEST_SERVICES=$dir"
    if [ "$pg_rc" -eq 0 ]; then
      pg_uri=$(tail -1 "$dir/pg.out")
      echo "FERRY_TEST_PG=$pg_uri"
    fi
    if [ "$ceph_rc" -eq 0 ]; then
      # ceph.sh prints "export KEY=VALUE" lines; keep the FERRY_S3_* ones.
      sed -n 's/^export \(FERRY_S3_[A-Z_]*=.*\)$/\1/p' "$dir/ceph.out"
    fi
  } >"$dir/env"
  if [ "$pg_rc" -ne 0 ]; then
    banner "PostgreSQL did not start (scripts/pg.sh start $dir/pg, exit $pg_rc)" \
      "$(tail -n 15 "$dir/pg.err")"
    failed=1
  fi
  if [ "$ceph_rc" -ne 0 ]; then
    banner "Ceph RGW did not start (scripts/ceph.sh start $dir/ceph, exit $ceph_rc)" \
      "$(tail -n 15 "$dir/ceph.err")"
    failed=1
  elif ! grep -q '^FERRY_S3_SECRET_KEY=' "$dir/env"; then
    banner "Ceph RGW started but printed no credentials" "$(cat "$dir/ceph.out")"
    failed=1
  fi
  echo "services.sh: started in $(python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$t0") s:" \
    "PostgreSQL $([ "$pg_rc" -eq 0 ] && echo up || echo FAILED)," \
    "Ceph RGW $([ "$ceph_rc" -eq 0 ] && echo up || echo FAILED) (env in $dir/env)" >&2
  return "$failed"
}

stop() {
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local rc=0
  if [ -d "$dir/ceph" ]; then
    bash scripts/ceph.sh stop "$dir/ceph" || rc=1
  fi
  if [ -f "$dir/pg/data/postmaster.pid" ]; then
    bash scripts/pg.sh stop "$dir/pg" || rc=1
  fi
  # Only what start made (the OSD's sparse 10 GiB file among it).
  rm -rf "$dir/pg" "$dir/ceph" "$dir/env" "$dir"/pg.{out,err} "$dir"/ceph.{out,err}
  rmdir "$dir" 2>/dev/null || true
  return "$rc"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: scripts/services.sh start|stop DIR" >&2
    exit 2
    ;;
esac
