#!/usr/bin/env python3
"""Runs Ferry's end-to-end scenarios against real binaries.

    FERRYD=build/src/server/ferryd FERRY=build/src/client/ferry \\
        python3 tests/e2e/run.py [-k NAME]... [-v] [--list]

Each scenario gets its own ferryd (fresh data dir, free port on 127.0.0.1)
and temporary folders. Prints `ok NAME` or `FAIL NAME: reason` per test and
ends with `N passed, N failed`; exits 1 when anything failed.

Environment: FERRY_E2E_ASAN=1 scales sizes and timeouts for sanitized
builds; FERRY_E2E_KEEP=1 keeps temp dirs; FERRY_E2E_VERBOSE=1 (or -v) prints
every command.
"""

import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Env, Failure  # noqa: E402

import test_sync  # noqa: E402,F401
import test_robust  # noqa: E402,F401
import test_cli  # noqa: E402,F401
import test_api  # noqa: E402,F401
import test_evil  # noqa: E402,F401
import test_watch  # noqa: E402,F401
import test_resume  # noqa: E402,F401
import test_watch_limits  # noqa: E402,F401
import test_delta  # noqa: E402,F401
import test_history  # noqa: E402,F401
import test_transfers  # noqa: E402,F401
import test_backup  # noqa: E402,F401
import test_rules  # noqa: E402,F401
import test_lan  # noqa: E402,F401
import test_pushpull  # noqa: E402,F401


def reason_of(e):
    if isinstance(e, Failure):
        return str(e)
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    return "%s: %s\n%s" % (type(e).__name__, e, "".join(tb[-3:]).rstrip())


def report(name, err, elapsed, results):
    if err is None:
        print("ok %s" % name, flush=True)
    else:
        lines = err.splitlines() or [""]
        print("FAIL %s: %s" % (name, lines[0]), flush=True)
        for line in lines[1:]:
            print("#   " + line, flush=True)
    results.append((name, err is None, elapsed))


def run_scenario(name, fn, results):
    t0 = time.monotonic()
    env = None
    err = None
    try:
        env = Env(name, server_args=getattr(fn, "server_args", ()))
        env.start()
        fn(env)
    except BaseException as e:  # noqa: B902 - report everything, including KeyboardInterrupt
        if isinstance(e, KeyboardInterrupt):
            if env:
                env.close(failed=True)
            raise
        err = reason_of(e)
    if env:
        try:
            env.close(failed=err is not None)
        except Exception as e:  # noqa: BLE001
            err = err or reason_of(e)
    report(name, err, time.monotonic() - t0, results)


def run_group(gname, fn, results, filters):
    """A group yields (subname, callable(env)) pairs sharing one server."""
    t0 = time.monotonic()
    env = None
    try:
        env = Env(gname)
        env.start()
        for sub, call in fn(env):
            name = "%s/%s" % (gname, sub)
            if filters and not any(f in gname or f in name for f in filters):
                continue
            s0 = time.monotonic()
            err = None
            try:
                call()
            except Exception as e:  # noqa: BLE001
                err = reason_of(e)
            report(name, err, time.monotonic() - s0, results)
    except Exception as e:  # noqa: BLE001
        report(gname + "/setup", reason_of(e), time.monotonic() - t0, results)
    if env:
        try:
            env.close()
        except Exception as e:  # noqa: BLE001
            report(gname + "/teardown", reason_of(e), 0, results)


def main(argv):
    filters, listing = [], False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-k" and i + 1 < len(argv):
            filters.append(argv[i + 1])
            i += 1
        elif a.startswith("-k") and len(a) > 2:
            filters.append(a[2:])
        elif a == "-v":
            harness.VERBOSE = True
        elif a == "--list":
            listing = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            print("run.py: unknown argument %r (try --help)" % a, file=sys.stderr)
            return 2
        i += 1

    for label, path in (("FERRYD", harness.FERRYD), ("FERRY", harness.FERRY)):
        if not os.access(path, os.X_OK):
            print("FAIL e2e/setup: %s=%s is not an executable" % (label, path), flush=True)
            print("0 passed, 1 failed", flush=True)
            return 1

    results = []
    t0 = time.monotonic()
    print("# e2e: ferryd=%s ferry=%s%s" % (harness.FERRYD, harness.FERRY,
                                           " (ASan scale)" if harness.ASAN else ""), flush=True)
    for name, kind, fn in harness.SCENARIOS:
        if kind == "scenario" and filters and not any(f in name for f in filters):
            continue
        if listing:
            print(name)
            continue
        if kind == "scenario":
            run_scenario(name, fn, results)
        else:
            run_group(name, fn, results, filters)
    if listing:
        return 0
    passed = sum(1 for r in results if r[1])
    failed = len(results) - passed
    slow = sorted(results, key=lambda r: -r[2])[:8]
    print("# e2e took %.1f s; slowest: %s" % (
        time.monotonic() - t0, ", ".join("%s %.1fs" % (r[0], r[2]) for r in slow)), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
