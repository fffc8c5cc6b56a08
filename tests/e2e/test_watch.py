"""Real-time scenarios: two and three devices each running `ferry watch`,
changed the way people change folders (create, modify, delete, rename,
`mkdir -p` with files, a burst of 1,000 files, a large file written slowly,
moves in and out), with ferryd killed and restarted under the daemons and a
device that goes offline and comes back. No `ferry sync` is run: only the
daemons move data. Every wait is bounded (WATCH_TIMEOUT, scaled under ASan),
every daemon must exit 0 on SIGTERM/SIGINT within WATCH_STOP_TIMEOUT, and
every scenario ends comparing the folders byte for byte."""

import hashlib
import json
import os
import signal
import subprocess
import time

from harness import (ASAN, SLOW, assert_same, check, ferry_hash_file, file_sha256, json_out,
                     note, scenario, wait_for, write_big)
from watch_harness import WATCH_STATES, WATCH_TIMEOUT, status_json, wait_converged

MIB = 1 << 20
BURST = 300 if ASAN else 1000
SLOW_FILE = (8 if ASAN else 32) * MIB
RENAME_FILE = (4 if ASAN else 8) * MIB
# After ferryd comes back, a daemon may be in its (capped) reconnect
# backoff: allow more than a normal propagation.
RECONNECT_TIMEOUT = 30 * SLOW


def devices(env, n, files_a=None):
    env.register("alice")
    devs = [env.device("A", files=files_a)]
    for name in "BC"[:n - 1]:
        devs.append(env.device(name))
    return devs


def watch_all(devs):
    return [d.watch() for d in devs]


def stop_all(watchers, sig=signal.SIGTERM):
    for w in watchers:
        took = w.stop(sig)
        note("watcher %s exited 0 %.2f s after %s" % (w.name, took, signal.Signals(sig).name))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def token_of(dev):
    with open(dev.p(".ferry/config.json")) as f:
        return json.load(f)["token"]


def server_seq(env, token):
    st, body, _ = env.api("GET", "/api/v1/changes?since=0&limit=1", token)
    check(st == 200, "GET /changes -> %s %r" % (st, body[:200]))
    return json.loads(body)["seq"]


def finish(devs, watchers, sig=signal.SIGTERM):
    """Stops the daemons (exit 0 within the bound), checks that `status`
    no longer reports a watch, compares the folders byte for byte."""
    stop_all(watchers, sig)
    for d in devs:
        w = status_json(d).get("watch", "missing")
        check(w is None, "%s: `status --json` watch after the daemon stopped: %r" % (d.name, w))
    return assert_same(*devs)


