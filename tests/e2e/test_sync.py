"""Sync scenarios: what a user does every day with three devices on one
account (and a second account next to it). Each scenario ends by comparing
every folder byte for byte."""

import hashlib
import os
import re

from harness import (assert_same, check, find_dicts, json_out, note, scenario, sync_all,
                     write_big)

MIB = 1 << 20


def three(env, files_a=None, files_b=None, files_c=None):
    env.register("alice")
    return (env.device("A", files=files_a), env.device("B", files=files_b),
            env.device("C", files=files_c))


@scenario("initial_sync_both_ways")
def initial_both_ways(env):
    # A and B both hold files before their first sync, including one file
    # that is identical on both (must not become a conflict).
    a, b, c = three(env,
                    files_a={"a1.txt": "from A\n", "docs/a2.md": "# A\n" * 100,
                             "same.txt": "identical on A and B\n", "bin/a.bin": os.urandom(300000)},
                    files_b={"b1.txt": "from B\n", "docs/b2.md": "# B\n",
                             "same.txt": "identical on A and B\n", "big/b.bin": os.urandom(1 << 20)})
    b.mkdir("empty-from-b")
    a.sync()
    b.sync()
    a.sync()
    c.sync()
    snap = assert_same(a, b, c)
    for p in ("a1.txt", "docs/a2.md", "bin/a.bin", "b1.txt", "docs/b2.md", "big/b.bin",
              "same.txt", "empty-from-b"):
        check(p in snap, "%s missing after initial sync" % p)
    conflicts = [p for p in snap if "conflict" in p]
    check(not conflicts, "identical files became conflict copies: %s" % conflicts)
    # A second round changes nothing.
    sync_all(a, b, c)
    check(assert_same(a, b, c) == snap, "a no-op round changed the folders")


@scenario("modify_delta")
def modify(env):
    a, b, c = three(env)
    big = os.urandom(16 * MIB)
    a.write("big.bin", big)
    a.write("small.txt", "version 1\n")
    sync_all(a, b, c)
    before = env.server.disk_usage()
    # A 100-byte edit in the middle of a 16 MiB file: only the chunks around
    # it may be stored again.
    edited = bytearray(big)
    edited[8 * MIB:8 * MIB + 100] = os.urandom(100)
    a.write("big.bin", bytes(edited))
    a.write("small.txt", "version 2, longer\n")
    a.sync()
    grown = env.server.disk_usage() - before
    note("server data grew by %d bytes for a 100-byte edit of a 16 MiB file" % grown)
    check(grown < 2 * MIB, "a 100-byte edit of a 16 MiB file grew the server by %d bytes" % grown)
    sync_all(b, c)
    assert_same(a, b, c)
    check(b.read("big.bin") == bytes(edited), "B's big.bin is not A's edit")
    check(c.read("small.txt") == b"version 2, longer\n", "C's small.txt not updated")

    # Same size, same mtime rewrite (only ctime changes): still a change.
    st = os.stat(b.p("small.txt"))
    b.write("small.txt", "version 3, longer\n")
    os.utime(b.p("small.txt"), ns=(st.st_atime_ns, st.st_mtime_ns))
    b.sync()
    sync_all(a, c)
    assert_same(a, b, c)
    check(a.read("small.txt") == b"version 3, longer\n",
          "a same-size rewrite with the same mtime was not synced")


@scenario("delete_to_trash")
def delete(env):
    a, b, c = three(env)
    a.write("keep.txt", "keep\n")
    a.write("gone.txt", "gone: unique content 1\n")
    a.write("d/inner.txt", "gone: unique content 2\n")
    a.write("d/e/deep.txt", "gone: unique content 3\n")
    sync_all(a, b, c)
    assert_same(a, b, c)
    a.remove("gone.txt")
    a.remove("d")
    a.sync()
    sync_all(b, c)
    snap = assert_same(a, b, c)
    check(set(snap) == {"keep.txt"}, "after deletes: %s" % sorted(snap))
    want = {hashlib.sha256(s.encode()).hexdigest() for s in
            ("gone: unique content 1\n", "gone: unique content 2\n", "gone: unique content 3\n")}
    for d in (b, c):
        missing = want - d.trash_hashes()
        check(not missing, "%s: %d deleted file(s) not found under .ferry/trash/" %
              (d.name, len(missing)))
    # A delete of a file another device never had is harmless; a new file
    # with a deleted name comes back.
    b.write("gone.txt", "reborn\n")
    b.sync()
    sync_all(a, c)
    assert_same(a, b, c)
    check(a.read("gone.txt") == b"reborn\n", "recreated file not synced")


