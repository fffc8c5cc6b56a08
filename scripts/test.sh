#!/usr/bin/env bash
# Runs every Ferry test against one build directory: the cmocka unit tests
# through `meson test`, then the end-to-end scenarios (tests/e2e/run.py) with
# that build's ferryd and ferry. Counts individual test cases (cmocka's own
# "[  PASSED  ] N test(s)." lines, not just binaries) and ends with exactly
# one line "N passed, N failed" over both; exits 1 when anything failed.
#
#   scripts/test.sh BUILDDIR [e2e args, e.g. -k conflict]
#   scripts/test.sh --scale BUILDDIR [e2e args]   only the cluster tier
#
# A sanitized build (meson option b_sanitize) gets FERRY_E2E_ASAN=1 so the
# e2e scenarios scale their big files down.
#
# The scale-out tier (issue 8): PostgreSQL and Ceph RGW are started first
# (scripts/services.sh, ~10 s) and their FERRY_TEST_PG / FERRY_S3_* exported,
# so that `meson test` runs the unit tests' PostgreSQL ('-pg') and S3
# variants against them; after the plain e2e run, the cluster tier runs the
# e2e suites again against 3 ferryd behind HAProxy on those services
# (tests/e2e/run.py in cluster mode, FERRY_E2E_CLUSTER_JOBS workers, 3 by
# default). Under a sanitizer the unit variants and test_scale.py run, not
# the whole suite again (the time budget of .ci/run). When a service cannot
# start, a loud banner says so; that counts as a failure in CI (CI=true)
# or with --scale, and not in a developer's plain `make test`. FERRY_TEST_SCALE=0
# skips the services and the tier.
# FERRY_E2E_JOBS (default 2) is the number of workers of the plain e2e run
# (run.py -j; 1: one scenario after the other, as before).
set -uo pipefail

scale_only=0
if [ "${1:-}" = "--scale" ]; then
  scale_only=1
  shift
fi
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: scripts/test.sh [--scale] BUILDDIR [e2e args]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
shift
cd "$(dirname "$0")/.."

sanitize=$(python3 -c '
import json, sys
try:
    opts = json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))
    print(next((o["value"] for o in opts if o["name"] == "b_sanitize"), "none"))
except Exception:
    print("none")' "$build")

# --- services for the scale-out tier -----------------------------------------
svc_dir=""
svc_ok=0      # 1: PostgreSQL and Ceph RGW both up
svc_fail=0    # counted in the total when in CI
stop_services() {
  if [ -n "$svc_dir" ]; then
    bash scripts/services.sh stop "$svc_dir" || true
    svc_dir=""
  fi
}
trap stop_services EXIT
trap 'stop_services; exit 130' INT TERM
if [ "${FERRY_TEST_SCALE:-1}" = "0" ]; then
  echo "== services: skipped (FERRY_TEST_SCALE=0): no PostgreSQL/S3 unit variants, no cluster tier"
else
  svc_dir=$(mktemp -d /tmp/ferry-services.XXXXXX)
  echo "== services: PostgreSQL + Ceph RGW (scripts/services.sh start $svc_dir)"
  if bash scripts/services.sh start "$svc_dir"; then
    svc_ok=1
  elif [ "${CI:-}" = "true" ] || [ "$scale_only" -eq 1 ]; then
    echo "== services: could not start: counted as a failure (CI=true or --scale)"
    svc_fail=1
  else
    echo "== services: could not start: not counted as a failure on a developer machine"
  fi
  if [ -f "$svc_dir/env" ]; then
    set -a
    # shellcheck disable=SC1091
    . "$svc_dir/env"
    set +a
  fi
fi

