"""Transfer engine (issue 4): transfers that survive a server restart, and
the progress line of `ferry sync` on a terminal.

Resume across a restart: ferryd is SIGKILLed while a rate-limited upload
(or download) is under way; the running `ferry sync` must fail cleanly (a
non-zero exit and a message, no crash, no sanitizer report), and once ferryd
is back on the same data dir and port, the rerun moves only about the part
that had not crossed (measured as in test_resume.py: the server's own
chunks/missing count for an upload, the client's fetch summary and the kept
partial `.ferry-tmp-r*` for a download).

Progress: on a terminal (stderr a pty), a sync that takes a few seconds
draws "uploading N file(s), X of Y, R/s, ETA m:ss" (src/client/progress.c),
redrawn in place with "\\r"; the same sync with its output on pipes prints
no such line; nor does a sync over in well under a second
(PROGRESS_DELAY_NS, 1 s).

One pass for a large new file: the scan leaves a new file of 32 MiB or
more unread (PUSH_STREAM_MIN) and the upload reads, hashes and sends it at
once; the debug summary says so, the record is announced without a hash and
ends complete with the committed one, and B gets the same bytes. Such a
file that is a synced file moved is still found to be a rename (nothing
sent again)."""

import os
import re
import sqlite3
import subprocess
import time

from harness import (ASAN, FERRY, SLOW, SYNC_TIMEOUT, assert_same, check, ferry_hash_file,
                     file_sha256, note, run_cmd, sanitizer_report, scenario, tail, write_big)
from test_resume import SLACK, debug_sync, resume_files, two, upload_summary
from test_transfers import api_json, device_id, records_of

MIB = 1 << 20
SIZE = (40 if ASAN else 150) * MIB
# About three seconds for the whole transfer, so that the kill at 40% comes
# after a second or so.
RATE = SIZE // 3
KILL_AT = SIZE * 4 // 10
CRASH_MARKS = ("Segmentation fault", "core dumped", "Aborted", "AddressSanitizer")


def kill_server_when(env, proc, cond, fallback):
    """SIGKILLs ferryd once cond() holds while proc (a running sync) is
    still working. Returns True when it did; False when the sync finished
    first or the fallback time ran out."""
    t0 = time.monotonic()
    while proc.poll() is None:
        if cond():
            env.server.kill()
            return True
        if time.monotonic() - t0 > fallback:
            return False
        time.sleep(0.002)
    return False


