/* cmd_history: `ferry history PATH` (the versions of a path the server
 * keeps, GET /api/v1/history), `ferry trash [PATH]` (deleted paths that
 * still have a version to bring back, GET /api/v1/trash) and `ferry restore
 * PATH [--version SEQ] [--to NEWPATH]` (POST /api/v1/restore, then one sync
 * round so that the file is on disk here too). With --at or --into, restore
 * works on the space as of a point instead (restore.h): `ferry restore
 * [PATH...] --at TIME|SEQ [--into DIR]`, `ferry restore [PATH...] --into
 * DIR`; there `--to DIR` is accepted for --into together with --at (the
 * issue's spelling), while without --at `--to` stays issue 5's NEWPATH.
 *
 * Restoring never rewrites history: the server commits the old content as a
 * new version, which every device then downloads like any other change.
 * As in cmd_info.c, the --json outputs copy the documented fields one by one
 * (docs/cli.md) so that a new server field does not change them. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "path.h"
#include "progress.h"
#include "remote.h"
#include "restore.h"
#include "sync.h"

enum { OPT_JSON = 1000, OPT_LIMIT, OPT_VERSION, OPT_TO, OPT_AT, OPT_INTO, OPT_HELP };

/* How long restore waits for a running sync or watch round to let go of
 * the folder's lock before giving up on its own round. */
#define RESTORE_LOCK_WAIT_MS 15000

/* The fields of a version in history and trash --json. */
static const char *const version_keys[] = {"seq",     "time",     "kind",       "size",
                                           "mode",    "mtime_ns", "hash",       "target",
                                           "deleted", "device",   "device_name"};

/* A PATH operand: trailing '/' dropped (as `ls` does), then it must be a
 * valid Ferry path. CLI_OK with *out malloc'd, or the exit code after
 * reporting. */
static int path_arg(const char *cmd, const char *what, const char *arg, char **out)
{
        size_t n;
        char *p;

        *out = NULL;
        p = strdup(arg);
        if (!p)
                return cli_fail(cmd, -ENOMEM);
        n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = '\0';
        if (path_validate(p) < 0) {
                free(p);
                return cli_usage(cmd, "invalid %s '%s': %s", what, arg, err_msg(-EINVAL));
        }
        *out = p;
        return CLI_OK;
}

/* A positive integer option value (a seq or a limit) into *out. */
static int int_arg(const char *cmd, const char *opt, const char *val, int64_t max, int64_t *out)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(val, &end, 10);
        if (errno || end == val || *end || v < 1 || v > max)
                return cli_usage(cmd, "%s wants a number from 1 to %lld, not '%s'", opt,
                                 (long long)max, val);
        *out = v;
        return CLI_OK;
}

static int get_json(const struct config *cfg, const char *q, json_t **out)
{
        struct remote *rem = NULL;
        int r;

        r = remote_new(cfg->server, cfg->token, &rem);
        if (r == 0)
                r = remote_get_json(rem, q, out);
        remote_free(rem);
        return r;
}

/* A version object with exactly version_keys (null when absent; deleted
 * false when absent). NULL on out of memory. */