@scenario("watch_create_modify_delete")
def create_modify_delete(env):
    # A holds files before its daemon starts: the start-up reconcile sends them.
    a, b, c = devices(env, 3, files_a={"pre.txt": "before the watch\n",
                                       "pre/dir/x.txt": "nested before\n"})
    ws = watch_all([a, b, c])
    snap = wait_converged([a, b, c])
    check("pre/dir/x.txt" in snap, "start-up reconcile did not send A's files: %s" % sorted(snap))

    st = status_json(a)
    check(isinstance(st.get("watch"), dict), "`status --json` has no watch object while a "
          "daemon runs: %r" % st.get("watch"))
    check(st["watch"].get("state") in WATCH_STATES, "watch.state %r" % st["watch"].get("state"))
    check(st["watch"].get("state") == "idle", "watch.state %r after convergence" %
          st["watch"].get("state"))
    r = a.run(["status"])
    check(r.rc == 0 and "idle" in r.out, "`ferry status` text does not say idle: %s" %
          r.describe())

    # Create.
    a.write("hello.txt", "hello from A\n")
    a.write("docs/readme.md", "# readme\n" * 50)
    a.mkdir("empty/dir")
    a.write("x.sh", "#!/bin/sh\necho x\n", mode=0o755)
    snap = wait_converged([a, b, c])
    check(snap.get("empty/dir") == ("dir",), "empty dir not propagated")
    check(c.read("docs/readme.md") == b"# readme\n" * 50, "C's readme differs")
    check(snap["x.sh"][3], "exec bit lost")

    # Modify on B: a normal rewrite, and a same-size rewrite that keeps the
    # mtime (only the content and ctime change).
    b.write("hello.txt", "hello, edited on B\n")
    st0 = os.stat(b.p("docs/readme.md"))
    b.write("docs/readme.md", "# README\n" * 50)
    os.utime(b.p("docs/readme.md"), ns=(st0.st_atime_ns, st0.st_mtime_ns))
    wait_converged([b, a, c])
    check(a.read("hello.txt") == b"hello, edited on B\n", "A did not get B's edit")
    check(c.read("docs/readme.md") == b"# README\n" * 50,
          "a same-size, same-mtime rewrite on B did not reach C")

    # chmod only (IN_ATTRIB).
    os.chmod(c.p("x.sh"), 0o644)
    snap = wait_converged([c, a, b])
    check(not snap["x.sh"][3], "removing the exec bit on C did not propagate")

    # Delete on C: a file and a whole tree; they land in the others' trash.
    c.remove("hello.txt")
    c.remove("docs")
    snap = wait_converged([c, a, b])
    check("hello.txt" not in snap and "docs" not in snap, "deletes not propagated: %s" %
          sorted(snap))
    for d in (a, b):
        missing = {sha(b"hello, edited on B\n"), sha(b"# README\n" * 50)} - d.trash_hashes()
        check(not missing, "%s: %d deleted file(s) not in .ferry/trash/" % (d.name, len(missing)))

    # An editor's save: write a temporary file, then rename it over the
    # original (vim, gedit, most IDEs).
    a.write("notes.txt", "notes v1\n")
    wait_converged([a, b, c])
    for i in range(3):
        a.write(".notes.txt.swp", "notes v%d, saved by rename\n" % (i + 2))
        os.rename(a.p(".notes.txt.swp"), a.p("notes.txt"))
    snap = wait_converged([a, b, c])
    check(b.read("notes.txt") == b"notes v4, saved by rename\n", "save-by-rename: B has %r" %
          b.read("notes.txt"))
    check(".notes.txt.swp" not in snap, "the editor's temporary file remained")

    # Quiet means quiet: no download echoes back as an upload, the space's
    # seq stays put while nobody changes anything.
    token = token_of(a)
    seq = server_seq(env, token)
    time.sleep(1)
    check(server_seq(env, token) == seq, "seq moved from %d to %d with no change anywhere" %
          (seq, server_seq(env, token)))
    ws[0].stop(signal.SIGINT)
    finish([a, b, c], ws[1:])


@scenario("watch_concurrent_edits_conflict")
def concurrent_edits(env):
    # The same file edited on two watching devices at the same moment: both
    # versions survive (one under the name, one as a conflict copy).
    a, b, c = devices(env, 3, files_a={"same.txt": "base\n"})
    ws = watch_all([a, b, c])
    wait_converged([a, b, c])
    # B's daemon is paused (SIGSTOP) across both edits, so that it cannot
    # pull A's version before B's edit, however loaded the machine is.
    token = token_of(a)
    seq = server_seq(env, token)
    ws[1].send(signal.SIGSTOP)
    try:
        b.write("same.txt", "edited on B at the same time\n")
        a.write("same.txt", "edited on A at the same time\n")
        check(wait_for(lambda: server_seq(env, token) > seq, WATCH_TIMEOUT),
              "A's edit was not committed")
    finally:
        ws[1].send(signal.SIGCONT)
    snap = wait_converged([a, b, c])
    contents = sorted(a.read(p) for p, v in snap.items() if v[0] == "file")
    check(contents == [b"edited on A at the same time\n", b"edited on B at the same time\n"],
          "after concurrent edits: %s -> %r" % (sorted(snap), contents))
    finish([a, b, c], ws)


