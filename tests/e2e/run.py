#!/usr/bin/env python3
"""Runs Ferry's end-to-end scenarios against real binaries.

    FERRYD=build/src/server/ferryd FERRY=build/src/client/ferry \\
        python3 tests/e2e/run.py [-k NAME]... [-j N] [-v] [--list]

Each scenario gets its own ferryd (fresh data dir, free port on 127.0.0.1)
and temporary folders. Prints `ok NAME` or `FAIL NAME: reason` per test and
ends with `N passed, N failed`; exits 1 when anything failed.

-j N runs scenarios in N worker processes at once (each scenario is
independent: own ports, folders, database); a scenario's lines are printed
when it ends, the longest scenarios (timings of the last run, in
BUILD/e2e-times.json) start first.

Cluster mode (FERRY_E2E_CLUSTER=1, tests/e2e/cluster.py): every scenario's
server is 3 ferryd instances on PostgreSQL + Ceph RGW behind HAProxy. It
runs the suites of the foundation, real-time and records issues (minus
CLUSTER_SKIP, each printed as `skip NAME: reason`) and test_scale.py. The
services come from the environment (scripts/services.sh writes it); when
they are not set, run.py starts them itself for the run.

Environment: FERRY_E2E_ASAN=1 scales sizes and timeouts for sanitized
builds; FERRY_E2E_KEEP=1 keeps temp dirs; FERRY_E2E_VERBOSE=1 (or -v) prints
every command.
"""

import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
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
import test_scale  # noqa: E402,F401
import test_engine  # noqa: E402,F401
import cluster  # noqa: E402

# The suites that run once more in cluster mode (foundation, real-time and
# records issues), and their scenarios that make no sense there.
CLUSTER_MODULES = ("test_sync", "test_robust", "test_cli", "test_api", "test_evil", "test_watch",
                   "test_resume", "test_watch_limits", "test_delta", "test_transfers",
                   "test_scale")
CLUSTER_SKIP = {
    "large_file_streaming":
        "single-instance only: 2 GiB through the one-OSD test Ceph takes minutes, over the "
        "cluster tier's budget (scale_instance_killed_mid_upload streams a large file through "
        "the cluster instead)",
    "client_rejects_hostile_server_paths":
        "single-instance only: the client talks to a fake hostile server, no ferryd is involved",
    "watch_limit_exhausted_rescans":
        "single-instance only: the client's inotify limit and its 10 s rescans, nothing of the "
        "server differs with 3 instances (21 s of the cluster tier's budget)",
}
# Scenarios of these modules share something machine-wide (test_lan: the
# 10.77.x addresses of its network namespaces, behind a file lock), so -j
# runs them one at a time, next to others.
MUTEX_MODULES = ("test_lan",)
# Backstop per scenario in -j mode (each scenario's own waits are bounded
# far below this): the worker's whole process group is killed.
TASK_TIMEOUT = 600 * harness.SLOW


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
        env = Env(name, server_args=getattr(fn, "server_args", ()),
                  private_pg=getattr(fn, "private_pg", False),
                  private_rgw=getattr(fn, "private_rgw", False))
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


def run_task(task, results, filters):
    name, kind, fn = task
    if kind == "scenario":
        run_scenario(name, fn, results)
    else:
        run_group(name, fn, results, filters)


def child(task, filters, conn):
    """A -j worker: runs one scenario in its own process group (so a
    backstop kill takes its ferryd, haproxy and clients with it) and sends
    back its printed lines and results."""
    os.setpgid(0, 0)
    buf = io.StringIO()
    sys.stdout = buf
    results = []
    try:
        run_task(task, results, filters)
    except KeyboardInterrupt:
        pass
    except BaseException as e:  # noqa: B902
        report(task[0], reason_of(e), 0, results)
    sys.stdout = sys.__stdout__
    conn.send((buf.getvalue(), results))
    conn.close()


def run_parallel(tasks, jobs, results, filters):
    """Runs tasks in up to jobs worker processes."""
    ctx = multiprocessing.get_context("fork")
    running = {}  # pid -> (process, conn, task, start)

    def launch(task):
        rd, wr = ctx.Pipe(duplex=False)
        p = ctx.Process(target=child, args=(task, filters, wr))
        p.start()
        wr.close()
        running[p.pid] = (p, rd, task, time.monotonic())

    def reap(block):
        while running:
            for pid, (p, rd, task, t0) in list(running.items()):
                if rd.poll():
                    try:
                        out, res = rd.recv()
                    except EOFError:
                        out, res = "", []
                    p.join()
                    del running[pid]
                    sys.stdout.write(out)
                    sys.stdout.flush()
                    results.extend(res)
                    if not res and p.exitcode != 0:  # (a group may match no -k filter)
                        report(task[0], "worker ended without a result (exit %s)" % p.exitcode,
                               time.monotonic() - t0, results)
                    return
                if not p.is_alive() and not rd.poll():
                    p.join()
                    del running[pid]
                    report(task[0], "worker died (exit %s)" % p.exitcode,
                           time.monotonic() - t0, results)
                    return
                if time.monotonic() - t0 > TASK_TIMEOUT:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                    p.join()
                    del running[pid]
                    report(task[0], "killed after %d s (the backstop of -j mode)" % TASK_TIMEOUT,
                           time.monotonic() - t0, results)
                    return
            if not block:
                return
            time.sleep(0.02)

    def busy_key(task):
        mod = task[2].__module__
        return mod if mod in MUTEX_MODULES and any(
            t[2].__module__ == mod for _p, _r, t, _t0 in running.values()) else None

    try:
        pending = list(tasks)
        while pending:
            while len(running) >= jobs:
                reap(True)
            task = next((t for t in pending if not busy_key(t)), None)
            if task is None:
                reap(True)
                continue
            pending.remove(task)
            launch(task)
        while running:
            reap(True)
    except KeyboardInterrupt:
        for pid in running:
            try:
                os.killpg(pid, signal.SIGINT)
            except OSError:
                pass
        for p, _rd, _t, _t0 in running.values():
            p.join(timeout=30)
        raise


