#!/usr/bin/env python3
"""Propagation latency of `ferry watch`: a real ferryd and two watching
devices A and B on 127.0.0.1. Each trial writes a small file on A with new
content and times, from just before the write, until B's copy holds that
content (B's file is polled every ~1 ms). A benchmark, not a test: it prints
p50, p95 and max with the targets beside them.

    python3 bench/latency.py [--build build] [--trials 50]

Between trials both daemons are left to go idle, so each trial measures one
edit from a quiet state (inotify -> settle -> upload + commit -> event ->
pull -> rename into place on B).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watchrig import ROOT, Rig, machine, percentile  # noqa: E402

TARGET_P50_MS, TARGET_P95_MS = 50, 200


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=10, help="seconds per trial at most")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    rig = Rig(args.build, "ferry-latency-")
    lost = 0
    try:
        a, b = rig.device("A"), rig.device("B")
        wa, wb = rig.watch(a), rig.watch(b)
        wa.wait_idle()
        wb.wait_idle()
        src, dst = os.path.join(a, "latency.txt"), os.path.join(b, "latency.txt")
        times = []
        for i in range(args.trials):
            want = ("trial %d %s\n" % (i, os.urandom(8).hex())).encode()
            t0 = time.perf_counter()
            with open(src, "wb") as f:
                f.write(want)
            deadline = t0 + args.timeout
            got = None
            while True:
                try:
                    with open(dst, "rb") as f:
                        if f.read() == want:
                            got = time.perf_counter()
                except FileNotFoundError:
                    pass
                if got or time.perf_counter() > deadline:
                    break
                time.sleep(0.001)
            if got is None:
                lost += 1
                print("trial %d: B did not get the content within %.0f s" % (i, args.timeout),
                      flush=True)
                times.append(args.timeout * 1000)
            else:
                times.append((got - t0) * 1000)
            # Start the next trial from a quiet state.
            wa.wait_idle()
            wb.wait_idle()
            time.sleep(0.05)
    finally:
        rig.close(keep=args.keep)
        if args.keep:
            print("kept", rig.tmp)

    p50, p95, mx = percentile(times, 50), percentile(times, 95), max(times)
    print("propagation latency, A -> B on 127.0.0.1, %d trials (%s)" % (len(times), machine()))
    print("  %-4s %8.1f ms   target < %d ms   %s" % ("p50", p50, TARGET_P50_MS,
                                                      "ok" if p50 < TARGET_P50_MS else "MISSED"))
    print("  %-4s %8.1f ms   target < %d ms  %s" % ("p95", p95, TARGET_P95_MS,
                                                     "ok" if p95 < TARGET_P95_MS else "MISSED"))
    print("  %-4s %8.1f ms   (min %.1f ms, mean %.1f ms)" % ("max", mx, min(times),
                                                             sum(times) / len(times)))
    if lost:
        print("  %d trial(s) timed out (counted as %.0f ms)" % (lost, args.timeout * 1000))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