static json_t *version_json(const json_t *v)
{
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (size_t k = 0; k < sizeof(version_keys) / sizeof(version_keys[0]); k++) {
                json_t *x = json_object_get(v, version_keys[k]);

                if (json_object_set_new(o, version_keys[k], x ? json_incref(x) : json_null()) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        if (json_is_null(json_object_get(o, "deleted")))
                json_object_set_new(o, "deleted", json_false());
        return o;
}

/* The device column: its name, else the start of its id. */
static const char *device_label(const json_t *v, const char *name_key, char *buf, size_t len)
{
        const char *name = json_string_value(json_object_get(v, name_key));
        const char *id = json_string_value(json_object_get(v, "device"));

        if (name && *name)
                return name;
        if (id && *id) {
                snprintf(buf, len, "%.8s...", id);
                return buf;
        }
        return "?";
}

/* The size column and the note after it for one version. */
static void describe(const json_t *v, char *size, size_t slen, char *note, size_t nlen)
{
        const char *kind = json_string_value(json_object_get(v, "kind"));
        const char *target = json_string_value(json_object_get(v, "target"));

        kind = kind ? kind : "file";
        snprintf(size, slen, "-");
        note[0] = '\0';
        if (json_is_true(json_object_get(v, "deleted")))
                snprintf(note, nlen, "deleted");
        else if (!strcmp(kind, "file"))
                snprintf(size, slen, "%lld",
                         (long long)json_integer_value(json_object_get(v, "size")));
        else if (!strcmp(kind, "symlink"))
                snprintf(note, nlen, "symlink -> %s", target ? target : "?");
        else
                snprintf(note, nlen, "%s", kind);
}

static void history_text(const json_t *resp)
{
        int64_t current = json_integer_value(json_object_get(resp, "current"));
        json_t *v;
        size_t i;

        printf("history of %s (current: version %lld)\n",
               json_string_value(json_object_get(resp, "path")) ?: "?", (long long)current);
        printf("  %8s  %-19s  %-20s %12s\n", "SEQ", "TIME", "DEVICE", "SIZE");
        json_array_foreach(json_object_get(resp, "versions"), i, v)
        {
                int64_t seq = json_integer_value(json_object_get(v, "seq"));
                int64_t t = json_integer_value(json_object_get(v, "time"));
                char when[64], dev[32], size[32], note[300];

                if (t > 0)
                        cli_format_time(t, when, sizeof(when));
                else
                        snprintf(when, sizeof(when), "-");
                describe(v, size, sizeof(size), note, sizeof(note));
                printf("%c %8lld  %-19s  %-20s %12s%s%s\n", seq == current ? '*' : ' ',
                       (long long)seq, when, device_label(v, "device_name", dev, sizeof(dev)), size,
                       note[0] ? "  " : "", note);
        }
}

int cmd_history(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"limit", required_argument, NULL, OPT_LIMIT},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        struct buf q = BUF_INIT;
        json_t *resp = NULL, *out = NULL, *v;
        char *path = NULL, *esc = NULL;
        int64_t limit = 100;
        int c, json = 0, r, rc = CLI_OK;
        size_t i;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_JSON:
                        json = 1;
                        break;
                case OPT_LIMIT:
                        if (int_arg("history", "--limit", optarg, 10000, &limit) != CLI_OK)
                                return CLI_USAGE;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] history PATH [--json] [--limit N]\n"
                             "\n"
                             "Lists the versions of PATH the server keeps, newest first: seq,\n"
                             "time, the device that made it, size, and 'deleted' for deletes;\n"
                             "'*' marks the current one. PATH is relative to the linked folder's\n"
                             "root. At most N versions (default 100, at most 10000). Bring one\n"
                             "back with 'ferry restore PATH --version SEQ'.");
                        return CLI_OK;
                default:
                        return cli_bad_option("history", argc, argv, c);
                }
        }
        if (argc - optind != 1)
                return cli_usage("history", argc - optind ? "one PATH only" : "PATH is missing");
        rc = path_arg("history", "PATH", argv[optind], &path);
        if (rc != CLI_OK)
                return rc;
        r = cli_load_config(g, &cfg);
        if (r < 0) {
                rc = cli_fail("history", r);
                goto out;
        }
        esc = remote_escape(path);
        r = esc ? buf_printf(&q, "/api/v1/history?path=%s&limit=%lld", esc, (long long)limit)
                : -ENOMEM;
        if (r == 0)
                r = get_json(&cfg, (const char *)q.data, &resp);
        if (r == -ENOENT)
                r = err_set(-ENOENT,
                            "the server keeps no version of %s (never synced, or every version "
                            "was pruned)",
                            path);
        if (r < 0) {
                rc = cli_fail("history", r);
                goto out;
        }
        if (!json) {
                history_text(resp);
                goto out;
        }
        out = json_pack("{s:O?, s:O?, s:[]}", "path", json_object_get(resp, "path"), "current",
                        json_object_get(resp, "current"), "versions");
        r = out ? 0 : -ENOMEM;
        json_array_foreach(json_object_get(resp, "versions"), i, v)
        {
                if (r == 0 &&
                    json_array_append_new(json_object_get(out, "versions"), version_json(v)) < 0)
                        r = -ENOMEM;
        }
        if (r == 0)
                r = cli_print_json(out);
        if (r < 0)
                rc = cli_fail("history", r);
out:
        json_decref(resp);
        json_decref(out);
        buf_free(&q);
        free(esc);
        free(path);
        config_free(&cfg);
        return rc;
}

static void trash_text(const json_t *resp)
{
        json_t *files = json_object_get(resp, "files"), *f;
        size_t i;

        if (json_array_size(files) == 0) {
                puts("the trash is empty");
                return;
        }
        printf("%-19s  %-20s %12s %8s  %s\n", "DELETED", "BY", "SIZE", "LAST", "PATH");
        json_array_foreach(files, i, f)
        {
                const json_t *last = json_object_get(f, "last");
                int64_t t = json_integer_value(json_object_get(f, "deleted_time"));
                char when[64], dev[32], size[32], note[300];

                if (t > 0)
                        cli_format_time(t, when, sizeof(when));
                else
                        snprintf(when, sizeof(when), "-");
                describe(last, size, sizeof(size), note, sizeof(note));
                printf("%-19s  %-20s %12s %8lld  %s%s%s\n", when,
                       device_label(f, "device_name", dev, sizeof(dev)), size,
                       (long long)json_integer_value(json_object_get(last, "seq")),
                       json_string_value(json_object_get(f, "path")) ?: "?", note[0] ? "  " : "",
                       note);
        }
        puts("(bring one back with 'ferry restore PATH')");
}

