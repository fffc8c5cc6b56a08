"""Backup and restore (issue 6) with real ferryd and ferry processes:
`ferry backup` of chosen files and folders from outside the linked folder
into .ferry-backup/NAME/ (only new or changed files move, local deletes
become deletes, linked folders' .ferry/ and the ignore defaults stay
home), the sets never reaching any device's synced folder, `backup
--check` reporting exactly what changed (without a terminal: printed, a
notify-send run, nothing sent; on a pty: `n` sends nothing, `y` uploads),
`watch --check-backup` logging and notifying, the mass-delete guard and a
missing source, two devices backing up into one set (each backup wins
over the other's commits), restore of a set to a fresh device checked
file by file,
restore as of an earlier seq or time after later edits and deletes (in
place, through the server, and into a directory), restore never writing
outside its target, and GET /api/v1/snapshot itself (pages, prefix,
errors, pruned history)."""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time

from harness import (ASAN, FERRY, SLOW, check, ferry_hash_file, file_sha256, json_out, pty_run,
                     run_cmd, sanitizer_report, scenario, tail, wait_for, write_big)

KIB = 1 << 10
BIG = (96 if ASAN else 640) * KIB  # a few chunks
SET = "phone"
PREFIX = ".ferry-backup/" + SET


def ok(r, what):
    check(r.rc == 0, "%s: %s" % (what, r.describe()))
    return r


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)


def make_data(top):
    """The phone's data outside any linked folder: Documents/ (nested
    folders, an empty one, an executable, a link, a bigger file, a linked
    folder's state and an ignored name) and a single file notes.txt."""
    d = os.path.join(top, "Documents")
    write(os.path.join(d, "a.txt"), "alpha\n")
    write(os.path.join(d, "x.txt"), "to be moved\n")
    write(os.path.join(d, "sub", "deep", "c.txt"), "deep one\n")
    write(os.path.join(d, "run.sh"), "#!/bin/sh\necho hi\n", mode=0o755)
    write_big(os.path.join(d, "sub", "big.bin"), BIG, seed=7)
    os.makedirs(os.path.join(d, "empty"))
    os.symlink("a.txt", os.path.join(d, "link-to-a"))
    write(os.path.join(d, ".DS_Store"), "finder junk")
    write(os.path.join(d, "other", ".ferry", "config.json"), '{"token": "secret"}')
    write(os.path.join(d, "other", "kept.txt"), "kept\n")
    write(os.path.join(top, "notes.txt"), "my notes\n")


def tree(top, name, digest=ferry_hash_file):
    """{path in the set: description} of the local source top as a backup
    holds it: under name/, without .ferry folders and .DS_Store. Files are
    named by digest: Ferry's file hash (what server_set() shows) by default,
    file_sha256 to compare with a device's snapshot()."""
    out = {name: ("dir",)} if os.path.isdir(top) else {}
    if not os.path.isdir(top):
        st = os.lstat(top)
        return {name: ("file", digest(top), st.st_size, bool(st.st_mode & 0o100))}
    for root, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if x != ".ferry"]
        for n in dirs + files:
            if n == ".DS_Store":
                continue
            p = os.path.join(root, n)
            rel = name + "/" + os.path.relpath(p, top)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", digest(p), st.st_size, bool(st.st_mode & 0o100))
    return out


def local_tree(top, digest=ferry_hash_file):
    """tree() of everything in top (a restore target), keyed by path."""
    out = {}
    for n in sorted(os.listdir(top)):
        out.update(tree(os.path.join(top, n), n, digest))
    return out


def server_set(dev, prefix=PREFIX):
    """{path in the set: (kind, hash, size)} of what the server holds."""
    ls = json_out(dev.run(["ls", prefix, "--json"]), "ls " + prefix)
    out = {}
    for f in ls["files"]:
        rel = f["path"][len(prefix) + 1:]
        out[rel] = (f["kind"], f["hash"], f["size"] if f["kind"] == "file" else 0)
    return out


