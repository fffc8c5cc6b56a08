#!/usr/bin/env python3
"""Transfer-engine benchmark (issue 4's suite): a real ferryd and two real
ferry clients on 127.0.0.1, temp dirs under /var/tmp. A benchmark, not a
test: it prints ONE table with every figure and its target beside it, and
asserts only that the devices ended identical.

    python3 bench/transfer_bench.py [--build build] [--only NAME] [--quick] [--markdown]
                                    [--fresh-fs]

NAME is one of: small-files, large-file, delta-overwrite, delta-insert,
no-op, memory, dedup (delta-*, dedup and large-file share one rig, in
which the 1 GiB upload is always done first as their setup).

Figures:
  small-files      10,000 files of 4 KiB in 100 folders; A uploads (ferry
                   sync), B downloads (ferry sync); wall seconds end to end.
  large-file       one 1 GiB file of random data A -> server -> B; MiB/s end
                   to end, with `cp` of the same file (+ fsync) as ceiling.
  delta-overwrite  1 byte overwritten in the middle of that file; bytes on
  delta-insert     the wire of A's sync and B's sync, both directions, and
                   wall seconds from A's sync start until B's sync is done.
  no-op            a second `ferry sync` with nothing changed in a
                   100,000-file folder (median of 3).
  memory           peak RSS of the client (ru_maxrss from wait4 of the
                   ferry child) and of ferryd (VmHWM, reset through
                   /proc/PID/clear_refs after set-up) during 1 and 2.
  dedup            the 1 GiB file copied under a second name on A; bytes
                   uploaded by A's sync.

Bytes on the wire come from the client's own counters (`ferry sync --json`:
bytes_up, bytes_down) when the client has --json, and from a counting TCP
proxy in this script (placed between the clients and ferryd for the byte
figures only) otherwise. delta-overwrite always also goes through the proxy
as the cross-check, and both numbers are printed (the proxy counts TCP
payload: HTTP headers and bodies).
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from startup import make_tree  # noqa: E402
from watchrig import ROOT, Rig, machine, proc_cpu_s, tail  # noqa: E402

KIB, MIB = 1024, 1024 * 1024
FIGURES = ("small-files", "large-file", "delta-overwrite", "delta-insert", "no-op", "memory",
           "dedup", "sha")


class CountingProxy:
    """TCP proxy 127.0.0.1:port -> ferryd counting payload bytes in both
    directions. Bytes are counted as soon as they are read, before being
    forwarded, so when a ferry process has exited every byte it exchanged
    is already counted."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.lock = threading.Lock()
        self.up = self.down = self.conns = 0
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.port = self.ls.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            for x in (c, s):
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._pump, args=(c, s, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, "down"), daemon=True).start()

    def _pump(self, src, dst, way):
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    break
                with self.lock:
                    setattr(self, way, getattr(self, way) + len(data))
                dst.sendall(data)
        except OSError:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        finally:
            src.close()

    def snapshot(self):
        with self.lock:
            return self.up, self.down, self.conns

    def close(self):
        self.ls.close()


