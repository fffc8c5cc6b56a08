"""Command-line contract checks: exit codes (0 ok, 1 failure with a message,
2 usage), --help on every command, git-like folder discovery, and that the
--json outputs parse."""

import os

from harness import (FERRYD, assert_same, check, find_dicts, json_out, run_cmd, scenario,
                     sync_all)

COMMANDS = ["register", "init", "sync", "status", "ls", "devices"]


@scenario("cli_exit_codes_and_help")
def cli_usage(env):
    plain = os.path.join(env.root, "not-linked")
    os.mkdir(plain)
    r = env.ferry([])
    check(r.rc == 2, "`ferry` with no command: want rc 2: %s" % r.describe())
    r = env.ferry(["no-such-command"])
    check(r.rc == 2 and r.err.strip(), "unknown command: want rc 2 + message: %s" % r.describe())
    r = env.ferry(["--help"])
    check(r.rc == 0 and (r.out + r.err).strip(), "`ferry --help`: %s" % r.describe())
    for cmd in COMMANDS:
        r = env.ferry([cmd, "--help"], cwd=plain)
        check(r.rc == 0, "`ferry %s --help`: want rc 0: %s" % (cmd, r.describe()))
        check(cmd in (r.out + r.err), "`ferry %s --help` does not mention %s" % (cmd, cmd))
    for args in (["sync", "--no-such-flag"], ["init", "--user", "x"], ["register", "--server"],
                 ["ls", "--bogus"], ["devices", "extra", "args", "--nope"],
                 ["status", "--json", "--what"]):
        r = env.ferry(["-C", plain] + args, cwd=plain)
        check(r.rc == 2, "`ferry %s`: want usage rc 2: %s" % (" ".join(args), r.describe()))
    r = env.ferry(["-C", plain, "sync"], cwd=plain)
    check(r.rc == 1 and r.err.strip(),
          "sync outside a linked folder: want rc 1 + message: %s" % r.describe())
    r = env.ferry(["sync"], cwd=plain)
    check(r.rc == 1 and r.err.strip(), "sync (cwd) outside a linked folder: %s" % r.describe())
    r = env.ferry(["-C", os.path.join(env.root, "does-not-exist"), "status"])
    check(r.rc == 1 and r.err.strip(), "status on a missing dir: %s" % r.describe())
    # ferryd's own usage errors.
    r = run_cmd([FERRYD])
    check(r.rc == 2, "`ferryd` without --data: want rc 2: %s" % r.describe())
    r = run_cmd([FERRYD, "--help"])
    check(r.rc == 0, "`ferryd --help`: %s" % r.describe())
    r = run_cmd([FERRYD, "--data", os.path.join(env.root, "x"), "--registration", "maybe"])
    check(r.rc == 2, "`ferryd --registration maybe`: want rc 2: %s" % r.describe())


@scenario("cli_accounts")
def cli_accounts(env):
    env.register("carol")
    r = env.ferry(["register", "--server", env.url, "--user", "carol", "--email", "c@x.org"],
                  password="another password")
    check(r.rc == 1 and r.err.strip(), "registering a taken name: want rc 1: %s" % r.describe())
    r = env.ferry(["register", "--server", env.url, "--user", "-bad", "--email", "c@x.org"],
                  password="another password")
    check(r.rc == 1, "registering an invalid name: want rc 1: %s" % r.describe())
    d = os.path.join(env.root, "wrong-pw")
    os.mkdir(d)
    r = env.ferry(["-C", d, "init", "--server", env.url, "--user", "carol", "--device", "x"],
                  password="wrong password!")
    check(r.rc == 1 and r.err.strip(), "init with a wrong password: %s" % r.describe())
    check(not os.path.exists(os.path.join(d, ".ferry", "config.json")),
          "a failed init left a config behind")
    r = env.ferry(["-C", d, "init", "--server", env.url, "--user", "nobody", "--device", "x"],
                  password="whatever123")
    check(r.rc == 1, "init as an unknown user: %s" % r.describe())
    # --password-stdin works too.
    r = run_cmd(env.ferry_argv(["-C", d, "init", "--server", env.url, "--user", "carol",
                                "--device", "stdin-dev", "--password-stdin"]),
                env=env.env(), stdin_data="correct horse battery staple\n")
    check(r.rc == 0, "init --password-stdin: %s" % r.describe())
    cfg = os.path.join(d, ".ferry", "config.json")
    check(os.path.exists(cfg), "init did not write .ferry/config.json")
    mode = os.stat(cfg).st_mode & 0o777
    check(mode & 0o077 == 0, ".ferry/config.json holds a token but has mode %o" % mode)


@scenario("cli_json_and_devices")
def cli_json(env):
    env.register("alice")
    a, b, c = env.device("A"), env.device("B"), env.device("C")
    a.write("x/y.txt", "y\n")
    a.write("z.txt", "z\n")
    sync_all(a, b, c)
    assert_same(a, b, c)
    # Git-like discovery: from a subdirectory, without -C.
    b.write("x/from-sub.txt", "sub\n")
    r = env.ferry(["sync"], cwd=b.p("x"))
    check(r.rc == 0, "`ferry sync` from a subdirectory: %s" % r.describe())
    sync_all(a, c)
    assert_same(a, b, c)

    st = json_out(a.run(["status", "--json"]), "status --json")
    check(isinstance(st, dict), "status --json is not an object: %r" % st)
    ls = json_out(a.run(["ls", "--json"]), "ls --json")
    paths = {d["path"] for d in find_dicts(ls, "path")}
    check({"x/y.txt", "z.txt", "x/from-sub.txt"} <= paths, "ls --json paths: %s" % sorted(paths))
    ls_x = json_out(a.run(["ls", "x", "--json"]), "ls x --json")
    px = {d["path"] for d in find_dicts(ls_x, "path")}
    check("x/y.txt" in px and "z.txt" not in px, "ls x --json: %s" % sorted(px))
    dv = json_out(a.run(["devices", "--json"]), "devices --json")
    names = sorted(d["name"] for d in find_dicts(dv, "name"))
    check(names == ["A", "B", "C"], "devices --json names: %s" % names)
    for d in find_dicts(dv, "name"):
        check("id" in d, "devices --json entry without id: %r" % d)
    r = a.run(["devices"])
    check(r.rc == 0 and all(n in r.out for n in ("A", "B", "C")), "devices: %s" % r.describe())
    r = a.run(["status"])
    check(r.rc == 0 and r.out.strip(), "status: %s" % r.describe())