static json_t *trash_json(const json_t *resp)
{
        json_t *out = json_pack("{s:[]}", "files"), *f;
        size_t i;

        if (!out)
                return NULL;
        json_array_foreach(json_object_get(resp, "files"), i, f)
        {
                json_t *o = json_pack(
                    "{s:O?, s:O?, s:O?, s:O?, s:O?, s:o?}", "path", json_object_get(f, "path"),
                    "deleted_seq", json_object_get(f, "deleted_seq"), "deleted_time",
                    json_object_get(f, "deleted_time"), "device", json_object_get(f, "device"),
                    "device_name", json_object_get(f, "device_name"), "last",
                    version_json(json_object_get(f, "last")));

                if (!o || json_array_append_new(json_object_get(out, "files"), o) < 0) {
                        json_decref(out);
                        return NULL;
                }
        }
        return out;
}

int cmd_trash(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        struct buf q = BUF_INIT;
        json_t *resp = NULL, *out = NULL;
        char *prefix = NULL, *esc = NULL;
        int c, json = 0, r, rc = CLI_OK;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_JSON:
                        json = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] trash [PATH] [--json]\n"
                             "\n"
                             "Lists the deleted files and folders the server can still bring\n"
                             "back (everything, or PATH and what is under it), newest delete\n"
                             "first: when, by which device, the size and seq of the last version.\n"
                             "Undelete with 'ferry restore PATH'.");
                        return CLI_OK;
                default:
                        return cli_bad_option("trash", argc, argv, c);
                }
        }
        if (argc - optind > 1)
                return cli_usage("trash", "at most one PATH");
        if (optind < argc) {
                rc = path_arg("trash", "PATH", argv[optind], &prefix);
                if (rc != CLI_OK)
                        return rc;
        }
        r = cli_load_config(g, &cfg);
        if (r < 0) {
                rc = cli_fail("trash", r);
                goto out;
        }
        r = buf_append_str(&q, "/api/v1/trash");
        if (r == 0 && prefix) {
                esc = remote_escape(prefix);
                r = esc ? buf_printf(&q, "?prefix=%s", esc) : -ENOMEM;
        }
        if (r == 0)
                r = get_json(&cfg, (const char *)q.data, &resp);
        if (r < 0) {
                rc = cli_fail("trash", r);
                goto out;
        }
        if (json) {
                out = trash_json(resp);
                r = out ? cli_print_json(out) : -ENOMEM;
                if (r < 0)
                        rc = cli_fail("trash", r);
        } else {
                trash_text(resp);
        }
out:
        json_decref(resp);
        json_decref(out);
        buf_free(&q);
        free(esc);
        free(prefix);
        config_free(&cfg);
        return rc;
}

/* The failure line of a restore the server refused. */
static int restore_refused(int r, const char *path, int64_t seq, const char *to)
{
        char why[256];

        snprintf(why, sizeof(why), "%s", err_msg(r));
        if (r == -ENOENT && seq)
                r = err_set(r,
                            "version %lld of %s is not kept on the server (pruned by the "
                            "retention settings, or not a version of %s); 'ferry history %s' "
                            "lists the versions kept",
                            (long long)seq, path, path, path);
        else if (r == -ENOENT)
                r = err_set(r,
                            "the server keeps no earlier version of %s to bring back; 'ferry "
                            "trash' lists what can be undeleted",
                            path);
        else if (r == -EEXIST && to)
                r = err_set(r,
                            "%s already exists on the server; choose another --to, or delete it "
                            "first",
                            to);
        else if (r == -EINVAL && seq)
                r = err_set(r, "cannot restore version %lld of %s: %s", (long long)seq, path, why);
        return cli_fail("restore", r);
}

/* The sync round after a restore. A running watch or sync may hold the
 * folder's lock for a moment: wait for it (bounded) rather than fail. */
static int restore_sync(const struct config *cfg, struct sync_stats *st)
{
        struct timespec pause = {0, 200 * 1000000L};
        struct sync_options so = {0};
        int waited = 0, r;

        for (;;) {
                r = sync_run(cfg, &so, st);
                if (r != -EBUSY || waited >= RESTORE_LOCK_WAIT_MS)
                        return r;
                nanosleep(&pause, NULL);
                waited += 200;
        }
}

