"""The device registry, remote upload requests and the LAN peer protocol
end to end (issue 7), with three devices in their own network namespaces
(netns.py): A 10.77.1.2 and B 10.77.1.3 on one subnet, C 10.77.2.2 on
another, ferryd in the root namespace on 0.0.0.0 (the devices reach it at
10.77.1.1). Each scenario builds its own topology and removes it, also on
failure.

- lan_request_lan: A's watch holds report.pdf (up rules `type txt`); B asks
  A for it (`request-upload --wait`): the LAN path, A uploads it, B (its
  watch) and C (`ferry sync`) end with it byte for byte; other.pdf, not
  asked for, stays held.
- lan_request_relay: the same from C (another subnet): the relay path.
- lan_request_offline: A's watch stopped; C's request waits on the server
  (pending, C's --wait still waiting); A's watch comes back and runs it.
- lan_unauthorised: raw connections to A's LAN listener (wrong key, no
  auth, an auth without a MAC, a replayed MAC, garbage, an absurd length,
  another account's device with its own key and with ours) are refused:
  never `ok` or `accepted`, the connection closed, no request recorded,
  A uploads nothing, and a correct handshake still works after them; a
  device added after A's watch started gets in; removing C replaces the
  key, after which the old key (and C) get nothing. On
  the API another account sees and updates none of our requests, and only
  the target updates one.
- lan_chunks: B's watch holds big.bin (uploaded, then changed locally
  under up rules `none`, so B's copy lacks the chunks of the changed
  region); A fetches big.bin (`ferry sync --json`): the unchanged chunks
  from B over the LAN, only the changed region from the server (the bytes
  from each source are printed); C (other subnet) gets all of it from the
  server (bytes_lan 0).
- lan_devices: `ferry devices` on each device lists all three with LAN
  address:port, subnet and online; `devices rename` is seen by the others.

Without namespaces (not root, no iproute2, EPERM) each scenario says so on
a note line and runs its loopback variant (FERRY_E2E_NO_NETNS=1 forces it): everything on 127.0.0.1, the
paths forced with `--via lan` / `--via relay`; the subnet checks are then
skipped (and said so)."""

import hashlib
import hmac
import json
import os
import re
import socket
import struct
import time

from harness import (ASAN, SLOW, Failure, check, file_sha256, json_out, note, scenario,
                     wait_for, write_big)
from netns import Topology, link_device
from watch_harness import WATCH_TIMEOUT

KIB = 1 << 10
MIB = 1 << 20
REQ_TIMEOUT = 60 * SLOW  # --timeout of request-upload --wait
LAN_TIMEOUT = 10 * SLOW  # the listener's 5 s handshake bound, with slack


class World:
    """One scenario's devices: in namespaces (topo) or all on loopback."""

    def __init__(self, env, topo):
        self.env, self.topo = env, topo
        # The devices live in other namespaces: ferryd must listen beyond
        # 127.0.0.1 (a later --listen wins over the harness's).
        if topo:
            env.server.stop()
            env.server.args += ["--listen", "0.0.0.0:%d" % env.server.port]
            env.server.start()
            self.url = "http://%s:%d" % ("10.77.1.1", env.server.port)
        else:
            self.url = env.url
        env.register("alice")
        self.devs = {}
        self._probe = None

    def probe(self):
        """A token of alice's own for the test's API calls (made from the
        root namespace: with a device's token they would change what the
        server records as that device's address and subnet)."""
        if self._probe is None:
            self._probe = self.env.login("alice", device="probe")
        return self._probe

    def device(self, name, user="alice", files=None):
        prefix = self.topo.prefix(name) if self.topo and name in ("A", "B", "C") else []
        d = link_device(self.env, name, self.url, prefix, user=user, files=files)
        self.devs[name] = d
        return d

    def via(self, path):
        """--via for a request: auto in namespaces (the client must choose
        right), forced in the loopback variant."""
        return [] if self.topo else ["--via", path]

    def addr(self, name):
        return self.topo.addr(name) if self.topo else "127.0.0.1"


