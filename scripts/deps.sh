#!/usr/bin/env bash
# Installs the Debian packages Ferry needs to build and test, and nothing
# else. Safe to run again: it only calls apt-get when something is missing.
set -euo pipefail

pkgs=(
  build-essential meson ninja-build pkg-config
  libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
  libssl-dev libsodium-dev libzstd-dev libxxhash-dev libcmocka-dev
  sqlite3 curl python3
  iproute2   # ip netns: the LAN tests build real network namespaces
  # Scale-out (docs/deploy.md): the PostgreSQL metadata store and the S3
  # chunk store, and the services the scale-out tests start for real.
  libpq-dev postgresql-15 haproxy ceph radosgw
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
