#!/usr/bin/env bash
# What `make run` does after building: a local Ferry to play with.
#   - ferryd on 127.0.0.1:8700 with its data in ./var/server (log:
#     var/ferryd.log);
#   - an account "me" (email me@localhost) whose random password is made
#     once and kept in var/password (mode 0600);
#   - the folder ./var/Ferry linked to it as this machine's device;
#   - `ferry watch` on it in the foreground, keeping it in sync in real
#     time. Ctrl-C stops the watch and the server.
# Safe to run again: each step is done only once, state lives in ./var.
set -euo pipefail

cd "$(dirname "$0")/.."
build=${BUILD:-build}
ferryd="$PWD/$build/src/server/ferryd"
ferry="$PWD/$build/src/client/ferry"
listen=127.0.0.1:8700
url="http://$listen"
var="$PWD/var"

for b in "$ferryd" "$ferry"; do
  [ -x "$b" ] || { echo "run: $b is missing; run 'make build' first" >&2; exit 1; }
done
if curl -fsS --max-time 2 "$url/api/v1/health" >/dev/null 2>&1; then
  echo "run: something already answers on $url (another 'make run'?); stop it first" >&2
  exit 1
fi

mkdir -p "$var"
chmod 700 "$var"
if [ ! -s "$var/password" ]; then
  (umask 077 && head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 >"$var/password")
fi
chmod 600 "$var/password"
password=$(cat "$var/password")
echo "run: account 'me', password $password (kept in var/password)"

# The account is created before the server starts, so that the CLI never
# competes with a running server for the database.
if [ ! -e "$var/.user-created" ]; then
  mkdir -p "$var/server"
  if printf '%s\n' "$password" | "$ferryd" --data "$var/server" user add me --email me@localhost; then
    echo "run: created user 'me'"
  else
    echo "run: 'ferryd user add me' failed (see above); continuing with the existing account" >&2
  fi
  touch "$var/.user-created"
fi

echo "run: starting ferryd on $url (log: var/ferryd.log)"
"$ferryd" --data "$var/server" --listen "$listen" >>"$var/ferryd.log" 2>&1 &
server_pid=$!

watch_pid=""
stop() {
  local rc=$1
  trap - INT TERM EXIT
  echo
  if [ -n "$watch_pid" ] && kill -0 "$watch_pid" 2>/dev/null; then
    echo "run: stopping ferry watch (pid $watch_pid)"
    kill -TERM "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  echo "run: stopping ferryd (pid $server_pid)"
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "run: ferryd did not stop within 10 s; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
  fi
  wait "$server_pid" 2>/dev/null || true
  exit "$rc"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

for _ in $(seq 150); do
  curl -fsS --max-time 1 "$url/api/v1/health" >/dev/null 2>&1 && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run: ferryd exited at start; last lines of var/ferryd.log:" >&2
    tail -20 "$var/ferryd.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS --max-time 2 "$url/api/v1/health" >/dev/null || {
  echo "run: ferryd is not answering on $url; see var/ferryd.log" >&2
  exit 1
}

if [ ! -f "$var/Ferry/.ferry/config.json" ]; then
  mkdir -p "$var/Ferry"
  FERRY_PASSWORD="$password" "$ferry" -C "$var/Ferry" init --server "$url" --user me \
    --device "$(hostname)"
  echo "run: linked var/Ferry as device '$(hostname)'"
fi

echo "run: watching var/Ferry; try: $build/src/client/ferry -C var/Ferry status"
echo "run: Ctrl-C stops the watch and the server"
# In the background and waited for, so that Ctrl-C reaches the trap: the
# watch gets the same SIGINT from the terminal and stops at a safe point.
"$ferry" -C "$var/Ferry" watch &
watch_pid=$!
set +e
wait "$watch_pid"
rc=$?
set -e
# the watch stopped: by the Ctrl-C (status 0, the trap stops ferryd), or
# by itself on an error (e.g. it could not start)
[ "$rc" -eq 0 ] || echo "run: ferry watch exited (status $rc)" >&2
exit "$rc"