def lan_scenario(name, server_args=()):
    def deco(fn):
        def run(env):
            t0 = time.monotonic()
            topo, why = Topology.create()
            if topo and time.monotonic() - t0 > 2:
                note("network namespaces took %.1f s to set up" % (time.monotonic() - t0))
            if topo is None:
                note("NO NETWORK NAMESPACES (%s): running the LOOPBACK variant (all on "
                     "127.0.0.1, paths forced with --via, subnet checks skipped)" % why)
            failed = True
            try:
                fn(World(env, topo))
                failed = False
            finally:
                # Stop the daemons before their namespaces go; a scenario
                # that passed is still judged on their exit.
                problem = None
                for w in env.watchers:
                    try:
                        w.stop(require_running=False)
                    except Failure as e:
                        problem = problem or str(e)
                if topo:
                    topo.close()
                if problem and not failed:
                    raise Failure(problem)
        run.__name__ = fn.__name__
        scenario(name, server_args)(run)
        return fn
    return deco


# ---- helpers ----

def config_of(dev):
    with open(dev.p(".ferry/config.json")) as f:
        return json.load(f)


def token_of(dev):
    return config_of(dev)["token"]


def id_of(dev):
    return config_of(dev)["device_id"]


def api_get(env, token, path, want=200):
    st, data, _ = env.api("GET", path, token)
    check(st == want, "GET %s -> %d %r (wanted %d)" % (path, st, data[:300], want))
    return json.loads(data) if st == 200 else None


def server_paths(world):
    return {f["path"] for f in api_get(world.env, world.probe(), "/api/v1/files")["files"]}


def requests_of(env, token, query=""):
    return api_get(env, token, "/api/v1/requests" + query)["requests"]


def devices_json(dev):
    return json_out(dev.run(["devices", "--json"]), "ferry devices --json on %s" % dev.name)


def by_name(devs_json):
    return {d["name"]: d for d in devs_json["devices"]}


def wait_lan(world, on, names, timeout=WATCH_TIMEOUT):
    """Waits until `ferry devices --json` on `on` shows a LAN listener
    (lan.addr/port) for each device in names; returns {name: device}."""
    seen = {}

    def ready():
        nonlocal seen
        seen = by_name(devices_json(on))
        return all((seen.get(n) or {}).get("lan") for n in names)
    if not wait_for(ready, timeout, 0.2):
        raise Failure("%s does not see LAN listeners of %s within %d s: %s" % (
            on.name, names, timeout, json.dumps(list(seen.values()))))
    return seen


def same_file(a, b, rel):
    return (a.exists(rel) and b.exists(rel) and file_sha256(a.p(rel)) == file_sha256(b.p(rel)))


def wait_has(dev, rel, sha, timeout=WATCH_TIMEOUT):
    ok = wait_for(lambda: dev.exists(rel) and file_sha256(dev.p(rel)) == sha, timeout, 0.1)
    check(ok, "%s does not have %s (sha %s..) within %d s (has: %s)" % (
        dev.name, rel, sha[:10], timeout,
        file_sha256(dev.p(rel))[:10] if dev.exists(rel) else "absent"))


def says(text, word):
    return re.search(r"\b%s" % word, text, re.I) is not None


def newest_request(env, token, target):
    reqs = requests_of(env, token, "?target=" + target)
    return reqs[0] if reqs else None


def holding_a(world, extra_files=()):
    """A with notes.txt (uploaded) and report.pdf + other.pdf (held by up
    rules `type txt`). Returns (A, sha of report.pdf)."""
    files = {"notes.txt": "plain notes\n", "other.pdf": os.urandom(70 * KIB)}
    a = world.device("A", files=files)
    write_big(a.p("report.pdf"), 300 * KIB, seed=7)
    for rel, data in extra_files:
        a.write(rel, data)
    r = a.run(["rules", "set", "up", "type", "txt"])
    check(r.rc == 0, "rules set up type txt on A: %s" % r.describe())
    return a, file_sha256(a.p("report.pdf"))