# Runs tests/e2e/run.py with the given arguments; adds its counts to
# e2e_pass / e2e_fail.
e2e_pass=0
e2e_fail=0
run_e2e() {
  local out rc line p f
  out=$(mktemp)
  python3 tests/e2e/run.py "$@" | tee "$out"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
  rm -f "$out"
  if [ -n "$line" ]; then
    p=${line%% passed*}
    f=${line#*, }
    f=${f%% failed}
  else
    p=0
    f=1
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  e2e_pass=$((e2e_pass + p))
  e2e_fail=$((e2e_fail + f))
}

# --- unit tests -------------------------------------------------------------
unit_pass=0
unit_fail=0
t0=$(date +%s)
[ "$scale_only" -eq 1 ] && echo "== unit tests: skipped (--scale)"
[ "$scale_only" -eq 1 ] || echo "== unit tests (meson test -C $build${FERRY_TEST_PG:+, PostgreSQL variants}${FERRY_S3_ENDPOINT:+, S3 variants})"
log_json="$build/meson-logs/testlog.json"
log_txt="$build/meson-logs/testlog.txt"
rm -f "$log_json" "$log_txt"
unit_rc=0
if [ "$scale_only" -eq 0 ]; then
  meson test -C "$build" --print-errorlogs
  unit_rc=$?
fi
if [ "$scale_only" -eq 0 ] && { [ -f "$log_json" ] || [ -f "$log_txt" ]; }; then
  # Per test binary: cmocka's summary lines when present (a binary can run
  # several groups), else the binary itself counts as one test. A binary
  # that failed without cmocka reporting a failure (a crash, a sanitizer
  # abort, a timeout) counts one failure on top.
  read -r unit_pass unit_fail < <(python3 - "$log_json" "$log_txt" <<'EOF'
import json, os, re, sys
log_json, log_txt = sys.argv[1], sys.argv[2]
PASS = re.compile(r"^\[  PASSED  \] (\d+) test\(s\)\.", re.M)
FAIL = re.compile(r"^\[  FAILED  \] (\d+) test\(s\)", re.M)
records = []
if os.path.exists(log_json):
    with open(log_json, errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                t = json.loads(line)
            except ValueError:
                continue
            out = (t.get("stdout") or "") + "\n" + (t.get("stderr") or "")
            records.append((t.get("result", ""), out))
else:
    # testlog.txt: blocks starting with "==================================== N/M" per test
    text = open(log_txt, errors="replace").read()
    for block in re.split(r"^=+ \d+/\d+ =+$", text, flags=re.M)[1:]:
        m = re.search(r"^result:\s+(.*)$", block, re.M)
        res = m.group(1) if m else ""
        records.append(("OK" if "exit status 0" in res else "FAIL", block))
p = f = 0
for result, out in records:
    passed = sum(int(x) for x in PASS.findall(out))
    failed = sum(int(x) for x in FAIL.findall(out))
    ok = result in ("OK", "EXPECTEDFAIL", "SKIP")
    if passed == 0 and failed == 0:
        if ok:
            p += 1
        else:
            f += 1
    else:
        p += passed
        f += failed
        if not ok and failed == 0:
            f += 1
print(p, f)
EOF
  )
fi
if [ "$unit_rc" -ne 0 ] && [ "$unit_fail" -eq 0 ]; then
  # meson itself failed (e.g. a test binary did not build).
  unit_fail=1
fi
echo "== unit: $unit_pass passed, $unit_fail failed ($(($(date +%s) - t0)) s)"

# --- end-to-end -------------------------------------------------------------
export FERRYD="$build/src/server/ferryd"
export FERRY="$build/src/client/ferry"
if [ "$sanitize" != "none" ]; then
  export FERRY_E2E_ASAN=1
  # Let sanitizer findings fail the command that hit them.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
fi
if [ "$scale_only" -eq 0 ]; then
  t0=$(date +%s)
  jobs=${FERRY_E2E_JOBS:-2}
  echo "== e2e (FERRYD=$FERRYD FERRY=$FERRY${FERRY_E2E_ASAN:+ ASan scale}, $jobs worker(s))"
  run_e2e -j "$jobs" "$@"
  echo "== e2e: $e2e_pass passed, $e2e_fail failed ($(($(date +%s) - t0)) s)"
fi

# --- the cluster tier (3 ferryd, HAProxy, PostgreSQL, Ceph RGW) --------------
if [ "$svc_ok" -eq 1 ]; then
  t0=$(date +%s)
  p0=$e2e_pass
  f0=$e2e_fail
  cjobs=${FERRY_E2E_CLUSTER_JOBS:-3}
  if [ "$sanitize" != "none" ] && [ "$scale_only" -eq 0 ]; then
    # The whole suite again at sanitizer speed does not fit the budget:
    # the scale-out scenarios only (the plain build runs all of them).
    echo "== e2e cluster tier, sanitized build: test_scale.py only ($cjobs workers)"
    FERRY_E2E_CLUSTER=1 run_e2e -j "$cjobs" -k scale_ "$@"
  else
    echo "== e2e cluster tier: 3 ferryd behind HAProxy on PostgreSQL + Ceph RGW ($cjobs workers)"
    FERRY_E2E_CLUSTER=1 run_e2e -j "$cjobs" "$@"
  fi
  echo "== e2e cluster tier: $((e2e_pass - p0)) passed, $((e2e_fail - f0)) failed ($(($(date +%s) - t0)) s)"
elif [ "${FERRY_TEST_SCALE:-1}" != "0" ]; then
  echo "== e2e cluster tier: NOT RUN (the services did not start; see the banner above)"
fi
stop_services

pass=$((unit_pass + e2e_pass))
fail=$((unit_fail + e2e_fail + svc_fail))
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
