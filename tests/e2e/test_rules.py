"""Per-device rules (issue 6) end to end: the office scenario with three
devices checked file by file (office uploads only Word documents, home
downloads only Work/, the phone only pictures; the film moved later with
push/pull); each rule kind alone, combined and OR-ed, both directions;
`held` lists, push/pull of a folder; `ask` on a scripted terminal (a pty)
and without one; both change-detection modes; .ferryignore (also under
`watch`, and for names from the server); download rules never deleting
local files (`prune` to .ferry/trash/), upload rules never deleting on the
server. The server's files are read with `GET /api/v1/files`; files "from
elsewhere" are put through the API with a token of their own."""

import hashlib
import json
import os
import re
import struct
import time

from harness import (ASAN, SLOW, check, ferry_hash, json_out, note, pty_run, scenario, sync_all,
                     tail, wait_for, write_big)
from watch_harness import WATCH_TIMEOUT

KIB = 1 << 10
MIB = 1 << 20
FILM = (2 if ASAN else 8) * MIB


# ---------------------------------------------------------------- helpers

def ok(r, what):
    check(r.rc == 0, "%s: %s" % (what, r.describe()))
    return r


def rules(dev, *args):
    return ok(dev.run(["rules"] + list(args)), "ferry rules %s on %s" % (" ".join(args), dev.name))


def token_of(dev):
    with open(dev.p(".ferry/config.json")) as f:
        return json.load(f)["token"]


def server_files(env, token):
    """{path: entry} of the live entries on the server."""
    st, body, _ = env.api("GET", "/api/v1/files", token)
    check(st == 200, "GET /api/v1/files -> %d %r" % (st, body[:300]))
    return {e["path"]: e for e in json.loads(body)["files"] if not e.get("deleted")}


def server_paths(env, dev):
    """Paths of the regular files the server holds for dev's account."""
    return {p for p, e in server_files(env, token_of(dev)).items() if e["kind"] == "file"}


def local_files(dev):
    return {p for p, v in dev.snapshot().items() if v[0] == "file"}


def sha(data):
    return hashlib.sha256(data).hexdigest()


def api_put(env, token, path, data):
    """Puts a small file (one chunk) on the server as another device would."""
    h = hashlib.sha256(data)
    if data:
        frame = h.digest() + b"\x00" + struct.pack(">I", len(data)) + data
        st, body, _ = env.api("POST", "/api/v1/chunks", token, frame,
                              {"Content-Type": "application/x-ferry-chunks"})
        check(st == 200, "POST /chunks -> %d %r" % (st, body[:200]))
    cur = server_files(env, token).get(path)
    change = {"op": "put", "path": path, "base": cur["seq"] if cur else 0, "kind": "file",
              "size": len(data), "mtime_ns": time.time_ns(), "mode": 420, "hash": ferry_hash(data),
              "chunks": [[h.hexdigest(), len(data)]] if data else []}
    st, body, _ = env.api("POST", "/api/v1/commit", token, {"changes": [change]})
    ok_ = st == 200 and json.loads(body)["results"][0]["status"] == "ok"
    check(ok_, "commit %s -> %d %r" % (path, st, body[:300]))


def held(dev, direction=None):
    """`ferry held [up|down] --json` as {(direction, path): item}; every item
    must carry path, size, direction and a reason."""
    args = ["held"] + ([direction] if direction else []) + ["--json"]
    out = json_out(dev.run(args), "ferry %s on %s" % (" ".join(args), dev.name))
    check(isinstance(out, dict) and isinstance(out.get("held"), list),
          "held --json on %s: %s" % (dev.name, tail(json.dumps(out), 400)))
    res = {}
    for i in out["held"]:
        miss = [k for k in ("path", "size", "direction", "reason", "kind") if k not in i]
        check(not miss, "held --json item on %s lacks %s: %s" % (dev.name, miss, i))
        check(i["direction"] in ([direction] if direction else ["up", "down"]) and
              isinstance(i["reason"], str) and i["reason"].strip(),
              "`%s` on %s listed %s" % (" ".join(args), dev.name, i))
        res[(i["direction"], i["path"])] = i
    return res


def held_paths(dev, direction, universe=None):
    """Held files (not directories) of one direction; only those in
    universe, when given."""
    ps = {p for (d, p), i in held(dev, direction).items()
          if d == direction and i.get("kind") != "dir"}
    return ps & set(universe) if universe is not None else ps


def check_set(got, want, what):
    got, want = set(got), set(want)
    check(got == want, "%s: missing %s, unexpected %s" %
          (what, sorted(want - got), sorted(got - want)))