def as_server(t):
    """A tree() as server_set() shows it."""
    return {k: ("file", v[1], v[2]) if v[0] == "file" else
            ("symlink" if v[0] == "link" else "dir", None, 0) for k, v in t.items()}


def expected(data):
    t = tree(os.path.join(data, "Documents"), "Documents")
    t.update(tree(os.path.join(data, "notes.txt"), "notes.txt"))
    return t


def fake_notify(env):
    """A notify-send on a PATH of its own that records its arguments.
    Returns (environment, file it writes)."""
    bindir = os.path.join(env.root, "fakebin")
    out = os.path.join(env.root, "notified.txt")
    write(os.path.join(bindir, "notify-send"),
          "#!/bin/sh\nprintf '%%s\\n' \"$@\" >> '%s'\n" % out, mode=0o755)
    e = env.env()
    e["PATH"] = bindir + ":" + e.get("PATH", "/usr/bin:/bin")
    return e, out


def setup_backup(env):
    env.register("alice")
    a = env.device("A")
    data = os.path.join(env.root, "phone-data")
    make_data(data)
    r = ok(a.run(["backup", os.path.join(data, "Documents"), os.path.join(data, "notes.txt"),
                  "--to", SET]), "first backup")
    return a, data, r


@scenario("backup_basic")
def backup_basic(env):
    a, data, r = setup_backup(env)
    want = expected(data)
    nfiles = len(want)
    check(re.search(r"^backed up to %s: %d new, 0 modified, 0 deleted, 0 renamed" %
                    (re.escape(PREFIX), nfiles), r.out, re.M), "first backup: %r" % r.out)
    got = server_set(a)
    check(got == as_server(want), "the set differs from the sources:\n  want %s\n  got  %s" %
          (sorted(as_server(want).items()), sorted(got.items())))
    check(not any(".ferry/" in k or k.endswith(".DS_Store") for k in got),
          "state or ignored files backed up: %s" % sorted(got))
    # Nothing new: nothing moves.
    r = ok(a.run(["backup", "--to", SET]), "second backup")
    check("nothing changed since the last backup" in r.out, "second backup: %r" % r.out)
    # The set reaches no synced folder: not this one, not another device's.
    b = env.device("B")
    b.write("shared.txt", "from B\n")
    b.sync()
    a.sync()
    b.sync()
    for dev in (a, b):
        check(not dev.exists(".ferry-backup"), "%s's folder got the backup set" % dev.name)
        check(dev.read("shared.txt") == b"from B\n", "sync broken on %s" % dev.name)
    check(server_set(a) == got, "a sync changed the set")
    # --list: the set, its files, this folder's sources.
    ls = json_out(a.run(["backup", "--list", "--json"]), "backup --list")
    (s,) = [x for x in ls["sets"] if x["name"] == SET]
    check(s["local"] and s["files"] == sum(1 for v in want.values() if v[0] == "file") and
          s["sources"] == [os.path.join(data, "Documents"), os.path.join(data, "notes.txt")] and
          s["last_backup"], "backup --list: %s" % ls)
    s2 = [x for x in json_out(b.run(["backup", "--list", "--json"]), "list on B")["sets"]
          if x["name"] == SET]
    check(s2 and not s2[0]["local"] and s2[0]["files"] == s["files"], "list on B: %s" % s2)
    # Changes: exactly those go up; the history keeps the old versions.
    docs = os.path.join(data, "Documents")
    write(os.path.join(docs, "a.txt"), "alpha, edited\n")
    os.unlink(os.path.join(docs, "sub", "deep", "c.txt"))
    write(os.path.join(docs, "new.txt"), "new\n")
    os.rename(os.path.join(docs, "x.txt"), os.path.join(docs, "y.txt"))
    r = ok(a.run(["backup", "--to", SET]), "third backup")
    check("1 new, 1 modified, 1 deleted, 1 renamed" in r.out, "third backup: %r" % r.out)
    got = server_set(a)
    check(got == as_server(expected(data)), "after the changes: %s" % sorted(got.items()))
    h = json_out(a.run(["history", PREFIX + "/Documents/a.txt", "--json"]), "history")
    check(len(h["versions"]) == 2, "history of a.txt in the set: %s" % h)
    h = json_out(a.run(["history", PREFIX + "/Documents/sub/deep/c.txt", "--json"]), "history")
    check(h["versions"][0]["deleted"] and len(h["versions"]) == 2, "c.txt: %s" % h)


