"""History, restore, trash, retention and GC, conflicts listing, `ls --all`
and device removal (issue 5), with real ferryd and ferry processes: the
versions of a path across devices, an old version restored on one device
reaching another, undelete from the trash, versions pruned by retention
(restore then fails clearly; the kept ones work), the GC freeing chunks
while a device keeps uploading and editing, conflict copies listed by
`status` and `ls --conflicts` until resolved, incomplete uploads in
`ls --all`, and a removed device's token refused while the history keeps
what it held."""

import fcntl
import http.client
import json
import os
import re
import sqlite3
import threading
import time

from harness import (ASAN, SLOW, assert_same, check, json_out, note, scenario, sync_all,
                     tail, wait_for)

KIB = 1 << 10
# Bounded waits for the server's background GC (it runs every second here).
GC_WAIT = 30 * SLOW
RETAIN = ["--keep-versions", "2", "--gc-interval", "1", "--gc-grace", "0"]


def two(env):
    env.register("alice")
    return env.device("A"), env.device("B")


def history(dev, path, expect=0):
    r = dev.run(["history", path, "--json"])
    if expect != 0:
        check(r.rc == expect, "history %s on %s: want rc %d: %s" %
              (path, dev.name, expect, r.describe()))
        return r
    return json_out(r, "history %s on %s" % (path, dev.name))


def seq_of(hist, content_size, deleted=False):
    """The seq of the (newest) version with that size and deleted flag."""
    for v in hist["versions"]:
        if v["size"] == content_size and v["deleted"] == deleted:
            return v["seq"]
    raise AssertionError("no version of size %d in %s" % (content_size, hist))


def ok(r, what):
    check(r.rc == 0, "%s: %s" % (what, r.describe()))
    return r


def chunk_store(env):
    """(chunks, bytes, disk) of the server's chunk store: chunks and the sum
    of their stored sizes per the index (DATA/chunks/index.db) plus chunk
    files of the older per-file layout (DATA/chunks/ab/<hash>), and the
    bytes on disk: pack files (DATA/chunks/packs/*.pack) and those files.
    Removed chunks leave `bytes` at once; `disk` shrinks when the GC's
    compaction rewrites the packs they were in."""
    n = size = disk = 0
    top = os.path.join(env.server.data_dir, "chunks")
    index = os.path.join(top, "index.db")
    if os.path.exists(index):
        db = sqlite3.connect(index, timeout=10)
        try:
            rows, total = db.execute("SELECT count(*), coalesce(sum(len), 0) FROM chunks").fetchone()
        finally:
            db.close()
        n += rows
        size += total
    for root, dirs, files in os.walk(top):
        if root == top:
            dirs[:] = [d for d in dirs if re.fullmatch(r"[0-9a-f]{2}", d) or d == "packs"]
        for name in files:
            if re.fullmatch(r"[0-9a-f]{64}", name):
                n += 1
                size += os.lstat(os.path.join(root, name)).st_size
                disk += os.lstat(os.path.join(root, name)).st_size
            elif name.endswith(".pack"):
                try:
                    disk += os.lstat(os.path.join(root, name)).st_size
                except FileNotFoundError:
                    pass  # compacted meanwhile
    return n, size, disk


def compacted(store):
    """Whether the packs hold little beyond the live chunks: compaction
    rewrites a pack once half of it is dead (record headers: 37 bytes)."""
    n, size, disk = store
    return disk <= 2 * (size + 37 * n) + 64 * KIB


GC_LINE = re.compile(r"gc: (\d+) versions pruned, (\d+) chunks freed \((\d+) bytes\)")


def gc_totals(env):
    """Sums of the `gc: ...` lines in ferryd's log so far."""
    pruned = freed = freed_bytes = 0
    for m in GC_LINE.finditer(env.server.log_text()):
        pruned += int(m.group(1))
        freed += int(m.group(2))
        freed_bytes += int(m.group(3))
    return pruned, freed, freed_bytes


