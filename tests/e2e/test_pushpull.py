"""`ferry push` and `ferry pull` (issue 6) on files this device has not
seen in a round yet: a file pushed right after it was written (no round has
held it), and a file pulled right after another device uploaded it (this
device's held list does not know it yet; pull first runs a round to learn
of it). Both then sync both ways."""

from harness import check, scenario


def ok(r, what):
    check(r.rc == 0, "%s: %s" % (what, r.describe()))
    return r


@scenario("pushpull_unseen_files")
def unseen(env):
    env.register("alice")
    office, home = env.device("office"), env.device("home")
    ok(office.run(["rules", "set", "up", "type", "docx"]), "office rules")
    ok(home.run(["rules", "set", "down", "folder", "Work"]), "home rules")
    office.write("Work/a.docx", b"report\n")
    office.sync()
    home.sync()
    check(home.read("Work/a.docx") == b"report\n", "home lacks Work/a.docx")

    # Written and pushed at once: no round has seen (or held) it yet.
    office.write("Films/film.mkv", b"\x1a\x45\xdf\xa3" * 5000)
    r = ok(office.run(["push", "Films/film.mkv"]), "office push of an unseen file")
    check("pushed Films/film.mkv" in r.out, "push output: %r" % r.out)

    # home has not synced since: its held list does not name the film.
    r = ok(home.run(["pull", "Films/film.mkv"]), "home pull of a file it has not heard of")
    check("pulled Films/film.mkv" in r.out, "pull output: %r" % r.out)
    check(home.read("Films/film.mkv") == office.read("Films/film.mkv"),
          "home's film differs from the office's")

    # From now on the film syncs both ways, rules or not.
    home.write("Films/film.mkv", b"edited at home\n")
    home.sync()
    office.sync()
    check(office.read("Films/film.mkv") == b"edited at home\n",
          "the home edit of a pulled file did not reach the office")

    # A path the server never had: a clear failure, exit 1.
    r = home.run(["pull", "nope.txt"])
    check(r.rc == 1 and "nothing held" in r.err, "pull of an unknown path: %s" % r.describe())