@scenario("backup_guard_and_missing")
def backup_guard_and_missing(env):
    env.register("alice")
    a = env.device("A")
    data = os.path.join(env.root, "data")
    for i in range(60):
        write(os.path.join(data, "many", "f%02d.txt" % i), "file %d\n" % i)
    write(os.path.join(data, "one.txt"), "one\n")
    ok(a.run(["backup", os.path.join(data, "many"), os.path.join(data, "one.txt"),
              "--to", "bulk"]), "backup")
    before = server_set(a, ".ferry-backup/bulk")
    # Emptied (a disk not mounted, say): the guard stops it, nothing sent.
    for i in range(60):
        os.unlink(os.path.join(data, "many", "f%02d.txt" % i))
    r = a.run(["backup", "--to", "bulk"])
    check(r.rc == 1 and "would delete 60 of the" in r.err and "--allow-mass-delete" in r.err
          and r.out == "", "mass delete: %s" % r.describe())
    check(server_set(a, ".ferry-backup/bulk") == before, "the guard let deletes through")
    # A missing source is reported, and its copy is left alone.
    os.unlink(os.path.join(data, "one.txt"))
    r = a.run(["backup", "--to", "bulk", "--allow-mass-delete"])
    check(r.rc == 1 and "one.txt is missing" in r.err, "missing source: %s" % r.describe())
    after = server_set(a, ".ferry-backup/bulk")
    check(after == {"many": ("dir", None, 0), "one.txt": before["one.txt"]},
          "after the allowed deletes: %s" % after)
    r = a.run(["backup", "--check", "bulk"])
    check(r.rc == 0 and "missing" in r.out and "one.txt" in r.out, "check: %s" % r.describe())
    # Usage and failures.
    for args, rc, text in ((["backup"], 2, "PATH is missing"),
                           (["backup", "--to", "a/b", data], 2, "cannot name a backup set"),
                           (["backup", "--check", "--list"], 2, "do not go together"),
                           (["backup", "--check", "nosuch"], 1, "no backup set nosuch"),
                           (["backup", os.path.join(data, "nope")], 1, "cannot back up"),
                           (["backup", a.p(".ferry")], 1, "Ferry's own"),
                           (["watch", "--check-backup", "soon"], 2, "not an interval")):
        r = a.run(args)
        check(r.rc == rc and text in r.err, "`ferry %s`: %s" % (" ".join(args), r.describe()))
    other = os.path.join(env.root, "elsewhere", "many")
    os.makedirs(other)
    r = a.run(["backup", other, "--to", "bulk"])
    check(r.rc == 1 and "same folder" in r.err, "name clash: %s" % r.describe())


