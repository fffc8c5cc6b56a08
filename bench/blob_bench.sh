#!/usr/bin/env bash
# Runs bench/blob_bench against a local folder and a throwaway Ceph RGW
# (scripts/ceph.sh), which it starts and stops; with --folder-only, against
# the local folder alone (no Ceph needed):
#
#   bash bench/blob_bench.sh [BUILDDIR] [--folder-only] [blob_bench args, e.g. -n 2048]
set -euo pipefail
build=${1:-build}
shift || true
s3=1
if [ "${1:-}" = "--folder-only" ]; then
  s3=0
  shift
fi
cd "$(dirname "$0")/.."
ninja -C "$build" bench/blob_bench >/dev/null
if [ $s3 -eq 0 ]; then
  env -u FERRY_S3_ENDPOINT "$build/bench/blob_bench" "$@"
  exit
fi
dir=$(mktemp -d /tmp/ferry-blob-bench.XXXXXX)
trap 'bash scripts/ceph.sh stop "$dir/ceph" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
eval "$(bash scripts/ceph.sh start "$dir/ceph")"
"$build/bench/blob_bench" "$@"
