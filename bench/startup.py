#!/usr/bin/env python3
"""Start-up reconcile on a large unchanged folder. A benchmark, not a test:
prints figures with the target beside each.

    python3 bench/startup.py [--build build] [--files 100000] [--dirs 1000] [--runs 3]

A folder of --files small files in --dirs directories is synced once with
`ferry sync` (the initial upload, not timed as a figure), then left
unchanged for 1.5 s so that no file is "racy" (modified too close to the
index write to be trusted by its stat data). Then, page cache warm:
  (a) `ferry sync` with nothing to do: wall time of the whole command;
  (b) `ferry watch` from its start until .ferry/watch.json says idle: the
      start-up reconcile (stat every file against the index, no hashing)
      plus adding the inotify watches, then stopped with SIGTERM.
Target for both: under 2 s.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watchrig import ROOT, Rig, machine, tail  # noqa: E402

TARGET_S = 2.0


def make_tree(top, files, dirs):
    per = (files + dirs - 1) // dirs
    n = 0
    for d in range(dirs):
        sub = os.path.join(top, "g%02d" % (d % 10), "d%04d" % d)
        os.makedirs(sub, exist_ok=True)
        for i in range(per):
            if n == files:
                return
            fd = os.open(os.path.join(sub, "f%03d.txt" % i), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"startup bench file %d\n" % n)
            os.close(fd)
            n += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--dirs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    rig = Rig(args.build, "ferry-startup-")
    noop, watch = [], []
    try:
        a = rig.device("A")
        t0 = time.perf_counter()
        make_tree(a, args.files, args.dirs)
        t_make = time.perf_counter() - t0
        time.sleep(1.5)
        t0 = time.perf_counter()
        rig.cmd(["-C", a, "sync"])
        t_up = time.perf_counter() - t0
        print("setup: %d files in %d dirs created in %.1f s, initial upload (ferry sync) %.1f s"
              % (args.files, args.dirs, t_make, t_up), flush=True)
        time.sleep(1.5)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            r = rig.cmd(["-C", a, "sync"])
            noop.append(time.perf_counter() - t0)
            out = r.stdout.decode().strip()
            if not out.startswith("uploaded 0, downloaded 0, deleted 0"):
                print("warning: the no-op sync did something: %s" % out)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            w = rig.watch(a)
            w.wait_idle(timeout=120, interval=0.002)
            watch.append(time.perf_counter() - t0)
            rc = w.stop(timeout=30)
            if rc != 0:
                raise RuntimeError("ferry watch exited %s:\n%s" % (rc, tail(w.log_path)))
            rig.watches.remove(w)
        r = subprocess.run([rig.ferry, "-C", a, "status", "--json"], env=rig.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            st = json.loads(r.stdout)
            status = "indexed %s, pending %s" % (st.get("indexed"), json.dumps(st.get("pending")))
        except ValueError:
            status = "`ferry status --json` failed: %s" % r.stderr.decode(errors="replace")
    finally:
        rig.close(keep=args.keep)
        if args.keep:
            print("kept", rig.tmp)

    print("start-up on %d unchanged files in %d dirs (%s; page cache warm)" %
          (args.files, args.dirs, machine()))
    for label, v in (("(a) ferry sync, no-op", noop), ("(b) ferry watch to idle", watch)):
        best, med = min(v), sorted(v)[len(v) // 2]
        print("  %-26s median %6.2f s  (runs: %s)   target < %.0f s   %s" % (
            label, med, ", ".join("%.2f" % x for x in v), TARGET_S,
            "ok" if med < TARGET_S else "MISSED"))
    print("  afterwards (ferry status): %s" % status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