@scenario("backup_check_terminal")
def backup_check_terminal(env):
    a, data, _ = setup_backup(env)
    before = server_set(a)
    docs = os.path.join(data, "Documents")
    r = ok(a.run(["backup", "--check"]), "check, unchanged")
    check("backup set %s (last backup " % SET in r.out and
          "no changes since the last backup" in r.out, "unchanged check: %r" % r.out)
    write(os.path.join(docs, "a.txt"), "alpha, changed\n")  # 15 bytes
    os.unlink(os.path.join(docs, "sub", "big.bin"))
    write(os.path.join(docs, "fresh.txt"), "fresh!\n")  # 7 bytes
    os.rename(os.path.join(docs, "x.txt"), os.path.join(docs, "moved.txt"))
    lines = ["  modified  Documents/a.txt", "  new       Documents/fresh.txt",
             "  renamed   Documents/moved.txt (from Documents/x.txt)",
             "  deleted   Documents/sub/big.bin"]
    # Without a terminal: the report, a notification, nothing sent.
    penv, notified = fake_notify(env)
    r = run_cmd([FERRY, "-C", a.dir, "backup", "--check", SET], env=penv, cwd=env.root)
    ok(r, "check without a terminal")
    got = [x for x in r.out.splitlines() if x.startswith("  ")]
    check(sorted(got) == sorted(lines) and
          "1 new, 1 modified, 1 deleted, 1 renamed, 22 B to upload" in r.out,
          "check report: %r" % r.out)
    check("upload these changes" not in r.out, "asked without a terminal: %r" % r.out)
    with open(notified) as f:
        n = f.read()
    check("Ferry: backup set phone has changes" in n and "1 new, 1 modified" in n and
          "ferry backup --to phone" in n, "notify-send got: %r" % n)
    check(server_set(a) == before, "a check without a terminal uploaded")
    # On a terminal: n sends nothing, y uploads.
    rc, out, err, answered = pty_run(a, ["backup", "--check", SET], answer=lambda t: "n",
                                     wait_text=["[y/N]"])
    check(rc == 0 and answered and "Documents/fresh.txt" in out, "pty n: %s %r %r" %
          (rc, out, err))
    check(server_set(a) == before, "answering n uploaded")
    rc, out, err, answered = pty_run(a, ["backup", "--check"], answer=lambda t: "y",
                                     wait_text=["[y/N]"])
    check(rc == 0 and answered and
          re.search(r"backed up to %s: 1 new, 1 modified, 1 deleted, 1 renamed" %
                    re.escape(PREFIX), out), "pty y: %s %r %r" % (rc, out, err))
    check(server_set(a) == as_server(expected(data)), "after y: %s" % server_set(a))
    r = ok(a.run(["backup", "--check"]), "check after the upload")
    check("no changes since the last backup" in r.out, "check after y: %r" % r.out)