@scenario("history_across_devices")
def history_across_devices(env):
    a, b = two(env)
    a.write("notes/plan.txt", "v1 from A\n")
    a.sync()
    b.sync()
    b.write("notes/plan.txt", "v2 from B, longer\n")
    b.sync()
    a.sync()
    a.write("notes/plan.txt", "v3 from A, longer still\n")
    a.sync()
    b.sync()
    for dev in (a, b):
        h = history(dev, "notes/plan.txt")
        vs = h["versions"]
        check([v["device_name"] for v in vs] == ["A", "B", "A"],
              "history on %s: want devices A, B, A newest first, got %s" % (dev.name, vs))
        check([v["size"] for v in vs] == [24, 18, 10], "history sizes: %s" % vs)
        check(vs[0]["seq"] > vs[1]["seq"] > vs[2]["seq"], "not newest first: %s" % vs)
        check(h["current"] == vs[0]["seq"] and h["path"] == "notes/plan.txt",
              "current/path of history: %s" % h)
        check(all(not v["deleted"] and v["kind"] == "file" and v["time"] > 1e9 for v in vs),
              "version fields: %s" % vs)
        check(vs[0]["time"] >= vs[2]["time"], "times go backwards: %s" % vs)
    r = ok(a.run(["history", "notes/plan.txt"]), "history text")
    lines = r.out.splitlines()
    check(lines[0] == "history of notes/plan.txt (current: version %d)" % h["current"],
          "history header: %r" % r.out)
    check(len(lines) == 5 and lines[2].startswith("*") and " A " in lines[2] and
          " B " in lines[3] and lines[2].rstrip().endswith(" 24"), "history text: %r" % r.out)
    # A rename: the old path ends with a delete, the new one starts.
    a.rename("notes/plan.txt", "notes/plan-final.txt")
    a.sync()
    h = history(b, "notes/plan.txt")
    check(h["versions"][0]["deleted"] and h["current"] == h["versions"][0]["seq"] and
          h["versions"][0]["device_name"] == "A", "old path after a rename: %s" % h)
    r = ok(b.run(["history", "notes/plan.txt"]), "history text with a delete")
    check(re.search(r"^\*\s+\d+\s.*\s-\s+deleted$", r.out, re.M), "deleted marker: %r" % r.out)
    h2 = history(b, "notes/plan-final.txt")
    check(len(h2["versions"]) == 1 and h2["versions"][0]["size"] == 24, "new path: %s" % h2)
    # Errors: unknown path (1), usage (2).
    r = history(a, "never/was.txt", expect=1)
    check("no version of never/was.txt" in r.err, "unknown path message: %s" % r.describe())
    for args in (["history"], ["history", "a", "b"], ["history", "/abs"],
                 ["history", "x", "--limit", "0"], ["history", ".ferry/config.json"]):
        r = a.run(args)
        check(r.rc == 2 and r.err.startswith("ferry: history:"), "%s: want rc 2: %s" %
              (args, r.describe()))
    sync_all(a, b)
    assert_same(a, b)


