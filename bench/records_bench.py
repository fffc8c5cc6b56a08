#!/usr/bin/env python3
"""How fast a device's death shows in its transfer records (issue 5): a real
ferryd, an uploading device A and an observer B on 127.0.0.1. Each trial
starts A uploading 30 files of 1 MiB held to --limit-up 4M (so the death
lands mid-upload), waits until A's records say `uploading`, then kills A
and polls GET /api/v1/transfers with B's token every 2 ms until none of
A's records is pending or uploading any more. A benchmark, not a test: it
prints the median and max per way of dying.

    python3 bench/records_bench.py [--build build] [--trials 5]

Ways of dying: `ferry sync` SIGKILLed (the kernel closes its connection);
`ferry watch` SIGKILLed (its event stream and upload connection close);
`ferry sync` SIGSTOPped (a laptop lid shut: the connection stays open and
silent, so only --session-timeout catches it; run with 5 s here).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watchrig import ROOT, Rig, machine, percentile  # noqa: E402

FILES, SIZE = 30, 1 << 20
SESSION_TIMEOUT = 5


def records(rig, token, device_name):
    req = urllib.request.Request(rig.url + "/api/v1/transfers?status=incomplete",
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=5) as r:
        data = json.load(r)
    out = {}
    for b in data["batches"]:
        if b["device_name"] != device_name:
            continue
        for rec in b["records"]:
            out.setdefault(rec["path"], rec["status"])
    return out


def trial(rig, a, b_token, how, n):
    sub = os.path.join(a, "t%d" % n)
    os.makedirs(sub)
    for i in range(FILES):
        with open(os.path.join(sub, "f%02d.bin" % i), "wb") as f:
            f.write(os.urandom(SIZE))
    name = os.path.basename(a)
    verb = "watch" if how == "watch-kill" else "sync"
    proc = subprocess.Popen([rig.ferry, "-C", a, verb, "--limit-up", "4M"], env=rig.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        st = records(rig, b_token, name)
        if "uploading" in st.values():
            break
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise RuntimeError("%s: A never showed uploading records" % how)
        time.sleep(0.01)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGSTOP if how == "sync-stop" else signal.SIGKILL)
    while True:
        st = records(rig, b_token, name)
        if not any(s in ("pending", "uploading") for s in st.values()):
            break
        if time.perf_counter() - t0 > 60:
            raise RuntimeError("%s: records still open 60 s after the death: %s" % (how, st))
        time.sleep(0.002)
    took = (time.perf_counter() - t0) * 1000
    if how == "sync-stop":
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    # A comes back and finishes, so the next trial starts clean.
    rig.cmd(["-C", a, "sync"])
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    rig = Rig(args.build, "ferry-records-",
              server_args=["--session-timeout", str(SESSION_TIMEOUT)])
    try:
        a = rig.device("A")
        b = rig.device("B")
        b_token = rig.token(b)
        print("machine: %s" % machine())
        print("%-12s %10s %10s  %s" % ("death", "median ms", "max ms", "trials"))
        n = 0
        for how in ("sync-kill", "watch-kill", "sync-stop"):
            times = []
            for _ in range(args.trials):
                times.append(trial(rig, a, b_token, how, n))
                n += 1
            print("%-12s %10.1f %10.1f  %s" % (how, percentile(times, 50), max(times),
                                              ", ".join("%.0f" % t for t in times)))
        print("(sync-stop: --session-timeout %d; the check runs every second)" % SESSION_TIMEOUT)
    finally:
        rig.close()


if __name__ == "__main__":
    main()
