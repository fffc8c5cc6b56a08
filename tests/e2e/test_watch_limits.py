"""The watch daemon's fallbacks when inotify cannot tell it everything:
the watch limit (fs.inotify.max_user_watches) reached, and the kernel's
event queue overflowing (IN_Q_OVERFLOW). Both must end in a clear warning
and full rescans, never in changes silently missed. Real ferryd, real
`ferry watch` daemons, bounded waits, byte-for-byte comparison at the end,
daemons stopped with SIGTERM and exiting 0.

The watch limit is lowered only for the daemon under test: it runs in its
own user namespace (`unshare --user --map-root-user`), whose
/proc/sys/user/max_inotify_watches (per user namespace since Linux 5.11)
it may lower for itself. Where user namespaces are not available, and only
when CI=true or FERRY_E2E_SYSCTL=1, root lowers the global
fs.inotify.max_user_watches for the instant the daemon takes to set up its
watches, and restores it in a finally block.

The queue overflow needs no privilege: the daemon is stopped (SIGSTOP)
while more events than /proc/sys/fs/inotify/max_queued_events are queued,
then the changes whose events the kernel drops are made, then SIGCONT."""

import glob
import os
import re
import shutil
import signal
import subprocess
import time

from harness import ASAN, FERRY, Failure, assert_same, check, note, scenario
from watch_harness import WATCH_TIMEOUT, Watcher, wait_converged

# src/client/watch.h: a daemon with unwatched directories rescans the
# whole folder this often.
WATCH_RESCAN_LIMITED_S = 10
LIMIT_DIRS = 24  # directories in the folder, far more than the watches allowed
NS_LIMIT = 8  # watches allowed in the daemon's user namespace (the root takes one)
OVERFLOW_FILES = 100 if ASAN else 300
QUEUE_MAX_PADDING = 1 << 20  # more queued events than this would make the test slow
SYSCTL_WATCHES = "/proc/sys/fs/inotify/max_user_watches"
SYSCTL_QUEUE = "/proc/sys/fs/inotify/max_queued_events"
NS_SETUP = 'echo %d > /proc/sys/user/max_inotify_watches && exec "$@"'


def sysctl_allowed():
    return (os.environ.get("CI") == "true" or
            os.environ.get("FERRY_E2E_SYSCTL", "") not in ("", "0"))


def userns_limit_works():
    """Whether a child user namespace may lower its own watch limit here;
    (ok, why not)."""
    if not shutil.which("unshare"):
        return False, "unshare (util-linux) is not installed"
    try:
        p = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                            NS_SETUP % NS_LIMIT, "sh", "true"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, "unshare: %s" % e
    if p.returncode != 0:
        return False, "unshare -Ur / max_inotify_watches: rc %d %s" % (
            p.returncode, p.stderr.decode(errors="replace").strip())
    return True, None


def root_watches_in_use():
    """inotify watches held by root's processes now (an upper bound:
    descriptors shared between processes count once per process)."""
    n = 0
    for fdinfo in glob.glob("/proc/[0-9]*/fdinfo/*"):
        try:
            with open(fdinfo) as f:
                text = f.read()
            proc = os.path.dirname(os.path.dirname(fdinfo))
            if "inotify wd:" in text and os.stat(proc).st_uid == 0:
                n += text.count("inotify wd:")
        except OSError:
            pass
    return n


