#!/usr/bin/env python3
"""Commit throughput and latency of ferryd's metadata stores (issue 8):
commits per second and p50/p99 commit latency, for one space (every client
commits to the same user's space, so commits queue on its sequence number)
and for 100 spaces (each client commits to its own users' spaces), on

  sqlite     one ferryd on the embedded SQLite store
  pg-1       one ferryd on PostgreSQL
  pg-3       three ferryd on one PostgreSQL database behind HAProxy

A commit here is one `POST /api/v1/commit` carrying one new directory entry
(no chunks, so the figure is the metadata path alone: parsing, the
compare-and-set transaction, the sequence number, the version row, the
event fan-out). Clients are threads with one kept-alive connection each.
A benchmark, not a test: it prints a table.

    python3 bench/commit_bench.py [--build build] [--seconds 5] [--clients 8]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-password-1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_health(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process on port %d exited with %s" % (port, proc.returncode))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/api/v1/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("nothing healthy on port %d within %d s" % (port, timeout))


class Setup:
    """ferryd instance(s), and for pg-3 an haproxy in front."""

    def __init__(self, build, kind, root, pg_uri):
        self.build, self.kind, self.root, self.pg_uri = build, kind, root, pg_uri
        self.procs = []
        self.port = None

    def start(self):
        n = 3 if self.kind == "pg-3" else 1
        meta = []
        if self.kind != "sqlite":
            db = "bench_%s_%d" % (self.kind.replace("-", "_"), os.getpid())
            subprocess.run(["psql", self.pg_uri, "-qc", "CREATE DATABASE %s" % db], check=True,
                           stdout=subprocess.DEVNULL)
            meta = ["--metadata", self.pg_uri.rsplit("/", 1)[0] + "/" + db]
        ports = []
        for i in range(n):
            port = free_port()
            data = os.path.join(self.root, "%s-%d" % (self.kind, i))
            log = open(os.path.join(self.root, "%s-%d.log" % (self.kind, i)), "wb")
            p = subprocess.Popen([os.path.join(self.build, "src/server/ferryd"), "--data", data,
                                  "--listen", "127.0.0.1:%d" % port, "--registration", "open",
                                  "--log-level", "warn"] + meta,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            self.procs.append(p)
            wait_health(port, p)
            ports.append(port)
        if n == 1:
            self.port = ports[0]
            return
        self.port = free_port()
        cfg = os.path.join(self.root, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n"
                    "  timeout client 1h\n  timeout server 1h\n  option http-server-close\n"
                    "frontend f\n  bind 127.0.0.1:%d\n  default_backend b\n"
                    "backend b\n  balance roundrobin\n" % self.port)
            for i, port in enumerate(ports):
                f.write("  server s%d 127.0.0.1:%d check\n" % (i, port))
        p = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_health(self.port, p)

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def call(conn, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data) if data else None


def accounts(port, prefix, n_users, devices_per_user):
    """Registers n_users users and logs in devices; returns tokens[user]."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    tokens = []
    for u in range(n_users):
        name = "%s%03d" % (prefix, u)
        call(conn, "POST", "/api/v1/register",
             {"user": name, "email": name + "@example.org", "password": PASSWORD})
        toks = []
        for d in range(devices_per_user):
            r = call(conn, "POST", "/api/v1/login",
                     {"user": name, "password": PASSWORD, "device_name": "d%d" % d})
            toks.append(r["token"])
        tokens.append(toks)
    conn.close()
    return tokens


def run_clients(port, plans, seconds):
    """plans[i]: the tokens client i cycles through. Returns (commits,
    latencies in s, elapsed s)."""
    lat = [[] for _ in plans]
    errors = []
    start = threading.Barrier(len(plans) + 1)
    stop_at = [0.0]

    def client(i, toks):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = 0
        start.wait()
        try:
            while time.monotonic() < stop_at[0]:
                tok = toks[n % len(toks)]
                body = {"changes": [{"op": "put", "path": "c%d/d%d" % (i, n), "base": 0,
                                     "kind": "dir"}]}
                t0 = time.monotonic()
                r = call(conn, "POST", "/api/v1/commit", body, tok)
                lat[i].append(time.monotonic() - t0)
                if r["results"][0]["status"] != "ok":
                    raise RuntimeError("commit: %s" % r["results"][0])
                n += 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        conn.close()

    threads = [threading.Thread(target=client, args=(i, t)) for i, t in enumerate(plans)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("client error: %s" % errors[0])
    all_lat = sorted(x for l in lat for x in l)
    return len(all_lat), all_lat, time.monotonic() - t0


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p / 100.0))]


def check_gap_free(port, token):
    """The space's changes are 1..N without gap or duplicate."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    seqs, since = [], 0
    while True:
        r = call(conn, "GET", "/api/v1/changes?since=%d&limit=5000" % since, None, token)
        ch = r.get("entries", [])
        if not ch:
            break
        seqs += [c["seq"] for c in ch]
        since = ch[-1]["seq"]
        if not r.get("more"):
            break
    conn.close()
    return seqs == list(range(1, len(seqs) + 1)), len(seqs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--kinds", default="sqlite,pg-1,pg-3")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    root = tempfile.mkdtemp(prefix="ferry-commit-bench-")
    pg_dir = os.path.join(root, "pg")
    kinds = args.kinds.split(",")
    pg_uri = None
    rows = []
    try:
        if any(k.startswith("pg") for k in kinds):
            pg_uri = subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "start", pg_dir],
                                    check=True, capture_output=True, text=True).stdout.strip()
        for kind in kinds:
            s = Setup(build, kind, root, pg_uri)
            s.start()
            try:
                # One space: every client a device of u000.
                one = accounts(s.port, "one", 1, args.clients)[0]
                n, lat, el = run_clients(s.port, [[t] for t in one], args.seconds)
                ok, listed = check_gap_free(s.port, one[0])
                rows.append((kind, "1 space", n / el, pct(lat, 50), pct(lat, 99),
                             "gap-free" if ok else "GAPS (%d listed)" % listed))
                # 100 spaces: client i cycles over its share of 100 users.
                many = accounts(s.port, "many", 100, 1)
                plans = [[many[u][0] for u in range(i, 100, args.clients)]
                         for i in range(args.clients)]
                n, lat, el = run_clients(s.port, plans, args.seconds)
                rows.append((kind, "100 spaces", n / el, pct(lat, 50), pct(lat, 99), ""))
            finally:
                s.stop()
    finally:
        if pg_uri:
            subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "stop", pg_dir])
        shutil.rmtree(root, ignore_errors=True)
    print("commit bench: %d clients, %.0f s per run, one directory entry per commit"
          % (args.clients, args.seconds))
    print("%-8s %-11s %12s %10s %10s  %s" % ("store", "spaces", "commits/s", "p50 ms",
                                              "p99 ms", ""))
    for kind, sp, rate, p50, p99, note in rows:
        print("%-8s %-11s %12.0f %10.2f %10.2f  %s" % (kind, sp, rate, p50 * 1e3, p99 * 1e3,
                                                        note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
