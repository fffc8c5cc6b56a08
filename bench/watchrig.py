"""Shared rig for the real-time benchmarks (latency.py, idle.py,
startup.py): a real ferryd on 127.0.0.1 with its data in a temp dir, one
account, linked device folders, and `ferry watch` daemons whose state is
read from DIR/.ferry/watch.json. Standard library only. Not a test: errors
raise RuntimeError with the relevant log tail."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-password-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid):
    """utime + stime of pid, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def tail(path, n=1500):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-n:]
    except OSError:
        return ""


def percentile(values, p):
    """Nearest-rank percentile of values (p in 0..100)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPU(s), %s, kernel %s" % (os.cpu_count() or 0, model, os.uname().release)


class Watch:
    """One `ferry watch` daemon."""

    def __init__(self, rig, folder, log):
        self.rig, self.dir, self.log_path = rig, folder, log
        with open(log, "ab") as lf:
            self.proc = subprocess.Popen([rig.ferry, "-C", folder, "watch"], env=rig.env,
                                         stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)

    @property
    def pid(self):
        return self.proc.pid

    def state(self):
        try:
            with open(os.path.join(self.dir, ".ferry", "watch.json")) as f:
                i = json.load(f)
        except (OSError, ValueError):
            return None
        return i.get("state") if isinstance(i, dict) and i.get("pid") == self.proc.pid else None

    def wait_idle(self, timeout=60, interval=0.002):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ferry watch exited with %s:\n%s" %
                                   (self.proc.returncode, tail(self.log_path)))
            if self.state() == "idle":
                return
            time.sleep(interval)
        raise RuntimeError("ferry watch on %s not idle within %d s (state %r):\n%s" %
                           (self.dir, timeout, self.state(), tail(self.log_path)))

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("ferry watch did not exit within %d s of SIGTERM" % timeout)
        return self.proc.returncode


class Rig:
    """ferryd + account "bench" + device folders under one temp dir."""

    def __init__(self, build, name="ferry-bench-", log_level="warn", server_args=()):
        build = os.path.abspath(build)
        self.ferryd = os.path.join(build, "src/server/ferryd")
        self.ferry = os.path.join(build, "src/client/ferry")
        for b in (self.ferryd, self.ferry):
            if not os.access(b, os.X_OK):
                raise RuntimeError("%s is missing: build first (ninja -C %s)" % (b, build))
        base = os.environ.get("FERRY_BENCH_TMP", "/var/tmp")
        self.tmp = tempfile.mkdtemp(prefix=name, dir=base)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ, FERRY_PASSWORD=PASSWORD, HOME=self.tmp)
        self.watches = []
        self.log_path = os.path.join(self.tmp, "ferryd.log")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.ferryd, "--data", os.path.join(self.tmp, "server"),
                 "--listen", "127.0.0.1:%d" % self.port, "--registration", "open",
                 "--log-level", log_level] + list(server_args),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/v1/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("ferryd did not start:\n" + tail(self.log_path))
                time.sleep(0.05)
        self.cmd(["register", "--server", self.url, "--user", "bench",
                  "--email", "bench@localhost"])

    def cmd(self, args, timeout=3600):
        r = subprocess.run([self.ferry] + args, env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("ferry %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                            r.stderr.decode(errors="replace")))
        return r

    def device(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        self.cmd(["-C", d, "init", "--server", self.url, "--user", "bench", "--device", name])
        return d

    def token(self, folder):
        with open(os.path.join(folder, ".ferry", "config.json")) as f:
            return json.load(f)["token"]

    def watch(self, folder):
        w = Watch(self, folder, os.path.join(self.tmp, "watch-%s.log" %
                                             os.path.basename(folder)))
        self.watches.append(w)
        return w

    def close(self, keep=False):
        for w in self.watches:
            try:
                w.stop()
            except RuntimeError:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