@scenario("rename_cheap")
def rename(env):
    a, b, c = three(env)
    write_big(a.p("big.bin"), 8 * MIB, seed=7)
    a.write("dir/one.txt", "one\n")
    a.write("dir/sub/two.txt", "two\n")
    sync_all(a, b, c)
    before = env.server.disk_usage()
    a.rename("big.bin", "moved/big-renamed.bin")
    a.rename("dir", "dir2")
    a.sync()
    grown = env.server.disk_usage() - before
    note("server data grew by %d bytes for renaming an 8 MiB file and a dir" % grown)
    check(grown < 1 * MIB, "renames grew the server by %d bytes (content re-uploaded?)" % grown)
    sync_all(b, c)
    snap = assert_same(a, b, c)
    check("moved/big-renamed.bin" in snap and "big.bin" not in snap, "rename not applied")
    check("dir2/sub/two.txt" in snap and "dir" not in snap, "dir rename not applied: %s" %
          sorted(snap))


@scenario("nested_and_empty_dirs")
def nested(env):
    a, b, c = three(env)
    a.write("a/b/c/d/e/f/g/deep.txt", "deep\n")
    for d in ("empty", "x/y/z", "a/b/also-empty", "with space/and more"):
        a.mkdir(d)
    sync_all(a, b, c)
    snap = assert_same(a, b, c)
    for d in ("empty", "x/y/z", "a/b/also-empty", "with space/and more"):
        check(snap.get(d) == ("dir",), "empty dir %s not synced" % d)
    # Removing empty dirs propagates; an empty dir made on B comes to A.
    a.remove("empty")
    a.remove("x/y/z")
    b.mkdir("from-b/empty")
    a.sync()
    b.sync()
    a.sync()
    c.sync()
    snap = assert_same(a, b, c)
    check("empty" not in snap and "x/y/z" not in snap and "x/y" in snap,
          "empty dir deletes not propagated: %s" % sorted(snap))
    check(snap.get("from-b/empty") == ("dir",), "B's new empty dir not synced")


SPECIAL = [
    "with space.txt", "  leading spaces", "trailing space ", "ünïcødé/файл 名前.txt",
    ".hidden", ".config/.dotfile", "emoji 😀.md", "semi;colon & amp $dollar.txt",
    "100% sure", "#hash", "quote'single\"double", "trailing.dot.", "(parens) [brackets] {braces}",
    "x" * 250 + ".txt", "ĀĒĪŌŪ/" + "é" * 120, "tab\u00a0nbsp", "-dash-first", "..double-dot-start",
    ".ferryish", "dir.with.dots/file",
]


@scenario("special_names")
def special_names(env):
    a, b, c = three(env)
    for i, name in enumerate(SPECIAL):
        a.write(name, "content %d: %s\n" % (i, name))
    b.write("from b/ütf 8 ✓.txt", "b\n")
    a.sync()
    b.sync()
    a.sync()
    c.sync()
    snap = assert_same(a, b, c)
    for name in SPECIAL:
        check(name in snap, "%r did not sync" % name)
    # Rename and delete some of them.
    a.rename("with space.txt", "ünïcødé/with space renamed.txt")
    a.remove(".hidden")
    a.sync()
    sync_all(b, c)
    assert_same(a, b, c)


@scenario("exec_bit_and_mtime")
def exec_mtime(env):
    a, b, c = three(env)
    t1 = 1577934245123456789  # 2020-01-02 03:04:05.123456789 UTC
    t2 = 1262304000000000001  # 2010-01-01 00:00:00.000000001 UTC
    a.write("script.sh", "#!/bin/sh\necho hi\n", mode=0o755, mtime_ns=t1)
    a.write("data.txt", "data\n", mode=0o644, mtime_ns=t2)
    a.write("bin/tool", os.urandom(70000), mode=0o755, mtime_ns=t1)
    sync_all(a, b, c)
    assert_same(a, b, c)
    for d in (b, c):
        for rel, t, x in (("script.sh", t1, True), ("data.txt", t2, False), ("bin/tool", t1, True)):
            st = os.lstat(d.p(rel))
            check(bool(st.st_mode & 0o100) == x, "%s:%s exec bit %s" % (d.name, rel, oct(st.st_mode)))
            check(st.st_mtime_ns == t, "%s:%s mtime_ns %d, want %d" %
                  (d.name, rel, st.st_mtime_ns, t))
    # A mode-only change (chmod, same bytes) propagates.
    os.chmod(a.p("script.sh"), 0o644)
    os.chmod(a.p("data.txt"), 0o755)
    a.sync()
    sync_all(b, c)
    assert_same(a, b, c)
    check(not os.stat(c.p("script.sh")).st_mode & 0o100, "chmod -x not synced")
    check(os.stat(c.p("data.txt")).st_mode & 0o100, "chmod +x not synced")


