#!/usr/bin/env bash
# Runs every Ferry test against one build directory: the cmocka unit tests
# through `meson test`, then the end-to-end scenarios (tests/e2e/run.py) with
# that build's ferryd and ferry. Counts individual test cases (cmocka's own
# "[  PASSED  ] N test(s)." lines, not just binaries) and ends with exactly
# one line "N passed, N failed" over both; exits 1 when anything failed.
#
#   scripts/test.sh BUILDDIR [e2e args, e.g. -k conflict]
#
# A sanitized build (meson option b_sanitize) gets FERRY_E2E_ASAN=1 so the
# e2e scenarios scale their big files down.
set -uo pipefail

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: scripts/test.sh BUILDDIR [e2e args]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
shift
cd "$(dirname "$0")/.."

# --- unit tests -------------------------------------------------------------
unit_pass=0
unit_fail=0
t0=$(date +%s)
echo "== unit tests (meson test -C $build)"
log_json="$build/meson-logs/testlog.json"
log_txt="$build/meson-logs/testlog.txt"
rm -f "$log_json" "$log_txt"
meson test -C "$build" --print-errorlogs
unit_rc=$?
if [ -f "$log_json" ] || [ -f "$log_txt" ]; then
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
sanitize=$(python3 -c '
import json, sys
try:
    opts = json.load(open(sys.argv[1] + "/meson-info/intro-buildoptions.json"))
    print(next((o["value"] for o in opts if o["name"] == "b_sanitize"), "none"))
except Exception:
    print("none")' "$build")
if [ "$sanitize" != "none" ]; then
  export FERRY_E2E_ASAN=1
  # Let sanitizer findings fail the command that hit them.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
fi
t0=$(date +%s)
echo "== e2e (FERRYD=$FERRYD FERRY=$FERRY${FERRY_E2E_ASAN:+ ASan scale})"
e2e_out=$(mktemp)
python3 tests/e2e/run.py "$@" | tee "$e2e_out"
e2e_rc=${PIPESTATUS[0]}
e2e_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$e2e_out" | tail -1)
rm -f "$e2e_out"
if [ -n "$e2e_line" ]; then
  e2e_pass=${e2e_line%% passed*}
  e2e_fail=${e2e_line#*, }
  e2e_fail=${e2e_fail%% failed}
else
  e2e_pass=0
  e2e_fail=1
fi
if [ "$e2e_rc" -ne 0 ] && [ "$e2e_fail" -eq 0 ]; then
  e2e_fail=1
fi
echo "== e2e: $e2e_pass passed, $e2e_fail failed ($(($(date +%s) - t0)) s)"

pass=$((unit_pass + e2e_pass))
fail=$((unit_fail + e2e_fail))
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
