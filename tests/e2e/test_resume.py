"""Resumable transfers: a `ferry sync` SIGKILLed in the middle of a large
download or upload keeps what it had moved, and the next run moves only
the rest.

Download: the partial file (named after its path, .ferry-tmp-r...) survives
the kill and the next round's sweep; the rerun fetches about the missing
part only (the client's debug summary counts the bytes of the fetch
answers the server sent). Upload: the server keeps the chunks of every
batch it stored, and the rerun's chunks/missing answer (the server's own
count) names only about the part it did not get."""

import os
import re
import signal
import time

from harness import ASAN, assert_same, check, file_sha256, note, scenario, tail, write_big

MIB = 1 << 20
SIZE = (40 if ASAN else 150) * MIB
SLACK = 8 * MIB  # a window or body in flight at the kill, chunk rounding


def two(env):
    env.register("alice")
    return env.device("A"), env.device("B")


def kill_when(proc, cond, fallback):
    """SIGKILLs proc once cond() holds; False when it finished first or the
    fallback time ran out without cond."""
    t0 = time.monotonic()
    while proc.poll() is None:
        if cond():
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            return True
        if time.monotonic() - t0 > fallback:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            return False
        time.sleep(0.002)
    proc.communicate()
    return False


def resume_files(dev):
    """{relative path: size} of the resumable partial downloads on dev."""
    out = {}
    for t in dev.temp_files():
        if os.path.basename(t).startswith(".ferry-tmp-r"):
            try:
                out[t] = os.path.getsize(dev.p(t))
            except OSError:
                pass
    return out


def upload_summary(err):
    """(distinct chunks, chunks sent) from the first upload summary of a
    -vv sync's log ("upload: N distinct chunks, M missing on the server")."""
    m = re.findall(r"upload: (\d+) distinct chunks, (\d+) missing on the server", err)
    check(m, "no upload summary in the debug log: %s" % tail(err))
    return tuple(int(x) for x in m[0])


def debug_sync(dev):
    r = dev.run(["-vv", "sync"])
    check(r.rc == 0, "sync on %s failed: %s" % (dev.name, r.describe()))
    return r.err


@scenario("resume_download_after_sigkill")
def resume_download(env):
    a, b = two(env)
    write_big(a.p("big.bin"), SIZE, seed=11)
    want = file_sha256(a.p("big.bin"))
    a.sync()

    p = b.popen(["sync"])
    killed = kill_when(p, lambda: sum(resume_files(b).values()) >= SIZE * 4 // 10, 60)
    check(killed, "could not kill B's sync at 40%% of the download (partials: %s)" %
          resume_files(b))
    part = resume_files(b)
    check(len(part) == 1, "expected one partial download on B, found %s" % part)
    have = sum(part.values())
    check(not b.exists("big.bin") or file_sha256(b.p("big.bin")) == want,
          "a half-written big.bin is in place on B")

    err = debug_sync(b)
    m = re.search(r"resuming the download of big\.bin: (\d+) of (\d+) bytes", err)
    check(m is not None, "the rerun did not resume big.bin: %s" % tail(err))
    kept = int(m.group(1))
    fetched = [int(x) for x in re.findall(r"chunks fetched \((\d+) bytes\)", err)]
    check(fetched, "no download summary in the rerun's debug log: %s" % tail(err))
    note("partial after the kill %.1f MiB, kept %.1f MiB, rerun fetched %.1f MiB of %.1f MiB" %
         (have / MIB, kept / MIB, max(fetched) / MIB, SIZE / MIB))
    check(have - kept <= SLACK, "the rerun kept %d of the %d bytes there" % (kept, have))
    check(max(fetched) <= SIZE - have + SLACK,
          "the rerun fetched %d bytes; only %d were missing" % (max(fetched), SIZE - have))
    check(file_sha256(b.p("big.bin")) == want, "B's big.bin differs from A's")
    assert_same(a, b)  # also: no temporary file left anywhere


@scenario("resume_upload_after_sigkill")
def resume_upload(env):
    a, b = two(env)
    a.write("small.txt", "x\n")
    a.sync()
    write_big(a.p("big.bin"), SIZE, seed=12)
    want = file_sha256(a.p("big.bin"))
    base = env.server.disk_usage()

    p = a.popen(["sync"])
    killed = kill_when(p, lambda: env.server.disk_usage() - base >= SIZE * 4 // 10, 60)
    check(killed, "could not kill A's sync at 40% of the upload")
    time.sleep(0.2)  # let the server drop the body it was receiving
    stored = env.server.disk_usage() - base

    err = debug_sync(a)
    total, missing = upload_summary(err)
    note("server held %.1f MiB after the kill; the rerun sent %d of %d chunks" %
         (stored / MIB, missing, total))
    # The server's own count: the chunks it lacks are about the part it
    # did not store (chunks average 64 KiB, so count fractions).
    check(missing / total <= (SIZE - stored + SLACK) / SIZE,
          "the rerun re-sent %d of %d chunks though the server held %d of %d bytes" %
          (missing, total, stored, SIZE))
    b.sync()
    check(file_sha256(b.p("big.bin")) == want, "B's big.bin differs from A's")
    assert_same(a, b)


@scenario("resume_partial_dropped_when_file_gone")
def resume_partial_dropped(env):
    """A partial download whose file is deleted on the server before the
    rerun has no use left: the rerun, which finishes every download it has,
    removes it instead of keeping it for a day."""
    a, b = two(env)
    write_big(a.p("big.bin"), SIZE, seed=13)
    a.sync()

    p = b.popen(["sync"])
    killed = kill_when(p, lambda: sum(resume_files(b).values()) >= SIZE * 3 // 10, 60)
    check(killed, "could not kill B's sync at 30%% of the download (partials: %s)" %
          resume_files(b))
    check(len(resume_files(b)) == 1, "expected one partial on B, found %s" % resume_files(b))

    os.unlink(a.p("big.bin"))
    a.sync()
    b.sync()
    check(not b.exists("big.bin"), "big.bin, deleted on A, appeared on B")
    check(b.temp_files() == [], "B kept temporary files after a finished round: %s" %
          b.temp_files())
    assert_same(a, b)