class Bench:
    """One rig (ferryd + devices) plus the means to run a measured sync."""

    def __init__(self, build, has_json, name):
        self.rig = Rig(build, name)
        self.has_json = has_json
        self.proxy = CountingProxy(self.rig.port)

    def close(self):
        self.proxy.close()
        self.rig.close()

    def set_server(self, folder, url):
        """Points a device at ferryd directly or through the proxy (the
        config's server is just the base URL)."""
        p = os.path.join(folder, ".ferry", "config.json")
        with open(p) as f:
            cfg = json.load(f)
        if cfg["server"] == url:
            return
        cfg["server"] = url
        tmp = p + ".bench"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        os.replace(tmp, p)

    def reset_server_peak(self):
        with open("/proc/%d/clear_refs" % self.rig.proc.pid, "w") as f:
            f.write("5")

    def server_peak_kib(self):
        with open("/proc/%d/status" % self.rig.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def sync(self, folder, via_proxy=False):
        """One `ferry -vv sync [--json]`, timed; returns a dict with wall,
        client CPU and peak RSS, ferryd CPU, the --json counters if any and
        the proxy's counts if it went through the proxy."""
        self.set_server(folder, self.proxy.url if via_proxy else self.rig.url)
        args = [self.rig.ferry, "-vv", "-C", folder, "sync"] + (["--json"] if self.has_json
                                                                else [])
        if os.environ.get("FERRY_BENCH_PERF"):
            # Profiling aid: FERRY_BENCH_PERF=DIR records each sync with
            # perf (DIR/sync-N.data, numbered in run order); timings then
            # include perf's overhead.
            Bench.perf_n = getattr(Bench, "perf_n", 0) + 1
            args = ["perf", "record", "-g", "-q", "-o", os.path.join(
                os.environ["FERRY_BENCH_PERF"], "sync-%d.data" % Bench.perf_n)] + args
        out_p = os.path.join(self.rig.tmp, "sync.out")
        err_p = os.path.join(self.rig.tmp, "sync.err")
        p0 = self.proxy.snapshot()
        s0 = proc_cpu_s(self.rig.proc.pid)
        with open(out_p, "wb") as out, open(err_p, "wb") as err:
            t0, epoch0 = time.perf_counter(), time.time()
            proc = subprocess.Popen(args, env=self.rig.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        s1 = proc_cpu_s(self.rig.proc.pid)
        p1 = self.proxy.snapshot()
        with open(out_p, "rb") as f:
            stdout = f.read().decode(errors="replace").strip()
        if proc.returncode != 0:
            raise RuntimeError("ferry sync on %s failed (%d): %s\nferryd: %s" % (
                folder, proc.returncode, tail(err_p), tail(self.rig.log_path)))
        r = {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss,
             "server_cpu": s1 - s0, "stdout": stdout, "debug": debug_lines(err_p, epoch0)}
        if self.has_json:
            j = parse_json(stdout)
            r["json"] = j
            r["up"], r["down"] = int(j["bytes_up"]), int(j["bytes_down"])
        if via_proxy:
            r["proxy_up"], r["proxy_down"] = p1[0] - p0[0], p1[1] - p0[1]
            r["proxy_conns"] = p1[2] - p0[2]
            if not self.has_json:
                r["up"], r["down"] = r["proxy_up"], r["proxy_down"]
        return r


def parse_json(stdout):
    """The object printed by `ferry sync --json`: the whole stdout, or else
    its last line starting with '{'."""
    try:
        return json.loads(stdout)
    except ValueError:
        lines = [x for x in stdout.splitlines() if x.startswith("{")]
        if not lines:
            raise RuntimeError("`ferry sync --json` printed no JSON object: %r" % stdout[:200])
        return json.loads(lines[-1])


def debug_lines(path, start):
    """The client's -vv summary lines (scan/upload/download counts), each
    with the seconds since the ferry process started (from the log line's
    millisecond UTC time stamp), for the breakdown printed under the table."""
    keep = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                for key in ("scan:", "upload:", "download:", "pass "):
                    i = line.find(key)
                    if i >= 0:
                        # download: is logged per group, cumulatively: the
                        # last one of each kind is the total
                        at = ""
                        try:
                            ts = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
                            at = "+%.2f s " % (ts.replace(tzinfo=datetime.timezone.utc)
                                                .timestamp() - start)
                        except (ValueError, IndexError):
                            pass
                        keep[key] = at + line[i:].strip()
                        break
    except OSError:
        pass
    return list(keep.values())


def file_digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(4 * MIB)
            if not b:
                return h.hexdigest()
            h.update(b)


def tree_digest(d):
    h = hashlib.sha256()
    for base, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if not (base == d and x == ".ferry"))
        for f in sorted(files):
            p = os.path.join(base, f)
            h.update(os.path.relpath(p, d).encode() + b"\0" + file_digest(p).encode())
    return h.hexdigest()


def kib(n):
    return "%.1f KiB" % (n / KIB) if n < 10 * MIB else "%.1f MiB" % (n / MIB)


def one_sync_text(name, r):
    s = "%s %.2f s (cpu %.2f s, ferryd cpu %.2f s)" % (name, r["wall"], r["cpu"],
                                                       r["server_cpu"])
    if "up" in r:
        s += " up %s down %s" % (kib(r["up"]), kib(r["down"]))
    if "json" in r and "requests" in r["json"]:
        s += " in %s requests" % r["json"]["requests"]
    elif "proxy_conns" in r:
        s += " over %d connections" % r["proxy_conns"]
    return s


class Table:
    def __init__(self, quick):
        self.rows, self.notes, self.quick = [], [], quick

    def add(self, figure, measured, target, ok, detail=""):
        verdict = "-" if ok is None else ("ok" if ok else "MISSED")
        if self.quick and ok is not None:
            verdict = "(quick)"
        self.rows.append((figure, measured, target, verdict, detail))

    def note(self, figure, r):
        for line in r.get("debug", []):
            self.notes.append("  %-20s %s" % (figure, line))
        self.notes.append("  %-20s +%.2f s exit" % (figure, r["wall"]))

    def print(self, markdown):
        head = ("figure", "measured", "target", "", "detail")
        if markdown:
            print("| " + " | ".join(head) + " |")
            print("| " + " | ".join("---" for _ in head) + " |")
            for row in self.rows:
                print("| " + " | ".join(row) + " |")
        else:
            w = [max(len(str(r[i])) for r in self.rows + [head]) for i in range(4)]
            fmt = "%%-%ds  %%%ds  %%-%ds  %%-%ds  %%s" % tuple(w)
            print(fmt % head)
            for row in self.rows:
                print(fmt % row)
        if self.notes:
            print("\nclient -vv breakdown:")
            print("\n".join(self.notes))


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n


def bench_small(build, has_json, t, files, want):
    b = Bench(build, has_json, "ferry-tb-small-")
    try:
        a, bb = b.rig.device("A"), b.rig.device("B")
        rnd = os.urandom(4 * KIB * files)
        for i in range(files):
            sub = os.path.join(a, "d%02d" % (i % 100))
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "f%05d.bin" % i), "wb") as f:
                f.write(rnd[i * 4 * KIB:(i + 1) * 4 * KIB])
        os.sync()
        time.sleep(1.1)  # no racy mtimes at the index write
        b.reset_server_peak()
        up = b.sync(a)
        down = b.sync(bb)
        srv = b.server_peak_kib()
        if tree_digest(a) != tree_digest(bb):
            raise RuntimeError("small-files: A and B differ")
        total = up["wall"] + down["wall"]
        if "small-files" in want:
            t.add("small-files: %d x 4 KiB, A up + B down" % files, "%.2f s" % total,
                  "< 1.5 s", total < 1.5, "; ".join([one_sync_text("A", up),
                                                     one_sync_text("B", down)]))
            t.note("small-files A", up)
            t.note("small-files B", down)
        if "memory" in want:
            t.add("memory: client peak RSS (small-files)", "%.1f MiB" % (
                max(up["maxrss_kib"], down["maxrss_kib"]) / KIB), "-", None,
                "A up %.1f MiB, B down %.1f MiB" % (up["maxrss_kib"] / KIB,
                                                   down["maxrss_kib"] / KIB))
            t.add("memory: ferryd peak RSS (small-files)", "%.1f MiB" % (srv / KIB), "-", None,
                  "VmHWM over A's and B's syncs")
    finally:
        b.close()