def write_files(dev, files):
    for rel, size in files.items():
        if size > 64 * KIB:
            write_big(dev.p(rel), size, seed=len(rel) * 7 + size)
        else:
            dev.write(rel, (rel + "\n").encode() * (size // (len(rel) + 1) + 1))
            os.truncate(dev.p(rel), size)


# ---------------------------------------------------------------- office

OFFICE_DOCS = ["Work/report.docx", "Work/budget.doc", "Work/minutes.DOCX", "letter.docx"]
OFFICE_REST = (["film.mkv", "Work/spec.pdf", "ebooks/dune.epub", "ebooks/manual.pdf",
                "ebooks/poems.mobi"] + ["photos/IMG_%04d.jpg" % i for i in range(1, 11)])
HOME_OWN = ["Work/plan.txt", "Holiday/beach.jpg", "Holiday/notes.txt"]
PHONE_OWN = ["Camera/IMG_9001.jpg"]


@scenario("rules_office_three_devices")
def office(env):
    env.register("alice")
    o, h, p = env.device("office"), env.device("home"), env.device("phone")
    rules(o, "set", "up", "type", "doc,docx")
    rules(h, "set", "down", "folder", "Work")
    rules(p, "set", "down", "type", "images")
    for i, rel in enumerate(OFFICE_DOCS + OFFICE_REST):
        if rel == "film.mkv":
            write_big(o.p(rel), FILM, seed=99)
        else:
            o.write(rel, ("%s %d\n" % (rel, i)).encode() * (40 + 97 * i))
    for rel in HOME_OWN + PHONE_OWN:
        (h if rel in HOME_OWN else p).write(rel, os.urandom(30000))
    for _ in range(2):
        sync_all(o, h, p)

    everything = set(OFFICE_DOCS + OFFICE_REST + HOME_OWN + PHONE_OWN)
    check_set(server_paths(env, o), OFFICE_DOCS + HOME_OWN + PHONE_OWN, "server after the rounds")
    check_set(local_files(o), everything, "office folder (downloads everything)")
    check_set(local_files(h), HOME_OWN + [x for x in OFFICE_DOCS if x.startswith("Work/")],
              "home folder (only Work/ comes down)")
    check_set(local_files(p), PHONE_OWN + ["Holiday/beach.jpg"], "phone folder (only images)")
    for rel in OFFICE_DOCS[:3]:
        check(h.read(rel) == o.read(rel), "home's %s differs from the office's" % rel)

    oh = held(o)
    check_set(held_paths(o, "up"), OFFICE_REST, "office `held up`")
    check(not [k for k in oh if k[0] == "down"], "office holds downloads: %s" % sorted(oh))
    film = oh[("up", "film.mkv")]
    check(film["size"] == FILM, "held film size %s, want %d" % (film["size"], FILM))
    check("mkv" in film["reason"].lower(), "office's reason for the film: %r" % film["reason"])
    hh = held(h)
    check_set(held_paths(h, "down"), ["letter.docx"] + PHONE_OWN, "home `held down`")
    check(not [k for k in hh if k[0] == "up"], "home holds uploads: %s" % sorted(hh))
    check("Work" in hh[("down", "letter.docx")]["reason"],
          "home's reason for letter.docx: %r" % hh[("down", "letter.docx")]["reason"])
    check_set(held_paths(p, "down"),
              OFFICE_DOCS + ["Work/plan.txt", "Holiday/notes.txt"], "phone `held down`")
    check_set(held_paths(p, "up"), [], "phone `held up`")
    st = json_out(o.run(["status", "--json"]), "status --json at the office")
    check(st.get("held") == {"up": len(OFFICE_REST), "down": 0} and
          st.get("rules", {}).get("up") == ["type doc,docx"] and st["pending"]["put"] == 0,
          "office `status --json`: held %s, rules %s, pending %s (held files are not pending)"
          % (st.get("held"), st.get("rules"), st.get("pending")))

    # The film, now: pushed at the office, pulled at home.
    r = ok(o.run(["push", "film.mkv"], cwd=o.dir), "push film.mkv at the office")
    check("film.mkv" in r.out, "push did not say what moved: %s" % r.describe())
    check("film.mkv" in server_paths(env, o), "the pushed film is not on the server")
    check(("up", "film.mkv") not in held(o, "up"), "the film is still held at the office")
    h.sync()
    check(not h.exists("film.mkv"), "home downloaded the film without a pull")
    check(("down", "film.mkv") in held(h, "down"), "home does not list the film as held")
    r = ok(h.run(["pull", "film.mkv"], cwd=h.dir), "pull film.mkv at home")
    check("film.mkv" in r.out, "pull did not say what moved: %s" % r.describe())
    check(h.read("film.mkv") == o.read("film.mkv"), "home's pulled film differs")
    check(("down", "film.mkv") not in held(h, "down"), "the film is still held at home")

    # Both ways from now on: home edits it, then the office does.
    data = bytearray(h.read("film.mkv"))
    data[FILM // 2:FILM // 2 + 4096] = os.urandom(4096)
    h.write("film.mkv", bytes(data))
    sync_all(h, o)
    check(o.read("film.mkv") == bytes(data), "home's edit of the film did not reach the office")
    with open(o.p("film.mkv"), "ab") as f:
        f.write(b"office appends\n")
    sync_all(o, h)
    check(h.read("film.mkv") == o.read("film.mkv"), "the office's edit did not reach home")
    p.sync()
    check(not p.exists("film.mkv"), "the phone downloaded the film")
    check_set(server_paths(env, o), OFFICE_DOCS + HOME_OWN + PHONE_OWN + ["film.mkv"],
              "server at the end (no photo or e-book ever left the office)")


# ---------------------------------------------------------------- each kind

UNIVERSE = {
    "Work/report.docx": 2000, "Work/Sub/deep.PDF": 3000, "Work/photo.JPG": 5000,
    "Workshop/tool.txt": 100, "photos/a.jpg": 4000, "photos/b.PNG": 4100,
    "photos/c.jpeg": 4200, "photos/notes.txt": 50, "film.mkv": 300 * KIB,
    "big.bin": 150 * KIB, "edge.bin": 100 * KIB, "edge1.bin": 100 * KIB + 1, "notes.txt": 20,
    "README": 10, "jpg": 12, "x.jpg.txt": 14, ".png": 9,
}
IMAGES = ["Work/photo.JPG", "photos/a.jpg", "photos/b.PNG", "photos/c.jpeg"]
SMALL = [x for x, s in UNIVERSE.items() if s <= 100 * KIB]  # max-size 100K: K is 1024
KINDS = [  # (name, rules as lists of words (first set, then add), selected files)
    ("folder", [["folder", "Work"]], ["Work/report.docx", "Work/Sub/deep.PDF", "Work/photo.JPG"]),
    ("type", [["type", "JPG,png"]], ["Work/photo.JPG", "photos/a.jpg", "photos/b.PNG"]),
    ("group", [["type", "images"]], IMAGES),
    ("maxsize", [["max-size", "100K"]], SMALL),
    ("combined", [["folder", "Work", "type", "documents"]],
     ["Work/report.docx", "Work/Sub/deep.PDF"]),
    ("or", [["folder", "photos"], ["type", "docx"]],
     ["photos/a.jpg", "photos/b.PNG", "photos/c.jpeg", "photos/notes.txt", "Work/report.docx"]),
]


def apply_rules(dev, direction, rule_list):
    rules(dev, "set", direction, *rule_list[0])
    for more in rule_list[1:]:
        rules(dev, "add", direction, *more)


@scenario("rules_each_kind_down")
def each_kind_down(env):
    env.register("alice")
    u = env.device("uploader")
    write_files(u, UNIVERSE)
    u.sync()
    check_set(server_paths(env, u), UNIVERSE, "server after the upload")
    everyone = env.device("all")
    devs = []
    for name, rl, want in KINDS:
        d = env.device(name)
        apply_rules(d, "down", rl)
        devs.append((d, want))
    everyone.sync()
    check_set(local_files(everyone), UNIVERSE, "device with the default rule `all`")
    for (d, want), kind in zip(devs, KINDS):
        d.sync()
        check_set(local_files(d), want, "device %s (down rules %s)" % (d.name, kind[1]))
        for rel in want:
            check(d.read(rel) == u.read(rel), "%s: %s differs" % (d.name, rel))
        check_set(held_paths(d, "down", UNIVERSE), set(UNIVERSE) - set(want),
                  "device %s `held down`" % d.name)
    # A second round moves nothing more, and an edit of a selected file
    # arrives while one of a held file does not.
    u.write("Work/report.docx", "edited\n")
    u.write("notes.txt", "edited too\n")
    u.sync()
    for d, want in devs:
        d.sync()
        check_set(local_files(d), want, "device %s after the edits" % d.name)
        if "Work/report.docx" in want:
            check(d.read("Work/report.docx") == b"edited\n", "%s missed the edit" % d.name)
    # Rules that select every file again bring the held ones in one round.
    for d, _ in devs[:2]:
        rules(d, "set", "down", "all")
        d.sync()
        check_set(local_files(d), UNIVERSE, "device %s after `rules set down all`" % d.name)
        check_set(held_paths(d, "down"), [], "device %s `held down` under `all`" % d.name)


@scenario("rules_each_kind_up")
def each_kind_up(env):
    devs = []
    for name, rl, want in KINDS:
        env.register("u" + name)
        d = env.device(name, user="u" + name)
        write_files(d, UNIVERSE)
        apply_rules(d, "up", rl)
        devs.append((d, want))
    for (d, want), kind in zip(devs, KINDS):
        d.sync()
        check_set(server_paths(env, d), want, "server of %s (up rules %s)" % (d.name, kind[1]))
        hp = {x: i["size"] for (_, x), i in held(d, "up").items() if i["kind"] == "file"}
        check(hp == {x: UNIVERSE[x] for x in set(UNIVERSE) - set(want)},
              "%s `held up` (path: size): %s" % (d.name, hp))
        d.sync()
        check_set(server_paths(env, d), want, "server of %s after a second round" % d.name)


@scenario("rules_commands")
def commands(env):
    env.register("alice")
    a = env.device("A")
    shown = rules(a, "show").out
    check(re.search(r"\ball\b", shown), "`rules show` before any change lacks `all`: %r" % shown)
    rules(a, "set", "up", "type", "docx")
    rules(a, "add", "up", "folder", "My Work")
    rules(a, "add", "up", "max-size", "1M")
    rules(a, "set", "down", "folder", "Work", "type", "documents")
    shown = rules(a, "show").out
    for want in ("type docx", "max-size 1M", "folder Work type documents", '"My Work"'):
        check(want in shown, "`rules show` lacks %r: %r" % (want, shown))
    check(os.path.exists(a.p(".ferry/rules.json")), "no .ferry/rules.json")
    rules(a, "remove", "up", "3")
    shown2 = rules(a, "show").out
    check("max-size 1M" not in shown2 and "type docx" in shown2, "remove 3: %r" % shown2)
    for bad, rc in ((["set", "up", "colour", "red"], 2), (["set", "up", "type"], 2),
                    (["set", "up", "max-size", "lots"], 2), (["set", "down", "folder", "../x"], 2),
                    (["set", "up", "type", "pdf", "type", "doc"], 2), (["remove", "up", "9"], 1),
                    (["remove", "up", "0"], 2), (["set", "sideways", "all"], 2)):
        r = a.run(["rules"] + bad)
        check(r.rc == rc and r.err.strip(), "`rules %s` should fail with %d and a message: %s" %
              (" ".join(bad), rc, r.describe()))
    check(rules(a, "show").out == shown2, "a failed `rules` command changed the rules")
    js = json_out(a.run(["rules", "show", "--json"]), "rules show --json")
    check(js.get("mode") == "index" and js.get("up") == ["type docx", 'folder "My Work"'] and
          js.get("down") == ["folder Work type documents"] and js.get("ferryignore") is False
          and js.get("held") == {"up": 0, "down": 0}, "rules show --json: %s" % js)
    rules(a, "set", "down", "folder", "Work", "or", "type", "images", "max-size", "50M")
    js = json_out(a.run(["rules", "show", "--json"]), "rules show --json")
    check(js["down"] == ["folder Work", "type images max-size 50M"], "`or` on the command line: %s"
          % js["down"])
    st = ok(a.run(["status"]), "status").out
    check("type images max-size 50M" in st, "`ferry status` does not show the rules: %r" % st)
    rules(a, "mode", "since-last-sync")
    check("mode: since-last-sync" in rules(a, "show").out, "`rules show` does not show the mode")
    r = a.run(["rules", "mode", "sometimes"])
    check(r.rc == 2, "`rules mode sometimes`: %s" % r.describe())
    # An empty set holds everything.
    rules(a, "set", "up", "none")
    a.write("x.txt", "x\n")
    a.sync()
    check_set(server_paths(env, a), [], "server after `rules set up none`")
    check_set(held_paths(a, "up"), ["x.txt"], "held after `rules set up none`")


# ---------------------------------------------------------------- held, push/pull folders

@scenario("rules_held_push_pull_folder")
def held_push_pull(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    rules(a, "set", "up", "type", "txt")
    rules(b, "set", "down", "folder", "docs")
    photos = ["photos/%d.jpg" % i for i in range(1, 6)] + ["photos/sub/6.jpg"]
    for i, x in enumerate(photos):
        a.write(x, os.urandom(1000 + i))
    a.write("notes.txt", "notes\n")
    a.write("docs/read.txt", "read me\n")
    a.write("clip.mov", os.urandom(5000))
    a.sync()
    hu = {x: i["size"] for (_, x), i in held(a, "up").items() if i["kind"] == "file"}
    check(hu == dict({x: 1000 + i for i, x in enumerate(photos)}, **{"clip.mov": 5000}),
          "A `held up --json` (path: size): %s" % hu)
    check_set(held_paths(a, "down"), [], "A `held down`")
    text = ok(a.run(["held"]), "held (text)").out
    for x in photos + ["clip.mov"]:
        check(x in text, "`ferry held` text lacks %s: %r" % (x, tail(text)))
    check("up" in text, "`ferry held` text does not say the direction: %r" % tail(text))

    r = ok(a.run(["push", "photos"], cwd=a.dir), "push photos")
    for x in photos:
        check(x in r.out, "`push photos` did not list %s: %s" % (x, r.describe()))
    check_set(server_paths(env, a), photos + ["notes.txt", "docs/read.txt"], "server after push")
    check_set(held_paths(a, "up"), ["clip.mov"], "A `held up` after push")
    r = a.run(["push", "photos"], cwd=a.dir)
    check(r.rc == 1 and r.err.strip(), "`push photos` with nothing held: %s" % r.describe())
    r = a.run(["push", "nothing/here"], cwd=a.dir)
    check(r.rc == 1 and r.err.strip(), "push of a path that does not exist: %s" % r.describe())

    b.sync()
    check_set(local_files(b), ["docs/read.txt"], "B (down folder docs)")
    hd = {x: i["size"] for (_, x), i in held(b, "down").items() if i["kind"] == "file"}
    check(hd == dict({x: 1000 + i for i, x in enumerate(photos)}, **{"notes.txt": 6}),
          "B `held down --json` (path: size): %s" % hd)
    r = ok(b.run(["pull", "photos"], cwd=b.dir), "pull photos")
    for x in photos:
        check(x in r.out, "`pull photos` did not list %s: %s" % (x, r.describe()))
        check(b.read(x) == a.read(x), "B's pulled %s differs" % x)
    check_set(held_paths(b, "down"), ["notes.txt"], "B `held down` after pull")
    r = b.run(["pull", "photos/sub"], cwd=b.dir)
    check(r.rc == 1 and r.err.strip(), "pull with nothing held: %s" % r.describe())

    # Pushed and pulled files sync both ways; a new file in the folder is
    # held again (the override was for the files, not the folder).
    b.write("photos/2.jpg", "edited on B\n")
    sync_all(b, a)
    check(a.read("photos/2.jpg") == b"edited on B\n", "B's edit of a pulled file did not reach A")
    a.write("photos/1.jpg", "edited on A\n")
    a.write("photos/7.jpg", os.urandom(700))
    sync_all(a, b)
    check(b.read("photos/1.jpg") == b"edited on A\n", "A's edit of a pushed file did not reach B")
    check("photos/7.jpg" not in server_paths(env, a), "a new file under a pushed folder went up")
    check_set(held_paths(a, "up"), ["clip.mov", "photos/7.jpg"], "A `held up` at the end")


# ---------------------------------------------------------------- ask


def ask_list(text, paths, direction):
    """{path: number} from the last numbered ask list in text (the first
    number on the line naming the path, which must also say direction)."""
    res = {}
    for line in text.splitlines():
        for x in paths:
            if re.search(r"(^|\s)%s(\s|$)" % re.escape(x), line):
                m = re.match(r"\s*\[?(\d+)", line)
                check(m, "ask list line without a number: %r" % line)
                check(re.search(r"\b%s\b" % direction, line),
                      "ask list line does not say %r: %r" % (direction, line))
                res[x] = int(m.group(1))
    check_set(res, paths, "files numbered in the ask list %r" % tail(text, 800))
    return res


def ask_sync(dev, pending, direction, choose):
    """`ferry sync` on a pty: waits for the list of the pending ask files,
    types choose({path: number})."""
    rc, out, err, answered = pty_run(
        dev, ["sync"], lambda text: choose(ask_list(text, pending, direction)), pending)
    check(answered and rc == 0, "sync on a pty (listing %s): answered %s, rc %s, out %r, err %r"
          % (sorted(pending), answered, rc, tail(out), tail(err)))


@scenario("rules_ask_terminal")
def ask(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    rules(a, "set", "up", "type", "txt")
    rules(a, "add", "up", "ask")
    asks = ["a1.pdf", "a2.pdf", "pic.jpg", "song.ogg", "more/z.doc"]
    for x in asks:
        a.write(x, os.urandom(2000))
    a.write("plain.txt", "selected by type txt\n")

    # No terminal: held with reason "ask", listed by `ferry held`.
    a.sync()
    check_set(server_paths(env, a), ["plain.txt"], "server after a sync without a terminal")
    hu = {x: i["reason"] for (_, x), i in held(a, "up").items() if i["kind"] == "file"}
    check(hu == {x: "ask" for x in asks}, "held without a terminal (path: reason): %s" % hu)
    # --no-ask on a terminal: no question (nothing is typed: a question
    # would hang it until the bound), nothing moves.
    rc, out, err, _ = pty_run(a, ["sync", "--no-ask"], timeout=30 * SLOW)
    check(rc == 0, "sync --no-ask on a pty: rc %s, out %r, err %r" % (rc, tail(out), tail(err)))
    check_set(server_paths(env, a), ["plain.txt"], "server after sync --no-ask")

    # By number, then by pattern, then none, then all.
    ask_sync(a, asks, "up", lambda n: "%d,%d" % (n["a1.pdf"], n["pic.jpg"]))
    check_set(server_paths(env, a), ["plain.txt", "a1.pdf", "pic.jpg"], "server after '1,3'")
    check_set(held_paths(a, "up"), ["a2.pdf", "song.ogg", "more/z.doc"], "held after numbers")
    ask_sync(a, ["a2.pdf", "song.ogg", "more/z.doc"], "up", lambda n: "*.pdf")
    check_set(server_paths(env, a), ["plain.txt", "a1.pdf", "pic.jpg", "a2.pdf"],
              "server after '*.pdf'")
    ask_sync(a, ["song.ogg", "more/z.doc"], "up", lambda n: "n")
    check_set(held_paths(a, "up"), ["song.ogg", "more/z.doc"], "held after 'n'")
    ask_sync(a, ["song.ogg", "more/z.doc"], "up", lambda n: "a")
    check_set(server_paths(env, a), ["plain.txt"] + asks, "server after 'a'")
    check_set(held_paths(a, "up"), [], "held after 'a'")
    b.sync()
    check_set(local_files(b), ["plain.txt"] + asks, "B after A's answers")

    # Download side: a range.
    c = env.device("C")
    rules(c, "set", "down", "ask")
    c.sync()
    every = ["plain.txt"] + asks
    check_set(local_files(c), [], "C (down: ask) after a sync without a terminal")
    check_set(held_paths(c, "down", every), every, "C `held down`")
    chosen = []

    def pick(n):
        # two files with consecutive numbers, as a range "i-j"
        by = {v: x for x, v in n.items()}
        i = min(v for v in by if v + 1 in by)
        chosen.extend([by[i], by[i + 1]])
        return "%d-%d" % (i, i + 1)
    ask_sync(c, every, "down", pick)
    check_set(local_files(c), chosen, "C after answering a range")
    check(all(c.read(x) == a.read(x) for x in chosen), "C's downloads differ from A's files")
    check_set(held_paths(c, "down", every), set(every) - set(chosen), "C `held down` after a range")


# ---------------------------------------------------------------- change detection

OLD_NS = 978307200 * 10**9  # 2001-01-01


@scenario("rules_change_detection")
def change_detection(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    for x in ("x.txt", "y.txt", "z.txt", "w.txt", "v.txt"):
        a.write(x, "v1 of %s\n" % x)
    sync_all(a, b)
    # index (the default): a delete and an edit with an old mtime.
    a.write("y.txt", "V2 of y.txt\n", mtime_ns=OLD_NS)
    a.remove("x.txt")
    sync_all(a, b)
    check("x.txt" not in server_paths(env, a) and not b.exists("x.txt"),
          "index mode: the delete did not propagate")
    check(b.read("y.txt") == b"V2 of y.txt\n", "index mode: an edit with an old mtime was missed")
    check(os.stat(b.p("y.txt")).st_mtime_ns == OLD_NS, "y.txt's old mtime did not travel")

    rules(a, "mode", "since-last-sync")
    rules(b, "mode", "since-last-sync")
    a.sync()
    # Straight after the round (no sleep): these changes are after it.
    a.write("new.txt", "new since\n")
    a.write("w.txt", "V2 of w.txt, longer\n")
    a.remove("z.txt")
    r = a.sync()
    srv = server_files(env, token_of(a))
    check("new.txt" in srv, "since-last-sync: a new file was not uploaded (%s)" % r.out.strip())
    check(srv["w.txt"]["hash"] == ferry_hash(b"V2 of w.txt, longer\n"),
          "since-last-sync: an edit right after the last upload was not uploaded")
    check("z.txt" in srv, "since-last-sync: a delete propagated (documented: it does not)")
    # An edit with an old mtime still has a new ctime.
    time.sleep(0.05)
    a.write("v.txt", "V2 of v.txt\n", mtime_ns=OLD_NS)
    a.sync()
    check(server_files(env, token_of(a))["v.txt"]["hash"] == ferry_hash(b"V2 of v.txt\n"),
          "since-last-sync: an edit with an old mtime (new ctime) was not uploaded")
    b.sync()
    check((b.read("new.txt"), b.read("w.txt"), b.read("v.txt")) == (
        b"new since\n", b"V2 of w.txt, longer\n", b"V2 of v.txt\n"), "B missed changes (since)")
    check(b.exists("z.txt"), "since-last-sync: B lost z.txt")
    # B uploads in this mode too; a second round on A changes nothing.
    b.write("from-b.txt", "b\n")
    sync_all(b, a)
    check(a.read("from-b.txt") == b"b\n", "B's file did not reach A")
    check("z.txt" in server_paths(env, a), "a later since-last-sync round deleted z.txt")

    # A file held by the rules goes up once they select it, although it
    # was not modified since the last upload.
    rules(a, "set", "up", "type", "txt")
    a.write("held.jpg", "held\n")
    a.sync()
    a.write("later.txt", "later\n")
    a.sync()
    check("held.jpg" not in server_paths(env, a), "held.jpg went up under `type txt`")
    rules(a, "set", "up", "all")
    a.sync()
    check("held.jpg" in server_paths(env, a), "since-last-sync: a held file did not go up once "
          "the rules selected it (it is older than the last upload)")

    # Back to index: the missed delete is found now.
    rules(a, "mode", "index")
    sync_all(a, b)
    check("z.txt" not in server_paths(env, a), "index mode did not find the earlier delete")
    check(not b.exists("z.txt"), "B still has z.txt after index mode found the delete")


# ---------------------------------------------------------------- .ferryignore

IGNORE = """# comment: patterns in gitignore syntax
*.log
!keep.log
build/
/root-only.txt
**/cache/**
docs/**/*.out
notes/*.bak
secret?.txt
!Thumbs.db
"""
IGNORED = ["app.log", "sub/deep/trace.log", "build/out.o", "sub/build/y.o", "root-only.txt",
           "cache/top.bin", "x/cache/a/b.bin", "docs/c.out", "docs/a/b/c.out", "notes/a.bak",
           "secret1.txt", "sub/secretX.txt", ".DS_Store", "sub/.DS_Store", "x.swp",
           "report.txt~", "partial.tmp"]
KEPT = ["keep.log", "notbuild/build", "sub/root-only.txt", "cachefile.txt", "other/c.out",
        "other/docs/c.out", "notes/deep/b.bak", "secret12.txt", "Thumbs.db", "sub/Thumbs.db",
        "docs/readme.md", "main.c", ".ferryignore"]


@scenario("rules_ferryignore")
def ferryignore(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    a.write(".ferryignore", IGNORE)
    for x in IGNORED + KEPT:
        if x != ".ferryignore":
            a.write(x, "content of %s\n" % x)
    a.sync()
    check_set(server_paths(env, a), KEPT, "server after A's sync")
    check_set(held_paths(a, "up"), [], "A `held up` (ignored files are not held)")
    ls = ok(a.run(["ls"]), "ls").out
    for x in IGNORED:
        check(not re.search(r"\s%s$" % re.escape(x), ls, re.M), "`ferry ls` lists %s" % x)
    b.sync()
    check_set(local_files(b), KEPT, "B after its sync")
    # Edits of ignored files stay local too.
    a.write("app.log", "more log\n" * 50)
    a.write("sub/.DS_Store", "changed\n")
    a.sync()
    check_set(server_paths(env, a), KEPT, "server after edits of ignored files")

    # From elsewhere: ignored names are held down; backup sets are skipped.
    tok = env.login("alice", device="api")
    api_put(env, tok, "remote.log", b"remote log\n")
    api_put(env, tok, "elsewhere/.DS_Store", b"finder\n")
    api_put(env, tok, "elsewhere/fine.txt", b"fine\n")
    api_put(env, tok, ".ferry-backup/phone/doc.txt", b"backed up\n")
    b.sync()
    check_set(local_files(b), KEPT + ["elsewhere/fine.txt"], "B after the remote files")
    hd = {x: i["reason"] for (_, x), i in held(b, "down").items()}
    check(hd == {x: "ignored by .ferryignore" for x in ("remote.log", "elsewhere/.DS_Store")},
          "B `held down` (path: reason; no .ferry-backup entry): %s" % hd)
    check(not b.exists(".ferry-backup"), "B downloaded the .ferry-backup folder")
    r = b.run(["pull", "remote.log"], cwd=b.dir)
    check(r.rc == 1 and "ignored" in r.err, "pull of an ignored name: %s" % r.describe())
    check(not b.exists("remote.log"), "pull fetched an ignored name")
    a.sync()
    check(not a.exists("remote.log"), "A downloaded remote.log (ignored)")


@scenario("rules_ignore_and_rules_in_watch")
def ignore_watch(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    a.write(".ferryignore", "*.log\nbuild/\n")
    a.sync()
    wa, wb = a.watch(), b.watch()

    def arrives(dev, rel, what):
        check(wait_for(lambda: dev.exists(rel), WATCH_TIMEOUT, 0.05),
              "%s did not reach %s within %d s; %s; %s" % (what, dev.name, WATCH_TIMEOUT,
                                                           wa.describe(), wb.describe()))

    for x in ("debug.log", "build/x.o", ".DS_Store", "x.swp", "sub/trace.log"):
        a.write(x, "ignored %s\n" % x)
    a.write("real.txt", "real\n")
    arrives(b, "real.txt", "real.txt")
    wa.wait_idle()
    check_set(server_paths(env, a), [".ferryignore", "real.txt"], "server under watch")
    with open(a.p("debug.log"), "a") as f:
        f.write("appended\n")
    a.write("real2.txt", "real 2\n")
    arrives(b, "real2.txt", "real2.txt")
    wa.wait_idle()
    check_set(server_paths(env, a), [".ferryignore", "real.txt", "real2.txt"],
              "server after an append to an ignored file under watch")

    # Rules changed under a running watch are picked up at the next round;
    # the watch never asks and holds what the rules hold.
    rules(a, "set", "up", "type", "txt", "or", "type", "pdf", "ask")
    time.sleep(0.05)
    a.write("photo.jpg", os.urandom(3000))
    a.write("paper.pdf", os.urandom(2000))
    a.write("note3.txt", "note 3\n")
    arrives(b, "note3.txt", "note3.txt")
    wa.wait_idle()
    srv = server_paths(env, a)
    check("photo.jpg" not in srv and "paper.pdf" not in srv,
          "the watch uploaded against the rules: %s" % sorted(srv))
    hu = {x: i["reason"] for (_, x), i in held(a, "up").items()}
    check(set(hu) == {"photo.jpg", "paper.pdf"} and hu["paper.pdf"] == "ask",
          "A `held up` while watching (path: reason): %s" % hu)
    # push beside the running watch.
    r = ok(a.run(["push", "photo.jpg"]), "push beside a watch")
    check("photo.jpg" in r.out, "push beside a watch: %s" % r.describe())
    arrives(b, "photo.jpg", "the pushed photo.jpg")
    # A remote file with an ignored name is held by B's watch, not fetched.
    api_put(env, env.login("alice", device="api"), "remote.log", b"remote\n")
    api_put(env, env.login("alice", device="api2"), "remote.txt", b"remote\n")
    arrives(b, "remote.txt", "remote.txt")
    wb.wait_idle()
    check(not b.exists("remote.log"), "B's watch downloaded remote.log (ignored)")
    check_set(held_paths(b, "down"), ["remote.log"], "B `held down` while watching")
    # Download rules under B's watch: held, pulled beside it, let through.
    rules(b, "set", "down", "type", "txt")
    for x in ("pic1.jpg", "pic2.jpg", "remote2.txt"):
        api_put(env, env.login("alice", device="api3"), x, b"from elsewhere\n")
    arrives(b, "remote2.txt", "remote2.txt")
    wb.wait_idle()
    check_set(held_paths(b, "down"), ["remote.log", "pic1.jpg", "pic2.jpg"], "B held (watch)")
    r = ok(b.run(["pull", "pic1.jpg"]), "pull beside a watch")
    check("pic1.jpg" in r.out and b.exists("pic1.jpg"), "pull beside a watch: %s" % r.describe())
    rules(b, "set", "down", "all")
    arrives(b, "pic2.jpg", "pic2.jpg once B's rules select it")
    wa.stop()
    wb.stop()
    check_set(local_files(b), [".ferryignore", "real.txt", "real2.txt", "note3.txt", "photo.jpg",
                               "remote.txt", "remote2.txt", "pic1.jpg", "pic2.jpg"],
              "B's folder at the end")


# ---------------------------------------------------------------- never delete

@scenario("rules_down_prune")
def down_prune(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    base = {"Work/a.docx": "a\n", "Work/b.txt": "b\n", "other/c.txt": "c: unique 1\n",
            "top.txt": "top: unique 2\n", "mine.txt": "mine\n"}
    for x, v in base.items():
        a.write(x, v)
    sync_all(a, b)
    check_set(local_files(b), base, "B after the full sync")
    rules(b, "set", "down", "folder", "Work")
    b.sync()
    check_set(local_files(b), base, "B after a download rule (nothing may be deleted)")
    a.write("top.txt", "top: unique 3, edited\n")
    a.write("other/new.txt", "new\n")
    a.write("Work/new.docx", "new doc\n")
    sync_all(a, b)
    check(b.read("top.txt") == b"top: unique 3, edited\n",
          "an already-synced file stopped syncing before `ferry prune`")
    check_set(local_files(b), list(base) + ["Work/new.docx"], "B after A's new files")
    check_set(held_paths(b, "down"), ["other/new.txt"], "B `held down` before prune")

    # mine.txt is edited here and not synced yet: prune keeps it.
    b.write("mine.txt", "mine, edited on B\n")
    before = b.snapshot()
    r = ok(b.run(["prune", "--dry-run"]), "prune --dry-run")
    for x in ("other/c.txt", "top.txt"):
        check("would prune %s" % x in r.out, "prune --dry-run does not list %s: %r" % (x, r.out))
    check(b.snapshot() == before, "prune --dry-run changed the folder")
    r = ok(b.run(["prune"]), "prune")
    note("prune: %s" % r.out.strip().replace("\n", " | "))
    check(re.search(r"kept mine\.txt", r.out), "prune did not say it kept mine.txt: %r" % r.out)
    check_set(local_files(b), ["Work/a.docx", "Work/b.txt", "Work/new.docx", "mine.txt"],
              "B after prune")
    check(b.read("mine.txt") == b"mine, edited on B\n", "prune touched a file edited here")
    check({sha(b"top: unique 3, edited\n"), sha(b"c: unique 1\n")} <= b.trash_hashes(),
          "prune did not move top.txt and other/c.txt to .ferry/trash/")
    want_srv = list(base) + ["other/new.txt", "Work/new.docx"]
    check_set(server_paths(env, a), want_srv, "server after prune (nothing may be deleted)")
    check_set(held_paths(b, "down"), ["other/c.txt", "top.txt", "other/new.txt"],
              "B `held down` after prune")
    sync_all(b, a)
    check(a.read("mine.txt") == b"mine, edited on B\n", "B's kept edit did not go up")
    check_set(local_files(b), ["Work/a.docx", "Work/b.txt", "Work/new.docx", "mine.txt"],
              "B after a sync following prune (pruned files came back?)")
    check_set(server_paths(env, a), want_srv, "server after B's sync (pruned seen as deletes?)")
    check_set(local_files(a), want_srv, "A after B's prune and sync")
    # A remote delete of a held-down file removes its held row; a remote
    # rename moves it.
    a.remove("other/new.txt")
    a.rename("top.txt", "top2.txt")
    sync_all(a, b)
    check_set(held_paths(b, "down"), ["other/c.txt", "top2.txt"],
              "B `held down` after a remote delete and rename")
    check(not b.exists("top2.txt"), "B downloaded the renamed held file")
    r = ok(b.run(["pull", "other"], cwd=b.dir), "pull other after prune")
    check(b.read("other/c.txt") == b"c: unique 1\n", "pulled other/c.txt differs")


@scenario("rules_up_no_server_delete")
def up_no_delete(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    base = {"Work/a.docx": "a\n", "Work/b.txt": "b\n", "other/c.txt": "c\n", "top.txt": "top\n"}
    for x, v in base.items():
        a.write(x, v)
    sync_all(a, b)
    rules(a, "set", "up", "type", "docx")
    a.sync()
    check_set(server_paths(env, a), base, "server after an upload rule (nothing may be deleted)")
    a.write("top.txt", "top, edited on A\n")
    a.write("new.txt", "new\n")
    a.rename("Work/b.txt", "Work/b.md")
    a.sync()
    srv = server_files(env, token_of(a))
    check_set({p for p, e in srv.items() if e["kind"] == "file"}, base,
              "server after a held edit, a new held file and a held rename")
    check(srv["top.txt"]["hash"] == ferry_hash(b"top\n"), "the held edit of top.txt went up")
    hu = held_paths(a, "up")
    check({"top.txt", "new.txt", "Work/b.md"} <= hu and not hu & {"Work/a.docx", "Work/b.txt"},
          "A `held up`: %s" % sorted(hu))
    b.sync()
    check_set(local_files(b), base, "B after A's held changes")
    r = ok(a.run(["push", "Work/b.md"], cwd=a.dir), "push Work/b.md")
    check_set(server_paths(env, a), ["Work/a.docx", "Work/b.md", "other/c.txt", "top.txt"],
              "server after pushing the renamed file")
    b.sync()
    check(b.read("Work/b.md") == b"b\n" and not b.exists("Work/b.txt"),
          "B did not get the rename once pushed")
    # A delete of a synced file is a delete, as always.
    a.remove("Work/a.docx")
    a.sync()
    check("Work/a.docx" not in server_paths(env, a), "a real local delete did not propagate")
    # B edits the file whose edit A holds back, and makes a file with the
    # name of one A holds: nothing may be lost.
    b.write("top.txt", "top, edited on B\n")
    b.write("new.txt", "new on B\n")
    sync_all(b, a)
    have = {a.read(x): x for x in local_files(a)}
    for v in (b"top, edited on A\n", b"top, edited on B\n", b"new\n", b"new on B\n"):
        check(v in have, "A lost %r (B changed a file A holds): %s" % (v, sorted(have.values())))
    # Rules that select the held files again let them go up.
    rules(a, "set", "up", "all")
    a.sync()
    check_set(held_paths(a, "up"), [], "A `held up` under `all`")
    check_set(server_paths(env, a), local_files(a), "server once A's rule is `all`")
