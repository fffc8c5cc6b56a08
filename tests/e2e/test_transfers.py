"""Transfer records end to end: a device SIGKILLed in the middle of a
30-file upload, seen from the account's other devices; the download
policies `skip` (never touches an unfinished file) and `wait` (lists it as
waiting, downloads it on its own once the upload completes); `ferry retry`
and `ferry forget`; the command line's usage errors.

The kill lands mid-way because the upload is held to --limit-up and the
push commits as it goes (groups of about 2 s): some files are complete,
the rest announced. The time from the kill to the records showing failed
is measured and printed (`kill -> failed: N ms`)."""

import json
import os
import signal
import time

from harness import (ASAN, SLOW, check, ferry_hash, file_sha256, json_out, note, scenario,
                     wait_for, write_big)
from watch_harness import WATCH_TIMEOUT, status_json, wait_converged

KIB = 1 << 10
MIB = 1 << 20
FILES = 30
SIZE = (512 * KIB) if ASAN else MIB
LIMIT = "2M" if ASAN else "4M"
FAIL_BOUND = 10 * SLOW  # seconds from the kill to failed records


def token_of(dev):
    with open(dev.p(".ferry/config.json")) as f:
        return json.load(f)["token"]


def device_id(dev):
    with open(dev.p(".ferry/config.json")) as f:
        return json.load(f)["device_id"]


def api_json(env, dev, path):
    st, data, _ = env.api("GET", path, token_of(dev))
    check(st == 200, "GET %s -> %d %r" % (path, st, data[:300]))
    return json.loads(data)


def records_of(resp, dev_id):
    """{path: record} of the newest record per path uploaded by dev_id."""
    out = {}
    for b in resp["batches"]:  # newest first
        if b["device"] != dev_id:
            continue
        for r in b["records"]:
            out.setdefault(r["path"], dict(r, device_name=b["device_name"]))
    return out


def counts(recs):
    c = {}
    for r in recs.values():
        c[r["status"]] = c.get(r["status"], 0) + 1
    return c


def names():
    return ["data/f%02d.bin" % i for i in range(FILES)]


def fill(dev, seed=0):
    for i, n in enumerate(names()):
        write_big(dev.p(n), SIZE, seed=100 + seed + i)