class NsWatcher(Watcher):
    """`ferry watch` in its own user namespace whose inotify watch limit is
    NS_LIMIT. unshare (no --fork) and sh exec the daemon: its pid is the
    one Popen knows, and watch.json, SIGTERM and the exit status are its."""

    def start(self, wait_idle=True, timeout=WATCH_TIMEOUT):
        argv = ["unshare", "--user", "--map-root-user", "sh", "-c", NS_SETUP % NS_LIMIT, "sh",
                FERRY, "-C", self.dev.dir] + self.extra + ["watch"]
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()
            log.write(("\n== %s\n" % " ".join(argv)).encode())
            log.flush()
            self.proc = subprocess.Popen(argv, env=self.dev.env.env(), cwd=self.dev.env.root,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if wait_idle:
            self.wait_idle(timeout)
        return self


def watched_count(w):
    """The number of directories the daemon said it watches at start."""
    m = re.search(r"watching \S+ \((\d+) directories\)", w.log_text()[w.log_offset:])
    return int(m.group(1)) if m else None


def watched_inodes(pid):
    """Inode numbers of everything pid's inotify descriptors watch (from
    /proc/PID/fdinfo: "inotify wd:N ino:HEX sdev:...")."""
    inos = set()
    for fdinfo in glob.glob("/proc/%d/fdinfo/*" % pid):
        try:
            with open(fdinfo) as f:
                for m in re.finditer(r"^inotify wd:\S+ ino:([0-9a-f]+) ", f.read(), re.M):
                    inos.add(int(m.group(1), 16))
        except OSError:
            pass
    return inos


def wait_log(w, needle, timeout):
    deadline = time.monotonic() + timeout
    while needle not in w.log_text()[w.log_offset:]:
        w.check_alive()
        if time.monotonic() > deadline:
            raise Failure("watcher %s never logged %r within %d s; %s" %
                          (w.name, needle, timeout, w.describe()))
        time.sleep(0.01)


def start_limited(dev):
    """A's daemon with too few inotify watches for its folder."""
    ok, why = userns_limit_works()
    if ok:
        w = NsWatcher(dev)
        dev.env.watchers.append(w)
        return w.start(wait_idle=True), "user namespace, max_inotify_watches=%d" % NS_LIMIT
    if not sysctl_allowed():
        return None, why
    if not os.access(SYSCTL_WATCHES, os.W_OK):
        raise Failure("no way to limit inotify watches here: %s, and %s is not writable" %
                      (why, SYSCTL_WATCHES))
    with open(SYSCTL_WATCHES) as f:
        saved = f.read().strip()
    limit = root_watches_in_use() + NS_LIMIT
    w = Watcher(dev)
    dev.env.watchers.append(w)
    try:
        with open(SYSCTL_WATCHES, "w") as f:
            f.write("%d\n" % limit)
        w.start(wait_idle=False)
        wait_log(w, "watching ", WATCH_TIMEOUT)  # logged once every watch is set up
    finally:
        with open(SYSCTL_WATCHES, "w") as f:
            f.write(saved + "\n")
    w.wait_idle()
    return w, "global %s lowered to %d for the daemon's start-up (%s)" % (
        SYSCTL_WATCHES, limit, why)


@scenario("watch_limit_exhausted_rescans")
def watch_limit_exhausted(env):
    env.register("alice")
    files = {"top.txt": "top\n"}
    for i in range(LIMIT_DIRS):
        files["d%02d/keep.txt" % i] = "keep %d\n" % i
        files["d%02d/edit.txt" % i] = "old %d\n" % i
        files["d%02d/gone.txt" % i] = "to delete %d\n" % i
    a = env.device("A", files=files)
    b = env.device("B")
    wb = b.watch()
    wa, how = start_limited(a)
    if wa is None:
        note("SKIPPED (no CI=true / FERRY_E2E_SYSCTL=1 for the global fallback): %s" % how)
        wb.stop()
        return
    note("watch limit: %s" % how)
    wait_converged([a, b])
    log = wa.log_text()[wa.log_offset:]
    check("fs.inotify.max_user_watches" in log and "watch limit is reached" in log,
          "no warning naming fs.inotify.max_user_watches in A's log: %s" % wa.describe())
    n = watched_count(wa)
    check(n is not None and n < LIMIT_DIRS + 1,
          "A watches %s of %d directories: the limit did not bite" % (n, LIMIT_DIRS + 1))
    inos = watched_inodes(wa.pid)
    check(len(inos) == n, "A's fdinfo shows %d watches, its log %d" % (len(inos), n))
    unwatched = [d for d in sorted(os.listdir(a.dir))
                 if d.startswith("d") and os.stat(a.p(d)).st_ino not in inos]
    check(len(unwatched) >= LIMIT_DIRS - n + 1,
          "only %s of A's directories are unwatched" % unwatched)
    note("A watches %d of %d directories; unwatched: %s" % (n, LIMIT_DIRS + 1,
                                                            " ".join(unwatched)))

    # Change every directory, so that most changes happen where no watch
    # is: edits, new files, deletes, a rename, a new directory with files.
    mark = len(wa.log_text())
    t0 = time.monotonic()
    for i in range(LIMIT_DIRS):
        d = "d%02d" % i
        a.write(d + "/edit.txt", "new content %d, longer than before\n" % i)
        a.write(d + "/new.txt", os.urandom(1000 + i))
        a.remove(d + "/gone.txt")
    a.rename("d03/keep.txt", "d03/renamed.txt")
    a.write("d05/fresh/deeper/f.txt", "in a directory made after the start\n")
    expect = a.snapshot()
    wait_converged([a, b], expect=expect, timeout=WATCH_RESCAN_LIMITED_S + WATCH_TIMEOUT)
    took = time.monotonic() - t0
    after = wa.log_text()[mark:]
    check("scanning the whole folder (some directories are not watched)" in after,
          "B converged without a fallback rescan on A: %s" % wa.describe())
    note("changes in unwatched directories reached B in %.1f s (rescan every %d s)" %
         (took, WATCH_RESCAN_LIMITED_S))

    # The other way too: B's change lands in A's unwatched directories, and
    # A's next edit there still goes out.
    u = unwatched[0]
    b.write(u + "/from-b.txt", "from B\n")
    wait_converged([a, b], timeout=WATCH_TIMEOUT)
    a.write(u + "/from-b.txt", "edited again on A\n")
    wait_converged([a, b], expect=a.snapshot(), timeout=WATCH_RESCAN_LIMITED_S + WATCH_TIMEOUT)
    for w in (wa, wb):
        took = w.stop(signal.SIGTERM)
        note("watcher %s exited 0 %.2f s after SIGTERM" % (w.name, took))
    assert_same(a, b)


def queue_max():
    with open(SYSCTL_QUEUE) as f:
        return int(f.read().strip())


@scenario("watch_queue_overflow_rescans")
def watch_queue_overflow(env):
    qmax = queue_max()
    if qmax > QUEUE_MAX_PADDING:
        raise Failure("%s is %d: too many events to queue in a test (at most %d)" %
                      (SYSCTL_QUEUE, qmax, QUEUE_MAX_PADDING))
    env.register("alice")
    a = env.device("A", files={"pad0": "pad\n", "pad1": "pad\n", "old/edit.txt": "old\n",
                               "old/gone.txt": "gone\n"})
    b = env.device("B")
    wa, wb = a.watch(), b.watch()
    wait_converged([a, b])
    check("overflowed" not in wa.log_text()[wa.log_offset:], "overflow before the test made one")

    mark = len(wa.log_text())
    wa.send(signal.SIGSTOP)
    try:
        # Fill A's inotify queue while its daemon sleeps: attribute changes
        # alternating between two files (identical consecutive events would
        # be merged). The times stay the same, so the files do not change.
        st = os.stat(a.p("pad0"))
        times = (st.st_atime_ns, st.st_mtime_ns)
        paths = [a.p("pad0"), a.p("pad1")]
        for i in range(qmax + 100):
            os.utime(paths[i & 1], ns=times)
        # Everything from here on is lost from the queue: only the rescan
        # can find it, and only the rewalk watches the new directories.
        for i in range(OVERFLOW_FILES):
            a.write("burst/sub%d/f%04d.txt" % (i % 7, i), os.urandom(500 + i))
        a.write("old/edit.txt", "edited while the queue overflowed\n")
        a.remove("old/gone.txt")
    finally:
        wa.send(signal.SIGCONT)
    expect = a.snapshot()
    t0 = time.monotonic()
    wait_converged([a, b], expect=expect, timeout=WATCH_TIMEOUT)
    note("%d files made after the overflow reached B in %.1f s" %
         (OVERFLOW_FILES, time.monotonic() - t0))
    after = wa.log_text()[mark:]
    check("event queue overflowed" in after and "rescanning the whole folder" in after,
          "no overflow warning in A's log: %s" % wa.describe())
    check("scanning the whole folder after an inotify overflow" in after,
          "no full rescan after the overflow in A's log: %s" % wa.describe())

    # The rescan re-watched the directories whose creation was lost: a new
    # file there arrives through its own event, long before the periodic
    # rescan (600 s).
    a.write("burst/sub3/after.txt", "after the overflow\n")
    wait_converged([a, b], expect=a.snapshot(), timeout=WATCH_TIMEOUT)
    for w in (wa, wb):
        took = w.stop(signal.SIGTERM)
        note("watcher %s exited 0 %.2f s after SIGTERM" % (w.name, took))
    assert_same(a, b)