@scenario("backup_watch_check")
def backup_watch_check(env):
    a, data, _ = setup_backup(env)
    before = server_set(a)
    penv, notified = fake_notify(env)
    log = os.path.join(env.root, "watch-check.log")
    write(os.path.join(data, "Documents", "a.txt"), "edited while watched\n")
    proc = subprocess.Popen([FERRY, "-C", a.dir, "watch", "--check-backup", "1", "--log", log],
                            env=penv, cwd=env.root, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def text():
        try:
            with open(log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""
    try:
        seen = wait_for(lambda: "backup check: set phone: modified Documents/a.txt" in text()
                        and os.path.exists(notified), 20 * SLOW, 0.05)
        check(seen, "the watch did not report the change: %s" % tail(text(), 2000))
        check("0 new, 1 modified, 0 deleted, 0 renamed" in text(), "log: %s" % tail(text()))
        # the next check (a second later) reports it again: still not sent
        n0 = text().count("modified Documents/a.txt")
        check(wait_for(lambda: text().count("modified Documents/a.txt") > n0, 10 * SLOW, 0.05),
              "no second check: %s" % tail(text()))
        check(server_set(a) == before, "the watch's check uploaded")
        check(proc.poll() is None, "the watch died: %s" % tail(text()))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10 * SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = "killed"
    check(rc == 0, "watch exit on SIGTERM: %s; %s" % (rc, tail(text())))
    rep = sanitizer_report(text())
    check(not rep, "sanitizer report from the watch:\n%s" % rep)


@scenario("backup_restore_fresh_device")
def backup_restore_fresh_device(env):
    a, data, _ = setup_backup(env)
    fresh = env.device("fresh")  # a new device: only linked, nothing synced
    out = os.path.join(env.root, "restored")
    r = ok(fresh.run(["restore", PREFIX, "--into", out]), "restore into a directory")
    check(re.search(r"^wrote \d+ files .* into %s as of seq \d+; 0 already there$" %
                    re.escape(out), r.out, re.M), "restore output: %r" % r.out)
    want = {SET + "/" + k: v for k, v in expected(data).items()}
    want[SET] = ("dir",)
    got = local_tree(out)
    check(got == want, "restored tree differs:\n  want %s\n  got  %s" %
          (sorted(set(want.items()) - set(got.items())), sorted(set(got.items()) -
                                                                set(want.items()))))
    # One folder of the set, straight into the linked folder: it is then an
    # ordinary file of this device, synced as any.
    ok(fresh.run(["restore", PREFIX + "/Documents", "--into", fresh.dir]), "restore a folder")
    check(tree(fresh.p("Documents"), "Documents") == tree(os.path.join(data, "Documents"),
                                                          "Documents"), "Documents restored")
    # Again into the same place: everything already there, nothing written.
    r = ok(fresh.run(["restore", PREFIX + "/Documents", "--into", fresh.dir]), "again")
    check(" 0 files (0 B), 0 folders, 0 links" in r.out, "second restore: %r" % r.out)
    # A local file with other content is never overwritten.
    write(os.path.join(out, SET, "notes.txt"), "mine, do not touch\n")
    r = fresh.run(["restore", PREFIX, "--into", out])
    check(r.rc == 1 and "not overwritten" in r.err, "kept file: %s" % r.describe())
    with open(os.path.join(out, SET, "notes.txt")) as f:
        check(f.read() == "mine, do not touch\n", "a local file was overwritten")
    # Nothing is written outside the target, even through a link planted in it.
    outside = os.path.join(env.root, "outside")
    os.makedirs(outside)
    write(os.path.join(outside, "sentinel.txt"), "sentinel\n")
    target = os.path.join(env.root, "target")
    os.makedirs(os.path.join(target, SET))
    os.symlink(outside, os.path.join(target, SET, "Documents"))
    r = fresh.run(["restore", PREFIX, "--into", target])
    check(r.rc == 1, "restore through a planted link: %s" % r.describe())
    check(sorted(os.listdir(outside)) == ["sentinel.txt"],
          "restore wrote outside its target: %s" % os.listdir(outside))
    check(os.path.isfile(os.path.join(target, SET, "notes.txt")), "the rest was not restored")
    # Usage.
    for args, rc, text in ((["restore", "a", "b"], 2, "several go with --at or --into"),
                           (["restore", "a", "--to", "/tmp/x"], 2, "use --into DIR"),
                           (["restore", "a", "--at", "soon"], 2, "--at wants"),
                           (["restore", "a", "--at", "3", "--version", "2"], 2, "--version"),
                           (["restore", "a", "--to", "b", "--into", "c"], 2, "do not go"),
                           (["restore", "nothing/here", "--into", out], 1, "held nothing")):
        r = fresh.run(args)
        check(r.rc == rc and text in r.err, "`ferry %s`: %s" % (" ".join(args), r.describe()))


def seq_now(dev):
    return json_out(dev.run(["ls", "--json"]), "ls")["seq"]


@scenario("restore_at_earlier_point")
def restore_at_earlier_point(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    a.write("docs/report.txt", "report v1\n")
    a.write("docs/keep.txt", "keep\n")
    a.write("todo.txt", "todo v1\n")
    a.sync()
    b.sync()
    s1 = seq_now(a)
    first = a.snapshot()
    time.sleep(1.2)  # the point by time lies strictly between the commits
    t1 = time.strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(1.2)
    a.write("docs/report.txt", "report v2, longer\n")
    a.remove("docs/keep.txt")
    a.write("todo.txt", "todo v2\n")
    a.write("docs/later.txt", "created later\n")
    a.sync()
    b.sync()
    # Into a directory, by time: the files as they were, the server untouched.
    s_before = seq_now(a)
    out = os.path.join(env.root, "then")
    r = ok(b.run(["restore", "docs", "--at", t1, "--into", out]), "restore --at TIME --into")
    check("as of seq %d, the last change at or before %s" % (s1, t1) in r.out,
          "point: %r" % r.out)
    then = {k: v for k, v in first.items() if k == "docs" or k.startswith("docs/")}
    got = local_tree(out, file_sha256)
    check(got == then, "docs as of t1: %s, want %s" % (got, then))
    check(seq_now(a) == s_before, "a restore into a directory changed the server")
    # In place, by seq: edits reverted, the delete undone, the later file kept.
    r = ok(b.run(["restore", "--at", str(s1)]), "restore --at SEQ in place")
    check("restored docs/keep.txt from version" in r.out and
          "restored docs/report.txt from version" in r.out and
          "restored todo.txt from version" in r.out and
          "restored 3 paths as of seq %d; 1 already as they were; 1 newer paths left" % s1
          in r.out, "in place: %r" % r.out)
    a.sync()
    want = dict(first)
    want["docs/later.txt"] = b.snapshot()["docs/later.txt"]
    for dev in (a, b):
        check(dev.snapshot() == want, "%s after the restore: %s" % (dev.name, dev.snapshot()))
    # Again: nothing to do.
    r = ok(b.run(["restore", "--at", str(s1)]), "again")
    check("restored 0 paths" in r.out, "second in-place restore: %r" % r.out)
    # A backup set as of an earlier backup, after later edits and deletes.
    data = os.path.join(env.root, "data")
    write(os.path.join(data, "photos", "p1.jpg"), "jpeg one")
    write(os.path.join(data, "photos", "p2.jpg"), "jpeg two")
    ok(a.run(["backup", os.path.join(data, "photos"), "--to", SET]), "backup 1")
    first_backup = seq_now(a)
    v1 = tree(os.path.join(data, "photos"), "photos")
    write(os.path.join(data, "photos", "p1.jpg"), "jpeg one, retouched")
    os.unlink(os.path.join(data, "photos", "p2.jpg"))
    write(os.path.join(data, "photos", "p3.jpg"), "jpeg three")
    ok(a.run(["backup", "--to", SET]), "backup 2")
    out = os.path.join(env.root, "photos-then")
    ok(b.run(["restore", PREFIX, "--at", str(first_backup), "--into", out]), "set as of 1")
    check(local_tree(os.path.join(out, SET)) == v1, "set as of backup 1: %s" %
          local_tree(out))
    out = os.path.join(env.root, "photos-now")
    ok(b.run(["restore", PREFIX + "/photos", "--into", out]), "set now")
    check(local_tree(out) == tree(os.path.join(data, "photos"), "photos"), "set now")
    check(not a.exists(".ferry-backup") and not b.exists(".ferry-backup"),
          "the set reached a synced folder")


def token_of(dev):
    with open(dev.p(".ferry/config.json")) as f:
        return json.load(f)["token"]


@scenario("snapshot_api", server_args=["--keep-versions", "1", "--gc-interval", "1",
                                       "--gc-grace", "0"])
def snapshot_api(env):
    env.register("alice")
    a = env.device("A")
    for name in ("a", "b", "b/x", "b/y", "b-x"):
        if name != "b":
            a.write(name if name != "a" else "a", "v1 of %s\n" % name)
    a.sync()
    s1 = seq_now(a)
    tok = token_of(a)

    def get(q):
        st, body, _ = env.api("GET", "/api/v1/snapshot" + q, tok)
        return st, json.loads(body)

    st, j = get("?at=%d" % s1)
    check(st == 200 and j["seq"] == s1 and not j["more"], "snapshot: %s %s" % (st, j))
    paths = [e["path"] for e in j["entries"]]
    check(paths == ["a", "b", "b-x", "b/x", "b/y"], "paths in order: %s" % paths)
    check(all(e["chunks"] for e in j["entries"] if e["kind"] == "file"), "chunks: %s" % j)
    st, j = get("?at=%d&prefix=b" % s1)
    check([e["path"] for e in j["entries"]] == ["b", "b/x", "b/y"], "prefix b: %s" % j)
    st, j = get("?at=%d&limit=2" % s1)
    check(j["more"] and [e["path"] for e in j["entries"]] == ["a", "b"], "page 1: %s" % j)
    st, j = get("?at=%d&limit=2&after=b" % s1)
    check(j["more"] and [e["path"] for e in j["entries"]] == ["b-x", "b/x"], "page 2: %s" % j)
    st, j = get("?at=%d&after=b/x" % s1)
    check(not j["more"] and [e["path"] for e in j["entries"]] == ["b/y"], "page 3: %s" % j)
    st, j = get("?at=999999")
    check(st == 200 and j["seq"] == j["current"] == s1, "a seq past the end: %s" % j)
    st, j = get("?time=%d" % (time.time() + 3600))
    check(st == 200 and j["seq"] == s1 and j["time"] > 0, "by time: %s" % j)
    st, j = get("?time=1")
    check(st == 200 and j["seq"] == 0 and j["entries"] == [], "before anything: %s" % j)
    for q in ("?at=-1", "?at=x", "?time=1.5", "?at=1&time=1", "?prefix=/a", "?after=a//b",
              "?limit=0"):
        st, j = get(q)
        check(st == 400 and j["code"] == "bad_request", "%s -> %s %s" % (q, st, j))
    st, body, _ = env.api("GET", "/api/v1/snapshot", "0" * 64)
    check(st == 401, "no token: %s" % st)
    # Pruned history: the old point is refused, the later ones work.
    a.write("a", "v2 of a\n")
    a.remove("b/x")
    a.sync()
    s2 = seq_now(a)

    def pruned():
        return get("?at=%d" % s1)[0] == 404
    check(wait_for(pruned, 30 * SLOW, 0.2), "snapshot of pruned history not refused")
    st, j = get("?at=%d" % s1)
    check("pruned" in j["error"] and j["code"] == "not_found", "404 body: %s" % j)
    st, j = get("?at=%d" % s2)
    check(st == 200 and [e["path"] for e in j["entries"]] == ["a", "b", "b-x", "b/y"],
          "after the prune: %s" % j)
    r = a.run(["restore", "--at", str(s1), "--into", os.path.join(env.root, "old")])
    check(r.rc == 1 and "pruned" in r.err, "restore of pruned history: %s" % r.describe())
    shutil.rmtree(os.path.join(env.root, "old"), ignore_errors=True)


@scenario("backup_two_devices_one_set")
def backup_two_devices_one_set(env):
    """Two devices backing up into one set: each backup is its device's
    word (commit conflicts are resolved by sending again on the server's
    current version), and the history keeps both."""
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    da, db = os.path.join(env.root, "a-data", "docs"), os.path.join(env.root, "b-data", "docs")
    write(os.path.join(da, "a.txt"), "from A 1\n")
    write(os.path.join(da, "only-a.txt"), "A's own\n")
    write(os.path.join(db, "a.txt"), "from B 1\n")
    ok(a.run(["backup", da, "--to", "shared"]), "A's backup")
    r = ok(b.run(["backup", db, "--to", "shared"]), "B's backup over A's")
    check("1 new" in r.out, "B's backup: %r" % r.out)

    def content():
        out = os.path.join(env.root, "check-%d" % time.monotonic_ns())
        ok(a.run(["restore", ".ferry-backup/shared", "--into", out]), "restore")
        return {k: v for k, v in local_tree(os.path.join(out, "shared")).items()
                if v[0] == "file"}
    got = content()
    check(got["docs/a.txt"][1] == ferry_hash_file(os.path.join(db, "a.txt")) and
          "docs/only-a.txt" in got, "after B: %s" % got)
    write(os.path.join(da, "a.txt"), "from A 2, later\n")
    r = ok(a.run(["backup", "--to", "shared"]), "A again (its base is stale)")
    check("1 modified" in r.out, "A's second backup: %r" % r.out)
    check(content()["docs/a.txt"][1] == ferry_hash_file(os.path.join(da, "a.txt")), "A's edit lost")
    os.unlink(os.path.join(db, "a.txt"))
    r = ok(b.run(["backup", "--to", "shared"]), "B deletes (its base is stale)")
    check("1 deleted" in r.out, "B's delete: %r" % r.out)
    got = content()
    check("docs/a.txt" not in got and "docs/only-a.txt" in got, "after B's delete: %s" % got)
    h = json_out(a.run(["history", ".ferry-backup/shared/docs/a.txt", "--json"]), "history")
    check([v["device_name"] for v in h["versions"]] == ["B", "A", "B", "A"],
          "history of the shared path: %s" % h)