def failed_cleanly(proc, what):
    """proc, a sync whose server vanished, exits non-zero within the bound
    with an error message and no crash. Returns its stderr."""
    try:
        out, err = proc.communicate(timeout=SYNC_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("%s still running %d s after ferryd was killed: %s" %
                             (what, SYNC_TIMEOUT, tail(err.decode(errors="replace"))))
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    rep = sanitizer_report(err)
    check(not rep, "sanitizer report from %s:\n%s" % (what, rep))
    check(proc.returncode > 0,
          "%s exited with %s after ferryd was killed (want a non-zero exit, not a signal)\n"
          "  stdout: %s\n  stderr: %s" % (what, proc.returncode, tail(out), tail(err)))
    check(err.strip() != "", "%s failed (rc %d) without a message" % (what, proc.returncode))
    check(not any(m in err for m in CRASH_MARKS), "%s crashed: %s" % (what, tail(err)))
    check("uploaded " not in out, "%s reported a finished round: %s" % (what, tail(out)))
    return err.strip()


def restart_server(env):
    """ferryd again on the same data dir and port (Server.start reuses
    both)."""
    port = env.server.port
    env.server.start()
    check(env.server.port == port, "the restarted ferryd is on port %d, not %d" %
          (env.server.port, port))


def held_bytes(env):
    """Bytes of the chunks the server's metadata says accounts hold (SQLite:
    DATA/meta.db), read while ferryd runs (WAL: a consistent snapshot)."""
    db = sqlite3.connect(os.path.join(env.server.data_dir, "meta.db"), timeout=10)
    try:
        return db.execute("SELECT coalesce(sum(c.size), 0) FROM user_chunks u "
                          "JOIN chunks c ON c.hash = u.hash").fetchone()[0]
    finally:
        db.close()


@scenario("resume_upload_after_server_restart")
def resume_upload_after_server_restart(env):
    """ferryd SIGKILLed with 40% of a rate-limited upload stored: A's sync
    fails cleanly; after the restart, the server still has what it had
    stored, so the rerun sends only about the rest, and B gets the file."""
    a, b = two(env)
    a.write("small.txt", "x\n")
    a.sync()
    write_big(a.p("big.bin"), SIZE, seed=21)
    want = file_sha256(a.p("big.bin"))
    base = env.server.disk_usage()
    base_held = held_bytes(env)

    t0 = time.monotonic()
    p = a.popen(["sync", "--limit-up", str(RATE)])
    killed = kill_server_when(env, p, lambda: env.server.disk_usage() - base >= KILL_AT,
                              30 * SLOW)
    if not killed:
        p.kill()
        p.communicate()
    check(killed, "could not kill ferryd at 40%% of A's upload (server held %d of %d bytes)" %
          (env.server.disk_usage() - base, SIZE))
    stored = env.server.disk_usage() - base
    msg = failed_cleanly(p, "A's sync")
    note("ferryd killed %.1f s into the upload with %.1f MiB stored; A's sync: %s" %
         (time.monotonic() - t0, stored / MIB, msg.splitlines()[-1][:150]))

    restart_server(env)
    # What the server kept, by its own durable record (the chunks the
    # account holds): the bodies in flight at the kill, at most two of 4 MiB,
    # may have reached the pack file (counted above) but not the index.
    held = held_bytes(env) - base_held
    note("the restarted server holds %.1f MiB of big.bin's chunks" % (held / MIB))
    check(stored - SLACK <= held <= stored,
          "the server kept %d bytes of the %d it had at the kill" % (held, stored))
    stored = held
    t1 = time.monotonic()
    err = debug_sync(a)
    total, missing = upload_summary(err)
    note("after the restart the rerun sent %d of %d chunks (%.1f s); %.1f of %.1f MiB "
         "were missing" % (missing, total, time.monotonic() - t1, (SIZE - stored) / MIB,
                           SIZE / MIB))
    check(missing < total, "the rerun re-sent all %d chunks: nothing survived the restart" % total)
    # chunks vary in size: allow 3% of rounding between counts and bytes
    check(missing / total <= (SIZE - stored) / SIZE + 0.03,
          "the rerun re-sent %d of %d chunks though the server held %d of %d bytes" %
          (missing, total, stored, SIZE))
    b.sync()
    check(file_sha256(b.p("big.bin")) == want, "B's big.bin differs from A's")
    assert_same(a, b)


@scenario("resume_download_after_server_restart")
def resume_download_after_server_restart(env):
    """ferryd SIGKILLed with 40% of a rate-limited download on B: B's sync
    fails cleanly and keeps its partial .ferry-tmp-r* file; after the
    restart the rerun resumes it, fetches about only the rest, and the file
    matches."""
    a, b = two(env)
    write_big(a.p("big.bin"), SIZE, seed=22)
    want = file_sha256(a.p("big.bin"))
    a.sync()

    t0 = time.monotonic()
    p = b.popen(["sync", "--limit-down", str(RATE)])
    killed = kill_server_when(env, p, lambda: sum(resume_files(b).values()) >= KILL_AT,
                              30 * SLOW)
    if not killed:
        p.kill()
        p.communicate()
    check(killed, "could not kill ferryd at 40%% of B's download (partials: %s)" %
          resume_files(b))
    msg = failed_cleanly(p, "B's sync")
    part = resume_files(b)
    note("ferryd killed %.1f s into the download; B's sync: %s; partial: %s" %
         (time.monotonic() - t0, msg.splitlines()[-1][:150], part))
    check(len(part) == 1, "expected one partial download on B after the failed sync, found %s"
          % part)
    have = sum(part.values())
    check(have >= KILL_AT, "B's partial shrank to %d bytes (it had %d at the kill)" %
          (have, KILL_AT))
    check(not b.exists("big.bin"), "a big.bin is in place on B after the failed download")

    restart_server(env)
    t1 = time.monotonic()
    err = debug_sync(b)
    m = re.search(r"resuming the download of big\.bin: (\d+) of (\d+) bytes", err)
    check(m is not None, "the rerun did not resume big.bin: %s" % tail(err))
    kept = int(m.group(1))
    fetched = [int(x) for x in re.findall(r"chunks fetched \((\d+) bytes\)", err)]
    check(fetched, "no download summary in the rerun's debug log: %s" % tail(err))
    note("partial %.1f MiB, kept %.1f MiB, rerun fetched %.1f of %.1f MiB (%.1f s)" %
         (have / MIB, kept / MIB, max(fetched) / MIB, SIZE / MIB, time.monotonic() - t1))
    check(have - kept <= SLACK, "the rerun kept %d of the %d bytes there" % (kept, have))
    check(max(fetched) <= SIZE - have + SLACK,
          "the rerun fetched %d bytes; only %d were missing" % (max(fetched), SIZE - have))
    check(file_sha256(b.p("big.bin")) == want, "B's big.bin differs from A's")
    assert_same(a, b)  # also: no temporary file left anywhere


def tty_run(dev, args, timeout=SYNC_TIMEOUT, cols=120):
    """Runs ferry with stdin, stdout and stderr on one pty of cols columns
    (the progress line goes to stderr, which pty_run keeps in a file).
    Returns (rc, raw output, seconds): the output as the terminal got it,
    with the pty's "\\r\\n" turned back into "\\n" (so any "\\r" left is
    ferry's own)."""
    import fcntl  # noqa: PLC0415 - only this scenario needs these
    import pty  # noqa: PLC0415
    import select  # noqa: PLC0415
    import struct  # noqa: PLC0415
    import termios  # noqa: PLC0415

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    env = dev.env.env()
    env["TERM"] = "xterm"  # progress is off on a dumb terminal

    def ctty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    t0 = time.monotonic()
    proc = subprocess.Popen([FERRY, "-C", dev.dir] + list(args), env=env, cwd=dev.env.root,
                            stdin=slave, stdout=slave, stderr=slave, preexec_fn=ctty)
    os.close(slave)
    out = b""
    deadline = t0 + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError("`ferry %s` on a pty still running after %d s: %s" %
                                     (" ".join(args), timeout, tail(out.decode(errors="replace"))))
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""  # EIO: the child closed the terminal
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=10 * SLOW)
    finally:
        os.close(master)
    text = out.decode(errors="replace")
    rep = sanitizer_report(text)
    check(not rep, "sanitizer report from `ferry %s`:\n%s" % (" ".join(args), rep))
    return proc.returncode, text.replace("\r\n", "\n"), time.monotonic() - t0