@scenario("history_restore_old_version")
def history_restore_old_version(env):
    a, b = two(env)
    bodies = [os.urandom(1000 + 500 * i) for i in range(3)]
    for body in bodies:
        a.write("doc.bin", body)
        a.sync()
    b.sync()
    h = history(b, "doc.bin")
    check(len(h["versions"]) == 3, "want 3 versions: %s" % h)
    first = seq_of(h, 1000)
    # B restores the first version: a new version by B, on B's disk at once.
    r = ok(b.run(["restore", "doc.bin", "--version", str(first)]), "restore --version")
    check(re.search(r"^restored doc.bin from version %d \(now version \d+\)$" % first, r.out,
                    re.M), "restore message: %r" % r.out)
    check(re.search(r"^synced: uploaded 0, downloaded 1, ", r.out, re.M),
          "restore's sync round did not download the file: %r" % r.out)
    check(b.read("doc.bin") == bodies[0], "B's doc.bin is not version %d" % first)
    a.sync()
    check(a.read("doc.bin") == bodies[0], "the restored version did not reach A")
    h = history(a, "doc.bin")
    check(len(h["versions"]) == 4 and h["versions"][0]["device_name"] == "B" and
          h["versions"][0]["size"] == 1000 and h["current"] == h["versions"][0]["seq"],
          "history after the restore: %s" % h)
    check(seq_of(h, 1000) != first and any(v["seq"] == first for v in h["versions"]),
          "history was rewritten instead of extended: %s" % h)
    # The same content again: nothing new.
    r = ok(a.run(["restore", "doc.bin", "--version", str(first)]), "restore of the current content")
    check("already has that content" in r.out, "unchanged restore message: %r" % r.out)
    check(len(history(a, "doc.bin")["versions"]) == 4, "an unchanged restore made a version")
    # --to: version 2 as a new path, which reaches B.
    second = seq_of(h, 1500)
    r = ok(a.run(["restore", "doc.bin", "--version", str(second), "--to", "old/doc-v2.bin"]),
           "restore --to")
    check("restored version %d of doc.bin as old/doc-v2.bin" % second in r.out,
          "restore --to message: %r" % r.out)
    check(a.read("old/doc-v2.bin") == bodies[1], "restore --to: wrong content on A")
    b.sync()
    check(b.read("old/doc-v2.bin") == bodies[1] and b.read("doc.bin") == bodies[0],
          "restore --to did not reach B")
    r = a.run(["restore", "doc.bin", "--version", str(second), "--to", "old/doc-v2.bin"])
    check(r.rc == 1 and "old/doc-v2.bin already exists" in r.err,
          "restore --to an existing path: %s" % r.describe())
    # Unknown versions and deletes: exit 1, a clear line, nothing changed.
    before = history(a, "doc.bin")
    r = a.run(["restore", "doc.bin", "--version", "999999"])
    check(r.rc == 1 and "version 999999 of doc.bin is not kept on the server" in r.err,
          "restore of an unknown version: %s" % r.describe())
    r = a.run(["restore", "doc.bin", "--version", str(seq_of(history(a, "old/doc-v2.bin"),
                                                                1500))])
    check(r.rc == 1 and "not kept on the server" in r.err,
          "restore of another path's seq: %s" % r.describe())
    a.remove("old/doc-v2.bin")
    a.sync()
    tomb = history(a, "old/doc-v2.bin")["current"]
    r = a.run(["restore", "old/doc-v2.bin", "--version", str(tomb)])
    check(r.rc == 1 and r.err.startswith("ferry: restore: ") and not a.exists("old/doc-v2.bin"),
          "restore of a delete: %s" % r.describe())
    check(history(a, "doc.bin") == before, "a refused restore changed the history")
    for args in (["restore"], ["restore", "doc.bin", "--version", "0"],
                 ["restore", "doc.bin", "--version", "x"], ["restore", "doc.bin", "--to", "/x"],
                 ["restore", "doc.bin", "--to", "doc.bin"], ["restore", "a", "b"]):
        r = a.run(args)
        check(r.rc == 2 and r.err.startswith("ferry: restore:"), "%s: want rc 2: %s" %
              (args, r.describe()))
    sync_all(a, b)
    assert_same(a, b)