@scenario("symlinks_as_links")
def symlinks(env):
    a, b, c = three(env)
    a.write("target.txt", "target\n")
    a.write("sub/file.txt", "in sub\n")
    a.symlink("target.txt", "ln")
    a.symlink("nonexistent", "dangling")
    a.symlink("/etc/passwd", "abs-outside")
    a.symlink("../../outside", "sub/rel-outside")
    a.symlink("sub", "dirlink")
    sync_all(a, b, c)
    snap = assert_same(a, b, c)
    for rel, target in (("ln", "target.txt"), ("dangling", "nonexistent"),
                        ("abs-outside", "/etc/passwd"), ("sub/rel-outside", "../../outside"),
                        ("dirlink", "sub")):
        for d in (b, c):
            check(os.path.islink(d.p(rel)), "%s:%s is not a symlink" % (d.name, rel))
            check(os.readlink(d.p(rel)) == target, "%s:%s -> %s" % (d.name, rel,
                                                                     os.readlink(d.p(rel))))
    check(not any(p.startswith("dirlink/") for p in snap), "dirlink was followed: %s" % sorted(snap))
    # Retarget and delete links.
    a.remove("ln")
    a.symlink("sub/file.txt", "ln")
    a.remove("dangling")
    a.sync()
    sync_all(b, c)
    assert_same(a, b, c)
    check(os.readlink(c.p("ln")) == "sub/file.txt", "retargeted link not synced")


CONFLICT_RE = r"^%s \(conflict from %s \d{4}-\d{2}-\d{2} \d{6}\)%s$"


def conflict_copies(snap, stem, device, ext):
    rx = re.compile(CONFLICT_RE % (re.escape(stem), re.escape(device), re.escape(ext)))
    return [p for p in snap if rx.match(p)]


@scenario("conflict_both_edit")
def conflict(env):
    a, b, c = three(env)
    a.write("doc.txt", "base\n")
    a.write("notes", "base notes\n")
    a.write("sub/report.final.pdf", "base pdf\n")
    sync_all(a, b, c)
    a.write("doc.txt", "edited on A\n")
    b.write("doc.txt", "edited on B, longer\n")
    a.write("notes", "A notes\n")
    b.write("notes", "B notes\n")
    a.write("sub/report.final.pdf", "A pdf\n")
    b.write("sub/report.final.pdf", "B pdf\n")
    a.sync()
    b.sync()
    a.sync()
    c.sync()
    snap = assert_same(a, b, c)
    check(a.read("doc.txt") == b"edited on A\n", "doc.txt is not the first committer's version")
    for stem, ext, dirp, body in (("doc", ".txt", "", b"edited on B, longer\n"),
                                  ("notes", "", "", b"B notes\n"),
                                  ("report.final", ".pdf", "sub/", b"B pdf\n")):
        sub = {p[len(dirp):]: v for p, v in snap.items() if p.startswith(dirp) and
               "/" not in p[len(dirp):]}
        copies = conflict_copies(sub, stem, "B", ext)
        check(len(copies) == 1, "want one conflict copy of %s%s from B, have %s (all: %s)" %
              (stem, ext, copies, sorted(snap)))
        check(c.read(dirp + copies[0]) == body, "conflict copy %s has the wrong content" %
              copies[0])
    check(len([p for p in snap if "conflict" in p]) == 3, "unexpected extra conflict copies: %s" %
          sorted(snap))


