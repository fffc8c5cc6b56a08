#!/usr/bin/env bash
# Starts and stops a throwaway Ceph cluster with a RADOS Gateway (S3) on
# 127.0.0.1 for the scale-out tests and benchmarks (docs/deploy.md shows a
# real deployment).
#
#   scripts/ceph.sh start DIR [PORT]   create the cluster in DIR (created),
#                                      start it, print eval-able lines
#                                      FERRY_S3_ENDPOINT=, FERRY_S3_ACCESS_KEY=,
#                                      FERRY_S3_SECRET_KEY=, FERRY_S3_REGION=
#   scripts/ceph.sh stop DIR           stop every daemon started in DIR
#   scripts/ceph.sh rgw-stop DIR       stop only the gateway (an S3 outage)
#   scripts/ceph.sh rgw-start DIR      start it again on its port, wait
#                                      until it answers
#
# One monitor, one OSD and radosgw (beast frontend), with Debian's packages
# ceph + radosgw, without systemd, loop devices or kernel modules: the OSD's
# bluestore lives in a plain sparse file, placed next to (not inside) the
# OSD's folder, since bluestore links DIR/osd/block to it and a file of that
# very name loops ("Too many levels of symbolic links"). No manager: RGW
# does not need one (a Python process, memory saved). No cephx: the cluster
# listens on 127.0.0.1 only and lives for one run; S3 requests are still
# signed and checked (SigV4) by RGW with the user created here.
#
# Every step is bounded (timeout, CEPH_STEP_TIMEOUT seconds, default 60);
# on a failure the script stops what it started and prints the tail of the
# relevant log. Diagnostics go to stderr, only the variables to stdout (as
# `export` lines, also saved without `export` in DIR/env). Start-up takes
# 5-8 s; the three daemons use about 140 MiB RSS idle. Run as root on
# Debian 12 (as CI does); the daemons run as the caller.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: scripts/ceph.sh start DIR [PORT] | stop DIR | rgw-stop DIR | rgw-start DIR" >&2
  exit 2
}

STEP_TIMEOUT=${CEPH_STEP_TIMEOUT:-60} # seconds, per step
REGION=default