@scenario("history_restore_beside_watch")
def history_restore_beside_watch(env):
    """restore on a folder a `ferry watch` keeps in sync: the watch's round
    (started by the restore's own event) may hold the folder's lock when
    restore's round starts; restore waits for it rather than failing."""
    from watch_harness import wait_converged  # noqa: PLC0415 - imports harness
    a, b = two(env)
    a.write("w.txt", "first\n")
    a.sync()
    a.write("w.txt", "second, longer\n")
    a.sync()
    b.sync()
    first = seq_of(history(a, "w.txt"), 6)
    wa, wb = a.watch(), b.watch()
    for i in range(3):
        r = ok(a.run(["restore", "w.txt", "--version", str(first)]), "restore beside a watch")
        check(a.read("w.txt") == b"first\n", "restore beside a watch: w.txt not restored on A")
        wait_converged([a, b])
        check(b.read("w.txt") == b"first\n", "restore did not reach B's watch")
        a.write("w.txt", "edit %d\n" % i)
        wait_converged([a, b])
    wa.stop()
    wb.stop()
    # Another ferry holds the folder's lock for a while: restore restores,
    # waits for the lock, then runs its round.
    second = seq_of(history(a, "w.txt"), 15)
    fd = os.open(a.p(".ferry/lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        p = a.popen(["restore", "w.txt", "--version", str(second)])
        time.sleep(1.5)
        if p.poll() is not None:
            check(False, "restore did not wait for the folder's lock: rc %s, %r" %
                  (p.returncode, p.communicate()))
    finally:
        os.close(fd)
    out, err = p.communicate(timeout=60 * SLOW)
    check(p.returncode == 0 and b"downloaded 1" in out, "restore after the lock was released: "
          "rc %s, %r %r" % (p.returncode, out, err))
    check(a.read("w.txt") == b"second, longer\n", "w.txt after the delayed round")
    b.sync()
    assert_same(a, b)


@scenario("history_trash_undelete")
def history_trash_undelete(env):
    a, b = two(env)
    a.write("keep.txt", "stays\n")
    a.write("gone.txt", "deleted, then back\n")
    a.write("dir/inner.txt", "inside a deleted folder\n")
    a.symlink("keep.txt", "link")
    a.sync()
    b.sync()
    r = ok(a.run(["trash"]), "empty trash")
    check(r.out.strip() == "the trash is empty", "empty trash text: %r" % r.out)
    b.remove("gone.txt")
    b.remove("dir")
    b.remove("link")
    b.sync()
    t = json_out(a.run(["trash", "--json"]), "trash --json")
    by_path = {f["path"]: f for f in t["files"]}
    check({"gone.txt", "dir/inner.txt", "link"} <= set(by_path),
          "trash lacks the deleted paths: %s" % t)
    check("keep.txt" not in by_path, "a live file is in the trash: %s" % t)
    g = by_path["gone.txt"]
    check(g["device_name"] == "B" and g["last"]["size"] == 19 and not g["last"]["deleted"] and
          g["deleted_seq"] > g["last"]["seq"] and g["deleted_time"] > 1e9,
          "trash entry of gone.txt: %s" % g)
    check(by_path["link"]["last"]["kind"] == "symlink", "trash entry of link: %s" % by_path)
    times = [f["deleted_time"] for f in t["files"]]
    check(times == sorted(times, reverse=True), "trash not newest first: %s" % t)
    sub = json_out(a.run(["trash", "dir", "--json"]), "trash dir --json")
    check([f["path"] for f in sub["files"] if f["path"] != "dir"] == ["dir/inner.txt"],
          "trash PATH filter: %s" % sub)
    r = ok(a.run(["trash"]), "trash text")
    check(re.search(r"^\S+ \S+\s+B\s+19\s+\d+\s+gone.txt$", r.out, re.M),
          "trash text line of gone.txt: %r" % r.out)
    a.sync()
    check(not a.exists("gone.txt"), "the delete did not reach A")
    # Undelete on A: back on A's disk at once, then on B.
    r = ok(a.run(["restore", "gone.txt"]), "undelete")
    check(a.read("gone.txt") == b"deleted, then back\n", "undeleted file content on A")
    ok(a.run(["restore", "dir/inner.txt"]), "undelete inside a deleted folder")
    check(a.read("dir/inner.txt") == b"inside a deleted folder\n", "dir/inner.txt not back on A")
    ok(a.run(["restore", "link"]), "undelete a symlink")
    check(os.readlink(a.p("link")) == "keep.txt", "link not back on A")
    b.sync()
    check(b.read("gone.txt") == b"deleted, then back\n" and b.exists("dir/inner.txt"),
          "undeleted files did not reach B")
    left = {f["path"] for f in json_out(b.run(["trash", "--json"]), "trash")["files"]}
    check(not left & {"gone.txt", "dir/inner.txt", "link"}, "restored paths still in the "
          "trash: %s" % left)
    h = history(b, "gone.txt")
    check([v["deleted"] for v in h["versions"]] == [False, True, False] and
          h["versions"][0]["device_name"] == "A", "history of an undeleted file: %s" % h)
    r = a.run(["restore", "never-existed.txt"])
    check(r.rc == 1 and "no earlier version of never-existed.txt" in r.err,
          "undelete of an unknown path: %s" % r.describe())
    r = ok(a.run(["restore", "keep.txt"]), "undelete of a live file")
    check("already has that content" in r.out, "undelete of a live file: %r" % r.out)
    sync_all(a, b)
    assert_same(a, b)


@scenario("history_retention_pruning", server_args=RETAIN)
def history_retention_pruning(env):
    a, b = two(env)
    # Under the chunker's 16 KiB minimum: one chunk a version, always (a
    # random 20 KiB body is sometimes cut in two, which the count below
    # does not expect).
    bodies = [os.urandom(12 * KIB) for _ in range(5)]
    seqs = []  # the seq each version got (the GC may prune before we look)
    for body in bodies:
        a.write("f.bin", body)
        a.sync()
        seqs.append(json_out(a.run(["status", "--json"]), "status")["last_seq"])
    b.sync()

    # keep-versions 2: the current version and the one before it.
    def pruned():
        h = history(b, "f.bin")
        return h if len(h["versions"]) == 2 else None
    h = wait_for(pruned, GC_WAIT, interval=0.2)
    check(h, "retention did not prune f.bin to 2 versions within %d s: %s\n%s" %
          (GC_WAIT, history(b, "f.bin"), env.server.log_tail()))
    kept = [v["seq"] for v in h["versions"]]
    check(kept == [seqs[4], seqs[3]], "kept versions %s, want the last two of %s" % (kept, seqs))
    for seq in seqs[:3]:
        r = b.run(["restore", "f.bin", "--version", str(seq)])
        check(r.rc == 1 and "version %d of f.bin is not kept on the server" % seq in r.err,
              "restore of a pruned version: %s" % r.describe())
        r = b.run(["history", "f.bin"])
        check(r.rc == 0 and not re.search(r"^.\s+%d\s" % seq, r.out, re.M),
              "history lists pruned version %d: %r" % (seq, r.out))
    check(b.read("f.bin") == bodies[4], "a refused restore changed the file")
    r = ok(b.run(["restore", "f.bin", "--version", str(kept[1])]), "restore of a kept version")
    check(b.read("f.bin") == bodies[3], "restored kept version: wrong content on B")
    a.sync()
    check(a.read("f.bin") == bodies[3], "restored kept version did not reach A")
    # The chunks of the three pruned versions are freed (random contents:
    # no chunk is shared), those of the two kept ones stay: the store holds
    # two fifths of the chunks ever stored.
    def freed():
        n, freed = chunk_store(env)[0], gc_totals(env)[1]
        return freed >= 3 and n > 0 and 3 * n == 2 * freed
    check(wait_for(freed, GC_WAIT, interval=0.2),
          "chunks of pruned versions not freed: store %s, gc (pruned, freed, bytes) %s\n%s" %
          (chunk_store(env), gc_totals(env), env.server.log_tail()))
    sync_all(a, b)
    assert_same(a, b)


@scenario("history_gc_concurrent_upload", server_args=RETAIN)
def history_gc_concurrent_upload(env):
    """A keeps editing files (some back to content an earlier, pruned version
    had, so their chunks are asked about while the GC may be freeing them)
    and syncing; B keeps syncing; the GC runs every second with grace 0."""
    a, b = two(env)
    nfiles = 4 if ASAN else 8
    size = (48 if ASAN else 160) * KIB  # a few chunks each
    rounds = 8 if ASAN else 16
    pool = [os.urandom(size) for _ in range(3)]  # recurring contents
    latest = {}
    for i in range(nfiles):
        latest["f%d.bin" % i] = os.urandom(size)
        a.write("f%d.bin" % i, latest["f%d.bin" % i])
    a.sync()
    b.sync()
    stop = threading.Event()
    b_errors = []

    def b_loop():
        while not stop.is_set():
            r = b.run(["sync"])
            if r.rc != 0:
                b_errors.append(r.err.strip())  # may race a prune; must recover
            time.sleep(0.1)

    t = threading.Thread(target=b_loop)
    t.start()
    uploaded = 0
    peak = chunk_store(env)[1]
    peak_disk = chunk_store(env)[2]
    try:
        for rnd in range(rounds):
            for i in range(nfiles):
                if (rnd + i) % 2:
                    continue
                body = pool[(rnd + i) % 3] if (rnd + i) % 3 == 0 else os.urandom(size)
                latest["f%d.bin" % i] = body
                a.write("f%d.bin" % i, body)
                uploaded += size
            r = a.run(["sync"])
            check(r.rc == 0, "A's sync in round %d while the GC runs: %s" % (rnd, r.describe()))
            store = chunk_store(env)
            peak = max(peak, store[1])
            peak_disk = max(peak_disk, store[2])
            time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    sync_all(a, b, a, b)
    snap = assert_same(a, b)
    for path, body in latest.items():
        check(a.read(path) == body, "%s on A is not the last version written" % path)
    check(len(snap) == nfiles, "unexpected files: %s" % sorted(snap))
    def counts():
        return {path: len(history(b, path)["versions"]) for path in latest}
    check(wait_for(lambda: max(counts().values()) <= 2, GC_WAIT, interval=0.2),
          "versions kept with --keep-versions 2 after %d s: %s" % (GC_WAIT, counts()))
    # Every retained version's chunks must still be there: restore the older
    # kept version of each file and check it reaches B intact.
    for path in latest:
        vs = history(a, path)["versions"]
        if len(vs) == 2:
            ok(a.run(["restore", path, "--version", str(vs[1]["seq"])]), "restore " + path)
    b.sync()
    assert_same(a, b)
    # The GC freed the chunks of pruned versions: the store holds at most
    # the kept versions (2 per file, plus the 3 pool contents and slack),
    # and compaction gave the space of the freed ones back on disk.
    live = nfiles * size
    end = wait_for(lambda: (lambda s: s if s[1] <= 2 * live + 3 * size + 64 * KIB and
                            compacted(s) else None)(chunk_store(env)), GC_WAIT, interval=0.2)
    pruned, freed, freed_bytes = gc_totals(env)
    check(end, "chunk store did not shrink to the kept versions: %s bytes (kept data %d, "
          "peak %d, uploaded %d); gc %s" % (chunk_store(env), live, peak, uploaded,
                                            gc_totals(env)))
    check(freed > 0 and freed_bytes > 0 and pruned > 0 and end[1] < peak and
          end[2] < peak_disk,
          "ferryd did not report freeing chunks: gc %s, store %s, peak %d, uploaded %d" %
          ((pruned, freed, freed_bytes), end, peak, live + uploaded))
    note("chunk store: peak %d bytes while editing (%d on disk), %d at the end (%d on disk; "
         "kept data %d, uploaded %d); gc: %d versions pruned, %d chunks freed (%d bytes)" %
         (peak, peak_disk, end[1], end[2], live, live + uploaded, pruned, freed, freed_bytes))
    if b_errors:
        note("B's syncs that raced the GC (recovered): %d, e.g. %s" %
             (len(b_errors), tail(b_errors[0], 200)))


def conflict_setup(env):
    a, b = two(env)
    a.write("doc.txt", "base\n")
    a.write("sub/data.csv", "base\n")
    sync_all(a, b)
    for path in ("doc.txt", "sub/data.csv"):
        a.write(path, "edited on A\n")
        b.write(path, "edited on B, differently\n")
    a.sync()
    b.sync()  # B's versions become conflict copies, uploaded
    a.sync()
    return a, b


@scenario("history_conflicts_listing")
def history_conflicts_listing(env):
    a, b = conflict_setup(env)
    rx = re.compile(r"^(doc|sub/data) \(conflict from B \d{4}-\d\d-\d\d \d{6}\)(\.txt|\.csv)$")
    for dev in (a, b):
        st = json_out(dev.run(["status", "--json"]), "status --json on " + dev.name)
        cs = st.get("conflicts")
        check(isinstance(cs, list) and len(cs) == 2, "status --json conflicts on %s: %s" %
              (dev.name, cs))
        check(all(rx.match(c["path"]) and c["device"] == "B" for c in cs),
              "conflict entries: %s" % cs)
        check(sorted(c["original"] for c in cs) == ["doc.txt", "sub/data.csv"],
              "originals: %s" % cs)
        r = ok(dev.run(["status"]), "status")
        check("conflicts: 2 " in r.out and "(of doc.txt)" in r.out, "status text: %r" % r.out)
    copies = sorted(c["path"] for c in cs)
    ls = json_out(a.run(["ls", "--conflicts", "--json"]), "ls --conflicts --json")
    check(sorted(c["path"] for c in ls["conflicts"]) == copies and
          all(c["size"] == 25 for c in ls["conflicts"]), "ls --conflicts: %s" % ls)
    r = ok(a.run(["ls", "--conflicts"]), "ls --conflicts")
    check(len(r.out.splitlines()) == 2 and "(copy of doc.txt from B, " in r.out,
          "ls --conflicts text: %r" % r.out)
    r = ok(a.run(["ls", "sub", "--conflicts"]), "ls sub --conflicts")
    check(len(r.out.splitlines()) == 1 and "sub/data" in r.out, "ls PATH --conflicts: %r" % r.out)
    # Resolved on B: one copy renamed, the other deleted. B's status drops
    # them at once; A's after it syncs; ls after B's sync.
    doc_copy = [c for c in copies if c.startswith("doc")][0]
    data_copy = [c for c in copies if c.startswith("sub/")][0]
    b.rename(doc_copy, "doc-from-B.txt")
    r = ok(b.run(["status"]), "status after a rename")
    check("conflicts: 1 " in r.out and doc_copy not in r.out, "after rename: %r" % r.out)
    b.remove(data_copy)
    r = ok(b.run(["status"]), "status after a delete")
    check("conflicts: none" in r.out, "after delete: %r" % r.out)
    b.sync()
    check(json_out(a.run(["ls", "--conflicts", "--json"]), "ls")["conflicts"] == [],
          "ls --conflicts after resolving")
    check(len(json_out(a.run(["status", "--json"]), "status")["conflicts"]) == 2,
          "A lists its copies until it syncs")
    a.sync()
    check(json_out(a.run(["status", "--json"]), "status")["conflicts"] == [],
          "A's status after syncing the resolution")
    r = a.run(["ls", "--conflicts", "--all"])
    check(r.rc == 2, "ls --conflicts --all: want rc 2: %s" % r.describe())
    assert_same(a, b)


@scenario("history_ls_all_status")
def history_ls_all_status(env):
    """Upload records of another device (announced through the API, as a
    device that is cut off mid-batch would leave them) next to complete
    files in `ls --all`."""
    a, b = two(env)
    a.write("done.txt", "complete\n")
    a.write("big/part.bin", "x" * 100)
    a.sync()
    tok = env.login("alice", device="tablet")
    # The tablet keeps its connection open, as an uploading device does (its
    # records fail with "connection closed" once it closes).
    conn = http.client.HTTPConnection("127.0.0.1", env.server.port, timeout=30 * SLOW)

    def api(path, body):
        conn.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + tok,
                                                      "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        check(resp.status == 200, "%s: %s %r" % (path, resp.status, data[:300]))
        return json.loads(data)
    files = [{"path": p, "kind": "file", "size": s, "hash": "%064x" % (i + 1)}
             for i, (p, s) in enumerate((("big/video.mp4", 1000), ("notes.txt", 50),
                                         ("queued.txt", 10), ("done.txt", 12)))]
    ids = {rec["path"]: rec["id"] for rec in api("/api/v1/transfers", {"files": files})["records"]}
    api("/api/v1/transfers/progress", {"records": [
        {"id": ids["big/video.mp4"], "bytes_done": 420},
        {"id": ids["notes.txt"], "status": "failed", "reason": "disk on fire"}]})
    try:
        ls_all_checks(b)
    finally:
        conn.close()
    # The tablet is gone: its open records fail, and ls --all says why.
    gone = re.compile(r"^file\s+10\s+-\s+queued.txt\s+failed: connection closed \(from tablet\)$",
                      re.M)
    check(wait_for(lambda: gone.search(ok(b.run(["ls", "--all"]), "ls --all").out), 10 * SLOW,
                   interval=0.2), "records of a closed connection: %s" % b.run(["ls", "--all"]).out)


def ls_all_checks(b):
    r = ok(b.run(["ls", "--all"]), "ls --all")
    lines = r.out.splitlines()

    def line(path, status):
        found = [ln for ln in lines if re.search(r"\s%s\s+%s$" % (re.escape(path),
                                                                  re.escape(status)), ln)]
        check(found, "ls --all: no line for %s with status %r in:\n%s" % (path, status, r.out))
        return found[0]
    line("big/part.bin", "ok")
    line("big/video.mp4", "uploading 42% (from tablet)")
    line("notes.txt", "failed: disk on fire (from tablet)")
    line("queued.txt", "pending (from tablet)")
    line("done.txt", "ok")
    line("done.txt", "pending (from tablet)")  # a new version on its way
    check(len(lines) == 7, "ls --all lines (want 2 dirs/files + 1 dir + 4 records):\n%s" % r.out)
    j = json_out(b.run(["ls", "--all", "--json"]), "ls --all --json")
    check(all(f["status"] == "ok" for f in j["files"]), "files' status: %s" % j)
    inc = {i["path"]: i for i in j["incomplete"]}
    check(set(inc) == {"big/video.mp4", "notes.txt", "queued.txt", "done.txt"},
          "incomplete records: %s" % j["incomplete"])
    check(inc["notes.txt"]["status"] == "failed" and inc["notes.txt"]["reason"] == "disk on fire"
          and inc["big/video.mp4"]["bytes_done"] == 420 and
          inc["queued.txt"]["device_name"] == "tablet", "record fields: %s" % inc)
    sub = ok(b.run(["ls", "big", "--all"]), "ls big --all").out
    check("big/video.mp4" in sub and "notes.txt" not in sub, "ls PATH --all: %r" % sub)
    plain = ok(b.run(["ls"]), "ls").out
    check("video.mp4" not in plain and " ok" not in plain, "plain ls shows records: %r" % plain)


@scenario("history_device_removal")
def history_device_removal(env):
    env.register("alice")
    a = env.device("A")
    b = env.device("B")
    old = env.device("old-laptop")
    a.write("one.txt", "1\n")
    a.write("dir/two.txt", "22\n")
    a.sync()
    old.sync()
    a.write("three.txt", "333\n")  # after old-laptop's last sync
    a.sync()
    b.sync()
    r = ok(a.run(["devices", "remove", "old-laptop"]), "devices remove")
    check(r.out.startswith("removed device old-laptop ("), "remove message: %r" % r.out)
    # Its token is refused.
    r = old.sync(expect=1)
    check(r.err.strip(), "a removed device's sync failed without a message: %s" % r.describe())
    r = old.run(["ls"])
    check(r.rc == 1, "ls with a revoked token: %s" % r.describe())
    devs = json_out(b.run(["devices", "--json"]), "devices --json")["devices"]
    check(sorted(d["name"] for d in devs) == ["A", "B"], "devices after removal: %s" % devs)
    # The history keeps what it held (as of its last sync: not three.txt).
    h = json_out(b.run(["devices", "--history", "--json"]), "devices --history --json")
    evs = [(e["name"], e["event"]) for e in h["events"]]
    check(evs == [("A", "added"), ("B", "added"), ("old-laptop", "added"),
                  ("old-laptop", "removed")], "device events: %s" % h)
    rm = h["events"][-1]
    check(rm["files"] == 2 and "file_list" not in rm, "removed event: %s" % rm)
    hf = json_out(b.run(["devices", "--history", "--files", "old-laptop", "--json"]),
                  "devices --history --files NAME --json")
    check([e["event"] for e in hf["events"]] == ["added", "removed"], "NAME filter: %s" % hf)
    held = sorted((f["path"], f["size"]) for f in hf["events"][-1]["file_list"])
    check(held == [("dir/two.txt", 3), ("one.txt", 2)], "files it held: %s" % hf)
    r = ok(b.run(["devices", "--history", "--files", "old-laptop"]), "devices --history text")
    check(re.search(r"removed\s+old-laptop\s+\S+\s+held 2 files", r.out) and
          re.search(r"^\s+3\s+\d+\s+dir/two.txt$", r.out, re.M), "history text: %r" % r.out)
    # Refusals.
    r = a.run(["devices", "remove", "A"])
    check(r.rc == 1 and "is this device" in r.err, "removing itself: %s" % r.describe())
    r = a.run(["devices", "remove", "no-such-device"])
    check(r.rc == 1 and "no device no-such-device" in r.err, "unknown device: %s" %
          r.describe())
    r = a.run(["devices", "remove", "old-laptop"])
    check(r.rc == 1, "removing a removed device again: %s" % r.describe())
    for args in (["devices", "remove"], ["devices", "--files"], ["devices", "rename", "x"]):
        r = a.run(args)
        check(r.rc == 2, "%s: want rc 2: %s" % (args, r.describe()))
    sync_all(a, b)
    assert_same(a, b)
