"""Delta sync of a large file: after a 1-byte overwrite and a 1-byte insert
in the middle, both devices move only the new chunks plus a few KiB of
metadata. Its chunks/missing query names only chunks that are not in
the base version, its commit carries a patch instead of the whole chunk
list, and the changes feed does not echo its own chunk list back
("chunks_omitted"); a copy of a synced file asks chunks/missing nothing.
A device that lost its index still gets its own
versions right: it adopts a local copy that matches, or fetches the entry.

The byte bounds are measured by the client itself (`ferry sync --json`):
bytes_up minus the bytes of the chunks that are really new (known from the
server's entries before and after) must stay under METADATA_MAX, and so
must bytes_down. The old protocol sends the file's chunk list twice up and
gets it once down (~70 KiB each way for 64 MiB of ~900 chunks, ~17 KiB
for 16 MiB under ASan), so either bound fails without the change.

The other device gets the edit through the changes feed as a patch against
the version it holds (patch=1), so its bytes_down minus the new chunks stays
under the same bound; a copy under a second name is committed as "same_as"
the synced file's version, so A sends no chunk list at all for it, and when
that version is not what the index says, the commit falls back to the
chunk list."""

import json
import os
import shutil
import sqlite3

from harness import ASAN, assert_same, check, file_sha256, json_out, note, scenario, write_big

MIB = 1 << 20
SIZE = (16 if ASAN else 64) * MIB
# headers of ~8 requests and small JSON bodies; the old protocol's chunk
# lists are several times this
METADATA_MAX = 8 * 1024


def entry_chunks(env, token, path):
    st, data, _ = env.api("GET", "/api/v1/file?path=" + path, token)
    check(st == 200, "GET file %s -> %s %r" % (path, st, data[:200]))
    return json.loads(data)["chunks"]


def synced(dev):
    return json_out(dev.run(["sync", "--json"]), "sync --json on " + dev.name)


def edit_step(env, token, a, b, label, edit):
    before = {h for h, _ in entry_chunks(env, token, "big.bin")}
    edit(a.p("big.bin"))
    ra = synced(a)
    after = entry_chunks(env, token, "big.bin")
    new_bytes = sum(size for h, size in {(h, s) for h, s in after if h not in before})
    rb = synced(b)
    assert_same(a, b)
    check(file_sha256(b.p("big.bin")) == file_sha256(a.p("big.bin")), "%s: B differs" % label)
    extra_up = ra["bytes_up"] - new_bytes
    note("%s: A up %d (new chunks %d, so %d of metadata), A down %d; B up %d, down %d" %
         (label, ra["bytes_up"], new_bytes, extra_up, ra["bytes_down"], rb["bytes_up"],
          rb["bytes_down"]))
    check(new_bytes <= 4 * 256 * 1024, "%s: %d bytes of new chunks for a 1-byte edit" %
          (label, new_bytes))
    check(extra_up < METADATA_MAX, "%s: A sent %d bytes besides the %d of new chunks (max %d): "
          "the chunk list crossed the wire" % (label, extra_up, new_bytes, METADATA_MAX))
    check(ra["bytes_down"] < METADATA_MAX, "%s: A received %d bytes (max %d): its own chunk "
          "list came back" % (label, ra["bytes_down"], METADATA_MAX))
    # B holds the previous version: the changes feed sends the new one as
    # a patch against it, so B gets the new chunks and a few KiB besides
    listed = len(json.dumps(after, separators=(",", ":")))
    extra_down = rb["bytes_down"] - new_bytes
    check(extra_down < METADATA_MAX and extra_down < listed // 4,
          "%s: B received %d bytes besides the %d of new chunks (max %d; the chunk list is %d "
          "bytes): the whole chunk list came down" %
          (label, extra_down, new_bytes, METADATA_MAX, listed))


