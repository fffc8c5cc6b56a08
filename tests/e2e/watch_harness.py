"""Helpers for scenarios with `ferry watch` daemons (test_watch.py): a
Watcher runs one device's daemon as a subprocess with its own log file and
reads its state from .ferry/watch.json; wait_converged() polls every folder
(bounded) until they are identical and every daemon is idle. Env.close()
stops any watcher a scenario left running, and judges its exit."""

import json
import os
import signal
import subprocess
import time

from harness import (FERRY, SLOW, Failure, diff_snapshots, json_out, sanitizer_report, tail)

# Bounds for the real-time daemon: a change reaches every watching device
# within WATCH_TIMEOUT; a watcher exits within WATCH_STOP_TIMEOUT of SIGTERM.
WATCH_TIMEOUT = 15 * SLOW
WATCH_STOP_TIMEOUT = 5 * SLOW
WATCH_STATES = ("starting", "scanning", "uploading", "downloading", "idle", "offline")


class Watcher:
    """A `ferry -C DIR watch` daemon running for one device, its stdout and
    stderr appended to ROOT/watch-NAME.log. Its state comes from
    DIR/.ferry/watch.json, which the daemon rewrites as it works."""

    def __init__(self, dev, extra=()):
        self.dev, self.extra = dev, list(extra)
        self.name = dev.name
        self.log_path = os.path.join(dev.env.root, "watch-%s.log" % dev.name)
        self.proc = None
        self.log_offset = 0

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, wait_idle=True, timeout=WATCH_TIMEOUT):
        argv = [FERRY, "-C", self.dev.dir] + self.extra + ["watch"]
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()
            log.write(("\n== %s\n" % " ".join(argv)).encode())
            log.flush()
            self.proc = subprocess.Popen(argv, env=self.dev.env.env(), cwd=self.dev.env.root,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if wait_idle:
            self.wait_idle(timeout)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def info(self):
        """watch.json as a dict, or None (absent, being replaced, not JSON)."""
        try:
            with open(os.path.join(self.dev.dir, ".ferry", "watch.json")) as f:
                v = json.load(f)
            return v if isinstance(v, dict) else None
        except (OSError, ValueError):
            return None

    def state(self):
        """This process's state from watch.json (None if the file belongs
        to another process or cannot be read)."""
        i = self.info()
        if not i or i.get("pid") != self.pid:
            return None
        return i.get("state")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def describe(self):
        return "watcher %s (pid %s, %s, watch.json %s):\n          log: %s" % (
            self.name, self.pid,
            "running" if self.alive() else "exited %s" % (self.proc.returncode if self.proc
                                                          else None),
            json.dumps(self.info()), tail(self.log_text(), 1500))

    def check_alive(self):
        if not self.alive():
            raise Failure("watcher %s died: %s" % (self.name, self.describe()))

    def wait_state(self, states, timeout=WATCH_TIMEOUT):
        """Waits until watch.json says one of states for this process."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            self.check_alive()
            st = self.state()
            if not seen or seen[-1] != st:
                seen.append(st)
            if st in states:
                return st
            if time.monotonic() > deadline:
                raise Failure("watcher %s not %s within %d s (states seen: %s); %s" % (
                    self.name, "/".join(states), timeout, seen, self.describe()))
            time.sleep(0.02)

    def wait_idle(self, timeout=WATCH_TIMEOUT):
        return self.wait_state(("idle",), timeout)

    def send(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=WATCH_STOP_TIMEOUT, require_running=True):
        """Sends sig; the daemon must exit 0 within timeout (else it is
        SIGKILLed and that is a Failure). Returns the seconds it took."""
        if self.proc is None:
            return 0.0
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self.proc = None
            if require_running or rc != 0:
                raise Failure("watcher %s had already exited with %s; log: %s" %
                              (self.name, rc, tail(self.log_text(), 1500)))
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("watcher %s did not exit within %d s of %s; %s" % (
                self.name, timeout, signal.Signals(sig).name, self.describe()))
        took = time.monotonic() - t0
        rc = self.proc.returncode
        text = self.log_text()[self.log_offset:]
        rep = sanitizer_report(text)
        if rep:
            raise Failure("sanitizer report from watcher %s:\n%s" % (self.name, rep))
        if rc != 0:
            raise Failure("watcher %s exited with %s after %s; log: %s" % (
                self.name, rc, signal.Signals(sig).name, tail(text, 1500)))
        self.proc = None
        return took

    def kill(self):
        """SIGKILL (a crash); no exit status expected."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def watcher_of(dev):
    """The running Watcher of dev, or None."""
    for w in reversed(dev.env.watchers):
        if w.dev is dev and w.alive():
            return w
    return None


def safe_snapshot(dev):
    """snapshot() that returns None instead of failing when files change
    under the walk (a daemon is writing)."""
    try:
        return dev.snapshot()
    except OSError:
        return None


def wait_converged(devices, timeout=WATCH_TIMEOUT, expect=None, idle=True):
    """Waits until every device's folder equals expect (a snapshot; default:
    the first device's folder), no temporary files are left, and (idle) the
    running watchers of these devices all say idle. Returns the snapshot;
    on timeout raises Failure with the differences and the watchers' logs."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        watchers = [w for w in (watcher_of(d) for d in devices) if w]
        for w in dev_watchers_dead(devices):
            raise Failure("watcher %s died: %s" % (w.name, w.describe()))
        base = expect if expect is not None else safe_snapshot(devices[0])
        ok = base is not None
        why = None
        if ok:
            for d in devices:
                s = safe_snapshot(d)
                if s != base:
                    ok = False
                    why = (d, s)
                    break
                if d.temp_files():
                    ok = False
                    why = (d, "temp files %s" % d.temp_files())
                    break
        if ok and idle:
            busy = [(w.name, w.state()) for w in watchers if w.state() != "idle"]
            if busy:
                ok = False
                why = (None, "not idle: %s" % busy)
        if ok:
            return base
        last = why
        if time.monotonic() > deadline:
            lines = ["devices %s did not converge within %d s" %
                     ([d.name for d in devices], timeout)]
            if last and isinstance(last[1], str):
                lines.append("%s: %s" % (last[0].name if last[0] else "-", last[1]))
            elif last and base is not None:
                d, s = last
                lines.append("diff %s vs %s:" % ("expected" if expect is not None
                                                   else devices[0].name, d.name))
                lines += ["  " + x for x in diff_snapshots(base, s or {}, "want", d.name)]
            for w in watchers:
                lines.append(w.describe())
            raise Failure("\n".join(lines))
        time.sleep(0.05)


def dev_watchers_dead(devices):
    """Watchers of these devices that were started, not stopped, and died."""
    out = []
    for w in devices[0].env.watchers:
        if w.dev in devices and w.proc is not None and w.proc.poll() is not None:
            out.append(w)
    return out


def status_json(dev):
    return json_out(dev.run(["status", "--json"]), "ferry status --json on %s" % dev.name)