def times_path():
    return os.environ.get("FERRY_E2E_TIMES") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(harness.FERRYD))), "e2e-times.json")


def load_times(mode):
    try:
        with open(times_path()) as f:
            return json.load(f).get(mode, {})
    except (OSError, ValueError, AttributeError):
        return {}


def save_times(mode, results):
    path = times_path()
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    known = data.setdefault(mode, {})
    this_run = {}
    for name, _ok, elapsed in results:  # a group's items add up under its name
        top = name.split("/")[0]
        this_run[top] = this_run.get(top, 0) + elapsed
    known.update({k: round(v, 2) for k, v in this_run.items()})
    try:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass


def start_services():
    """Cluster mode without FERRY_TEST_PG and friends: starts the services
    for this run (scripts/services.sh). Returns their folder or None."""
    d = tempfile.mkdtemp(prefix="ferry-services-")
    script = os.path.join(cluster.REPO, "scripts", "services.sh")
    print("# cluster mode: starting PostgreSQL and Ceph RGW (scripts/services.sh start %s)" % d,
          flush=True)
    rc = subprocess.call(["bash", script, "start", d], stdin=subprocess.DEVNULL)
    try:
        with open(os.path.join(d, "env")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                if k:
                    os.environ[k] = v
    except OSError:
        pass
    if rc != 0:
        stop_services(d)
        return None
    return d


def stop_services(d):
    subprocess.call(["bash", os.path.join(cluster.REPO, "scripts", "services.sh"), "stop", d],
                    stdin=subprocess.DEVNULL)


def select(filters, clustered, listing):
    """The tasks to run, and the skip lines of cluster mode."""
    tasks, skips = [], []
    for name, kind, fn in harness.SCENARIOS:
        if kind == "scenario" and filters and not any(f in name for f in filters):
            continue
        only = getattr(fn, "cluster", None) == "only"
        if clustered:
            if fn.__module__ not in CLUSTER_MODULES:
                continue
            if name in CLUSTER_SKIP:
                skips.append((name, CLUSTER_SKIP[name]))
                continue
        elif only:
            if listing:
                print("%s (cluster mode only)" % name)
            continue
        tasks.append((name, kind, fn))
    return tasks, skips


def main(argv):
    filters, listing, jobs = [], False, 1
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-k" and i + 1 < len(argv):
            filters.append(argv[i + 1])
            i += 1
        elif a.startswith("-k") and len(a) > 2:
            filters.append(a[2:])
        elif a == "-j" and i + 1 < len(argv) and argv[i + 1].isdigit():
            jobs = max(1, int(argv[i + 1]))
            i += 1
        elif a.startswith("-j") and a[2:].isdigit():
            jobs = max(1, int(a[2:]))
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

    clustered = cluster.enabled()
    tasks, skips = select(filters, clustered, listing)
    if listing:
        for name, _kind, _fn in tasks:
            print(name)
        for name, why in skips:
            print("%s (skipped: %s)" % (name, why))
        return 0

    for label, path in (("FERRYD", harness.FERRYD), ("FERRY", harness.FERRY)):
        if not os.access(path, os.X_OK):
            print("FAIL e2e/setup: %s=%s is not an executable" % (label, path), flush=True)
            print("0 passed, 1 failed", flush=True)
            return 1

    services = None
    if clustered and cluster.missing_services():
        services = start_services()
        if services is None:
            print("FAIL cluster/services: PostgreSQL or Ceph RGW could not be started "
                  "(see the banner above)", flush=True)
            print("0 passed, 1 failed", flush=True)
            return 1
    mode = ("cluster" if clustered else "plain") + ("-asan" if harness.ASAN else "")
    results = []
    t0 = time.monotonic()
    print("# e2e: ferryd=%s ferry=%s%s%s%s" % (
        harness.FERRYD, harness.FERRY, " (ASan scale)" if harness.ASAN else "",
        " cluster mode: %d instances behind haproxy, PostgreSQL %s, S3 %s" % (
            cluster.INSTANCES, os.environ.get("FERRY_TEST_PG"),
            os.environ.get("FERRY_S3_ENDPOINT")) if clustered else "",
        ", %d workers" % jobs if jobs > 1 else ""), flush=True)
    for name, why in skips:
        print("skip %s: %s" % (name, why), flush=True)
    try:
        if jobs > 1:
            times = load_times(mode)
            tasks.sort(key=lambda t: -times.get(t[0], 1000.0))
            run_parallel(tasks, jobs, results, filters)
        else:
            for task in tasks:
                run_task(task, results, filters)
    finally:
        if services:
            stop_services(services)
    save_times(mode, results)
    passed = sum(1 for r in results if r[1])
    failed = len(results) - passed
    slow = sorted(results, key=lambda r: -r[2])[:8]
    print("# e2e took %.1f s; slowest: %s" % (
        time.monotonic() - t0, ", ".join("%s %.1fs" % (r[0], r[2]) for r in slow)), flush=True)
    if skips:
        print("# %d skipped in cluster mode (single-instance only)" % len(skips), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