def overwrite_middle(p):
    with open(p, "r+b") as f:
        f.seek(SIZE // 2)
        c = f.read(1)
        f.seek(SIZE // 2)
        f.write(bytes([c[0] ^ 0xFF]))


def insert_middle(p):
    with open(p, "rb") as f:
        data = f.read()
    mid = len(data) // 2
    with open(p, "wb") as f:
        f.write(data[:mid] + b"\x5a" + data[mid:])


@scenario("delta_small_edits_send_no_chunk_lists")
def delta_small_edits(env):
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    token = env.login("alice")
    write_big(a.p("big.bin"), SIZE, seed=21)
    a.sync()
    b.sync()
    assert_same(a, b)
    edit_step(env, token, a, b, "overwrite", overwrite_middle)
    edit_step(env, token, a, b, "insert", insert_middle)
    # a copy under a second name: no chunk is new, the chunks/missing query
    # is skipped for chunks the index knows synced, and the commit names
    # the synced file's version ("same_as") instead of sending a chunk list
    shutil.copy(a.p("big.bin"), a.p("copy.bin"))
    ra = synced(a)
    listed = len(json.dumps(entry_chunks(env, token, "copy.bin"), separators=(",", ":")))
    note("copy: A up %d, the chunk list is %d bytes" % (ra["bytes_up"], listed))
    check(ra["bytes_up"] < METADATA_MAX and ra["bytes_up"] < listed // 4,
          "copy: A sent %d bytes for a copy (max %d; the chunk list is %d bytes)" %
          (ra["bytes_up"], METADATA_MAX, listed))
    check(entry_chunks(env, token, "copy.bin") == entry_chunks(env, token, "big.bin"),
          "copy: the server's chunk list of the copy differs from the original's")
    synced(b)
    assert_same(a, b)
    # a copy of a version the server no longer has as described (the index
    # says another seq): the server answers missing_chunks with an empty
    # list and the client sends the chunk list after all
    idx = os.path.join(a.dir, ".ferry", "index.db")
    con = sqlite3.connect(idx)
    con.execute("UPDATE entries SET seq = seq + 1000 WHERE path = 'big.bin'")
    con.commit()
    con.close()
    shutil.copy(a.p("big.bin"), a.p("copy2.bin"))
    ra = synced(a)
    check(ra["bytes_up"] > listed // 2, "copy2: A sent only %d bytes, but the same_as it "
          "named cannot be right" % ra["bytes_up"])
    check(entry_chunks(env, token, "copy2.bin") == entry_chunks(env, token, "big.bin"),
          "copy2: the server's chunk list of the copy differs from the original's")
    synced(b)
    assert_same(a, b)


@scenario("delta_own_entries_without_index")
def delta_own_entries(env):
    """A second folder with A's device token and no index reads A's own
    entries without their chunks: a file already there is adopted (nothing
    downloaded), an absent one is fetched whole."""
    env.register("alice")
    a = env.device("A")
    write_big(a.p("big.bin"), 4 * MIB, seed=22)
    a.write("small.txt", b"hello delta\n" * 100)
    a.sync()
    a2 = env.device("A2")
    shutil.copy(os.path.join(a.dir, ".ferry", "config.json"),
                os.path.join(a2.dir, ".ferry", "config.json"))
    shutil.copy(a.p("big.bin"), a2.p("big.bin"))
    r = synced(a2)
    assert_same(a, a2)
    check(r["downloaded"] >= 1, "A2 downloaded nothing: %s" % r)
    check(r["bytes_down"] < 1 * MIB, "A2 received %d bytes though big.bin was there" %
          r["bytes_down"])
    # the adopted file is synced: an edit on A2 goes up as a delta
    overwrite = a2.p("big.bin")
    with open(overwrite, "r+b") as f:
        f.seek(2 * MIB)
        f.write(b"\x00")
    synced(a2)
    a.sync()
    assert_same(a, a2)


@scenario("delta_edit_wins_over_delete")
def delta_edit_vs_delete(env):
    """An edit sent as a patch against a version that another device deleted
    meanwhile is not lost, nor turned into a conflict copy: the edit wins and
    keeps its name, as it does for a small file."""
    env.register("alice")
    a, b = env.device("A"), env.device("B")
    size = 4 * MIB  # dozens of chunks: B's commit is a patch
    write_big(a.p("big.bin"), size, seed=21)
    a.sync()
    b.sync()
    os.unlink(a.p("big.bin"))
    a.sync()  # the delete reaches the server first
    with open(b.p("big.bin"), "r+b") as f:
        f.seek(size // 2)
        f.write(b"edited on B")
    want = file_sha256(b.p("big.bin"))
    b.sync()
    a.sync()
    b.sync()
    for d in (a, b):
        check(d.exists("big.bin") and file_sha256(d.p("big.bin")) == want,
              "%s: B's edit of big.bin (deleted on A first) was lost" % d.name)
        names = sorted(os.listdir(d.dir))
        check(not any("conflict" in n for n in names),
              "%s: the edit became a conflict copy: %s" % (d.name, names))
    assert_same(a, b)