def check_held(world, dev, paths):
    have = server_paths(world)
    for p in paths:
        check(p not in have, "the server has %s, which A's rules hold: %s" % (p, sorted(have)))


def check_done(req, requester, target, via, files=1):
    check(req is not None, "no request recorded")
    check(req["status"] == "done" and req["files"] == files and req["via"] == via and
          req["requester"] == id_of(requester) and req["target"] == id_of(target) and
          req.get("requester_name") == requester.name and req.get("target_name") == target.name,
          "request record: wanted done, files %d, via %s, %s -> %s; got %s" % (
              files, via, requester.name, target.name, json.dumps(req)))


# ---- 1, 2: remote upload over the LAN and over the relay ----

def remote_upload(world, requester_name, path_word):
    env = world.env
    a, sha = holding_a(world)
    b, c = world.device("B"), world.device("C")
    aw = a.watch()
    check_held(world, a, ["report.pdf", "other.pdf"])
    bw = b.watch()
    if requester_name == "C":
        c.watch()
    wait_lan(world, b, ["A", "B"])
    req = world.devs[requester_name]
    t0 = time.monotonic()
    r = req.run(["request-upload", "A", "report.pdf", "--wait", "--timeout", str(REQ_TIMEOUT)] +
                world.via(path_word))
    took = time.monotonic() - t0
    note("%s: request-upload A report.pdf --wait: %.2f s, output: %s" % (
        requester_name, took, r.out.strip().replace("\n", " | ")))
    check(r.rc == 0, "request-upload on %s: %s" % (requester_name, r.describe()))
    other = "relay" if path_word == "lan" else "lan"
    check(says(r.out, path_word) and not says(r.out, other),
          "request-upload output should name the %s path (and not %s): %s" %
          (path_word, other, r.describe()))
    check("overrides" in r.out and "upload rules" in r.out,
          "request-upload does not say it overrides A's upload rules: %s" % r.describe())
    check(says(r.out, "done"), "request-upload --wait does not show done: %s" % r.describe())
    check_done(newest_request(env, world.probe(), "A"), req, a, path_word)
    have = server_paths(world)
    check("report.pdf" in have and "other.pdf" not in have,
          "server after the request: report.pdf must be there, other.pdf still held: %s" %
          sorted(have))
    wait_has(b, "report.pdf", sha)
    if requester_name == "C":
        wait_has(c, "report.pdf", sha)
    else:
        c.sync()
        check(same_file(a, c, "report.pdf"), "C's report.pdf differs from A's after sync")
    check(not c.exists("other.pdf") and not b.exists("other.pdf"),
          "other.pdf (not requested, held on A) reached B or C")
    aw.check_alive()
    bw.check_alive()
    # the request's paths only: A's rules still hold other.pdf
    r = a.run(["held", "up"])
    check(r.rc == 0 and "other.pdf" in r.out and "report.pdf" not in r.out,
          "ferry held up on A after the request: %s" % r.describe())


@lan_scenario("lan_request_lan")
def request_lan(world):
    remote_upload(world, "B", "lan")


@lan_scenario("lan_request_relay")
def request_relay(world):
    remote_upload(world, "C", "relay")


# ---- 3: target offline, then back ----