@scenario("watch_rename_and_moves")
def rename_and_moves(env):
    a, b = devices(env, 2)
    write_big(a.p("big.bin"), RENAME_FILE, seed=21)
    a.write("dir/one.txt", "one\n")
    a.write("dir/sub/two.txt", "two\n")
    ws = watch_all([a, b])
    wait_converged([a, b])
    want = file_sha256(a.p("big.bin"))

    before = env.server.disk_usage()
    a.rename("big.bin", "moved/big-renamed.bin")
    a.rename("dir", "dir2")
    snap = wait_converged([a, b])
    grown = env.server.disk_usage() - before
    note("server data grew by %d bytes for renaming a %d MiB file and a dir" %
         (grown, RENAME_FILE // MIB))
    check(grown < MIB, "renames grew the server by %d bytes (content re-uploaded?)" % grown)
    check("moved/big-renamed.bin" in snap and "big.bin" not in snap, "file rename not applied")
    check("dir2/sub/two.txt" in snap and "dir" not in snap, "dir rename: %s" % sorted(snap))
    check(file_sha256(b.p("moved/big-renamed.bin")) == want, "B's renamed file differs")

    # A tree moved in from outside the folder is an add (its contents were
    # never seen by inotify); one moved out is a delete.
    outside = os.path.join(env.root, "outside")
    for i in range(5):
        p = os.path.join(outside, "tree", "l%d" % i, "f%d.txt" % i)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write("moved in %d\n" % i)
    os.rename(os.path.join(outside, "tree"), a.p("tree"))
    snap = wait_converged([a, b])
    check(b.read("tree/l4/f4.txt") == b"moved in 4\n", "moved-in tree not on B")
    os.rename(a.p("dir2"), os.path.join(outside, "dir2-out"))
    snap = wait_converged([a, b])
    check(not any(p.startswith("dir2") for p in snap), "moved-out dir still on B: %s" %
          sorted(snap))
    check(sha(b"two\n") in b.trash_hashes(), "moved-out files not in B's trash")

    # B renames back: no content travels either.
    before = env.server.disk_usage()
    b.rename("moved/big-renamed.bin", "big.bin")
    wait_converged([b, a])
    grown = env.server.disk_usage() - before
    check(grown < MIB, "rename on B grew the server by %d bytes" % grown)
    finish([a, b], ws)


@scenario("watch_mkdir_p_deep_tree")
def deep_tree(env):
    a, b = devices(env, 2)
    ws = watch_all([a, b])
    # Directories created and filled at once, faster than a daemon can add
    # watches on them: files created before the watch exists must be found.
    deep = "/".join("d%d" % i for i in range(12))
    r = subprocess.run(["bash", "-c", "set -e; mkdir -p %s; for i in $(seq 0 11); do "
                        "p=$(echo %s | cut -d/ -f1-$((i+1))); echo level $i > $p/f.txt; done; "
                        "mkdir -p w/x/y/z; touch w/x/y/z/empty.txt; mkdir -p only/dirs/here"
                        % (deep, deep)], cwd=a.dir, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check(r.returncode == 0, "shell failed: %r" % r.stderr)
    for i in range(20):
        a.write("py/%02d/%02d/file.txt" % (i % 4, i), "python %d\n" % i)
    snap = wait_converged([a, b])
    check(b.read(deep + "/f.txt") == b"level 11\n", "deepest file not on B")
    check(snap.get("only/dirs/here") == ("dir",), "empty deep dir not on B")
    check(sum(1 for p in snap if p.endswith("f.txt")) == 12, "want 12 level files: %s" %
          sorted(p for p in snap if p.endswith("f.txt")))
    check(b.exists("w/x/y/z/empty.txt"), "empty file in a new deep dir not on B")
    # The same from B, then the whole tree removed on B.
    b.write("fromb/a/b/c/d/e.txt", "from B\n")
    wait_converged([b, a])
    b.remove(deep.split("/")[0])
    snap = wait_converged([b, a])
    check(not any(p.startswith("d0") for p in snap), "deep delete not propagated")
    finish([a, b], ws)


@scenario("watch_burst_1000_files")
def burst(env):
    a, b, c = devices(env, 3)
    ws = watch_all([a, b, c])
    t0 = time.monotonic()
    for i in range(BURST):
        a.write("burst/%02d/f%04d.txt" % (i % 20, i), "burst file %d\n" % i * (1 + i % 7))
    t_write = time.monotonic() - t0
    snap = wait_converged([a, b, c], timeout=2 * WATCH_TIMEOUT)
    took = time.monotonic() - t0
    check(sum(1 for p in snap if p.startswith("burst/") and p.endswith(".txt")) == BURST,
          "want %d files" % BURST)
    note("%d files written in %.2f s, on 3 devices and idle after %.2f s" % (BURST, t_write, took))
    # A burst of edits on B while C adds files of its own.
    t0 = time.monotonic()
    for i in range(0, BURST, 10):
        b.write("burst/%02d/f%04d.txt" % (i % 20, i), "edited on B %d\n" % i)
    for i in range(100):
        c.write("fromc/g%03d.txt" % i, "from C %d\n" % i)
    snap = wait_converged([a, b, c], timeout=2 * WATCH_TIMEOUT)
    note("%d edits on B + 100 new files on C everywhere after %.2f s" %
         (BURST // 10, time.monotonic() - t0))
    check(a.read("burst/00/f0000.txt") == b"edited on B 0\n", "B's edit not on A")
    check(a.read("fromc/g099.txt") == b"from C 99\n", "C's file not on A")
    check(not [p for p in snap if "conflict" in p], "conflict copies in a burst without "
          "concurrent edits: %s" % [p for p in snap if "conflict" in p][:5])
    finish([a, b, c], ws)


def check_whole(dev, rel, versions, seen):
    """The file at rel on dev is absent or exactly one of versions
    ({len: (sha, label)}); records the labels seen."""
    try:
        with open(dev.p(rel), "rb") as f:
            st = os.fstat(f.fileno())
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if seen.get(dev.name, {}).get("key") == key:
                return
            data = f.read()
    except FileNotFoundError:
        return
    v = versions.get(len(data))
    check(v is not None and sha(data) == v[0],
          "%s holds a partial %s (%d bytes, none of the versions %s)" %
          (dev.name, rel, len(data), sorted(versions)))
    s = seen.setdefault(dev.name, {"labels": set()})
    s["key"] = key
    s["labels"].add(v[1])


@scenario("watch_large_file_written_slowly")
def large_slow(env):
    a, b, c = devices(env, 3)
    old = os.urandom(MIB)
    a.write("big.bin", old)
    ws = watch_all([a, b, c])
    wait_converged([a, b, c])
    token = token_of(a)
    seq0 = server_seq(env, token)

    tmp = os.path.join(env.root, "new.bin")
    write_big(tmp, SLOW_FILE, seed=33)
    with open(tmp, "rb") as f:
        new = f.read()
    versions = {len(old): (sha(old), "old"), len(new): (sha(new), "new")}
    # the server lists Ferry's file hash, not the content's SHA-256
    old_tmp = os.path.join(env.root, "old.bin")
    with open(old_tmp, "wb") as f:
        f.write(old)
    listed = {len(old): ferry_hash_file(old_tmp), len(new): ferry_hash_file(tmp)}
    seen = {}
    pieces = 30
    step = (len(new) + pieces - 1) // pieces
    t0 = time.monotonic()
    # One open file written in 30 pieces over ~3 s: a daemon that uploads
    # before the writer closes it would send (and others receive) a prefix.
    with open(a.p("big.bin"), "wb") as f:
        for i in range(pieces):
            f.write(new[i * step:(i + 1) * step])
            f.flush()
            end = t0 + (i + 1) * 0.1
            while True:
                for d in (b, c):
                    check_whole(d, "big.bin", versions, seen)
                st, body, _ = env.api("GET", "/api/v1/file?path=big.bin", token)
                check(st == 200, "GET /file -> %s" % st)
                e = json.loads(body)
                check(listed.get(e["size"]) == e["hash"],
                      "the server holds a partial big.bin while A writes it (%d bytes)" %
                      e["size"])
                if time.monotonic() >= end:
                    break
                time.sleep(0.01)
    t_write = time.monotonic() - t0
    deadline = time.monotonic() + WATCH_TIMEOUT + 10 * SLOW
    while time.monotonic() < deadline:
        for d in (b, c):
            check_whole(d, "big.bin", versions, seen)
        if all("new" in seen.get(d.name, {}).get("labels", ()) for d in (b, c)):
            break
        time.sleep(0.02)
    wait_converged([a, b, c])
    for d in (b, c):
        check(file_sha256(d.p("big.bin")) == versions[len(new)][0],
              "%s's big.bin differs from A's" % d.name)
    seq1 = server_seq(env, token)
    note("%d MiB written in %.1f s; committed %d time(s) (seq %d -> %d); seen on B/C: %s" %
         (len(new) // MIB, t_write, seq1 - seq0, seq0, seq1,
          {k: sorted(v["labels"]) for k, v in seen.items()}))
    check(seq1 - seq0 == 1, "big.bin was committed %d times for one slow write (seq %d -> %d): "
          "a half-written version was uploaded or a download echoed back" %
          (seq1 - seq0, seq0, seq1))
    ls = json_out(b.run(["ls", "big.bin", "--json"]), "ferry ls big.bin --json")
    entry = [f for f in ls["files"] if f["path"] == "big.bin"]
    check(entry and entry[0]["hash"] == listed[len(new)] and entry[0]["seq"] == seq1,
          "ls big.bin: %r" % entry)
    finish([a, b, c], ws)


@scenario("watch_server_killed_and_restarted")
def server_restart(env):
    a, b, c = devices(env, 3)
    a.write("keep.txt", "keep\n")
    a.write("edit.txt", "edit v1\n")
    a.write("gone.txt", "gone\n")
    ws = watch_all([a, b, c])
    wait_converged([a, b, c])

    env.server.kill()
    t_down = time.time()
    for w in ws:
        w.wait_state(("offline",), timeout=10 * SLOW)
    i = wait_for(ws[0].info, 5) or {}
    check(i.get("offline_since"), "watch.json offline without offline_since: %r" % i)
    st = status_json(a).get("watch") or {}
    check(st.get("state") == "offline", "`status --json` watch while ferryd is down: %r" % st)
    # Changes on two devices while ferryd is down, none on the same path.
    a.write("during-a.txt", "written on A while ferryd was down\n")
    a.write("edit.txt", "edit v2 while down\n")
    b.write("during-b/x.txt", "written on B while ferryd was down\n")
    b.remove("gone.txt")
    time.sleep(1.5)  # let the daemons fail and back off
    env.server.start()
    note("ferryd down for %.1f s" % (time.time() - t_down))
    t0 = time.monotonic()
    snap = wait_converged([a, b, c], timeout=RECONNECT_TIMEOUT)
    note("all devices in sync %.2f s after ferryd came back" % (time.monotonic() - t0))
    check(set(snap) == {"keep.txt", "edit.txt", "during-a.txt", "during-b", "during-b/x.txt"},
          "tree after the crash: %s" % sorted(snap))
    check(c.read("edit.txt") == b"edit v2 while down\n", "A's offline edit lost")

    # A clean restart, and a change made right after it.
    rc, killed = env.server.stop()
    check(rc == 0 and not killed, "ferryd stop: rc %s, killed %s" % (rc, killed))
    env.server.start()
    c.write("after-restart.txt", "right after the restart\n")
    snap = wait_converged([c, a, b], timeout=RECONNECT_TIMEOUT)
    check("after-restart.txt" in snap, "change after a restart lost")
    # Events still flow in real time after the reconnects.
    b.write("live.txt", "live again\n")
    wait_converged([b, a, c])
    finish([a, b, c], ws)


@scenario("watch_device_offline_then_back")
def offline_device(env):
    a, b, c = devices(env, 3)
    for name in ("edit-a.txt", "del-a.txt", "mv-a.txt", "edit-c.txt", "del-c.txt"):
        a.write(name, "original %s\n" % name)
    ws = watch_all([a, b, c])
    wait_converged([a, b, c])
    took = ws[2].stop()
    note("C's watcher stopped in %.2f s" % took)
    check(status_json(c).get("watch") is None, "status shows a watch on C after it stopped")

    a.write("new-a.txt", "new on A while C is offline\n")
    a.write("edit-a.txt", "edited on A\n")
    a.remove("del-a.txt")
    a.rename("mv-a.txt", "moved/mv-a.txt")
    c.write("new-c.txt", "new on C while offline\n")
    c.write("edit-c.txt", "edited on C while offline\n")
    c.remove("del-c.txt")
    c.write("sub/deep/new-c2.txt", "nested on C while offline\n")
    wait_converged([a, b])
    time.sleep(1)

    ws.append(c.watch(wait_idle=False))
    t0 = time.monotonic()
    want = {"new-a.txt": b"new on A while C is offline\n", "edit-a.txt": b"edited on A\n",
            "moved/mv-a.txt": b"original mv-a.txt\n", "new-c.txt": b"new on C while offline\n",
            "edit-c.txt": b"edited on C while offline\n",
            "sub/deep/new-c2.txt": b"nested on C while offline\n"}
    snap = wait_converged([c, a, b])
    note("C caught up %.2f s after its watcher restarted" % (time.monotonic() - t0))
    files = {p for p, v in snap.items() if v[0] == "file"}
    check(files == set(want), "files after C came back: %s" % sorted(files))
    for d in (a, b, c):
        for p, data in want.items():
            check(d.read(p) == data, "%s:%s = %r" % (d.name, p, d.read(p)))
    check(not [p for p in snap if "conflict" in p], "conflict copies: %s" % sorted(snap))
    del ws[2]
    finish([a, b, c], ws)


@scenario("watch_sigterm_during_transfer")
def stop_mid_transfer(env):
    # SIGTERM while a daemon is busy uploading: it must still exit 0 within
    # the bound, leave no temporary file, and a restarted daemon finishes.
    a, b = devices(env, 2)
    ws = watch_all([a, b])
    for i in range(10):
        write_big(a.p("many/f%02d.bin" % i), (2 if ASAN else 8) * MIB, seed=40 + i)
    wa = ws[0]
    deadline = time.monotonic() + WATCH_TIMEOUT
    busy = None
    while time.monotonic() < deadline:
        wa.check_alive()
        st = wa.state()
        if st in ("scanning", "uploading"):
            busy = st
            break
        if st == "idle" and b.exists("many/f09.bin"):
            break
        time.sleep(0.005)
    took = wa.stop()
    note("A stopped %s, in %.2f s" % ("while " + busy if busy else
                                     "(never caught busy: the upload was too quick)", took))
    check(not a.temp_files(), "temp files on A after SIGTERM: %s" % a.temp_files())
    ws[0] = a.watch()
    snap = wait_converged([a, b])
    check(sum(1 for p in snap if p.startswith("many/f")) == 10,
          "B lacks files after A's daemon restarted: %s" % sorted(snap))
    finish([a, b], ws)