def cp_ceiling(src, tmp):
    dst = os.path.join(tmp, "cp-copy.bin")
    t0 = time.perf_counter()
    subprocess.run(["cp", src, dst], check=True)
    fd = os.open(dst, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    s = time.perf_counter() - t0
    os.unlink(dst)
    return s


def delta_step(b, t, a, bb, big_a, big_b, label, edit, want_proxy):
    edit(big_a)
    os.sync()
    time.sleep(1.1)
    ra = b.sync(a, via_proxy=want_proxy)
    rb = b.sync(bb, via_proxy=want_proxy)
    if file_digest(big_a) != file_digest(big_b):
        raise RuntimeError("%s: B's copy differs from A's" % label)
    wire = ra["up"] + ra["down"] + rb["up"] + rb["down"]
    wall = ra["wall"] + rb["wall"]
    src = "client --json" if b.has_json else "proxy"
    t.add("%s: bytes on the wire, A + B" % label, kib(wire), "< 512 KiB", wire < 512 * KIB,
          "%s, %d bytes; A up %s down %s, B up %s down %s" % (
              src, wire, kib(ra["up"]), kib(ra["down"]), kib(rb["up"]), kib(rb["down"])))
    if b.has_json and want_proxy:
        pw = ra["proxy_up"] + ra["proxy_down"] + rb["proxy_up"] + rb["proxy_down"]
        t.add("%s: same, counted by the TCP proxy" % label, kib(pw), "(cross-check)", None,
              "TCP payload, %d bytes; A up %s down %s, B up %s down %s" % (
                  pw, kib(ra["proxy_up"]), kib(ra["proxy_down"]), kib(rb["proxy_up"]),
                  kib(rb["proxy_down"])))
    t.add("%s: wall until B matches" % label, "%.2f s" % wall, "< 1 s", wall < 1.0,
          "; ".join([one_sync_text("A", ra), one_sync_text("B", rb)]) +
          ("; via the proxy" if want_proxy else ""))
    t.note(label + " A", ra)
    t.note(label + " B", rb)


def overwrite_middle(p):
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.seek(size // 2)
        c = f.read(1)
        f.seek(size // 2)
        f.write(bytes([c[0] ^ 0xFF]))


def insert_middle(p):
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.seek(size // 2)
        rest = f.read()
        f.seek(size // 2)
        f.write(b"\x42" + rest)


def bench_large(build, has_json, t, size, want):
    b = Bench(build, has_json, "ferry-tb-large-")
    try:
        a, bb = b.rig.device("A"), b.rig.device("B")
        big_a, big_b = os.path.join(a, "big.bin"), os.path.join(bb, "big.bin")
        write_random(big_a, size)
        os.sync()
        cp_s = cp_ceiling(big_a, b.rig.tmp)
        time.sleep(1.1)
        b.reset_server_peak()
        up = b.sync(a)
        down = b.sync(bb)
        srv = b.server_peak_kib()
        if file_digest(big_a) != file_digest(big_b):
            raise RuntimeError("large-file: B's copy differs from A's")
        mib = size / MIB
        total = up["wall"] + down["wall"]
        if "large-file" in want:
            t.add("large-file: %d MiB random, A -> B" % mib, "%.0f MiB/s (%.2f s)" % (
                mib / total, total), ">= 300 MiB/s", mib / total >= 300,
                "; ".join([one_sync_text("A", up), one_sync_text("B", down)]))
            t.add("large-file: cp + fsync, same file (ceiling)", "%.0f MiB/s (%.2f s)" % (
                mib / cp_s, cp_s), "-", None, "one local copy, page cache warm")
            t.note("large-file A", up)
            t.note("large-file B", down)
        if "memory" in want:
            t.add("memory: client peak RSS (large-file)", "%.1f MiB" % (
                max(up["maxrss_kib"], down["maxrss_kib"]) / KIB), "-", None,
                "A up %.1f MiB, B down %.1f MiB" % (up["maxrss_kib"] / KIB,
                                                   down["maxrss_kib"] / KIB))
            t.add("memory: ferryd peak RSS (large-file)", "%.1f MiB" % (srv / KIB), "-", None,
                  "VmHWM over A's and B's syncs")
        if "delta-overwrite" in want:
            # always through the proxy: the cross-check of the byte counters
            delta_step(b, t, a, bb, big_a, big_b, "delta-overwrite", overwrite_middle, True)
        if "delta-insert" in want:
            delta_step(b, t, a, bb, big_a, big_b, "delta-insert", insert_middle, not has_json)
        if "dedup" in want:
            subprocess.run(["cp", big_a, os.path.join(a, "big-copy.bin")], check=True)
            os.sync()
            time.sleep(1.1)
            ra = b.sync(a, via_proxy=not has_json)
            rb = b.sync(bb, via_proxy=not has_json)
            if tree_digest(a) != tree_digest(bb):
                raise RuntimeError("dedup: A and B differ")
            t.add("dedup: 2nd copy of the %d MiB file, A uploads" % mib, kib(ra["up"]),
                  "< 1 MiB", ra["up"] < MIB, "%s; %s; B then: %s" % (
                      "client --json" if has_json else "proxy", one_sync_text("A", ra),
                      one_sync_text("B", rb)))
            t.note("dedup A", ra)
            t.note("dedup B", rb)
    finally:
        b.close()


def bench_noop(build, has_json, t, files, runs=3):
    b = Bench(build, has_json, "ferry-tb-noop-")
    try:
        a = b.rig.device("A")
        make_tree(a, files, max(1, files // 100))
        time.sleep(1.5)
        first = b.sync(a)
        time.sleep(1.5)
        rs = [b.sync(a) for _ in range(runs)]
        walls = sorted(r["wall"] for r in rs)
        med = walls[len(walls) // 2]
        did = [r["stdout"] for r in rs if (
            any(r["json"].get(k) for k in ("uploaded", "downloaded", "deleted", "conflicts"))
            if "json" in r else not r["stdout"].startswith("uploaded 0, downloaded 0, deleted 0"))]
        t.add("no-op: 2nd sync, %d unchanged files" % files, "%.2f s" % med, "< 0.5 s",
              med < 0.5, "median of %s s; cpu %.2f s, ferryd cpu %.2f s; initial upload %.1f s%s"
              % (", ".join("%.2f" % w for w in (r["wall"] for r in rs)), rs[0]["cpu"],
                 rs[0]["server_cpu"], first["wall"],
                 "; WARNING: did something: %s" % did[0] if did else ""))
        t.note("no-op", rs[0])
    finally:
        b.close()


def bench_sha(build, t):
    """bench/hash_bench: whether SHA-256 runs on the CPU's SHA extensions
    (issue 4: hashing through OpenSSL must get them)."""
    exe = os.path.join(os.path.abspath(build), "bench", "hash_bench")
    r = subprocess.run([exe, "-m", "256"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors="replace")
    cpu = re.search(r"CPU SHA extensions \(cpuid\): (\w+)", out)
    gbs = re.search(r"SHA-256 \(OpenSSL EVP, hash_buf\): ([\d.]+) GB/s", out)
    gear = re.search(r"gear hash \(chunker_cut\): ([\d.]+) GB/s", out)
    if not cpu or not gbs:
        raise RuntimeError("hash_bench printed: %s" % out)
    t.add("sha: SHA-256 on the CPU's SHA extensions", "%s GB/s" % gbs.group(1),
          "SHA-NI in use", r.returncode == 0,
          "CPU has them: %s; one thread, 64 KiB pieces; gear hash %s GB/s" %
          (cpu.group(1), gear.group(1) if gear else "?"))


class FreshFs:
    """--fresh-fs: each group of figures runs on an ext4 file system made for
    it (a sparse image file under /var/tmp, loop-mounted; root only). On
    this machine, ext4 creating files right after many were deleted (the
    previous run, the e2e tests) scans the inode table past inodes freed in
    the last minutes (recently_deleted() in fs/ext4/ialloc.c), which can
    triple B's time for 10,000 small files; a fresh file system measures
    Ferry, not that. Falls back to FERRY_BENCH_TMP / /var/tmp with a note
    when it cannot mount."""

    def __init__(self, enabled, size_gib=16):
        self.enabled, self.size, self.img, self.mnt, self.dev = enabled, size_gib, None, None, None

    def __enter__(self):
        if not self.enabled:
            return self
        import tempfile
        base = os.environ.get("FERRY_BENCH_TMP", "/var/tmp")
        self.img = tempfile.mktemp(prefix="ferry-bench-fs-", suffix=".img", dir=base)
        self.mnt = tempfile.mkdtemp(prefix="ferry-bench-mnt-", dir=base)
        try:
            with open(self.img, "wb") as f:
                f.truncate(self.size << 30)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", self.img], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            # direct I/O on the loop device: the image's pages are not
            # cached a second time by the file system it lives on
            self.dev = subprocess.run(["losetup", "-f", "--show", "--direct-io=on", self.img],
                                      check=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE).stdout.decode().strip()
            subprocess.run(["mount", self.dev, self.mnt], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        except (OSError, subprocess.CalledProcessError) as e:
            print("--fresh-fs: cannot make a file system (%s); using %s" %
                  (getattr(e, "stderr", b"") or e, base), file=sys.stderr)
            self._clean(mounted=False)
            return self
        self.saved = os.environ.get("FERRY_BENCH_TMP")
        os.environ["FERRY_BENCH_TMP"] = self.mnt
        return self

    def _clean(self, mounted):
        if mounted:
            subprocess.run(["umount", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if getattr(self, "dev", None):
            subprocess.run(["losetup", "-d", self.dev], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            self.dev = None
        for f in (lambda: os.rmdir(self.mnt), lambda: os.unlink(self.img)):
            try:
                f()
            except OSError:
                pass
        self.img = self.mnt = None

    def __exit__(self, *exc):
        if self.img is None:
            return False
        if self.saved is None:
            os.environ.pop("FERRY_BENCH_TMP", None)
        else:
            os.environ["FERRY_BENCH_TMP"] = self.saved
        self._clean(mounted=True)
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", choices=FIGURES, action="append",
                    help="run only this figure (repeatable)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes (2,000 small files, 64 MiB, 10,000-file no-op); "
                    "figures are then not comparable with the targets")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--fresh-fs", action="store_true",
                    help="run each group of figures on a new loop-mounted ext4 (root only; "
                    "see FreshFs)")
    args = ap.parse_args()
    want = set(args.only or FIGURES)
    ferry = os.path.join(os.path.abspath(args.build), "src/client/ferry")
    h = subprocess.run([ferry, "sync", "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    has_json = b"--json" in h.stdout
    small_n, large, noop_n = (2000, 64 * MIB, 10000) if args.quick else (10000, 1024 * MIB,
                                                                        100000)
    t = Table(args.quick)
    t0 = time.monotonic()
    if want & {"small-files", "memory"}:
        with FreshFs(args.fresh_fs):
            bench_small(args.build, has_json, t, small_n, want)
    if want & {"large-file", "memory", "delta-overwrite", "delta-insert", "dedup"}:
        with FreshFs(args.fresh_fs):
            bench_large(args.build, has_json, t, large, want)
    if "no-op" in want:
        with FreshFs(args.fresh_fs):
            bench_noop(args.build, has_json, t, noop_n)
    if "sha" in want:
        bench_sha(args.build, t)
    print("Ferry transfer suite (issue 4), %s%s, %s UTC, %s; byte counts from %s; %.0f s" % (
        "QUICK sizes" if args.quick else "full sizes",
        ", a fresh ext4 per group" if args.fresh_fs else "", datetime.datetime.now(
            datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), machine(),
        "`ferry sync --json`" if has_json else "the counting TCP proxy (no `sync --json` yet)",
        time.monotonic() - t0))
    t.print(args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
