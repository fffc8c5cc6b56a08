"""Robustness scenarios: crashes (SIGKILL of the client mid-transfer, of the
server between syncs), a server that is down, the mass-deletion guard, and
streaming of a large file within a memory bound."""

import os
import signal
import subprocess
import tempfile
import time

from harness import (ASAN, FERRY, SLOW, SYNC_TIMEOUT, Failure, Result, assert_same, check,
                     file_sha256, note, sanitizer_report, scenario, sync_all, tail,
                     write_big)

MIB = 1 << 20
KILL_SIZE = (40 if ASAN else 200) * MIB
STREAM_SIZE = (256 * MIB) if ASAN else (2048 * MIB)
RSS_LIMIT_KIB = 100 * 1024


def three(env):
    env.register("alice")
    return env.device("A"), env.device("B"), env.device("C")


def run_measured(dev, args, timeout=SYNC_TIMEOUT):
    """Runs ferry to completion with os.wait4 so that its peak RSS is known.
    Output goes to files (a full pipe must not block the child)."""
    argv = [FERRY, "-C", dev.dir] + list(args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, env=dev.env.env(), cwd=dev.env.root, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err)
        status, ru = None, None
        while True:
            pid, st, rusage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                status, ru = st, rusage
                break
            if time.monotonic() - t0 > timeout:
                p.kill()
                os.wait4(p.pid, 0)
                p.returncode = -9
                raise Failure("timeout after %d s: `%s`" % (timeout, " ".join(argv)))
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        r = Result(argv, p.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"), time.monotonic() - t0, ru.ru_maxrss)
    rep = sanitizer_report(r.err)
    if rep:
        raise Failure("sanitizer report from `%s`:\n%s" % (" ".join(argv), rep))
    return r


def kill_when(proc, cond, fallback):
    """SIGKILLs proc as soon as cond() holds (polled), or after fallback
    seconds. Returns a note saying what happened."""
    t0 = time.monotonic()
    why = None
    while proc.poll() is None:
        if cond():
            why = "progress seen after %.2f s" % (time.monotonic() - t0)
            break
        if time.monotonic() - t0 > fallback:
            why = "fallback after %.1f s" % fallback
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        out, err = proc.communicate()
        return False, "finished on its own (rc %s) before the kill: %s" % (
            proc.returncode, tail(err.decode(errors="replace")))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return True, why


@scenario("sigkill_mid_upload_and_download")
def sigkill(env):
    a, b, c = three(env)
    a.write("small.txt", "small\n")
    sync_all(a, b, c)
    write_big(a.p("big.bin"), KILL_SIZE, seed=3)
    want = file_sha256(a.p("big.bin"))
    base = env.server.disk_usage()

    # Upload: kill once the server has stored some of it.
    p = a.popen(["sync"])
    killed, why = kill_when(p, lambda: env.server.disk_usage() - base > 4 * MIB, 5 * SLOW)
    note("upload kill: %s" % why)
    check(killed, "could not kill mid-upload: " + why)
    # Another device syncing now sees either nothing or the whole file.
    b.sync()
    if b.exists("big.bin"):
        check(file_sha256(b.p("big.bin")) == want, "B has a partial big.bin after A was killed")
    a.sync()
    check(not a.temp_files(), "temp files left on A: %s" % a.temp_files())

    # Download: kill once the temporary file has some bytes in it.
    def partial():
        for t in b.temp_files():
            try:
                if os.path.getsize(b.p(t)) > 1 * MIB:
                    return True
            except OSError:
                pass
        return False

    p = b.popen(["sync"])
    killed, why = kill_when(p, partial, 5 * SLOW)
    note("download kill: %s" % why)
    check(killed, "could not kill mid-download: " + why)
    if b.exists("big.bin"):
        check(file_sha256(b.p("big.bin")) == want, "a reader sees a half-written big.bin on B")
    b.sync()
    c.sync()
    a.sync()
    assert_same(a, b, c)
    check(file_sha256(c.p("big.bin")) == want, "C's big.bin differs from A's")


@scenario("server_restart_between_syncs")
def server_restart(env):
    a, b, c = three(env)
    a.write("one.txt", "one\n")
    a.write("dir/two.txt", "two\n")
    a.sync()
    rc, killed = env.server.stop()
    check(not killed, "ferryd did not exit within the bound after SIGTERM")
    check(rc == 0, "ferryd exited with %s after SIGTERM:\n%s" % (rc, env.server.log_tail()))
    env.server.start()
    b.sync()
    check(b.read("dir/two.txt") == b"two\n", "B did not get A's files after a restart")
    a.write("one.txt", "one, edited\n")
    a.remove("dir/two.txt")
    a.write("three.txt", "three\n")
    a.sync()
    # A crash (SIGKILL) of the server loses nothing committed.
    env.server.kill()
    env.server.start()
    c.sync()
    b.sync()
    a.sync()
    snap = assert_same(a, b, c)
    check(set(snap) == {"one.txt", "dir", "three.txt"}, "tree after restarts: %s" % sorted(snap))
    check(c.read("one.txt") == b"one, edited\n", "edit lost across a server crash")
    r = a.run(["devices"])
    check(r.rc == 0 and all(n in r.out for n in ("A", "B", "C")),
          "devices after restart: %s" % r.describe())


@scenario("server_down")
def server_down(env):
    a, b, c = three(env)
    a.write("before.txt", "before\n")
    sync_all(a, b, c)
    env.server.stop()
    a.write("during.txt", "written while the server was down\n")
    r = a.sync(expect=None, timeout=60 * SLOW)
    check(r.rc == 1, "sync with the server down: want rc 1, got %s" % r.describe())
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    check(len(lines) == 1, "want a one-line message on stderr, got %d lines: %s" %
          (len(lines), r.describe()))
    check(r.elapsed < 30 * SLOW, "sync took %.1f s to give up" % r.elapsed)
    env.server.start()
    a.sync()
    sync_all(b, c)
    snap = assert_same(a, b, c)
    check("during.txt" in snap, "the change made while the server was down never arrived")


@scenario("mass_delete_folder_missing")
def mass_delete_folder(env):
    a, b, c = three(env)
    for i in range(20):
        a.write("f%02d.txt" % i, "file %d\n" % i)
    a.mkdir("empty")
    sync_all(a, b, c)
    full = assert_same(a, b, c)
    moved = a.dir + ".moved"
    # The folder renamed away, then an empty folder in its place (a disk
    # that did not mount).
    os.rename(a.dir, moved)
    for label in ("folder missing", "empty folder in its place"):
        r = a.sync(expect=None)
        check(r.rc != 0 and r.rc != 2 and r.err.strip(),
              "%s: `ferry sync` should fail (rc 1) with a message: %s" % (label, r.describe()))
        check(r.rc == 1, "%s: want rc 1: %s" % (label, r.describe()))
        sync_all(b, c)
        check(b.snapshot() == full and c.snapshot() == full,
              "%s: other devices lost files" % label)
        if label == "folder missing":
            os.mkdir(a.dir)
    if os.geteuid() != 0:
        os.rmdir(a.dir)
        os.rename(moved, a.dir)
        os.chmod(a.dir, 0)
        try:
            r = a.sync(expect=None)
        finally:
            os.chmod(a.dir, 0o755)
        check(r.rc == 1 and r.err.strip(), "unreadable folder: %s" % r.describe())
        sync_all(b, c)
        check(b.snapshot() == full, "unreadable folder: other devices lost files")
    else:
        os.rmdir(a.dir)
        os.rename(moved, a.dir)
    sync_all(a, b, c)
    check(assert_same(a, b, c) == full, "after restoring the folder the tree changed")


@scenario("mass_delete_threshold")
def mass_delete_threshold(env):
    a, b, c = three(env)
    for i in range(100):
        a.write("many/f%03d.txt" % i, "file %d\n" % i)
    sync_all(a, b, c)
    full = assert_same(a, b, c)
    for i in range(60):
        a.remove("many/f%03d.txt" % i)
    r = a.sync(expect=None)
    check(r.rc == 1, "deleting 60 of 100 files: want rc 1 (refused), got %s" % r.describe())
    check("allow-mass-delete" in r.err + r.out,
          "the refusal does not mention --allow-mass-delete: %s" % r.describe())
    sync_all(b, c)
    check(b.snapshot() == full and c.snapshot() == full,
          "refused mass delete still deleted files on other devices")
    r = a.sync(expect=None)
    check(r.rc == 1, "second plain sync should still refuse: %s" % r.describe())
    a.sync("--allow-mass-delete")
    sync_all(b, c)
    snap = assert_same(a, b, c)
    check(len([p for p in snap if p.startswith("many/")]) == 40, "want 40 files left, have %d" %
          len(snap))


@scenario("large_file_streaming")
def large_file(env):
    env.register("alice")
    a = env.device("A")
    b = env.device("B")
    t0 = time.monotonic()
    write_big(a.p("large.bin"), STREAM_SIZE, seed=11)
    gen = time.monotonic() - t0
    ra = run_measured(a, ["sync"])
    check(ra.rc == 0, "upload sync failed: %s" % ra.describe())
    srv_after_up = env.server.vm_hwm_kib()
    rb = run_measured(b, ["sync"])
    check(rb.rc == 0, "download sync failed: %s" % rb.describe())
    srv_hwm = env.server.vm_hwm_kib()
    mib = STREAM_SIZE / MIB
    note("large file %d MiB (generated in %.1f s): upload %.1f s (%.0f MiB/s, client peak RSS "
         "%d MiB, server VmHWM %d MiB), download %.1f s (%.0f MiB/s, client peak RSS %d MiB, "
         "server VmHWM %d MiB)" % (mib, gen, ra.elapsed, mib / ra.elapsed, ra.maxrss_kib // 1024,
                                   srv_after_up // 1024, rb.elapsed, mib / rb.elapsed,
                                   rb.maxrss_kib // 1024, srv_hwm // 1024))
    assert_same(a, b)
    if ASAN:
        return  # sanitizer shadow memory makes RSS meaningless
    check(ra.maxrss_kib < RSS_LIMIT_KIB, "client peak RSS %d MiB uploading" %
          (ra.maxrss_kib // 1024))
    check(rb.maxrss_kib < RSS_LIMIT_KIB, "client peak RSS %d MiB downloading" %
          (rb.maxrss_kib // 1024))
    check(srv_hwm < RSS_LIMIT_KIB, "server VmHWM %d MiB" % (srv_hwm // 1024))
