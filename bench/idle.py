#!/usr/bin/env python3
"""Idle cost of real time. A benchmark, not a test: prints figures with the
target beside each.

    python3 bench/idle.py [--build build] [--seconds 60] [--streams 5000]
                          [--server-seconds 30] [--only client|server]

client  one `ferry watch` daemon on a folder of 1,000 files, left idle:
        CPU (utime + stime from /proc/PID/stat) and RSS (VmRSS) over
        --seconds, plus its context switches (wake-ups) per second.
server  one ferryd with --streams idle event streams (GET /api/v1/events,
        raw sockets driven by a selector in this process; RLIMIT_NOFILE is
        raised to the hard limit first and ferryd inherits it). Every stream
        must answer 200 and send its `hello` event. Figures: ferryd's VmRSS
        before and after -> RSS per idle stream, its CPU over
        --server-seconds idle, keep-alives seen; then one commit and the
        time until the first and the last stream got its `seq` event.
        All streams share one device token (one login per stream would
        mean thousands of Argon2id logins); the server's cost per stream is
        the same either way.
"""
import argparse
import http.client
import json
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watchrig import ROOT, Rig, machine, proc_cpu_s, proc_rss_kib  # noqa: E402

HELLO = b"event: hello"
SEQ = b"event: seq"


def ctx_switches(pid):
    """Context switches of all of pid's threads (each wake-up is one)."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:",
                                        "nonvoluntary_ctxt_switches:")):
                        n += int(line.split()[1])
        except OSError:
            pass  # the thread ended
    return n


def bench_client(build, seconds):
    rig = Rig(build, "ferry-idle-client-")
    try:
        a = rig.device("A")
        for i in range(1000):
            d = os.path.join(a, "d%02d" % (i % 50))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%04d.txt" % i), "w") as f:
                f.write("idle bench file %d\n" % i)
        w = rig.watch(a)
        w.wait_idle(120)
        time.sleep(2)  # past any settle timer
        pid = w.pid
        cpu0, ctx0, t0 = proc_cpu_s(pid), ctx_switches(pid), time.monotonic()
        rss = []
        while time.monotonic() - t0 < seconds:
            rss.append(proc_rss_kib(pid))
            time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - t0))))
            if w.proc.poll() is not None:
                raise RuntimeError("ferry watch exited during the idle period")
        cpu1, ctx1, t1 = proc_cpu_s(pid), ctx_switches(pid), time.monotonic()
        rss.append(proc_rss_kib(pid))
        state = w.state()
        rc = w.stop()
    finally:
        rig.close()
    el = t1 - t0
    cpu = cpu1 - cpu0
    print("idle client: `ferry watch` on 1,000 files, %.0f s idle (state %s, exit %s)" %
          (el, state, rc))
    print("  CPU          %8.3f s = %.3f %% of one core   target: ~0 (no polling)" %
          (cpu, 100 * cpu / el))
    print("  wake-ups     %8.1f /s (context switches, all threads)   target: ~0" %
          ((ctx1 - ctx0) / el))
    print("  RSS          %8.1f MiB (min %.1f, max %.1f)   target: small (tens of MiB)" %
          (rss[-1] / 1024, min(rss) / 1024, max(rss) / 1024))
    return {"cpu_s": cpu, "seconds": el, "rss_kib": rss[-1]}


class Stream:
    __slots__ = ("sock", "sent", "head", "status", "hello", "seq_at", "keepalives", "closed")

    def __init__(self, sock):
        self.sock, self.sent, self.head = sock, False, b""
        self.status, self.hello, self.seq_at = None, False, None
        self.keepalives, self.closed = 0, False


class Streams:
    """Many event streams on one selector."""

    def __init__(self, port, token, path):
        self.addr = ("127.0.0.1", port)
        self.req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                    "Accept: text/event-stream\r\n\r\n" % (path, port, token)).encode()
        self.sel = selectors.DefaultSelector()
        self.all = []
        self.watch_seq = False

    def open(self, n):
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(self.addr)
            st = Stream(s)
            self.all.append(st)
            self.sel.register(s, selectors.EVENT_WRITE, st)

    def pump(self, seconds, until=None):
        """Runs the selector for at most seconds, or until until() holds."""
        end = time.monotonic() + seconds
        while True:
            if until and until():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            for key, ev in self.sel.select(min(left, 0.5)):
                st = key.data
                if ev & selectors.EVENT_WRITE and not st.sent:
                    try:
                        st.sock.send(self.req)
                    except OSError:
                        self.drop(st)
                        continue
                    st.sent = True
                    self.sel.modify(st.sock, selectors.EVENT_READ, st)
                elif ev & selectors.EVENT_READ:
                    try:
                        data = st.sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.drop(st)
                        continue
                    self.feed(st, data)

    def feed(self, st, data):
        buf = st.head + data
        if st.status is None and b"\r\n" in buf:
            line = buf.split(b"\r\n", 1)[0].split()
            st.status = int(line[1]) if len(line) > 1 and line[1].isdigit() else -1
        if not st.hello and HELLO in buf:
            st.hello = True
        if self.watch_seq and st.seq_at is None and SEQ in buf:
            st.seq_at = time.monotonic()
        st.keepalives += data.count(b"\n:")
        # Keep a tail so that a marker split across two reads is still seen.
        st.head = buf[-4096:] if not st.hello else buf[-32:]

    def arm_seq(self):
        """From now on, record when each stream sees a `seq` event."""
        for st in self.all:
            st.head = b""
        self.watch_seq = True

    def drop(self, st):
        if not st.closed:
            st.closed = True
            self.sel.unregister(st.sock)
            st.sock.close()

    def close(self):
        for st in self.all:
            self.drop(st)
        self.sel.close()


def commit_probe(port, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"changes": [{"op": "put", "path": "idle-bench-probe-%d" % time.time_ns(),
                                    "base": 0, "kind": "dir"}]})
    conn.request("POST", "/api/v1/commit", body, {"Authorization": "Bearer " + token,
                                                  "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError("commit -> %d %r" % (r.status, data[:200]))


def bench_server(build, n, seconds, path, batch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 200:
        print("RLIMIT_NOFILE hard limit %d is below %d streams; using %d" % (hard, n, hard - 200))
        n = hard - 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rig = Rig(build, "ferry-idle-server-")  # ferryd inherits the raised limit
    streams = None
    try:
        token = rig.token(rig.device("streams"))
        pid = rig.proc.pid
        # Warm up: one stream opened and closed, so the baseline includes
        # what the first stream allocates once (thread stacks, caches).
        warm = Streams(rig.port, token, path)
        warm.open(1)
        if not warm.pump(10, lambda: warm.all[0].hello):
            raise RuntimeError("the first stream got no hello (status %s):\n%r" %
                               (warm.all[0].status, warm.all[0].head[:300]))
        warm.close()
        time.sleep(1)
        rss0 = proc_rss_kib(pid)
        streams = Streams(rig.port, token, path)
        t0 = time.monotonic()
        for i in range(0, n, batch):
            k = min(batch, n - i)
            streams.open(k)
            part = streams.all[i:i + k]
            tb = time.monotonic()
            if not streams.pump(60, lambda: all(s.hello or s.closed for s in part)):
                print("  (streams %d-%d: %d without hello after %.0f s)" % (
                    i, i + k, sum(1 for s in part if not s.hello), time.monotonic() - tb))
            elif time.monotonic() - tb > 1:
                print("  (streams %d-%d took %.1f s to get their hello)" % (
                    i, i + k, time.monotonic() - tb))
        streams.pump(30, lambda: all(s.hello or s.closed for s in streams.all))
        t_open = time.monotonic() - t0
        ok = sum(1 for s in streams.all if s.hello and not s.closed)
        bad = [s.status for s in streams.all if not s.hello or s.closed]
        streams.pump(3)
        rss1 = proc_rss_kib(pid)
        cpu0, c0 = proc_cpu_s(pid), time.monotonic()
        streams.pump(seconds)
        cpu1, c1 = proc_cpu_s(pid), time.monotonic()
        alive = sum(1 for s in streams.all if s.hello and not s.closed)
        keepalives = sum(s.keepalives for s in streams.all)
        rss2 = proc_rss_kib(pid)
        streams.arm_seq()
        tc = time.monotonic()
        commit_probe(rig.port, token)
        live = [s for s in streams.all if s.hello and not s.closed]
        streams.pump(30, lambda: all(s.seq_at is not None for s in live))
        got = sorted(s.seq_at - tc for s in live if s.seq_at is not None)
    finally:
        if streams:
            streams.close()
        rig.close()
    per = (rss1 - rss0) / max(1, ok)
    print("idle server: ferryd with %d event streams on %s (one shared device token)" %
          (n, path))
    print("  streams with 200 + hello %6d of %d in %.1f s   target: all %d%s" %
          (ok, n, t_open, n, "" if not bad else "   failures (HTTP status): %s" %
           sorted(set(map(str, bad)))))
    print("  ferryd VmRSS  %.1f MiB -> %.1f MiB with the streams (%.1f MiB after %.0f s idle)" %
          (rss0 / 1024, rss1 / 1024, rss2 / 1024, c1 - c0))
    print("  RSS per idle stream %8.2f KiB   target: small enough for 5,000 on this machine" %
          per)
    print("  ferryd CPU over %.0f idle s: %.3f s = %.3f %% of one core   target: ~0" %
          (c1 - c0, cpu1 - cpu0, 100 * (cpu1 - cpu0) / (c1 - c0)))
    print("  still connected after the idle period: %d; keep-alive comments received: %d" %
          (alive, keepalives))
    if got:
        print("  one commit -> `seq` event: first stream %.1f ms, median %.1f ms, last %.1f ms; "
              "%d of %d streams got it   target: all, within a second" %
              (got[0] * 1000, got[len(got) // 2] * 1000, got[-1] * 1000, len(got), len(live)))
    else:
        print("  one commit -> `seq` event: NO stream got it within 30 s   target: all")
    return 0 if ok == n and got and len(got) == len(live) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=60, help="client idle period")
    ap.add_argument("--server-seconds", type=float, default=30, help="server idle period")
    ap.add_argument("--streams", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=250, help="streams opened at once")
    ap.add_argument("--path", default="/api/v1/events")
    ap.add_argument("--only", choices=["client", "server"])
    args = ap.parse_args()
    print("machine: %s" % machine())
    rc = 0
    if args.only in (None, "client"):
        bench_client(args.build, args.seconds)
    if args.only in (None, "server"):
        rc = bench_server(args.build, args.streams, args.server_seconds, args.path, args.batch)
    return rc


if __name__ == "__main__":
    sys.exit(main())
