#!/usr/bin/env bash
# Runs bench/blob_bench against a local folder and a throwaway Ceph RGW
# (scripts/ceph.sh), which it starts and stops:
#
#   bash bench/blob_bench.sh [BUILDDIR] [blob_bench args, e.g. -n 2048]
set -euo pipefail
build=${1:-build}
shift || true
cd "$(dirname "$0")/.."
ninja -C "$build" bench/blob_bench >/dev/null
dir=$(mktemp -d /tmp/ferry-blob-bench.XXXXXX)
trap 'bash scripts/ceph.sh stop "$dir/ceph" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
eval "$(bash scripts/ceph.sh start "$dir/ceph")"
"$build/bench/blob_bench" "$@"
