"""Scale-out scenarios (issue 8), cluster mode only (FERRY_E2E_CLUSTER=1,
tests/e2e/cluster.py): three ferryd instances on one PostgreSQL database
and one S3 bucket (Ceph RGW) behind HAProxy.

- concurrent commits to one space through different instances: four
  clients pushing at once through the proxy while three API clients commit
  straight to each instance; GET /api/v1/changes from 0 then lists every
  seq from 1 to the space's seq exactly once;
- an instance SIGKILLed mid-upload of a large file (the proxy sends the
  upload to that instance only, then to the others): the upload's record
  shows failed, the client carries on through another instance, the record
  turns complete and the file arrives whole; the killed instance rejoins;
- PostgreSQL restarted (fast shutdown: every connection cut) under
  uploads: the clients' errors are clear, a rerun finishes, nothing is
  lost, and events still fan out afterwards (the LISTEN connection came
  back);
- the bucket unreachable for a few seconds (the scenario's own radosgw on
  the shared Ceph stopped and started again) under uploads: clear errors,
  retries, nothing lost;
- events fan out: a watch whose event stream is on one instance gets a
  change committed through another within a bound.

Every wait is bounded; times are printed as notes.
"""

import json
import os
import re
import threading
import time

import cluster
from harness import (ASAN, SLOW, SYNC_TIMEOUT, Device, Failure, assert_same, check,
                     file_sha256, note, scenario, tail, wait_for, write_big)
from watch_harness import WATCH_TIMEOUT, wait_converged
from test_transfers import device_id, records_of, token_of

KIB = 1 << 10
MIB = 1 << 20
FANOUT_BOUND = 5 * SLOW  # seconds from a commit on one instance to another's watcher


def cluster_of(env):
    c = env.server
    check(isinstance(c, cluster.Cluster), "test_scale runs in cluster mode only")
    return c


def inst_http(port, method, path, token=None, body=None, timeout=30 * SLOW):
    """A request straight to one instance (not through the proxy)."""
    import http.client  # noqa: PLC0415
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def inst_json(port, method, path, token=None, body=None):
    st, data = inst_http(port, method, path, token, body)
    check(st == 200, "%s %s on :%d -> %d %r" % (method, path, port, st, data[:300]))
    return json.loads(data)


def direct_device(env, name, inst, user="alice"):
    """A device linked straight to one instance (its event stream and
    commits stay there)."""
    d = Device(env, name, user, os.path.join(env.root, "dev-" + name))
    os.makedirs(d.dir, exist_ok=True)
    r = env.ferry(["-C", d.dir, "init", "--server", inst.url, "--user", user, "--device", name],
                  password=env.passwords[user])
    check(r.rc == 0, "init of %s on %s failed: %s" % (name, inst.url, r.describe()))
    env.devices.append(d)
    return d


def all_changes(port, token):
    """Every entry of GET /api/v1/changes from 0 (all pages); returns (seqs
    in order, the space's seq)."""
    seqs, since, top = [], 0, 0
    for _ in range(1000):
        resp = inst_json(port, "GET", "/api/v1/changes?since=%d&limit=1000" % since, token)
        top = max(top, resp["seq"])
        seqs += [e["seq"] for e in resp["entries"]]
        if not resp.get("more"):
            return seqs, top
        since = resp["entries"][-1]["seq"]
    raise Failure("changes did not end after 1000 pages")


def check_seqs_gap_free(port, token, what):
    seqs, top = all_changes(port, token)
    dups = sorted({s for s in seqs if seqs.count(s) > 1})
    check(not dups, "%s: duplicate seqs in changes: %s" % (what, dups[:20]))
    check(seqs == sorted(seqs), "%s: changes not in ascending seq order" % what)
    missing = sorted(set(range(1, top + 1)) - set(seqs))
    check(not missing, "%s: seqs missing from changes 1..%d: %s (%d in all)" %
          (what, top, missing[:20], len(missing)))
    check(len(seqs) == top, "%s: %d entries for space seq %d" % (what, len(seqs), top))
    return top


def wait_procs(procs, timeout):
    """Waits for Popen objects; returns [(rc, stderr text)]."""
    deadline = time.monotonic() + timeout
    out = []
    for p in procs:
        try:
            _o, e = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - TimeoutExpired: kill, report
            p.kill()
            _o, e = p.communicate()
            raise Failure("a client did not finish within %d s: %s" %
                          (timeout, tail(e.decode(errors="replace"))))
        out.append((p.returncode, e.decode(errors="replace")))
    return out