die() {
  echo "ceph.sh: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Shows the end of a daemon's log on stderr.
log_tail() {
  local f=$dir/log/$1.log
  if [ -f "$f" ]; then
    echo "---- last lines of $f ----" >&2
    tail -n 25 "$f" >&2
  fi
}

# 0 if process PID runs (a zombie waiting for its reaper does not).
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Kills daemon NAME (its pid file in DIR/run) and waits until it is gone.
stop_one() {
  local name=$1 pid
  [ -s "$dir/run/$name.pid" ] || return 0
  pid=$(cat "$dir/run/$name.pid")
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do # gone, and its ports free
    alive "$pid" || break
    sleep 0.05
  done
  rm -f "$dir/run/$name.pid"
}

# Kills all three at once: radosgw spends 5 s and more in a clean
# shutdown (its background threads sleep in 5 s steps), stopped together
# with the OSD it waits minutes for its in-flight operations, and the
# cluster is throwaway anyway: bluestore and the monitor's store survive a
# kill as they survive a power cut.
stop_all() {
  stop_one client.rgw
  stop_one osd.0
  stop_one mon.a
}

# Runs a ceph CLI command against the cluster, bounded.
ceph_cli() {
  timeout "$STEP_TIMEOUT" ceph -c "$conf" --connect-timeout "$STEP_TIMEOUT" "$@"
}

# Starts daemon NAME (the rest: its command line) in the foreground of a
# process of its own, detached from the caller's session and output (so
# that `eval "$(ceph.sh start ...)"` returns), its pid in DIR/run/NAME.pid.
# A daemon that forks itself once connected would block without bound when
# the monitor is unreachable; this one is watched and stopped instead.
spawn() {
  local name=$1
  shift
  setsid "$@" -f </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/run/$name.pid"
  sleep 0.05
  alive "$(cat "$dir/run/$name.pid")" || {
    cat "$dir/log/$name.out" >&2
    log_tail "$name"
    die "$name exited at start"
  }
}

# Waits (bounded) until the gateway on 127.0.0.1:PORT answers S3.
wait_rgw() {
  local port=$1 deadline=$((SECONDS + STEP_TIMEOUT)) code
  while :; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" || true)
    [ "$code" = 200 ] && return 0
    alive "$(cat "$dir/run/client.rgw.pid" 2>/dev/null || echo 0)" ||
      { log_tail client.rgw; die "radosgw exited"; }
    if [ $SECONDS -ge $deadline ]; then
      log_tail client.rgw
      log_tail osd.0
      die "radosgw did not answer on 127.0.0.1:$port within ${STEP_TIMEOUT}s (last HTTP code '$code')"
    fi
    sleep 0.1
  done
}

start() {
  local port=$1 mon_port fsid osd_uuid access secret t0 id
  t0=$(date +%s.%N)
  for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
    command -v "$b" >/dev/null || die "$b not found (apt-get install ceph radosgw, see scripts/deps.sh)"
  done
  [ ! -e "$dir/ceph.conf" ] || die "$dir already holds a cluster; stop it and use a fresh folder"
  # A busy port would have the readiness check below talk to someone else.
  python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" \
    2>/dev/null || die "port $port on 127.0.0.1 is in use"
  mkdir -p "$dir"/{mon,osd,run,log}
  mon_port=$(free_port)
  fsid=$(uuidgen)
  osd_uuid=$(uuidgen)
  conf=$dir/ceph.conf
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
# the "none" protocol has no secure mode, which monitor clients ask for
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
mon cluster log file = $dir/log/cluster.log
# one copy, one OSD, one host
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
# start-up in seconds rather than tens of seconds
paxos propose interval = 0.01
mon osd reporter subtree level = osd
osd heartbeat grace = 60
# a nearly full disk must not stop the monitor
mon data avail crit = 0
mon data avail warn = 0
osd objectstore = bluestore

[mon]
mon data = $dir/mon
mon initial members = a

[osd]
osd data = $dir/osd
bluestore block path = $dir/osd.block
bluestore block create = true
bluestore block size = 10737418240
bluestore block db create = false
bluestore block wal create = false
# memory-frugal: small fixed caches instead of the 4 GiB memory target
bluestore cache autotune = false
bluestore cache size = 67108864
osd memory target = 939524096
# RocksDB memtables: 16 MiB instead of up to 4 x 256 MiB under writes
bluestore rocksdb options = compression=kNoCompression,max_write_buffer_number=2,min_write_buffer_number_to_merge=1,recycle_log_file_num=2,write_buffer_size=16777216,writable_file_max_buffer_size=0,compaction_readahead_size=2097152,max_background_compactions=1,max_total_wal_size=67108864
osd min pg log entries = 100
osd max pg log entries = 500
osd op num shards = 1
osd op num threads per shard = 2
bluestore fsck on mkfs = false
bluestore fsck on mount = false

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw thread pool size = 32
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw cache lru size = 1000
CONF
  trap 'echo "ceph.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
  trap 'rc=$?; [ $rc -eq 0 ] || { stop_all; echo "ceph.sh: start failed (logs in $dir/log)" >&2; }' EXIT

  # 1. the monitor
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  timeout "$STEP_TIMEOUT" ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" \
    >"$dir/log/mkfs-mon.out" 2>&1 || { cat "$dir/log/mkfs-mon.out" >&2; die "ceph-mon --mkfs failed"; }
  spawn mon.a ceph-mon -c "$conf" -i a

  # 2. the OSD: registered with the monitor, then its store made and started
  id=$(ceph_cli osd new "$osd_uuid" 2>"$dir/log/osd-new.err") ||
    { cat "$dir/log/osd-new.err" >&2; log_tail mon.a; die "the monitor did not answer (ceph osd new)"; }
  [ "$id" = 0 ] || die "unexpected OSD id '$id'"
  timeout "$STEP_TIMEOUT" ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >"$dir/log/mkfs-osd.out" 2>&1 || { cat "$dir/log/mkfs-osd.out" >&2; log_tail osd.0; die "ceph-osd --mkfs failed"; }
  spawn osd.0 ceph-osd -c "$conf" -i 0

  # 3. the gateway: it creates its pools once the OSD is up
  spawn client.rgw radosgw -c "$conf" -n client.rgw
  echo "$port" >"$dir/port"
  wait_rgw "$port"

  # 4. an S3 user with generated keys
  access=$(python3 -c 'import secrets; print("FERRY" + secrets.token_hex(8).upper())')
  secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
  alive "$(cat "$dir/run/client.rgw.pid")" || { log_tail client.rgw; die "radosgw exited"; }
  timeout "$STEP_TIMEOUT" radosgw-admin -c "$conf" user create --uid=ferry \
    --display-name=Ferry --access-key="$access" --secret-key="$secret" \
    >"$dir/log/user-create.out" 2>&1 || { cat "$dir/log/user-create.out" >&2; die "radosgw-admin user create failed"; }
  cat >"$dir/env" <<ENV
FERRY_S3_ENDPOINT=http://127.0.0.1:$port
FERRY_S3_REGION=$REGION
FERRY_S3_ACCESS_KEY=$access
FERRY_S3_SECRET_KEY=$secret
ENV
  sed 's/^/export /' "$dir/env"
  echo "ceph.sh: RGW up on 127.0.0.1:$port in $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo '?') s" >&2
}

case $cmd in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    start "${3:-$(free_port)}"
    ;;
  stop)
    [ -d "$dir" ] || die "no such folder $dir"
    dir=$(cd "$dir" && pwd)
    stop_all
    ;;
  rgw-stop)
    [ -f "$dir/ceph.conf" ] || die "no cluster in $dir"
    dir=$(cd "$dir" && pwd)
    stop_one client.rgw
    ;;
  rgw-start)
    [ -f "$dir/ceph.conf" ] || die "no cluster in $dir"
    dir=$(cd "$dir" && pwd)
    conf=$dir/ceph.conf
    if [ -s "$dir/run/client.rgw.pid" ] && alive "$(cat "$dir/run/client.rgw.pid")"; then
      die "radosgw already runs in $dir"
    fi
    spawn client.rgw radosgw -c "$conf" -n client.rgw
    wait_rgw "$(cat "$dir/port")"
    ;;
  *)
    echo "usage: scripts/ceph.sh start DIR [PORT] | stop DIR | rgw-stop DIR | rgw-start DIR" >&2
    exit 2
    ;;
esac
