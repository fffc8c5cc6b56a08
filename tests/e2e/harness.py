"""End-to-end test harness for Ferry: starts a real ferryd on 127.0.0.1 with
its data in a temporary folder, creates accounts and linked folders with the
real ferry client, runs sync rounds with bounded timeouts, and compares
folders byte for byte. Standard library only, so it runs on a bare Debian.

A scenario is a function taking an Env (a fresh server + temp dir) and
raising Failure (or any exception) when something is wrong. Scenarios are
registered with @scenario; groups of small data-driven checks that share one
server are registered with @group and yield (name, callable) pairs.
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

FERRYD = os.path.abspath(os.environ.get("FERRYD", "build/src/server/ferryd"))
FERRY = os.path.abspath(os.environ.get("FERRY", "build/src/client/ferry"))
ASAN = os.environ.get("FERRY_E2E_ASAN", "") not in ("", "0")
KEEP = os.environ.get("FERRY_E2E_KEEP", "") not in ("", "0")
VERBOSE = os.environ.get("FERRY_E2E_VERBOSE", "") not in ("", "0")

# Sanitized binaries are several times slower: scale sizes down and
# timeouts up so the ASan run stays within the CI budget.
SLOW = 4 if ASAN else 1
SYNC_TIMEOUT = 120 * SLOW
CMD_TIMEOUT = 60 * SLOW
PASSWORD = "correct horse battery staple"

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")

SCENARIOS = []  # (name, kind, fn); kind is "scenario" or "group"


class Failure(Exception):
    """An assertion about Ferry's behaviour did not hold."""


def scenario(name, server_args=(), cluster=None, private_pg=False, private_rgw=False):
    """server_args: more ferryd options for this scenario's server (every
    instance's, in cluster mode). cluster="only": runs only in cluster mode
    (tests/e2e/cluster.py). private_pg / private_rgw: in cluster mode the
    scenario gets a PostgreSQL / an S3 gateway of its own (it restarts or
    stops it, and the scenarios running beside it must not notice)."""
    def deco(fn):
        fn.server_args = list(server_args)
        fn.cluster = cluster
        fn.private_pg = private_pg
        fn.private_rgw = private_rgw
        SCENARIOS.append((name, "scenario", fn))
        return fn
    return deco


def group(name):
    def deco(fn):
        SCENARIOS.append((name, "group", fn))
        return fn
    return deco


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def note(msg):
    print("#   " + msg, flush=True)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def sanitizer_report(text):
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 200):i + 1500]
    return None


class Result:
    def __init__(self, argv, rc, out, err, elapsed, maxrss_kib=0):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed, self.maxrss_kib = elapsed, maxrss_kib

    def describe(self):
        return "`%s` -> rc %s after %.1f s\n  stdout: %s\n  stderr: %s" % (
            " ".join(self.argv), self.rc, self.elapsed, tail(self.out), tail(self.err))


def tail(text, n=1200):
    text = text.strip()
    if len(text) > n:
        text = "..." + text[-n:]
    return text.replace("\n", "\n          ")


