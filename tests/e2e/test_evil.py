"""The client facing a hostile (or broken) server: a fake ferryd, written
here with http.server, hands out entries whose paths escape the folder
("../x", absolute paths, a symlink followed by a file "through" it, the
.ferry state folder). The client must validate every path from the network:
nothing may be written outside the linked folder or into .ferry/, and it
must not crash. Also: many small files (paging through /changes)."""

import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import assert_same, check, ferry_hash, note, scenario, sync_all


def sha(b):
    return hashlib.sha256(b).hexdigest()


class EvilHandler(BaseHTTPRequestHandler):
    server_version = "evil/1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj=None, raw=None, ctype="application/json"):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        srv = self.server
        if self.path.startswith("/api/v1/health"):
            return self.reply(200, {"ok": True, "version": "0.1.0"})
        if self.path.startswith("/api/v1/changes"):
            since = 0
            if "since=" in self.path:
                since = int(self.path.split("since=")[1].split("&")[0] or 0)
            entries = [e for e in srv.entries if e["seq"] > since]
            return self.reply(200, {"seq": len(srv.entries), "entries": entries, "more": False})
        if self.path.startswith("/api/v1/files"):
            return self.reply(200, {"seq": len(srv.entries), "files": []})
        if self.path.startswith("/api/v1/devices"):
            return self.reply(200, {"devices": []})
        return self.reply(404, {"error": "no such endpoint", "code": "not_found"})

    def do_POST(self):
        srv = self.server
        data = self.body()
        if self.path == "/api/v1/login":
            return self.reply(200, {"token": "ab" * 32, "device_id": "cd" * 16, "user": "alice"})
        if self.path == "/api/v1/chunks/missing":
            return self.reply(200, {"missing": []})
        if self.path == "/api/v1/chunks":
            return self.reply(200, {"stored": 0})
        if self.path == "/api/v1/commit":
            changes = json.loads(data).get("changes", [])
            return self.reply(200, {"seq": len(srv.entries), "results": [
                {"path": c.get("path"), "status": "ok", "seq": len(srv.entries)}
                for c in changes]})
        if self.path == "/api/v1/chunks/fetch":
            out = b""
            for h in json.loads(data).get("hashes", []):
                chunk = srv.chunks.get(h)
                if chunk is None:
                    return self.reply(404, {"error": "unknown chunk", "code": "not_found"})
                out += bytes.fromhex(h) + b"\x00" + len(chunk).to_bytes(4, "big") + chunk
            return self.reply(200, raw=out, ctype="application/x-ferry-chunks")
        return self.reply(404, {"error": "no such endpoint", "code": "not_found"})


def file_entry(seq, path, content):
    return {"path": path, "seq": seq, "deleted": False, "kind": "file", "size": len(content),
            "mtime_ns": 1763761956000000000, "mode": 420, "hash": ferry_hash(content),
            "chunks": [[sha(content), len(content)]] if content else [], "target": None,
            "device": "ef" * 16}


@scenario("client_rejects_hostile_server_paths")
def evil_server(env):
    outside = os.path.join(env.root, "outside")
    os.mkdir(outside)
    payload = b"pwned by a hostile server\n"
    fine = b"a legitimate file\n"
    srv = ThreadingHTTPServer(("127.0.0.1", 0), EvilHandler)
    srv.chunks = {sha(payload): payload, sha(fine): fine}
    abs_target = os.path.join(outside, "abs.txt")
    evil = ["../escaped.txt", abs_target, "sub/../../escaped2.txt", ".ferry/config.json",
            ".ferry/evil.txt", "dir/.ferry-tmp-evil", "a\\..\\..\\bs.txt"]
    entries = []
    for p in evil:
        entries.append(file_entry(len(entries) + 1, p, payload))
    # A link out of the folder, then a file "through" it.
    entries.append({"path": "link-out", "seq": len(entries) + 1, "deleted": False,
                    "kind": "symlink", "size": 0, "mtime_ns": 1763761956000000000, "mode": 0,
                    "hash": sha(b""), "chunks": [], "target": outside, "device": "ef" * 16})
    entries.append(file_entry(len(entries) + 1, "link-out/through-link.txt", payload))
    entries.append(file_entry(len(entries) + 1, "fine.txt", fine))
    srv.entries = entries
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        dev = os.path.join(env.root, "dev-victim")
        os.mkdir(dev)
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        r = env.ferry(["-C", dev, "init", "--server", url, "--user", "alice", "--device", "V"],
                      password="irrelevant password")
        check(r.rc == 0, "init against the fake server: %s" % r.describe())
        cfg_before = open(os.path.join(dev, ".ferry", "config.json"), "rb").read()
        r = env.ferry(["-C", dev, "sync"], timeout=60)
        note("sync against the hostile server: rc %d, stderr: %s" %
             (r.rc, r.err.strip().splitlines()[-1:] if r.err.strip() else ""))
        check(r.rc in (0, 1), "client rc %d: %s" % (r.rc, r.describe()))
        escaped = []
        for root, _dirs, files in os.walk(env.root):
            if root.startswith(dev):
                continue
            for name in files:
                p = os.path.join(root, name)
                try:
                    if open(p, "rb").read() == payload:
                        escaped.append(p)
                except OSError:
                    pass
        check(not escaped, "the client wrote outside its folder: %s" % escaped)
        check(os.listdir(outside) == [], "files appeared in the link target: %s" %
              os.listdir(outside))
        check(open(os.path.join(dev, ".ferry", "config.json"), "rb").read() == cfg_before,
              "the server overwrote .ferry/config.json")
        check(not os.path.exists(os.path.join(dev, ".ferry", "evil.txt")),
              "the server wrote into .ferry/")
        check(not os.path.exists(os.path.join(dev, "dir", ".ferry-tmp-evil")),
              "the server created a temp-named file")
        if os.path.lexists(os.path.join(dev, "link-out")):
            check(os.path.islink(os.path.join(dev, "link-out")), "link-out is not a link")
    finally:
        srv.shutdown()
        srv.server_close()


@scenario("many_small_files")
def many_small(env):
    env.register("alice")
    a, b, c = env.device("A"), env.device("B"), env.device("C")
    n = 2500
    for i in range(n):
        a.write("d%02d/f%04d.txt" % (i % 50, i), ("file %d\n" % i) * (1 + i % 300))
    t0 = time.monotonic()
    a.sync()
    up = time.monotonic() - t0
    t0 = time.monotonic()
    b.sync()
    down = time.monotonic() - t0
    c.sync()
    note("%d small files: upload %.1f s, download %.1f s" % (n, up, down))
    snap = assert_same(a, b, c)
    check(len([p for p in snap if p.endswith(".txt")]) == n, "file count %d" % len(snap))
    # Delete a few, modify a few, everyone converges.
    for i in range(0, n, 100):
        a.remove("d%02d/f%04d.txt" % (i % 50, i))
    for i in range(1, n, 97):
        b.write("d%02d/f%04d.txt" % (i % 50, i), "changed on B %d\n" % i)
    a.sync()
    b.sync()
    sync_all(a, c)
    assert_same(a, b, c)