PROGRESS = re.compile(r"uploading (\d+) files?, ([\d.]+ (?:B|KiB|MiB)) of ([\d.]+ (?:B|KiB|MiB)),"
                      r" ([\d.]+ (?:B|KiB|MiB))/s, ETA (\d+):(\d\d)")


@scenario("sync_progress_bar_on_a_terminal")
def sync_progress_bar_on_a_terminal(env):
    """On a terminal, a sync of ~12 MiB at --limit-up 4M (about 3 s) draws
    the progress line (files, bytes of the total, rate, ETA), redrawn with
    "\\r" and erased at the end; the same kind of sync with its output on
    pipes (stdout and stderr) prints no progress line; a sync over in well
    under a second on a terminal prints none either."""
    a, b = two(env)
    size = 12 * MIB
    write_big(a.p("p1.bin"), size // 2, seed=31)
    write_big(a.p("p2.bin"), size // 2, seed=32)

    rc, out, secs = tty_run(a, ["sync", "--limit-up", "4M"])
    check(rc == 0, "sync on a pty failed (rc %s): %s" % (rc, tail(out)))
    lines = PROGRESS.findall(out)
    draws = out.count("\r")
    note("tty sync of %d MiB took %.1f s: %d progress lines, %d redraws; last: %r" %
         (size // MIB, secs, len(lines), draws,
          out.split("\r")[-2][:100] if draws >= 2 else out[-100:]))
    check(secs >= 1.5, "the rate-limited sync took only %.1f s: too fast to judge" % secs)
    check(lines, "no progress line (files, bytes, rate, ETA) on the terminal: %r" % out[-600:])
    check(len(lines) >= 2 and draws >= 2, "the progress line was not redrawn (%d lines, %d \\r): %r"
          % (len(lines), draws, out[-600:]))
    files, _moved, total, _rate, _m, _s = lines[-1]
    check(files == "2", "the progress line names %s files, not 2: %r" % (files, lines[-1]))
    check(total in ("12.0 MiB",), "the progress line's total is %s, not 12.0 MiB" % total)
    rates = [float(r.split()[0]) * {"B": 1, "KiB": 1024, "MiB": MIB}[r.split()[1]]
             for *_x, r, _m2, _s2 in lines]
    check(2 * MIB <= rates[-1] <= 6 * MIB,
          "the last progress line shows a rate of %.0f B/s under --limit-up 4M" % rates[-1])
    etas = [int(m2) * 60 + int(s2) for *_x, m2, s2 in lines]
    check(etas[0] > etas[-1], "the ETA did not count down: %s" % etas)
    # The end: the line erased, then the summary on a clean line.
    check(out.split("\r")[-1].startswith("\033[Kuploaded 2,"),
          "the progress line was not erased before the summary: %r" % out[-300:])

    # The same kind of upload on pipes (6M: about two seconds).
    write_big(a.p("p3.bin"), size // 2, seed=33)
    write_big(a.p("p4.bin"), size // 2, seed=34)
    # TERM as on the pty, so that only the missing terminal turns it off.
    r = run_cmd([FERRY, "-C", a.dir, "sync", "--limit-up", "6M"],
                env=dict(env.env(), TERM="xterm"), cwd=env.root, timeout=SYNC_TIMEOUT)
    check(r.rc == 0, "the piped sync failed: %s" % r.describe())
    note("piped sync took %.1f s: stdout %r, stderr %r" % (r.elapsed, r.out.strip()[:120],
                                                            r.err[:120]))
    check(r.elapsed >= 1.5, "the piped sync took only %.1f s: too fast to judge" % r.elapsed)
    for name, text in (("stdout", r.out), ("stderr", r.err)):
        check("\r" not in text and "ETA" not in text and "/s" not in text and
              "uploading" not in text,
              "a sync without a terminal printed a progress line on %s: %r" % (name, text[-300:]))
    check(r.out.startswith("uploaded 2,"), "no summary from the piped sync: %r" % r.out)

    # A quick round on a terminal: nothing of the sort.
    a.write("small.txt", "hello\n")
    rc, out, secs = tty_run(a, ["sync"])
    note("quick tty sync took %.2f s: %r" % (secs, out.strip()[:120]))
    check(rc == 0, "the quick sync on a pty failed (rc %s): %s" % (rc, tail(out)))
    check(secs < 0.8 * SLOW, "the quick sync took %.2f s: not quick enough to judge" % secs)
    check("\r" not in out and "ETA" not in out and "/s" not in out,
          "a sync of %.2f s printed a progress line: %r" % (secs, out))
    check("uploaded 1," in out, "no summary from the quick sync: %r" % out)
    b.sync()
    assert_same(a, b)


STREAM_SIZE = 40 * MIB  # over PUSH_STREAM_MIN (src/client/push.h)


@scenario("large_new_file_read_once")
def large_new_file_read_once(env):
    """A 40 MiB new file: the upload reads it once (its summary names it),
    its record ends complete with the committed hash, B gets the same
    bytes; moved afterwards, it is a rename: nothing is read or sent."""
    a, b = two(env)
    write_big(a.p("big.bin"), STREAM_SIZE, seed=31)
    want = file_sha256(a.p("big.bin"))
    err = debug_sync(a)
    m = re.findall(r"upload: (\d+) distinct chunks, (\d+) missing on the server "
                   r"\(big\.bin, read once\)", err)
    check(m, "no one-pass upload summary for big.bin: %s" % tail(err))
    total, missing = (int(x) for x in m[0])
    note("one pass: %d distinct chunks, %d sent" % (total, missing))
    check(total > STREAM_SIZE // (256 * 1024) and missing == total,
          "one-pass upload of new random data: %d distinct, %d sent" % (total, missing))
    rec = records_of(api_json(env, a, "/api/v1/transfers"), device_id(a)).get("big.bin")
    check(rec and rec["status"] == "complete", "big.bin's record: %r" % (rec,))
    check(rec["hash"] == ferry_hash_file(a.p("big.bin")),
          "big.bin's record has hash %r, not the file's" % rec["hash"])
    b.sync()
    check(file_sha256(b.p("big.bin")) == want, "B's big.bin differs from A's")

    before = env.server.disk_usage()
    os.makedirs(a.p("moved"))
    os.rename(a.p("big.bin"), a.p("moved/big.bin"))
    err = debug_sync(a)
    check("read once" not in err and not re.search(r"upload: \d+ distinct chunks, [1-9]", err),
          "the move of big.bin was uploaded again: %s" % tail(err))
    grown = env.server.disk_usage() - before
    check(grown < MIB, "moving big.bin grew the server by %d bytes" % grown)
    b.sync()
    check(file_sha256(b.p("moved/big.bin")) == want and not os.path.exists(b.p("big.bin")),
          "B did not get the move of big.bin")
    assert_same(a, b)