def run_cmd(argv, env=None, cwd=None, timeout=CMD_TIMEOUT, stdin_data=None):
    """Runs argv to completion (killed at timeout), returns a Result. Fails on
    a sanitizer report."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, cwd=cwd,
                         stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(input=stdin_data.encode() if stdin_data is not None else None,
                                 timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise Failure("timeout after %d s: `%s`\n  stderr: %s" %
                      (timeout, " ".join(argv), tail(err.decode(errors="replace"))))
    r = Result(argv, p.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
               time.monotonic() - t0)
    if VERBOSE:
        note(r.describe())
    rep = sanitizer_report(r.err)
    if rep:
        raise Failure("sanitizer report from `%s`:\n%s" % (" ".join(argv), rep))
    return r


class Server:
    """A real ferryd on 127.0.0.1:port with data under data_dir."""

    def __init__(self, data_dir, log_path, port=None, registration="open", args=()):
        self.data_dir, self.log_path = data_dir, log_path
        self.port = port or free_port()
        self.registration = registration
        self.args = list(args)  # more ferryd options, e.g. ["--keep-versions", "2"]
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=20 * SLOW):
        argv = [FERRYD, "--data", self.data_dir, "--listen", "127.0.0.1:%d" % self.port,
                "--registration", self.registration] + self.args
        log = open(self.log_path, "ab")
        log.write(("\n== %s\n" % " ".join(argv)).encode())
        log.flush()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure("ferryd exited with %s at start:\n%s" %
                              (self.proc.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen(self.url + "/api/v1/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        self.kill()
        raise Failure("ferryd not healthy within %d s:\n%s" % (timeout, self.log_tail()))

    def stop(self, timeout=10 * SLOW):
        """SIGTERM, then SIGKILL after timeout. Returns (exit code, needed_kill)."""
        if not self.proc or self.proc.poll() is not None:
            rc = self.proc.returncode if self.proc else None
            self.proc = None
            return rc, False
        self.proc.send_signal(signal.SIGTERM)
        killed = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            killed = True
        rc = self.proc.returncode
        self.proc = None
        return rc, killed

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def vm_hwm_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self):
        return tail(self.log_text(), 2000)

    def disk_usage(self):
        """Bytes in the data dir, not counting SQLite's WAL/shm (which come
        and go with checkpoints): a proxy for stored chunk data."""
        total = 0
        for root, _dirs, files in os.walk(self.data_dir):
            for name in files:
                if name.endswith(("-wal", "-shm", "-journal")):
                    continue
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    pass
        return total


class Env:
    """One scenario's world: a temp dir, a running server, its users and
    devices."""

    def __init__(self, name, server_args=(), private_pg=False, private_rgw=False):
        self.name = name
        self.root = tempfile.mkdtemp(prefix="ferry-e2e-%s-" % re.sub(r"\W", "_", name))
        self.home = os.path.join(self.root, "home")
        os.mkdir(self.home)
        import cluster  # noqa: PLC0415 - it imports this module
        if cluster.enabled():
            # Three ferryd on one PostgreSQL database and S3 bucket behind
            # HAProxy, with Server's methods (tests/e2e/cluster.py).
            self.server = cluster.Cluster(self.root, os.path.join(self.root, "ferryd.log"),
                                          args=server_args, name=name, private_pg=private_pg,
                                          private_rgw=private_rgw)
        else:
            self.server = Server(os.path.join(self.root, "server"),
                                 os.path.join(self.root, "ferryd.log"), args=server_args)
        self.devices = []
        self.passwords = {}
        self.watchers = []  # every Watcher started in this scenario

    def start(self):
        self.server.start()
        return self

    @property
    def url(self):
        return self.server.url

    def env(self, password=None):
        e = dict(os.environ)
        e["HOME"] = self.home
        e.pop("FERRY_PASSWORD", None)
        if password is not None:
            e["FERRY_PASSWORD"] = password
        return e

    def ferry_argv(self, args):
        return [FERRY] + list(args)

    def ferry(self, args, cwd=None, password=None, timeout=CMD_TIMEOUT):
        return run_cmd([FERRY] + list(args), env=self.env(password), cwd=cwd or self.root,
                       timeout=timeout)

    def register(self, user, password=PASSWORD, email=None):
        r = self.ferry(["register", "--server", self.url, "--user", user,
                        "--email", email or "%s@example.org" % user], password=password)
        check(r.rc == 0, "register %s failed: %s" % (user, r.describe()))
        self.passwords[user] = password
        return r

    def device(self, name, user="alice", files=None, path=None):
        """Creates a folder (with files, if given, before linking) and links
        it with `ferry init`."""
        d = Device(self, name, user, path or os.path.join(self.root, "dev-" + name))
        os.makedirs(d.dir, exist_ok=True)
        for rel, data in (files or {}).items():
            d.write(rel, data)
        r = self.ferry(["-C", d.dir, "init", "--server", self.url, "--user", user,
                        "--device", name], password=self.passwords.get(user, PASSWORD))
        check(r.rc == 0, "init of device %s failed: %s" % (name, r.describe()))
        check(os.path.isdir(os.path.join(d.dir, ".ferry")), "init did not create .ferry/")
        self.devices.append(d)
        return d

    def close(self, failed=False):
        """Stops the server (it must exit 0 on SIGTERM within the bound) and
        removes the temp dir."""
        # Watchers first: each must still exit 0 on SIGTERM within its
        # bound (a scenario that forgot to stop one is judged here).
        watch_problem = None
        for w in self.watchers:
            try:
                w.stop(require_running=False)
            except Failure as e:
                watch_problem = watch_problem or str(e)
            except Exception as e:  # noqa: BLE001
                watch_problem = watch_problem or "stopping %s: %r" % (w.name, e)
        running = self.server.running()
        rc, killed = self.server.stop()
        log = self.server.log_text()
        destroy_problem = None
        if hasattr(self.server, "destroy"):  # cluster mode: drop the database
            try:
                self.server.destroy()
            except Exception as e:  # noqa: BLE001
                destroy_problem = "cluster teardown: %s" % e
        rep = sanitizer_report(log)
        if KEEP or (failed and os.environ.get("FERRY_E2E_KEEP_FAILED")):
            note("kept %s" % self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        if rep:
            raise Failure("sanitizer report in ferryd log:\n" + rep)
        if watch_problem:
            raise Failure(watch_problem)
        if running and killed:
            raise Failure("ferryd did not exit within the bound after SIGTERM")
        if running and rc != 0:
            raise Failure("ferryd exited with %s after SIGTERM:\n%s" % (rc, tail(log, 1500)))
        if destroy_problem:
            raise Failure(destroy_problem)
        return rc, killed

    # HTTP helpers for API checks.
    def http(self, method, path, body=None, headers=None, timeout=30 * SLOW):
        """Returns (status, body bytes, headers). body may be bytes, str or a
        JSON-able object."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if body is not None and "Content-Type" not in hdrs:
                hdrs["Content-Type"] = "application/json"
            conn.putrequest(method, path)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body) if body is not None else 0))
            conn.endheaders()
            if body:
                # A server may answer (413) and close before reading it all.
                try:
                    view = memoryview(body)
                    for i in range(0, len(body), 1 << 20):
                        conn.send(view[i:i + (1 << 20)])
                except (BrokenPipeError, ConnectionResetError):
                    pass
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, dict(resp.getheaders())
        finally:
            conn.close()

    def login(self, user, device="api", password=None):
        st, data, _ = self.http("POST", "/api/v1/login", {
            "user": user, "password": password or self.passwords.get(user, PASSWORD),
            "device_name": device, "platform": "linux"})
        check(st == 200, "login %s -> %s %r" % (user, st, data[:300]))
        return json.loads(data)["token"]

    def api(self, method, path, token, body=None, headers=None):
        h = {"Authorization": "Bearer " + token}
        h.update(headers or {})
        return self.http(method, path, body, h)