@lan_scenario("lan_request_offline")
def request_offline(world):
    env = world.env
    a, sha = holding_a(world)
    c = world.device("C")
    aw = a.watch()
    check_held(world, a, ["report.pdf"])
    aw.stop()
    a_gone = time.monotonic()
    p = c.popen(["request-upload", "A", "report.pdf", "--wait", "--timeout", str(REQ_TIMEOUT)] +
                world.via("relay"))
    t_req = time.monotonic()
    try:
        req = wait_for(lambda: newest_request(env, world.probe(), "A"), 10 * SLOW, 0.1)
        check(req is not None, "no request recorded for A within %d s" % (10 * SLOW))
        check(req["status"] == "pending" and req["via"] == "relay" and
              req["expires"] > req["created"],
              "request to an offline A: wanted pending via relay with an expiry, got %s" %
              json.dumps(req))
        time.sleep(1.0 * SLOW)
        if p.poll() is not None:
            out, err = p.communicate()
            raise Failure("request-upload --wait ended while A is offline (rc %s): %r %r" %
                          (p.returncode, out, err))
        check("report.pdf" not in server_paths(world),
              "report.pdf reached the server while A was offline")
        t_back = time.monotonic()
        a.watch(wait_idle=False)
        out, err = p.communicate(timeout=REQ_TIMEOUT + 10 * SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    note("A offline %.1f s; request made %.1f s before A came back; A back -> C's --wait "
         "returned in %.2f s; output: %s" % (t_back - a_gone, t_back - t_req,
                                             time.monotonic() - t_back,
                                             out.strip().replace("\n", " | ")))
    check(p.returncode == 0 and says(out, "relay") and says(out, "done"),
          "C's request-upload --wait: rc %s, stdout %r, stderr %r" % (p.returncode, out, err))
    check_done(newest_request(env, world.probe(), "A"), c, a, "relay")
    c.sync()
    check(same_file(a, c, "report.pdf") and file_sha256(c.p("report.pdf")) == sha,
          "C lacks A's report.pdf after the request ran")


# ---- 4: unauthorised peers ----

class Peer:
    """A raw client of the LAN peer protocol (docs/lan.md)."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=LAN_TIMEOUT)

    def send(self, hdr, payload=b""):
        h = json.dumps(hdr).encode()
        self.raw(struct.pack(">II", len(h), len(payload)) + h + payload)

    def raw(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                b = self.s.recv(n - len(buf))
            except ConnectionResetError:
                return None
            if not b:
                return None
            buf += b
        return buf

    def recv(self):
        """(header, payload), or None once the listener closed. A silent
        listener (no message, no close within the bound) is a Failure."""
        try:
            lens = self._exact(8)
            if lens is None:
                return None
            hl, pl = struct.unpack(">II", lens)
            check(0 < hl <= 65536 and pl <= 16 * MIB, "listener sent lengths %d/%d" % (hl, pl))
            h = self._exact(hl)
            p = self._exact(pl) if pl else b""
        except socket.timeout:
            raise Failure("the LAN listener neither answered nor closed within %d s" %
                          LAN_TIMEOUT)
        if h is None or p is None:
            return None
        return json.loads(h), p

    def close(self):
        self.s.close()


def mac(key, *parts):
    return hmac.new(key, "|".join(("ferry-lan-1",) + parts).encode(), hashlib.sha256).hexdigest()


def hello(peer, target_id):
    m = peer.recv()
    check(m is not None and m[0].get("t") == "hello" and m[0].get("proto") == 1 and
          m[0].get("device") == target_id and re.fullmatch(r"[0-9a-f]{32}", m[0].get("nonce", "")),
          "listener's first message is not the hello of A: %r" % (m,))
    return m[0]["nonce"]


def refused(peer, what, upload_id):
    """After a bad opening: every message must be an error, the listener
    must close; an upload sent after it must not be accepted."""
    peer.send({"t": "upload", "id": upload_id, "paths": ["report.pdf"], "all": False})
    got = []
    while True:
        m = peer.recv()
        if m is None:
            break
        got.append(m[0])
        check(m[0].get("t") == "error",
              "%s: the listener answered %r (wanted an error and a close)" % (what, m[0]))
    peer.close()
    return got


def good_handshake(host, port, target_id, me_id, key):
    p = Peer(host, port)
    tn = hello(p, target_id)
    mn = os.urandom(16).hex()
    p.send({"t": "auth", "device": me_id, "nonce": mn, "mac": mac(key, tn, mn, me_id)})
    m = p.recv()
    check(m is not None and m[0].get("t") == "ok",
          "a correct handshake (B's id, the account's key) was not accepted: %r" % (m,))
    check(hmac.compare_digest(m[0].get("mac", ""), mac(key, mn, tn, target_id)),
          "the listener's ok MAC does not prove the key: %r" % (m[0],))
    p.send({"t": "bye"})
    p.close()
    return tn, mn


def try_handshake(host, port, target_id, me_id, key):
    """True when the listener says ok (its MAC checked), False when it
    refuses (error or close)."""
    p = Peer(host, port)
    try:
        tn = hello(p, target_id)
        mn = os.urandom(16).hex()
        p.send({"t": "auth", "device": me_id, "nonce": mn, "mac": mac(key, tn, mn, me_id)})
        m = p.recv()
        if m is None or m[0].get("t") == "error":
            return False
        check(m[0].get("t") == "ok" and hmac.compare_digest(m[0].get("mac", ""),
                                                            mac(key, mn, tn, target_id)),
              "handshake answer %r" % (m[0],))
        p.send({"t": "bye"})
        return True
    finally:
        p.close()


@lan_scenario("lan_unauthorised")
def unauthorised(world):
    env = world.env
    a, sha = holding_a(world)
    b, c = world.device("B"), world.device("C")
    aw = a.watch()
    seen = wait_lan(world, b, ["A"])
    lan = seen["A"]["lan"]
    host, port = lan["addr"], lan["port"]
    if world.topo:
        check(host == world.addr("A"), "A's LAN address %r, wanted %s" % (host, world.addr("A")))
    a_id, b_id = id_of(a), id_of(b)
    key_resp = api_get(env, token_of(b), "/api/v1/lan-key")
    key = bytes.fromhex(key_resp["key"])
    check(len(key) == 32, "lan-key: %r" % key_resp)
    check(api_get(env, token_of(c), "/api/v1/lan-key")["key"] == key_resp["key"],
          "two devices of one account got different LAN keys")
    st, _, _ = env.http("GET", "/api/v1/lan-key")
    check(st == 401, "lan-key without a token -> %d" % st)

    # another account, with its own device and key
    env.register("bob")
    bob_tok = env.login("bob", device="bobpc")
    bob_dev = [d for d in api_get(env, bob_tok, "/api/v1/devices")["devices"] if d.get("this")]
    check(len(bob_dev) == 1, "bob's devices: %r" % bob_dev)
    bob_id = bob_dev[0]["id"]
    bob_key = bytes.fromhex(api_get(env, bob_tok, "/api/v1/lan-key")["key"])
    check(bob_key != key, "two accounts share a LAN key")

    # the positive control first: the same client does get in
    tn0, mn0 = good_handshake(host, port, a_id, b_id, key)
    fake_id = 424242
    cases = []

    def attempt(what, opening):
        p = Peer(host, port)
        tn = hello(p, a_id)
        opening(p, tn)
        got = refused(p, what, fake_id)
        cases.append("%s: %s" % (what, "error %r" % got[0].get("error") if got else "closed"))

    mn = os.urandom(16).hex()
    attempt("wrong key", lambda p, tn: p.send({
        "t": "auth", "device": b_id, "nonce": mn, "mac": mac(os.urandom(32), tn, mn, b_id)}))
    attempt("no auth (upload first)", lambda p, tn: None)
    attempt("auth without mac", lambda p, tn: p.send({"t": "auth", "device": b_id, "nonce": mn}))
    attempt("replayed mac", lambda p, tn: p.send({
        "t": "auth", "device": b_id, "nonce": mn0, "mac": mac(key, tn0, mn0, b_id)}))
    attempt("MAC for another device id", lambda p, tn: p.send({
        "t": "auth", "device": b_id, "nonce": mn, "mac": mac(key, tn, mn, id_of(c))}))
    attempt("other account's device, own key", lambda p, tn: p.send({
        "t": "auth", "device": bob_id, "nonce": mn, "mac": mac(bob_key, tn, mn, bob_id)}))
    attempt("other account's device, our key", lambda p, tn: p.send({
        "t": "auth", "device": bob_id, "nonce": mn, "mac": mac(key, tn, mn, bob_id)}))
    attempt("garbage", lambda p, tn: p.raw(os.urandom(200)))
    attempt("absurd header length", lambda p, tn: p.raw(struct.pack(">II", 0xFFFFFFF0, 0)))
    attempt("chunks before auth", lambda p, tn: p.send({"t": "chunks", "hashes": ["00" * 32]}))
    # silence: the listener must give up on its own (5 s handshake bound)
    p = Peer(host, port)
    hello(p, a_id)
    t0 = time.monotonic()
    while True:
        m = p.recv()
        if m is None:
            break
        check(m[0].get("t") == "error", "a silent connector got %r" % (m[0],))
    p.close()
    note("silent connector closed after %.1f s" % (time.monotonic() - t0))
    for line in cases:
        note("refused: " + line)

    time.sleep(1.0 * SLOW)
    aw.check_alive()
    check(requests_of(env, world.probe()) == [], "requests recorded after the refused attempts: %s"
          % requests_of(env, world.probe()))
    check_held(world, a, ["report.pdf", "other.pdf"])
    good_handshake(host, port, a_id, b_id, key)  # still serving

    # the control list and key stay fresh in A's watch: a device added
    # since A's watch started gets in; removing C replaces the key, and
    # the old key opens nothing any more
    probe = [d for d in api_get(env, world.probe(), "/api/v1/devices")["devices"] if d.get("this")]
    probe_id = probe[0]["id"]
    check(wait_for(lambda: try_handshake(host, port, a_id, probe_id, key), LAN_TIMEOUT, 0.2),
          "a device added after A's watch started is refused by A's listener")
    r = b.run(["devices", "remove", "C"])
    check(r.rc == 0, "devices remove C: %s" % r.describe())
    new_key = api_get(env, world.probe(), "/api/v1/lan-key")
    check(new_key["key"] != key_resp["key"] and new_key["version"] > key_resp["version"],
          "the LAN key was not replaced when C was removed: %s -> %s" % (key_resp, new_key))
    key2 = bytes.fromhex(new_key["key"])
    check(wait_for(lambda: try_handshake(host, port, a_id, b_id, key2), LAN_TIMEOUT, 0.2),
          "A's listener does not take the new key within %d s of C's removal" % LAN_TIMEOUT)
    for who, dev_id, k in (("B with the old key", b_id, key), ("removed C, old key", id_of(c), key),
                           ("removed C, new key", id_of(c), key2)):
        check(try_handshake(host, port, a_id, dev_id, k) is False,
              "%s still passes A's handshake" % who)
    st, _, _ = env.api("GET", "/api/v1/lan-key", token_of(c))
    check(st == 401, "removed C still gets the LAN key: %d" % st)
    key = key2

    # the API: another account cannot see or move our requests
    st, data, _ = env.api("POST", "/api/v1/requests", world.probe(), {
        "target": "A", "paths": ["report.pdf"], "via": "lan"})
    check(st == 201, "POST /api/v1/requests (B -> A, via lan) -> %d %r" % (st, data[:300]))
    rid = json.loads(data)["request"]["id"]
    check(not [r for r in requests_of(env, bob_tok) if r["id"] == rid],
          "bob lists alice's request")
    st, data, _ = env.api("GET", "/api/v1/requests?id=%d" % rid, bob_tok)
    check(st == 404 or (st == 200 and json.loads(data)["requests"] == []),
          "bob GET ?id=%d -> %d %r" % (rid, st, data[:300]))
    for tok, who, codes in ((bob_tok, "bob", (403, 404)), (token_of(b), "B (not the target)",
                                                           (403,))):
        st, data, _ = env.api("POST", "/api/v1/requests/update", tok,
                              {"id": rid, "status": "accepted"})
        check(st in codes, "%s updating A's request -> %d %r (wanted %s)" % (who, st, data[:200],
                                                                           codes))
    st, data, _ = env.api("POST", "/api/v1/requests", bob_tok,
                          {"target": a_id, "paths": ["report.pdf"], "via": "relay"})
    check(st == 404, "bob targeting alice's device A -> %d %r" % (st, data[:200]))
    st, data, _ = env.http("GET", "/api/v1/requests")
    check(st == 401, "GET /api/v1/requests without a token -> %d" % st)
    r = requests_of(env, world.probe(), "?id=%d" % rid)
    check(len(r) == 1 and r[0]["status"] == "pending",
          "alice's request after bob's and C's attempts: %s" % r)
    check_held(world, a, ["report.pdf"])


# ---- 5: chunks over the LAN ----

@lan_scenario("lan_chunks")
def chunks(world):
    env = world.env
    size = 8 * MIB if ASAN else 24 * MIB
    changed = 1 * MIB if ASAN else 3 * MIB
    a, b, c = world.device("A"), world.device("B"), world.device("C")
    # A's and C's watches report their LAN listeners (address, prefix) to
    # the server; their `ferry sync` rounds later find (or not) a LAN peer
    # from these entries
    aw, cw = a.watch(), c.watch()
    wait_lan(world, b, ["A", "C"])
    aw.stop()
    cw.stop()
    lan_a = by_name(devices_json(a))["A"].get("lan")
    note("A's lan entry after its watch stopped: %s" % json.dumps(lan_a))
    # B's copy goes up whole, then B changes its middle under up rules
    # `none` (held: the server keeps the first version, B's file lacks the
    # chunks of the changed region)
    write_big(b.p("big.bin"), size, seed=21)
    bw = b.watch()
    check("big.bin" in server_paths(world), "B's watch did not upload big.bin")
    v1 = file_sha256(b.p("big.bin"))
    r = b.run(["rules", "set", "up", "none"])
    check(r.rc == 0, "rules set up none on B: %s" % r.describe())
    time.sleep(0.5 * SLOW)  # the watch rereads rules.json
    with open(b.p("big.bin"), "r+b") as f:
        f.seek(size // 3)
        f.write(os.urandom(changed))
    check(wait_for(lambda: "big.bin" in b.run(["held", "up"]).out, 10 * SLOW, 0.3),
          "B's changed big.bin is not held: %s" % b.run(["held", "up"]).describe())
    bw.wait_idle()
    check(file_sha256(b.p("big.bin")) != v1, "B's big.bin was replaced by the server's")
    wait_lan(world, a, ["A", "B"])

    t0 = time.monotonic()
    r = a.run(["-v", "sync", "--json"])
    took = time.monotonic() - t0
    s = json_out(r, "ferry sync --json on A")
    for line in r.err.splitlines():
        if "LAN" in line:
            note("A's sync: " + line.strip())
    check(a.exists("big.bin") and file_sha256(a.p("big.bin")) == v1,
          "A's big.bin is not the server's version")
    lan, down = s.get("bytes_lan"), s.get("bytes_down")
    check(isinstance(lan, int), "sync --json has no bytes_lan: %s" % r.out)
    note("A (same LAN as B): %d bytes from B over the LAN, %d bytes from the server "
         "(file %d, changed region %d) in %.2f s" % (lan, down, size, changed, took))
    slack = 2 * 256 * KIB + 512 * KIB  # two boundary chunks + HTTP/journal overhead
    check(size - changed - 2 * 256 * KIB <= lan <= size + 64 * KIB,
          "bytes_lan %d: wanted about %d (the file minus the changed region)" % (
              lan, size - changed))
    check(changed // 2 <= down <= changed + slack,
          "A took %d bytes from the server: wanted about the changed region (%d) that B "
          "lacks" % (down, changed))

    # C, on the other subnet, gets everything from the server
    t0 = time.monotonic()
    r = c.run(["-v", "sync", "--json"])
    s = json_out(r, "ferry sync --json on C")
    for line in r.err.splitlines():
        if "LAN" in line:
            note("C's sync: " + line.strip())
    took = time.monotonic() - t0
    check(file_sha256(c.p("big.bin")) == v1, "C's big.bin is not the server's version")
    note("C (other subnet): %s bytes over the LAN, %d bytes from the server in %.2f s" % (
        s.get("bytes_lan"), s["bytes_down"], took))
    if world.topo:
        check(s.get("bytes_lan") == 0, "C (other subnet) got %s bytes over the LAN" %
              s.get("bytes_lan"))
    else:
        note("loopback variant: every device is on 127.0.0.0/8, C's bytes_lan not checked")
    check(s["bytes_down"] >= size, "C received %d bytes for a %d-byte file" % (
        s["bytes_down"], size))
    bw.check_alive()


# ---- 6: the control list ----

@lan_scenario("lan_devices")
def devices(world):
    a, b, c = world.device("A"), world.device("B"), world.device("C")
    watchers = [d.watch() for d in (a, b, c)]
    ids = {d.name: id_of(d) for d in (a, b, c)}
    for d in (a, b, c):
        seen = wait_lan(world, d, ["A", "B", "C"])
        check(wait_for(lambda: all(x["online"] for x in by_name(devices_json(d)).values()),
                       WATCH_TIMEOUT, 0.2),
              "%s does not see all three online: %s" % (d.name, devices_json(d)))
        for n in ("A", "B", "C"):
            x = seen[n]
            check(x["id"] == ids[n], "%s sees %s with id %s" % (d.name, n, x["id"]))
            check(isinstance(x["lan"].get("port"), int) and 0 < x["lan"]["port"] < 65536,
                  "%s sees %s's lan %r" % (d.name, n, x["lan"]))
            if world.topo:
                want = world.addr(n)
                net = "10.77.2.0/24" if n == "C" else "10.77.1.0/24"
                check(x["lan"]["addr"] == want and x["lan"].get("prefix") == 24 and
                      x.get("subnet") == net,
                      "%s sees %s as %r / subnet %r; wanted %s/24 in %s" % (
                          d.name, n, x["lan"], x.get("subnet"), want, net))
        txt = d.run(["devices"])
        for n in ("A", "B", "C"):
            x = seen[n]
            check("%s:%d" % (x["lan"]["addr"], x["lan"]["port"]) in txt.out and
                  x["subnet"] in txt.out,
                  "ferry devices on %s does not show %s's lan %s:%d / %s: %s" % (
                      d.name, n, x["lan"]["addr"], x["lan"]["port"], x["subnet"],
                      txt.describe()))
    if not world.topo:
        note("loopback variant: addresses and subnets not checked")
    r = a.run(["devices", "rename", "C", "phone"])
    check(r.rc == 0, "devices rename C phone on A: %s" % r.describe())
    for d in (b, c):
        names = {x["id"]: x["name"] for x in devices_json(d)["devices"]}
        check(names.get(ids["C"]) == "phone" and "C" not in names.values(),
              "%s after the rename: %s" % (d.name, names))
    r = b.run(["devices", "rename", "phone", "A"])
    check(r.rc == 1 and "A" in r.err, "renaming to a taken name: %s" % r.describe())
    r = b.run(["devices", "rename", "nosuch", "x"])
    check(r.rc == 1, "renaming an unknown device: %s" % r.describe())
    # the renamed device keeps syncing under its new name
    c.write("from-phone.txt", "hi\n")
    check(wait_for(lambda: a.exists("from-phone.txt") and b.exists("from-phone.txt"),
                   WATCH_TIMEOUT, 0.1), "C's file did not reach A and B after the rename")
    for w in watchers:
        w.check_alive()