/* The line saying which point a snapshot restore used. */
static void point_text(const struct restore_options *o, int64_t seq, char *out, size_t len)
{
        char when[64];

        if (o->time >= 0) {
                cli_format_time(o->time, when, sizeof(when));
                snprintf(out, len, "seq %lld, the last change at or before %s", (long long)seq,
                         when);
        } else {
                snprintf(out, len, "seq %lld", (long long)seq);
        }
}

/* `restore [PATH...] --at P [--into DIR]` / `restore [PATH...] --into DIR`:
 * paths[0..n) are checked Ferry paths. */
static int restore_snapshot(const struct cli *g, struct restore_options *o)
{
        struct config cfg = {0};
        struct restore_stats st;
        struct sync_stats ss = {0};
        char point[160], size[32];
        int r, rc = CLI_OK;

        r = cli_load_config(g, &cfg);
        if (r < 0)
                return cli_fail("restore", r);
        r = restore_run(&cfg, o, &st);
        point_text(o, st.seq, point, sizeof(point));
        if (st.listed > 0 && o->into) {
                progress_human((int64_t)st.bytes, size, sizeof(size));
                printf("wrote %lld files (%s), %lld folders, %lld links into %s as of %s; %lld "
                       "already there\n",
                       (long long)st.files, size, (long long)st.dirs, (long long)st.links, o->into,
                       point, (long long)st.unchanged);
        } else if (st.listed > 0) {
                printf("restored %lld paths as of %s; %lld already as they were; %lld newer "
                       "paths left as they are\n",
                       (long long)st.restored, point, (long long)st.unchanged, (long long)st.newer);
        }
        fflush(stdout);
        if (r < 0)
                rc = cli_fail("restore", r);
        /* in place, what was restored comes down here too, as issue 5's
         * restore does */
        if (!o->into && st.restored > 0) {
                r = restore_sync(&cfg, &ss);
                if (r < 0) {
                        fprintf(stderr,
                                "ferry: restore: restored on the server, but the sync round "
                                "failed: %s; run 'ferry sync'\n",
                                err_msg(r));
                        rc = CLI_FAIL;
                } else {
                        printf("synced: uploaded %lld, downloaded %lld, deleted %lld, conflicts "
                               "%lld\n",
                               (long long)ss.uploaded, (long long)ss.downloaded,
                               (long long)ss.deleted, (long long)ss.conflicts);
                }
        }
        config_free(&cfg);
        return rc;
}

/* Checks the operands of a snapshot restore and runs it. */
static int restore_points(const struct cli *g, int argc, char **argv, const char *at,
                          const char *into)
{
        struct restore_options o = {.seq = -1, .time = -1, .into = into};
        char **paths = calloc((size_t)(argc - optind) + 1, sizeof(*paths));
        size_t n = 0;
        int rc = CLI_OK;

        if (!paths)
                return cli_fail("restore", -ENOMEM);
        if (at && restore_parse_point(at, &o.seq, &o.time) < 0)
                rc = cli_usage("restore", "%s", err_msg(-EINVAL));
        if (into && !*into)
                rc = cli_usage("restore", "--into wants a directory");
        for (int i = optind; i < argc && rc == CLI_OK; i++)
                if ((rc = path_arg("restore", "PATH", argv[i], &paths[n])) == CLI_OK)
                        n++;
        if (rc == CLI_OK) {
                o.paths = (const char *const *)paths;
                o.npaths = n;
                rc = restore_snapshot(g, &o);
        }
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        return rc;
}

