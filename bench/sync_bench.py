#!/usr/bin/env python3
"""Ferry sync benchmark: a real ferryd and two real ferry clients on
127.0.0.1, timed end to end. A benchmark, not a test: it prints figures and
asserts only that the folders ended identical.

    python3 bench/sync_bench.py [--build build] [--only small|large] [--large-mib 1024]

Figures:
  small-files  10,000 files of 4 KiB in 100 folders: A uploads (ferry sync),
               B downloads (ferry sync); wall seconds of each and in all.
  large-file   one file of random data (1 GiB by default): A uploads, B
               downloads; wall seconds and MiB/s end to end, with `cp` of the
               same file beside it as the ceiling.
"""
import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rig:
    """One ferryd, one account, and device folders under a temp dir."""

    def __init__(self, build, tmp):
        self.ferryd = os.path.join(build, "src/server/ferryd")
        self.ferry = os.path.join(build, "src/client/ferry")
        self.tmp = tmp
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ, FERRY_PASSWORD="bench-password-1")
        self.log = open(os.path.join(tmp, "ferryd.log"), "wb")
        self.proc = subprocess.Popen(
            [self.ferryd, "--data", os.path.join(tmp, "server"),
             "--listen", "127.0.0.1:%d" % self.port, "--registration", "open",
             "--log-level", "warn"],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/v1/health", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("ferryd did not start")
                time.sleep(0.05)
        self.ferry_cmd(["register", "--server", self.url, "--user", "bench",
                        "--email", "bench@localhost"])

    def ferry_cmd(self, args, cwd=None):
        r = subprocess.run([self.ferry] + args, env=self.env, cwd=cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1800)
        if r.returncode != 0:
            raise RuntimeError("ferry %s failed: %s" % (" ".join(args), r.stderr.decode()))
        return r

    def device(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        self.ferry_cmd(["-C", d, "init", "--server", self.url, "--user", "bench",
                        "--device", name])
        return d

    def sync(self, d):
        t0 = time.perf_counter()
        self.ferry_cmd(["-C", d, "sync"])
        return time.perf_counter() - t0

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def tree_digest(d):
    h = hashlib.sha256()
    for base, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if not (base == d and x == ".ferry"))
        for f in sorted(files):
            p = os.path.join(base, f)
            h.update(os.path.relpath(p, d).encode())
            with open(p, "rb") as fh:
                while True:
                    b = fh.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
    return h.hexdigest()


def bench_small(build, tmp):
    rig = Rig(build, tmp)
    try:
        a, b = rig.device("A"), rig.device("B")
        rnd = os.urandom(4096 * 10000)
        for i in range(10000):
            sub = os.path.join(a, "d%02d" % (i % 100))
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "f%05d.bin" % i), "wb") as f:
                f.write(rnd[i * 4096:(i + 1) * 4096])
        up = rig.sync(a)
        down = rig.sync(b)
        assert tree_digest(a) == tree_digest(b), "folders differ"
        return {"bench": "small-files 10,000 x 4 KiB", "upload_s": up, "download_s": down,
                "total_s": up + down}
    finally:
        rig.close()


def bench_large(build, tmp, mib):
    rig = Rig(build, tmp)
    try:
        a, b = rig.device("A"), rig.device("B")
        src = os.path.join(a, "big.bin")
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        os.sync()
        t0 = time.perf_counter()
        shutil.copyfile(src, os.path.join(tmp, "cp-copy.bin"))
        with open(os.path.join(tmp, "cp-copy.bin"), "rb+") as f:
            os.fsync(f.fileno())
        cp_s = time.perf_counter() - t0
        os.unlink(os.path.join(tmp, "cp-copy.bin"))
        up = rig.sync(a)
        down = rig.sync(b)
        assert tree_digest(a) == tree_digest(b), "folders differ"
        total = up + down
        return {"bench": "large-file %d MiB" % mib, "upload_s": up, "download_s": down,
                "total_s": total, "mib_per_s": mib / total, "cp_mib_per_s": mib / cp_s}
    finally:
        rig.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", choices=["small", "large"])
    ap.add_argument("--large-mib", type=int, default=1024)
    args = ap.parse_args()
    rows = []
    base = os.environ.get("FERRY_BENCH_TMP", "/var/tmp")
    for name in ("small", "large"):
        if args.only and args.only != name:
            continue
        tmp = tempfile.mkdtemp(prefix="ferry-bench-", dir=base)
        try:
            rows.append(bench_small(args.build, tmp) if name == "small"
                        else bench_large(args.build, tmp, args.large_mib))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%-28s %10s %12s %10s %10s %12s" % ("bench", "upload s", "download s", "total s",
                                              "MiB/s", "cp MiB/s"))
    for r in rows:
        print("%-28s %10.2f %12.2f %10.2f %10s %12s" % (
            r["bench"], r["upload_s"], r["download_s"], r["total_s"],
            "%.0f" % r["mib_per_s"] if "mib_per_s" in r else "-",
            "%.0f" % r["cp_mib_per_s"] if "cp_mib_per_s" in r else "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