class Device:
    """A linked folder."""

    def __init__(self, env, name, user, path):
        self.env, self.name, self.user, self.dir = env, name, user, path

    def p(self, rel):
        return os.path.join(self.dir, rel)

    def run(self, args, timeout=SYNC_TIMEOUT, cwd=None, password=None):
        return self.env.ferry(["-C", self.dir] + list(args), cwd=cwd, timeout=timeout,
                              password=password)

    def sync(self, *extra, expect=0, timeout=SYNC_TIMEOUT):
        r = self.run(["sync"] + list(extra), timeout=timeout)
        if expect is not None:
            check(r.rc == expect, "sync on %s: expected rc %d, got %s" %
                  (self.name, expect, r.describe()))
        return r

    def popen(self, args):
        return subprocess.Popen([FERRY, "-C", self.dir] + list(args), env=self.env.env(),
                                cwd=self.env.root, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, rel, data, mode=None, mtime_ns=None):
        path = self.p(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        with open(path, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(path, mode)
        if mtime_ns is not None:
            os.utime(path, ns=(mtime_ns, mtime_ns))

    def read(self, rel):
        with open(self.p(rel), "rb") as f:
            return f.read()

    def exists(self, rel):
        return os.path.lexists(self.p(rel))

    def remove(self, rel):
        path = self.p(rel)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def mkdir(self, rel):
        os.makedirs(self.p(rel), exist_ok=True)

    def rename(self, a, b):
        os.makedirs(os.path.dirname(self.p(b)), exist_ok=True)
        os.rename(self.p(a), self.p(b))

    def symlink(self, target, rel):
        os.makedirs(os.path.dirname(self.p(rel)), exist_ok=True)
        os.symlink(target, self.p(rel))

    def snapshot(self):
        return snapshot(self.dir)

    def watch(self, wait_idle=True, extra=()):
        """Starts `ferry -C DIR watch` for this folder (see Watcher)."""
        from watch_harness import Watcher  # noqa: PLC0415 - it imports this module
        w = Watcher(self, extra)
        self.env.watchers.append(w)
        w.start(wait_idle=wait_idle)
        return w

    def trash_hashes(self):
        """sha256 of every file under .ferry/trash/."""
        out = set()
        for root, _dirs, files in os.walk(os.path.join(self.dir, ".ferry", "trash")):
            for name in files:
                path = os.path.join(root, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    out.add(file_sha256(path))
        return out

    def temp_files(self):
        found = []
        for root, dirs, files in os.walk(self.dir):
            if root == self.dir and ".ferry" in dirs:
                dirs.remove(".ferry")
            for name in files + dirs:
                if name.startswith(".ferry-tmp-"):
                    found.append(os.path.relpath(os.path.join(root, name), self.dir))
        return found


CHUNK_MIN = 16 * 1024  # src/lib/chunker.h: smaller content is one chunk


def ferry_hash(data):
    """Ferry's file hash of data (docs/api.md: the SHA-256 of the chunks'
    SHA-256 digests) for content of one chunk at most; larger content needs
    the chunker: ferry_hash_file()."""
    assert len(data) < CHUNK_MIN, "ferry_hash: use ferry_hash_file for %d bytes" % len(data)
    if not data:
        return hashlib.sha256(b"").hexdigest()
    return hashlib.sha256(hashlib.sha256(data).digest()).hexdigest()


def ferry_hash_file(path):
    """Ferry's file hash of a local file of any size, from `ferry hash`."""
    out = subprocess.run([FERRY, "hash", path], stdout=subprocess.PIPE, check=True,
                         timeout=120).stdout.decode()
    return out.split()[0]


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def snapshot(top):
    """{relative path: description} for everything under top except the
    top-level .ferry/: ("dir",), ("file", sha256, size, exec bit) or
    ("link", target)."""
    snap = {}
    for root, dirs, files in os.walk(top):
        if root == top and ".ferry" in dirs:
            dirs.remove(".ferry")
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                snap[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                snap[rel] = ("dir",)
            elif stat.S_ISREG(st.st_mode):
                snap[rel] = ("file", file_sha256(path), st.st_size, bool(st.st_mode & 0o100))
            else:
                snap[rel] = ("other", stat.S_IFMT(st.st_mode))
    return snap


def diff_snapshots(a, b, an="A", bn="B", limit=12):
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append("%r: %s=%s %s=%s" % (k, an, short(a.get(k)), bn, short(b.get(k))))
    if len(lines) > limit:
        lines = lines[:limit] + ["... %d more" % (len(lines) - limit)]
    return lines


def short(v):
    if v is None:
        return "absent"
    if v[0] == "file":
        return "file(%s.., %d B, %s)" % (v[1][:10], v[2], "x" if v[3] else "-")
    return "%s(%s)" % (v[0], ",".join(str(x) for x in v[1:]))


def assert_same(*devices, expect=None):
    """All devices' folders are identical (and equal to expect, a snapshot,
    when given); no temp files anywhere."""
    base = expect if expect is not None else devices[0].snapshot()
    base_name = "expected" if expect is not None else devices[0].name
    for d in devices:
        temps = d.temp_files()
        check(not temps, "temp files left on %s: %s" % (d.name, temps))
        s = d.snapshot()
        if s != base:
            raise Failure("folders differ (%s vs %s):\n  " % (base_name, d.name) +
                          "\n  ".join(diff_snapshots(base, s, base_name, d.name)))
    return base


def sync_all(*devices):
    for d in devices:
        d.sync()


def stamp(block, blk, seed):
    """Writes a unique 16-byte tag every 4 KiB of block so that no two
    content-defined chunks of the generated data are equal."""
    for off in range(0, len(block) - 16, 4096):
        block[off:off + 16] = (seed.to_bytes(4, "little") + blk.to_bytes(6, "little") +
                               off.to_bytes(6, "little"))


def write_big(path, size, seed=1):
    """Writes size bytes of unique, incompressible data quickly (a random
    1 MiB block repeated with per-4-KiB tags)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    base = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as f:
        done, blk = 0, 0
        while done < size:
            b = bytearray(base)
            stamp(b, blk, seed)
            n = min(len(b), size - done)
            f.write(memoryview(b)[:n])
            done += n
            blk += 1


def json_out(r, what):
    check(r.rc == 0, "%s failed: %s" % (what, r.describe()))
    try:
        return json.loads(r.out)
    except ValueError as e:
        raise Failure("%s --json is not JSON (%s): %s" % (what, e, tail(r.out)))


def find_dicts(obj, key):
    """Every dict inside obj (recursively) that has key."""
    found = []
    if isinstance(obj, dict):
        if key in obj:
            found.append(obj)
        for v in obj.values():
            found += find_dicts(v, key)
    elif isinstance(obj, list):
        for v in obj:
            found += find_dicts(v, key)
    return found


def wait_for(cond, timeout, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    return None


def pty_run(dev, args, answer=None, wait_text=(), timeout=SYNC_TIMEOUT):
    """Runs ferry with stdin and stdout on a pty (its controlling terminal).
    answer: None (never type anything) or a function of the output so far
    returning the line to type; it is called once every string of
    wait_text has appeared and the output has been quiet for a moment.
    Returns (rc, output, stderr, answered)."""
    import errno  # noqa: PLC0415 - only the pty scenarios need these
    import fcntl  # noqa: PLC0415
    import pty  # noqa: PLC0415
    import select  # noqa: PLC0415
    import termios  # noqa: PLC0415

    master, slave = pty.openpty()
    errpath = os.path.join(dev.env.root, "pty-%s.err" % dev.name)

    def ctty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    with open(errpath, "wb") as err:
        proc = subprocess.Popen([FERRY, "-C", dev.dir] + list(args), env=dev.env.env(),
                                cwd=dev.env.root, stdin=slave, stdout=slave, stderr=err,
                                preexec_fn=ctty)
    os.close(slave)
    out, answered, last = b"", False, time.monotonic()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError("`ferry %s` on a pty still running after %d s; output: %s" %
                                     (" ".join(args), timeout, tail(out.decode(errors="replace"))))
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    break  # the child closed the terminal
                out += chunk
                last = time.monotonic()
                continue
            if proc.poll() is not None:
                break
            text = out.decode(errors="replace")
            if (answer is not None and not answered and all(w in text for w in wait_text)
                    and time.monotonic() - last > 0.3 * SLOW):
                os.write(master, answer(text.replace("\r\n", "\n")).encode() + b"\n")
                answered = True
        proc.wait(timeout=10 * SLOW)
    finally:
        os.close(master)
    with open(errpath, errors="replace") as f:
        errtext = f.read()
    rep = sanitizer_report(errtext)
    check(not rep, "sanitizer report from `ferry %s`:\n%s" % (" ".join(args), rep))
    return proc.returncode, out.decode(errors="replace").replace("\r\n", "\n"), errtext, answered