@scenario("edit_vs_delete")
def edit_vs_delete(env):
    a, b, c = three(env)
    a.write("f1.txt", "original 1\n")
    a.write("f2.txt", "original 2\n")
    sync_all(a, b, c)
    # Delete reaches the server first, then the edit.
    a.remove("f1.txt")
    b.write("f1.txt", "edited on B 1\n")
    a.sync()
    b.sync()
    # Edit reaches the server first, then the (stale) delete.
    a.remove("f2.txt")
    b.write("f2.txt", "edited on B 2\n")
    b.sync()
    a.sync()
    sync_all(c, a, b)
    assert_same(a, b, c)
    for d in (a, b, c):
        check(d.exists("f1.txt") and d.read("f1.txt") == b"edited on B 1\n",
              "%s: edit of f1 (delete first) lost" % d.name)
        check(d.exists("f2.txt") and d.read("f2.txt") == b"edited on B 2\n",
              "%s: edit of f2 (edit first) lost" % d.name)


@scenario("offline_device_catches_up")
def offline(env):
    a, b, c = three(env)
    a.write("keep.txt", "keep\n")
    a.write("mod.txt", "v1\n")
    a.write("del.txt", "delete me\n")
    a.write("ren.txt", "rename me\n")
    a.write("dir/x.txt", "x\n")
    a.write("olddir/y.txt", "y\n")
    sync_all(a, b, c)
    # C goes offline; A and B keep working.
    a.write("new.txt", "new\n")
    a.write("mod.txt", "v2\n")
    a.remove("del.txt")
    a.rename("ren.txt", "renamed/ren.txt")
    a.sync()
    b.sync()
    b.write("mod.txt", "v3 from B\n")
    b.remove("olddir")
    b.mkdir("b-empty")
    b.write("dir/x.txt", "x2\n")
    b.sync()
    a.sync()
    a.write("mod.txt", "v4\n")
    a.sync()
    b.sync()
    # C comes back.
    c.sync()
    snap = assert_same(a, b, c)
    want = {"keep.txt", "mod.txt", "new.txt", "renamed", "renamed/ren.txt", "dir", "dir/x.txt",
            "b-empty"}
    check(set(snap) == want, "C's tree after catching up: %s" % sorted(snap))
    check(c.read("mod.txt") == b"v4\n", "C has mod.txt %r" % c.read("mod.txt"))
    check(c.read("dir/x.txt") == b"x2\n", "C's dir/x.txt not updated")
    gone = {hashlib.sha256(s).hexdigest() for s in (b"delete me\n", b"y\n")}
    check(gone <= c.trash_hashes(), "C did not move the files deleted while it was offline "
          "to .ferry/trash/")


@scenario("two_users_isolated")
def two_users(env):
    env.register("alice")
    env.register("bob", password="bobs password 123")
    a1 = env.device("A1", user="alice")
    a2 = env.device("A2", user="alice")
    b1 = env.device("B1", user="bob")
    a1.write("alice-secret.txt", "alice only\n")
    a1.write("shared-name.txt", "alice's version\n")
    a1.write("same-bytes.bin", b"same bytes in both accounts" * 1000)
    b1.write("bob.txt", "bob only\n")
    b1.write("shared-name.txt", "bob's version\n")
    b1.write("same-bytes.bin", b"same bytes in both accounts" * 1000)
    sync_all(a1, b1, a2, b1)
    assert_same(a1, a2)
    sb = b1.snapshot()
    check(set(sb) == {"bob.txt", "shared-name.txt", "same-bytes.bin"},
          "bob's folder holds %s" % sorted(sb))
    check(b1.read("shared-name.txt") == b"bob's version\n", "bob's file overwritten by alice's")
    check(a2.read("shared-name.txt") == b"alice's version\n", "alice's file overwritten by bob's")
    for dev, own, other in ((b1, "bob.txt", "alice-secret.txt"), (a1, "alice-secret.txt", "bob.txt")):
        r = dev.run(["ls", "--json"])
        paths = {d["path"] for d in find_dicts(json_out(r, "ls --json on " + dev.name), "path")}
        check(own in paths, "%s: ls --json lacks its own %s: %s" % (dev.name, own, sorted(paths)))
        check(other not in paths, "%s: ls --json shows the other user's %s" % (dev.name, other))
        r = dev.run(["ls"])
        check(r.rc == 0 and own in r.out and other not in r.out,
              "%s: ls output wrong: %s" % (dev.name, r.describe()))
    # Bob logging in as alice with his password fails.
    os.makedirs(os.path.join(env.root, "evil"))
    r = env.ferry(["-C", os.path.join(env.root, "evil"), "init", "--server", env.url, "--user",
                   "alice", "--device", "evil"], password="bobs password 123")
    check(r.rc == 1, "init with a wrong password: %s" % r.describe())