def sync_until_ok(dev, attempts=4, pause=1.0):
    """Reruns `ferry sync` until it succeeds (a client retrying by hand
    after a clear error); returns the failed runs' stderr."""
    errs = []
    for _ in range(attempts):
        r = dev.sync(expect=None)
        if r.rc == 0:
            return errs
        errs.append(r.err.strip())
        time.sleep(pause * SLOW)
    raise Failure("sync on %s still failing after %d attempts: %s" % (dev.name, attempts,
                                                                       " | ".join(errs)))


def check_clear_error(err, what):
    """A failed client run says what went wrong in a line or two (no
    crash, no empty output)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    check(lines, "%s: the client failed without a word on stderr" % what)
    check(len(lines) <= 3, "%s: want a short error, got %d lines: %s" % (what, len(lines),
                                                                        tail(err, 600)))
    for bad in ("Segmentation", "Aborted", "core dumped"):
        check(bad not in err, "%s: %s" % (what, err))


# ---- concurrent commits ------------------------------------------------------

@scenario("scale_concurrent_commits", cluster="only")
def concurrent_commits(env):
    cl = cluster_of(env)
    env.register("alice")
    nfiles = 20 if ASAN else 40
    devs = [env.device("D%d" % i) for i in range(4)]
    for i, d in enumerate(devs):
        for j in range(nfiles):
            d.write("d%d/f%03d.txt" % (i, j), ("device %d file %d\n" % (i, j)) * (50 + j))
        write_big(d.p("d%d/big.bin" % i), 1 * MIB, seed=40 + i)

    ncommits = 15 if ASAN else 30
    api_seqs = [[] for _ in cl.instances]
    errors = []
    tokens = [inst_json(s.port, "POST", "/api/v1/login", body={
        "user": "alice", "password": env.passwords["alice"], "device_name": "api%d" % i,
        "platform": "linux"})["token"] for i, s in enumerate(cl.instances)]
    start, done = threading.Event(), threading.Event()

    def committer(i):
        port = cl.instances[i].port
        try:
            start.wait(30)
            k = 0
            # At least ncommits, and on until every client's push is done,
            # so the direct commits overlap the pushes through the proxy.
            while k < ncommits or (not done.is_set() and k < 20 * ncommits):
                path = "api%d" % i if k == 0 else "api%d/d%03d" % (i, k)
                resp = inst_json(port, "POST", "/api/v1/commit", tokens[i], {"changes": [
                    {"op": "put", "path": path, "base": 0, "kind": "dir"}]})
                res = resp["results"][0]
                if res["status"] != "ok":
                    raise Failure("commit of %s on f%d: %s" % (path, i + 1, res))
                api_seqs[i].append(res["seq"])
                k += 1
        except Exception as e:  # noqa: BLE001
            errors.append("committer f%d: %s" % (i + 1, e))

    threads = [threading.Thread(target=committer, args=(i,)) for i in range(len(cl.instances))]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    procs = [d.popen(["sync"]) for d in devs]
    start.set()
    try:
        res = wait_procs(procs, SYNC_TIMEOUT)
    finally:
        done.set()
    for t in threads:
        t.join(SYNC_TIMEOUT)
    took = time.monotonic() - t0
    check(not errors, "; ".join(errors))
    for d, (rc, err) in zip(devs, res):
        check(rc == 0, "concurrent sync on %s: rc %d: %s" % (d.name, rc, tail(err)))
    for i, seqs in enumerate(api_seqs):
        check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
              "seqs of the commits on f%d not strictly increasing: %s" % (i + 1, seqs))
    flat = [s for seqs in api_seqs for s in seqs]
    check(len(set(flat)) == len(flat), "two API commits on different instances got one seq")

    top = check_seqs_gap_free(cl.instances[0].port, tokens[0], "after concurrent commits")
    note("%d clients through haproxy + %d direct committers (one per instance): %d commits, "
         "space seq %d, gap-free, in %.1f s" % (len(devs), len(cl.instances),
                                               len(flat) + len(devs), top, took))
    # Everyone ends with the same tree: each device's files and the API dirs.
    for d in devs:
        d.sync()
    e = env.device("E")
    e.sync()
    snap = assert_same(e, *devs)
    check(sum(1 for p in snap if p.endswith(".txt")) == len(devs) * nfiles,
          "files missing after the concurrent pushes")
    for i, seqs in enumerate(api_seqs):
        check(len([p for p in snap if p.startswith("api%d/" % i)]) == len(seqs) - 1,
              "the directories committed on f%d did not all reach the devices" % (i + 1))


# ---- an instance killed mid-upload -------------------------------------------

@scenario("scale_instance_killed_mid_upload", cluster="only",
          server_args=["--session-timeout", "3"])
def instance_killed(env):
    cl = cluster_of(env)
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    size = (24 if ASAN else 48) * MIB
    write_big(a.p("big.bin"), size, seed=77)
    want = file_sha256(a.p("big.bin"))
    a_id, tok = device_id(a), token_of(b)
    watch_port = cl.instances[1].port  # f2 watches; f1 takes the upload and dies

    def record():
        resp = inst_json(watch_port, "GET", "/api/v1/transfers?path=big.bin", tok)
        return records_of(resp, a_id).get("big.bin")

    # Only f1 takes new connections, so the upload runs on it.
    cl.haproxy_set(2, "maint")
    cl.haproxy_set(3, "maint")
    p = a.popen(["sync", "--limit-up", "16M"])
    seen = []

    def uploading():
        rec = record()
        if rec and (not seen or seen[-1] != rec["status"]):
            seen.append(rec["status"])
        return rec and rec["status"] == "uploading" and rec["bytes_done"] >= 4 * MIB
    if not wait_for(uploading, 60 * SLOW, 0.02):
        p.kill()
        raise Failure("A's upload never got going through f1 (records seen: %s)" % seen)
    cl.instances[0].kill()
    t_kill = time.monotonic()
    cl.haproxy_set(2, "ready")
    cl.haproxy_set(3, "ready")
    note("f1 SIGKILLed with big.bin at %s" % (record() or {}).get("bytes_done"))

    # Watch the record (from f2) until the client is done.
    def follow():
        rec = record()
        if rec and seen[-1] != rec["status"]:
            seen.append(rec["status"])
        return p.poll() is not None
    wait_for(follow, SYNC_TIMEOUT, 0.02)
    rc, err = wait_procs([p], 10)[0]
    if rc != 0:
        check_clear_error(err, "A's sync when its instance died")
        note("A's sync ended rc %d: %s" % (rc, err.strip()))
        # The record must turn failed (the instance holding it is dead: the
        # others fail it once the device is silent for --session-timeout).
        ok = wait_for(lambda: (follow() or True) and seen[-1] == "failed", 10 * SLOW, 0.02)
        check(ok, "big.bin's record not failed %.1f s after the kill: %s" %
              (time.monotonic() - t_kill, seen))
        note("record failed %.1f s after the kill" % (time.monotonic() - t_kill))
        sync_until_ok(a)
    else:
        note("A's sync carried on through another instance by itself")
    rec = record()
    seen.append(rec["status"])
    check(rec["status"] == "complete" and rec["seq"] > 0, "big.bin's record at the end: %s" % rec)
    check("failed" in seen, "the interrupted upload's record never showed failed: %s" % seen)
    check(seen.index("failed") < len(seen) - 1, "statuses seen: %s" % seen)
    note("big.bin's record: %s" % " -> ".join(s for i, s in enumerate(seen)
                                               if i == 0 or seen[i - 1] != s))
    b.sync()
    check(file_sha256(b.p("big.bin")) == want, "B's big.bin differs from A's")
    # The killed instance rejoins and serves the file.
    cl.instances[0].start()
    st, data = inst_http(cl.instances[0].port, "GET", "/api/v1/file?path=big.bin", tok)
    check(st == 200 and json.loads(data)["hash"], "f1 after its restart: %d %r" % (st, data[:200]))
    assert_same(a, b)


# ---- PostgreSQL restarted under load ------------------------------------------

@scenario("scale_pg_restart_under_load", cluster="only", private_pg=True)
def pg_restart(env):
    cl = cluster_of(env)
    env.register("alice")
    a = direct_device(env, "A", cl.instances[0])
    b = direct_device(env, "B", cl.instances[1])
    c = env.device("C")  # through the proxy
    b.sync()
    wb = b.watch()
    n = 20 if ASAN else 40
    for i in range(n):
        write_big(a.p("load/a%02d.bin" % i), 256 * KIB, seed=500 + i)
        c.write("load/c%02d.txt" % i, "from C %d\n" % i * 100)
    pa = a.popen(["sync", "--limit-up", "4M"])
    pc = c.popen(["sync"])
    time.sleep(0.5 * SLOW)
    took = cluster.pg_restart(cl.private_pg)
    note("PostgreSQL restarted (fast shutdown) in %.1f s under A's and C's uploads" % took)
    for dev, (rc, err) in zip((a, c), wait_procs([pa, pc], SYNC_TIMEOUT)):
        if rc != 0:
            check_clear_error(err, "%s's sync across the restart" % dev.name)
            note("%s's sync across the restart: rc %d: %s" % (dev.name, rc, err.strip()))
        errs = sync_until_ok(dev)
        if errs:
            note("%s needed %d more runs: %s" % (dev.name, len(errs), " | ".join(errs)))
    a.sync()
    for i, s in enumerate(cl.instances):
        check(s.running(), "instance f%d died with the database restart:\n%s" %
              (i + 1, tail(s.log_text(), 1500)))
    wait_converged([b, a], timeout=WATCH_TIMEOUT)
    c.sync()
    snap = assert_same(a, b, c)
    check(sum(1 for p in snap if p.startswith("load/")) == 2 * n, "files lost: %d of %d" %
          (sum(1 for p in snap if p.startswith("load/")), 2 * n))
    # Events still fan out from f1 to f2 after the restart.
    a.write("after.txt", "after the restart\n")
    t0 = time.monotonic()
    a.sync()
    got = wait_for(lambda: b.exists("after.txt"), FANOUT_BOUND, 0.01)
    check(got, "B (watching on f2) did not get A's commit on f1 within %d s after the "
          "database restart" % FANOUT_BOUND)
    note("after the restart a commit on f1 reached B's watch on f2 in %.2f s" %
         (time.monotonic() - t0))
    wb.stop()
    check_seqs_gap_free(cl.instances[2].port, token_of(c), "after the database restart")


# ---- the bucket unreachable ---------------------------------------------------

@scenario("scale_bucket_unreachable", cluster="only", private_rgw=True)
def bucket_unreachable(env):
    cl = cluster_of(env)
    if cluster.SHARED_FS:
        note("FERRY_E2E_CLUSTER_FS: no bucket to take away; nothing checked")
        return
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    n = 16 if ASAN else 40
    for i in range(n):
        write_big(a.p("up/f%02d.bin" % i), 512 * KIB, seed=900 + i)
    want = {p: v for p, v in a.snapshot().items()}
    marks = [len(s.log_text()) for s in cl.instances]
    p = a.popen(["sync", "--limit-up", "8M"])
    base = cl.disk_usage()
    check(wait_for(lambda: p.poll() is not None or cl.disk_usage() - base > 2 * MIB, 30 * SLOW,
                   0.05), "A's upload never reached the bucket")
    check(p.poll() is None, "A's upload ended before the gateway could be stopped")
    cl.gateway.stop()
    t0 = time.monotonic()
    outage = 4  # seconds; longer than ferryd's S3 retries (50 ms .. 1.6 s backoff)
    time.sleep(outage)
    cl.gateway.start()
    note("radosgw down for %.1f s during A's upload" % (time.monotonic() - t0))
    rc, err = wait_procs([p], SYNC_TIMEOUT)[0]
    logs = "\n".join(s.log_text()[m:] for s, m in zip(cl.instances, marks))
    s3_lines = [ln for ln in logs.splitlines() if "S3" in ln or "s3" in ln]
    if rc != 0:
        check_clear_error(err, "A's sync while the bucket was unreachable")
        note("A's sync during the outage: rc %d: %s" % (rc, err.strip()))
    else:
        note("A's sync rode out the outage (ferryd's retries)")
    check(s3_lines or rc != 0, "an S3 outage of %.0f s left no trace: the client succeeded and "
          "no ferryd log line names S3" % outage)
    if s3_lines:
        note("ferryd: %s" % s3_lines[0].strip()[:300])
    errs = sync_until_ok(a)
    if errs:
        note("A needed %d more runs: %s" % (len(errs), " | ".join(errs)))
    for i, s in enumerate(cl.instances):
        check(s.running(), "instance f%d died with the gateway:\n%s" % (i + 1,
                                                                        tail(s.log_text(), 1500)))
    b.sync()
    assert_same(a, b, expect=want)


# ---- events fan out -----------------------------------------------------------

@scenario("scale_events_fan_out", cluster="only")
def events_fan_out(env):
    cl = cluster_of(env)
    env.register("alice")
    a = direct_device(env, "A", cl.instances[0])
    b = direct_device(env, "B", cl.instances[1])
    wa, wb = a.watch(), b.watch()
    lat = []
    for k in range(5):
        a.write("fan/%d.txt" % k, "change %d\n" % k)
        t0 = time.monotonic()
        got = wait_for(lambda: b.exists("fan/%d.txt" % k) and
                       b.read("fan/%d.txt" % k) == ("change %d\n" % k).encode(), FANOUT_BOUND,
                       0.005)
        check(got, "B (watching on f2) did not get fan/%d.txt written on A (on f1) within %d s"
              % (k, FANOUT_BOUND))
        lat.append(time.monotonic() - t0)
    # A commit straight to f3 (no device of it watching) reaches both.
    tok = inst_json(cl.instances[2].port, "POST", "/api/v1/login", body={
        "user": "alice", "password": env.passwords["alice"], "device_name": "api",
        "platform": "linux"})["token"]
    t0 = time.monotonic()
    inst_json(cl.instances[2].port, "POST", "/api/v1/commit", tok, {"changes": [
        {"op": "put", "path": "from-f3", "base": 0, "kind": "dir"}]})
    check(wait_for(lambda: a.exists("from-f3") and b.exists("from-f3"), FANOUT_BOUND, 0.005),
          "a commit on f3 did not reach the watchers on f1 and f2 within %d s" % FANOUT_BOUND)
    lat.append(time.monotonic() - t0)
    note("write on A (f1) -> file on B (f2): %s s; commit on f3 -> both: %.2f s" %
         (", ".join("%.2f" % x for x in lat[:-1]), lat[-1]))
    wait_converged([a, b])
    wa.stop()
    wb.stop()


# ---- garbage collection on S3 with several collectors -------------------------

@scenario("scale_gc_on_s3_three_collectors", cluster="only",
          server_args=["--keep-versions", "1", "--gc-interval", "1", "--gc-grace", "0"])
def gc_on_s3_three_collectors(env):
    """Every instance runs the GC each second (one at a time, by the
    database's lock): replaced and deleted files' chunks leave the bucket,
    nothing a kept version needs does, and no collector trips over another
    (a chunk deleted twice, an error in a log)."""
    cl = cluster_of(env)
    env.register("alice")
    a = env.device("A")
    n, size = (4, 384 * KIB) if ASAN else (8, 512 * KIB)
    for i in range(n):
        write_big(a.p("g/f%d.bin" % i), size, seed=700 + i)
    a.sync()
    first = cl.disk_usage()
    check(first >= n * size * 0.9, "the bucket holds %d bytes after uploading %d" %
          (first, n * size))
    # New content for every file (the old versions are over the limit of
    # one kept version), then half of them deleted.
    for i in range(n):
        write_big(a.p("g/f%d.bin" % i), size, seed=800 + i)
    a.sync()
    for i in range(n // 2):
        a.remove("g/f%d.bin" % i)
    a.sync()
    live = (n - n // 2) * size
    # a shared folder keeps pack files, compacted once half dead (README
    # "Chunk store"): up to twice the live bytes; a bucket holds one object
    # per chunk
    limit = live * (2.2 if cluster.SHARED_FS else 1.1)
    ok = wait_for(lambda: cl.disk_usage() <= limit, 40 * SLOW, 0.2)
    usage = cl.disk_usage()
    check(ok, "the bucket still holds %d bytes, %d expected once the GC freed the replaced and "
          "deleted versions (first upload %d)" % (usage, live, first))
    logs = [s.log_text() for s in cl.instances]
    freed = [sum(int(m) for m in re.findall(r"gc: \d+ versions pruned, (\d+) chunks freed", t))
             for t in logs]
    check(sum(freed) > 0, "no instance logged freeing a chunk")
    bad = [ln for t in logs for ln in t.splitlines()
           if "gc" in ln and (" error" in ln or " warn" in ln)]
    check(not bad, "a collector reported trouble: %s" % bad[:3])
    note("bucket %d -> %d bytes (live %d); chunks freed by f1..f%d: %s" %
         (first, usage, live, len(freed), freed))
    # Nothing still needed went: a new device gets every kept file whole.
    want = a.snapshot()
    e = env.device("E")
    e.sync()
    assert_same(a, e, expect=want)