def kill_after_some_complete(env, a, watcher_dev):
    """Starts A's limited upload and SIGKILLs it once some files are complete
    and some are not. Returns (records at the kill, kill time)."""
    a_id = device_id(a)
    p = a.popen(["sync", "--limit-up", LIMIT])
    t0 = time.monotonic()
    deadline = time.monotonic() + 120 * SLOW
    recs, first_complete = {}, None
    while time.monotonic() < deadline and p.poll() is None:
        recs = records_of(api_json(env, watcher_dev, "/api/v1/transfers"), a_id)
        c = counts(recs)
        if len(recs) == FILES and 0 < c.get("complete", 0) < FILES - 2:
            # best with a file half-way (uploading, bytes reported) too
            first_complete = first_complete or time.monotonic()
            if (c.get("uploading") or time.monotonic() - first_complete > 1.5 or
                    c["complete"] >= FILES // 2):
                break
        time.sleep(0.02)
    if p.poll() is not None:
        err = p.communicate()[1].decode(errors="replace")
        raise AssertionError("A's sync ended (rc %s) before it could be killed: %s" %
                             (p.returncode, err[-500:]))
    p.send_signal(signal.SIGKILL)
    t_kill = time.monotonic()
    p.communicate(timeout=30)
    note("A killed %.1f s into its upload" % (t_kill - t0))
    return recs, t_kill


def wait_failed(env, dev, a_id, t_kill):
    """Waits until none of A's records is pending or uploading; returns them
    and the seconds since the kill."""
    recs = {}
    while time.monotonic() - t_kill < FAIL_BOUND:
        recs = records_of(api_json(env, dev, "/api/v1/transfers"), a_id)
        c = counts(recs)
        if not c.get("pending") and not c.get("uploading"):
            return recs, time.monotonic() - t_kill
        time.sleep(0.01)
    raise AssertionError("A's records still %s %.1f s after the kill" % (counts(recs), FAIL_BOUND))


@scenario("transfers_kill_mid_upload", server_args=["--session-timeout", "3"])
def kill_mid_upload(env):
    env.register("alice")
    a, b, c = env.device("A"), env.device("B"), env.device("C")
    a_id = device_id(a)
    r = c.run(["config", "download-incomplete", "wait"])
    check(r.rc == 0 and "download-incomplete = wait" in r.out, "config on C: %s" % r.describe())
    cw = c.watch()
    fill(a)
    want = {n: file_sha256(a.p(n)) for n in names()}

    at_kill, t_kill = kill_after_some_complete(env, a, b)
    recs, took = wait_failed(env, b, a_id, t_kill)
    note("kill -> failed: %d ms (at the kill: %s)" % (took * 1000, counts(at_kill)))
    up = [r for r in at_kill.values() if r["status"] == "uploading"]
    for rec in up:
        check(0 < rec["bytes_done"] <= rec["size"], "uploading record at the kill: %s" % rec)
    if up:
        note("at the kill %d files were uploading, %d bytes reported done" %
             (len(up), sum(r["bytes_done"] for r in up)))
    c_ = counts(recs)
    m = c_.get("complete", 0)
    check(len(recs) == FILES, "B sees %d of A's %d records" % (len(recs), FILES))
    check(0 < m < FILES and c_.get("failed", 0) == FILES - m,
          "expected M complete and the rest failed, got %s" % c_)
    for path, rec in recs.items():
        check(rec["device_name"] == "A", "record of %s names device %r" % (path,
                                                                        rec["device_name"]))
        if rec["status"] == "failed":
            check(rec["reason"], "failed record of %s has no reason" % path)
    note("M = %d complete, %d failed (%s)" % (m, FILES - m,
                                              sorted({r["reason"] for r in recs.values()
                                                      if r["status"] == "failed"})))
    complete = sorted(p for p, r in recs.items() if r["status"] == "complete")
    missing = sorted(p for p, r in recs.items() if r["status"] != "complete")

    # `ferry transfers --json` on B says the same
    tj = json_out(b.run(["transfers", "--json"]), "ferry transfers --json on B")
    mine = [x for x in tj["batches"] if x["device"] == a_id]
    check(mine, "ferry transfers --json on B lists no batch of A: %s" % tj)
    check(sum(x["complete"] for x in mine) >= m and sum(x["failed"] for x in mine) == FILES - m,
          "transfers --json batches of A: %s" % [(x["complete"], x["failed"]) for x in mine])
    dev = [d for d in tj["devices"] if d["id"] == a_id][0]
    check(dev["name"] == "A" and "online" in dev and "last_seen" in dev,
          "device A in transfers --json: %s" % dev)
    txt = b.run(["transfers"])
    check(txt.rc == 0 and "from A (" in txt.out and "failed" in txt.out,
          "ferry transfers on B: %s" % txt.describe())

    # skip (B): only the complete files; the others are never touched
    b.sync()
    for p in complete:
        check(b.exists(p) and file_sha256(b.p(p)) == want[p], "B lacks complete file %s" % p)
    for p in missing:
        check(not b.exists(p), "B (skip) has the unfinished file %s" % p)
    check(b.temp_files() == [], "B left temporary files: %s" % b.temp_files())
    st, data, _ = env.api("GET", "/api/v1/file?path=" + missing[0], token_of(b))
    body = json.loads(data)
    check(st == 409 and body.get("code") == "not_ready" and "not yet uploaded" in body["error"],
          "GET /file of an unfinished file: %d %r" % (st, data[:300]))

    # wait (C, watching): the complete ones arrive, the others are waiting
    # (the failures reach C's list through the event stream: `event: transfers`)
    def c_state():
        s = status_json(c)
        w = s.get("waiting") or {}
        failed = sum(d["failed"] for d in w.get("devices", []) if d["name"] == "A")
        have = all(c.exists(p) for p in complete)
        return (have and failed == FILES - m and
                (s.get("watch") or {}).get("waiting") == FILES - m)
    check(wait_for(c_state, WATCH_TIMEOUT, 0.1),
          "C (wait) does not show %d failed files waiting from A with the complete ones in "
          "place: %s" % (FILES - m, status_json(c)))
    txt = c.run(["status"])
    check("waiting:   %d files from A (" % (FILES - m) in txt.out and "failed" in txt.out,
          "ferry status on C: %s" % txt.describe())
    for p in missing:
        check(not c.exists(p), "C has the unfinished file %s" % p)

    # A comes back and finishes; C downloads the rest without being asked
    t0 = time.monotonic()
    a.sync()
    recs = records_of(api_json(env, b, "/api/v1/transfers"), a_id)
    check(counts(recs) == {"complete": FILES}, "after A's rerun: %s" % counts(recs))
    wait_converged([a, c], timeout=WATCH_TIMEOUT * 2)
    note("A back -> C has all %d files: %.1f s" % (FILES, time.monotonic() - t0))
    for p in names():
        check(file_sha256(c.p(p)) == want[p], "C's %s differs from A's" % p)
    check(wait_for(lambda: (status_json(c).get("watch") or {}).get("waiting") == 0,
                   WATCH_TIMEOUT, 0.1), "C still shows files waiting: %s" % status_json(c))
    dls = api_json(env, c, "/api/v1/transfers?device=" + device_id(c))["downloads"]
    undone = [d for d in dls if d["path"] in missing and d["status"] != "done"]
    check(not undone, "C's download records not done: %s" % undone[:3])
    cw.stop()
    b.sync()
    for p in names():
        check(file_sha256(b.p(p)) == want[p], "B's %s differs from A's" % p)


@scenario("transfers_silent_device_times_out", server_args=["--session-timeout", "3"])
def silent_device(env):
    """A device that goes silent without closing its connection (SIGSTOP:
    a laptop lid shut) is failed by the session timeout, "device offline";
    once it continues, its progress turns the records back to uploading
    and the commit completes them."""
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    a_id = device_id(a)
    for i in range(4):
        write_big(a.p("s%d.bin" % i), 2 * SIZE, seed=500 + i)
    p = a.popen(["sync", "--limit-up", "1M"])
    ok = wait_for(lambda: len(records_of(api_json(env, b, "/api/v1/transfers"), a_id)) == 4,
                  30 * SLOW, 0.02)
    try:
        check(ok and p.poll() is None, "A's announce never showed up")
        time.sleep(0.3)
        p.send_signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        recs, took = wait_failed(env, b, a_id, t_stop)
        note("silent (SIGSTOP) -> failed: %d ms with --session-timeout 3" % (took * 1000))
        check(counts(recs) == {"failed": 4}, "after the timeout: %s" % counts(recs))
        reasons = {r["reason"] for r in recs.values()}
        check(all(x.startswith("device offline: no word since ") for x in reasons),
              "reasons: %s" % reasons)
        check(took >= 2.0, "failed %.1f s after the device went silent, before the 3 s "
              "timeout" % took)
        p.send_signal(signal.SIGCONT)
        ok = wait_for(lambda: counts(records_of(api_json(env, b, "/api/v1/transfers"), a_id))
                      .get("failed", 0) < 4, 30 * SLOW, 0.05)
        check(ok, "A's records stay failed after it continued")
        _, err = p.communicate(timeout=120 * SLOW)
        check(p.returncode == 0, "A's sync after SIGCONT: rc %s %s" % (p.returncode, err[-500:]))
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.communicate()
    recs = records_of(api_json(env, b, "/api/v1/transfers"), a_id)
    check(counts(recs) == {"complete": 4}, "after A finished: %s" % counts(recs))


def kill_early(env, a, b):
    """A announces and starts a limited upload of 6 files; killed before
    anything is complete. Returns A's failed records as B sees them."""
    a_id = device_id(a)
    for i in range(6):
        write_big(a.p("r%d.bin" % i), SIZE, seed=300 + i)
    p = a.popen(["sync", "--limit-up", "256K"])
    ok = wait_for(lambda: len(records_of(api_json(env, b, "/api/v1/transfers"), a_id)) == 6,
                  30 * SLOW, 0.02)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    check(ok, "A's announce never showed up")
    recs, _ = wait_failed(env, b, a_id, time.monotonic())
    check(counts(recs) == {"failed": 6}, "after the kill: %s" % counts(recs))
    return recs


@scenario("transfers_retry_and_forget")
def retry_and_forget(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    a_id = device_id(a)
    kill_early(env, a, b)

    # forget: any device of the account; only failed records
    r = b.run(["forget", "r3.bin"])
    check(r.rc == 0 and "forgot 1 record of r3.bin" in r.out, "forget r3.bin: %s" % r.describe())
    r = b.run(["forget", "r3.bin"])
    check(r.rc == 1 and "r3.bin has no failed record" in r.err,
          "forget r3.bin again: %s" % r.describe())
    recs = records_of(api_json(env, b, "/api/v1/transfers"), a_id)
    check(sorted(recs) == ["r%d.bin" % i for i in (0, 1, 2, 4, 5)], "after forget: %s" %
          sorted(recs))

    # retry: another device's upload can only be retried there
    r = b.run(["retry", "r1.bin"])
    check(r.rc == 1 and "only A can upload it" in r.err, "retry on B: %s" % r.describe())
    r = a.run(["retry", "--failed"])
    check(r.rc == 0 and "retried 5 uploads and 0 downloads" in r.out,
          "retry --failed on A: %s" % r.describe())
    recs = records_of(api_json(env, b, "/api/v1/transfers"), a_id)
    check(counts(recs) == {"complete": 6}, "after retry: %s" % counts(recs))  # r3 re-announced
    r = a.run(["retry", "r1.bin"])
    check(r.rc == 1 and "no failed transfer of r1.bin" in r.err, "retry again: %s" % r.describe())
    r = a.run(["retry", "--failed"])
    check(r.rc == 0 and "nothing to retry" in r.out, "retry --failed, none: %s" % r.describe())
    b.sync()
    for i in range(6):
        check(file_sha256(b.p("r%d.bin" % i)) == file_sha256(a.p("r%d.bin" % i)),
              "B's r%d.bin differs" % i)

    # a failed download: the server holds sub/x.txt, but on B "sub" is a link
    a.symlink("/tmp", "sub")
    a.sync()
    b.sync()
    check(os.path.islink(b.p("sub")), "B did not get the link sub")
    content = b"under a link\n"
    h = file_sha256_bytes(content)
    frame = bytes.fromhex(h) + bytes([0]) + len(content).to_bytes(4, "big") + content
    st, data, _ = env.api("POST", "/api/v1/chunks", token_of(a), frame,
                          {"Content-Type": "application/x-ferry-chunks"})
    check(st == 200, "chunk upload: %d %r" % (st, data[:200]))
    st, data, _ = env.api("POST", "/api/v1/commit", token_of(a), {"changes": [
        {"op": "put", "path": "sub/x.txt", "base": 0, "kind": "file", "size": len(content),
         "mtime_ns": 1763761956000000000, "mode": 420, "hash": ferry_hash(content),
         "chunks": [[h, len(content)]]}]})
    res = json.loads(data)["results"][0] if st == 200 else None
    check(res and res["status"] == "ok", "commit sub/x.txt: %d %r" % (st, data[:300]))
    b.sync()
    check(not os.path.exists("/tmp/x.txt") or file_sha256("/tmp/x.txt") != h,
          "B wrote through the link")
    b_id = device_id(b)
    dls = api_json(env, b, "/api/v1/transfers?device=" + b_id)["downloads"]
    bad = [d for d in dls if d["path"] == "sub/x.txt"]
    check(bad and bad[0]["status"] == "failed" and "not applied" in bad[0]["reason"],
          "B's download record of sub/x.txt: %s" % bad)
    txt = b.run(["transfers"])
    check("failed" in txt.out and "sub/x.txt" in txt.out, "transfers on B: %s" % txt.describe())
    # the user removes the link; retry downloads the file
    os.unlink(b.p("sub"))
    r = b.run(["retry", "sub/x.txt"])
    check(r.rc == 0 and "retried 0 uploads and 1 download" in r.out,
          "retry of the download on B: %s" % r.describe())
    check(b.read("sub/x.txt") == content, "B's sub/x.txt after retry")
    dls = api_json(env, b, "/api/v1/transfers?device=" + b_id)["downloads"]
    d = [x for x in dls if x["path"] == "sub/x.txt"]
    check(d and d[0]["status"] == "done", "B's download record after retry: %s" % d)

    # forget --failed: every failed record of the account
    kill_early_one(env, a, b)
    r = b.run(["forget", "--failed"])
    check(r.rc == 0 and "forgot 1 failed record" in r.out, "forget --failed: %s" % r.describe())
    recs = records_of(api_json(env, b, "/api/v1/transfers"), a_id)
    check("late.bin" not in recs, "late.bin still recorded: %s" % recs.get("late.bin"))


def kill_early_one(env, a, b):
    write_big(a.p("late.bin"), 4 * SIZE, seed=999)
    p = a.popen(["sync", "--limit-up", "128K"])
    ok = wait_for(lambda: "late.bin" in records_of(api_json(env, b, "/api/v1/transfers"),
                                                   device_id(a)), 30 * SLOW, 0.02)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    check(ok, "late.bin was never announced")
    wait_failed(env, b, device_id(a), time.monotonic())


def file_sha256_bytes(b):
    import hashlib  # noqa: PLC0415
    return hashlib.sha256(b).hexdigest()


@scenario("transfers_cli")
def cli(env):
    env.register("alice")
    a = env.device("A")
    for cmd in ("transfers", "retry", "forget", "config"):
        r = a.run([cmd, "--help"])
        check(r.rc == 0 and r.out.startswith("usage: ferry [-C DIR] %s" % cmd),
              "%s --help: %s" % (cmd, r.describe()))
        r = a.run([cmd, "--bogus"])
        check(r.rc == 2 and "unknown option --bogus" in r.err, "%s --bogus: %s" % (cmd,
                                                                              r.describe()))
    for args in (["retry"], ["forget"], ["retry", "--failed", "x"], ["forget", "../x"],
                 ["config", "nope"], ["config", "download-incomplete", "later"],
                 ["config", "mass-delete-count", "-1"], ["config", "a", "b", "c"],
                 ["transfers", "extra"]):
        r = a.run(args)
        check(r.rc == 2 and r.err.startswith("ferry: %s: " % args[0]) and
              len(r.err.strip().splitlines()) == 1, "%s: %s" % (args, r.describe()))
    r = a.run(["transfers"])
    check(r.rc == 0 and r.out.strip() == "no transfers", "transfers, none: %s" % r.describe())
    r = a.run(["transfers", "--device", "nosuch"])
    check(r.rc == 1 and r.err.startswith("ferry: transfers: "), "unknown device: %s" %
          r.describe())
    r = a.run(["config"])
    check(r.rc == 0 and "download-incomplete = skip" in r.out and
          "mass-delete-count = 50" in r.out, "config: %s" % r.describe())
    r = a.run(["config", "mass-delete-count", "70"])
    check(r.rc == 0 and a.run(["config", "mass-delete-count"]).out.strip() == "70",
          "config set count: %s" % r.describe())
    # the policy reaches the server, and status shows it
    r = a.run(["config", "download-incomplete", "wait"])
    check(r.rc == 0 and r.err == "", "config wait: %s" % r.describe())
    devs = api_json(env, a, "/api/v1/devices")["devices"]
    check([d["download_incomplete"] for d in devs if d["name"] == "A"] == ["wait"],
          "the server's policy for A: %s" % devs)
    s = status_json(a)
    check(s["download_incomplete"] == "wait" and s["waiting"] is None,
          "status --json before a sync: %s" % s)
    a.sync()
    s = status_json(a)
    check(s["waiting"] is not None and s["waiting"]["devices"] == [],
          "status --json after a sync: %s" % s)
    sj = json_out(a.run(["sync", "--json"]), "sync --json")
    check(sj["waiting"] == [], "sync --json waiting: %s" % sj)
    # server unreachable: saved anyway, told by the next sync
    env.server.stop()
    r = a.run(["config", "download-incomplete", "skip"])
    check(r.rc == 0 and "the next sync tells it" in r.err, "config offline: %s" % r.describe())
    env.server.start()
    a.sync()
    devs = api_json(env, a, "/api/v1/devices")["devices"]
    check([d["download_incomplete"] for d in devs if d["name"] == "A"] == ["skip"],
          "the policy after the next sync: %s" % devs)


@scenario("bandwidth_limits_up_and_down")
def bandwidth_limits(env):
    """--limit-up and --limit-down hold a sync to the rate asked (a token
    bucket with a one-second burst at most, so 6 MiB at 2M takes at least
    about 2 s), and the data still arrives whole."""
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    size = 6 * (1 << 20)
    write_big(a.p("lim.bin"), size, seed=4242)
    t0 = time.monotonic()
    sj = json_out(a.run(["sync", "--json", "--limit-up", "2M"]), "sync --limit-up 2M")
    up = time.monotonic() - t0
    check(sj["bytes_up"] >= size, "A sent %d bytes for %d" % (sj["bytes_up"], size))
    t0 = time.monotonic()
    sj = json_out(b.run(["sync", "--json", "--limit-down", "2M"]), "sync --limit-down 2M")
    down = time.monotonic() - t0
    check(sj["bytes_down"] >= size, "B received %d bytes for %d" % (sj["bytes_down"], size))
    note("6 MiB at 2 MiB/s: up %.2f s, down %.2f s" % (up, down))
    check(1.8 <= up < 12 * SLOW, "--limit-up 2M moved 6 MiB in %.2f s" % up)
    check(1.8 <= down < 12 * SLOW, "--limit-down 2M moved 6 MiB in %.2f s" % down)
    check(file_sha256(b.p("lim.bin")) == file_sha256(a.p("lim.bin")), "B's copy differs")
    # without a limit the same amount moves much faster (not a benchmark:
    # only that the limit, not the machine, made the time above)
    write_big(a.p("free.bin"), size, seed=4343)
    t0 = time.monotonic()
    a.sync()
    b.sync()
    free = time.monotonic() - t0
    check(free < up, "unlimited 6 MiB up and down took %.2f s, limited up alone %.2f s" %
          (free, up))