int cmd_restore(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"version", required_argument, NULL, OPT_VERSION},
            {"to", required_argument, NULL, OPT_TO},
            {"at", required_argument, NULL, OPT_AT},
            {"into", required_argument, NULL, OPT_INTO},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        struct remote *rem = NULL;
        struct sync_stats st = {0};
        json_t *body = NULL, *resp = NULL, *entry;
        char *path = NULL, *to = NULL;
        const char *to_arg = NULL, *at = NULL, *into = NULL;
        int64_t seq = 0, from, now;
        int c, r, rc = CLI_OK;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_VERSION:
                        if (int_arg("restore", "--version", optarg, INT64_MAX, &seq) != CLI_OK)
                                return CLI_USAGE;
                        break;
                case OPT_TO:
                        to_arg = optarg;
                        break;
                case OPT_AT:
                        at = optarg;
                        break;
                case OPT_INTO:
                        into = optarg;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] restore PATH [--version SEQ] [--to NEWPATH]\n"
                             "       ferry [-C DIR] restore [PATH...] --at TIME|SEQ [--into DIR]\n"
                             "       ferry [-C DIR] restore [PATH...] --into DIR\n"
                             "\n"
                             "Brings back version SEQ of PATH (see 'ferry history PATH') as its\n"
                             "new current version; without --version, the last version before\n"
                             "PATH was deleted (undelete; see 'ferry trash'). With --to, the\n"
                             "version is restored as NEWPATH instead, which must not exist.\n"
                             "History is never rewritten: the restore is a new version that\n"
                             "every device downloads. Then runs one sync round, so the file is\n"
                             "on disk here too.\n"
                             "\n"
                             "--at TIME|SEQ: the PATHs (default: the whole space but the backup\n"
                             "sets; '.ferry-backup/NAME' for a set) as they were then (TIME:\n"
                             "'YYYY-MM-DD[ HH:MM[:SS]]', local time; or a seq): every file that\n"
                             "differs is restored as a new version, as above; files created\n"
                             "since are left alone. --into DIR (with --at, --to DIR says the\n"
                             "same): the files are written under the local directory DIR\n"
                             "instead (PATH as DIR/<name of PATH>/...), as of --at or now;\n"
                             "the server is not changed, files already in DIR are never\n"
                             "overwritten.");
                        return CLI_OK;
                default:
                        return cli_bad_option("restore", argc, argv, c);
                }
        }
        if ((at || into) && seq)
                return cli_usage("restore", "--version goes with one PATH alone; use --at SEQ");
        if (into && to_arg)
                return cli_usage("restore", "--to and --into do not go together");
        if (at || into)
                return restore_points(g, argc, argv, at, into ? into : to_arg);
        if (argc - optind != 1)
                return cli_usage("restore", argc - optind ? "one PATH only (several go with "
                                                            "--at or --into)"
                                                          : "PATH is missing");
        rc = path_arg("restore", "PATH", argv[optind], &path);
        if (rc == CLI_OK && to_arg && to_arg[0] == '/')
                rc = cli_usage("restore",
                               "NEWPATH '%s' is a Ferry path, not a local directory (to "
                               "restore into a directory, use --into DIR)",
                               to_arg);
        else if (rc == CLI_OK && to_arg)
                rc = path_arg("restore", "NEWPATH", to_arg, &to);
        if (rc != CLI_OK)
                goto out;
        if (to && !strcmp(to, path)) {
                rc = cli_usage("restore", "NEWPATH is PATH; leave --to out to restore in place");
                goto out;
        }
        r = cli_load_config(g, &cfg);
        if (r < 0) {
                rc = cli_fail("restore", r);
                goto out;
        }
        body = json_pack("{s:s}", "path", path);
        r = body ? 0 : -ENOMEM;
        if (r == 0 && seq)
                r = json_object_set_new(body, "seq", json_integer(seq));
        if (r == 0 && to)
                r = json_object_set_new(body, "to", json_string(to));
        if (r == 0)
                r = remote_new(cfg.server, cfg.token, &rem);
        if (r == 0)
                r = remote_post_json(rem, "/api/v1/restore", body, &resp);
        remote_free(rem);
        if (r == -ENOMEM) {
                rc = cli_fail("restore", r);
                goto out;
        }
        if (r < 0) {
                rc = restore_refused(r, path, seq, to);
                goto out;
        }
        entry = json_object_get(resp, "entry");
        now = json_integer_value(json_object_get(entry, "seq"));
        from = json_integer_value(json_object_get(resp, "restored_from"));
        if (json_is_true(json_object_get(resp, "unchanged")))
                printf("%s already has that content (version %lld); nothing to restore\n",
                       to ? to : path, (long long)now);
        else if (to)
                printf("restored version %lld of %s as %s (version %lld)\n", (long long)from, path,
                       to, (long long)now);
        else
                printf("restored %s from version %lld (now version %lld)\n", path, (long long)from,
                       (long long)now);
        fflush(stdout);
        r = restore_sync(&cfg, &st);
        if (r < 0) {
                fprintf(stderr,
                        "ferry: restore: restored on the server, but the sync round failed: %s; "
                        "run 'ferry sync'\n",
                        err_msg(r));
                rc = CLI_FAIL;
                goto out;
        }
        printf("synced: uploaded %lld, downloaded %lld, deleted %lld, conflicts %lld\n",
               (long long)st.uploaded, (long long)st.downloaded, (long long)st.deleted,
               (long long)st.conflicts);
out:
        json_decref(body);
        json_decref(resp);
        free(path);
        free(to);
        config_free(&cfg);
        return rc;
}
