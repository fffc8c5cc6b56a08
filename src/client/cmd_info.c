/* cmd_info: `ferry ls`, what the server holds for the account (GET
 * /api/v1/files). `--all` adds the uploads that are not complete yet (GET
 * /api/v1/transfers?status=incomplete, any device of the account) with a
 * status column; `--conflicts` lists only the conflict copies (conflict.c
 * recognises their names). `ferry devices` is in cmd_devices.c.
 *
 * The --json output is documented in docs/cli.md and kept stable: fields
 * are copied one by one, not passed through, so a new server field does
 * not change it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "conflict.h"
#include "err.h"
#include "path.h"
#include "remote.h"

enum { OPT_JSON = 1000, OPT_DELETED, OPT_ALL, OPT_CONFLICTS, OPT_HELP };

/* Widest path column of `ls --all` (longer paths push the status right). */
#define PATH_COLUMN_MAX 50

/* Copies key from src to dst, or null when absent. */
static int copy(json_t *dst, const json_t *src, const char *key)
{
        json_t *v = json_object_get(src, key);

        return json_object_set_new(dst, key, v ? json_incref(v) : json_null());
}

static int copy_keys(json_t *dst, const json_t *src, const char *const *keys, size_t n)
{
        for (size_t k = 0; k < n; k++)
                if (copy(dst, src, keys[k]) < 0)
                        return -ENOMEM;
        return 0;
}

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const file_keys[] = {"path", "kind", "size", "mtime_ns",
                                        "mode", "hash", "seq",  "deleted"};
static const char *const record_keys[] = {"path",        "kind",       "size",   "hash",
                                          "status",      "bytes_done", "reason", "device",
                                          "device_name", "id",         "batch",  "updated"};

/* The status column of an upload record: "pending", "uploading 42%",
 * "failed: REASON". */
static void record_status(const json_t *rec, char *out, size_t len)
{
        const char *st = json_string_value(json_object_get(rec, "status"));
        const char *why = json_string_value(json_object_get(rec, "reason"));
        int64_t size = json_integer_value(json_object_get(rec, "size"));
        int64_t done = json_integer_value(json_object_get(rec, "bytes_done"));

        st = st ? st : "?";
        if (!strcmp(st, "uploading")) {
                int pct = size > 0 ? (int)(done * 100 / size) : 0;

                snprintf(out, len, "uploading %d%%", pct < 0 ? 0 : pct > 100 ? 100 : pct);
        } else if (!strcmp(st, "failed")) {
                snprintf(out, len, "failed: %s", why && *why ? why : "no reason given");
        } else {
                snprintf(out, len, "%s", st);
        }
}

/* Whether path is prefix or under it (no prefix: everything). */
static int under(const char *path, const char *prefix)
{
        size_t n;

        if (!prefix)
                return 1;
        n = strlen(prefix);
        return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

/* The upload records of resp (GET /transfers) that are not complete and lie
 * under prefix, each with its batch's device and device_name and its batch
 * id, in the server's order. NULL on out of memory. */
static json_t *open_records(const json_t *resp, const char *prefix)
{
        json_t *list = json_array(), *b, *rec;
        size_t i, j;

        if (!list)
                return NULL;
        json_array_foreach(json_object_get(resp, "batches"), i, b)
        {
                json_array_foreach(json_object_get(b, "records"), j, rec)
                {
                        const char *path = json_string_value(json_object_get(rec, "path"));
                        const char *st = json_string_value(json_object_get(rec, "status"));
                        json_t *o;

                        if (!path || !st || !strcmp(st, "complete") || !under(path, prefix))
                                continue;
                        o = json_object();
                        if (!o || json_array_append_new(list, o) < 0 ||
                            copy_keys(o, rec, record_keys, NKEYS(record_keys)) < 0 ||
                            json_object_set(o, "device",
                                            json_object_get(b, "device") ?: json_null()) < 0 ||
                            json_object_set(o, "device_name",
                                            json_object_get(b, "device_name") ?: json_null()) < 0 ||
                            json_object_set(o, "batch", json_object_get(b, "id") ?: json_null()) <
                                0) {
                                json_decref(list);
                                return NULL;
                        }
                }
        }
        return list;
}

/* The files of resp (GET /files) in the documented shape; with status,
 * each gets "status": "ok". */
static json_t *files_json(const json_t *resp, int status)
{
        json_t *files = json_array(), *f;
        size_t i;

        if (!files)
                return NULL;
        json_array_foreach(json_object_get(resp, "files"), i, f)
        {
                json_t *o = json_object();

                if (!o || json_array_append_new(files, o) < 0 ||
                    copy_keys(o, f, file_keys, NKEYS(file_keys)) < 0 ||
                    (json_is_null(json_object_get(o, "deleted")) &&
                     json_object_set_new(o, "deleted", json_false()) < 0) ||
                    (status && json_object_set_new(o, "status", json_string("ok")) < 0)) {
                        json_decref(files);
                        return NULL;
                }
        }
        return files;
}

/* One line of `ls`: kind, size, mtime, path (and the status column of
 * --all, the path then padded to width). */
static void file_line(const json_t *f, int width, const char *status)
{
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *kind = json_string_value(json_object_get(f, "kind"));
        const char *target = json_string_value(json_object_get(f, "target"));
        int deleted = json_is_true(json_object_get(f, "deleted"));
        int64_t mtime = json_integer_value(json_object_get(f, "mtime_ns"));
        char when[64], size[32], name[PATH_MAX_BYTES + 300];

        if (!kind)
                kind = "-";
        if (!strcmp(kind, "file"))
                snprintf(size, sizeof(size), "%lld",
                         (long long)json_integer_value(json_object_get(f, "size")));
        else
                snprintf(size, sizeof(size), "-");
        if (mtime > 0)
                cli_format_time(mtime / 1000000000, when, sizeof(when));
        else
                snprintf(when, sizeof(when), "%19s", "-");
        snprintf(name, sizeof(name), "%s%s%s%s%s", path, !strcmp(kind, "dir") ? "/" : "",
                 target ? " -> " : "", target ? target : "", deleted ? "  (deleted)" : "");
        if (status)
                printf("%-7s %12s  %s  %-*s  %s\n", kind, size, when, width, name, status);
        else
                printf("%-7s %12s  %s  %s\n", kind, size, when, name);
}

/* Text of ls (records: NULL without --all), merged by path: a file's line
 * comes before the open records of the same path. */
static void ls_text(const json_t *resp, const json_t *records)
{
        const json_t *files = json_object_get(resp, "files");
        size_t i = 0, j = 0, nf = json_array_size(files), nr = json_array_size(records);
        int width = 0;

        for (size_t k = 0; records && k < nf + nr; k++) {
                const json_t *x =
                    k < nf ? json_array_get(files, k) : json_array_get(records, k - nf);
                const char *p = json_string_value(json_object_get(x, "path"));
                int n = p ? (int)strlen(p) + 1 : 0;

                width = n > width ? n : width;
        }
        width = width > PATH_COLUMN_MAX ? PATH_COLUMN_MAX : width;
        while (i < nf || j < nr) {
                const json_t *f = json_array_get(files, i), *rec = json_array_get(records, j);
                const char *fp = json_string_value(json_object_get(f, "path"));
                const char *rp = json_string_value(json_object_get(rec, "path"));
                char status[600];

                if (!fp && i < nf) {
                        i++;
                        continue;
                }
                if (i < nf && (j >= nr || strcmp(fp, rp) <= 0)) {
                        file_line(f, width, records ? "ok" : NULL);
                        i++;
                        continue;
                }
                record_status(rec, status, sizeof(status));
                snprintf(status + strlen(status), sizeof(status) - strlen(status), " (from %s)",
                         json_string_value(json_object_get(rec, "device_name")) ?: "?");
                file_line(rec, width, status);
                j++;
        }
}

static int by_path(const void *a, const void *b)
{
        const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

        return strcmp(json_string_value(json_object_get(x, "path")),
                      json_string_value(json_object_get(y, "path")));
}

/* Sorts an array of objects with a "path" string in place. */
static int sort_by_path(json_t *arr)
{
        size_t n = json_array_size(arr), i;
        json_t **items = calloc(n ? n : 1, sizeof(*items));

        if (!items)
                return -ENOMEM;
        for (i = 0; i < n; i++)
                items[i] = json_incref(json_array_get(arr, i));
        qsort(items, n, sizeof(*items), by_path);
        json_array_clear(arr);
        for (i = 0; i < n; i++)
                json_array_append_new(arr, items[i]);
        free(items);
        return 0;
}

/* ls --conflicts: the live entries of resp that are conflict copies. */
static json_t *conflicts_of(const json_t *resp)
{
        json_t *list = json_array(), *f;
        size_t i;

        if (!list)
                return NULL;
        json_array_foreach(json_object_get(resp, "files"), i, f)
        {
                const char *path = json_string_value(json_object_get(f, "path"));
                struct conflict_info ci;
                json_t *o;
                int r;

                if (!path || json_is_true(json_object_get(f, "deleted")))
                        continue;
                r = conflict_parse(path, &ci);
                if (r == 0)
                        continue;
                o = r < 0 ? NULL
                          : json_pack("{s:s, s:s, s:s, s:s, s:O?, s:O?, s:O?, s:O?}", "path", path,
                                      "original", ci.original, "device", ci.device, "stamp",
                                      ci.stamp, "kind", json_object_get(f, "kind"), "size",
                                      json_object_get(f, "size"), "mtime_ns",
                                      json_object_get(f, "mtime_ns"), "seq",
                                      json_object_get(f, "seq"));
                conflict_info_free(&ci);
                if (!o || json_array_append_new(list, o) < 0) {
                        json_decref(list);
                        return NULL;
                }
        }
        return list;
}

static void conflicts_text(const json_t *list)
{
        json_t *c;
        size_t i;

        json_array_foreach(list, i, c)
        {
                printf("%s  (copy of %s from %s, %s)\n",
                       json_string_value(json_object_get(c, "path")),
                       json_string_value(json_object_get(c, "original")),
                       json_string_value(json_object_get(c, "device")),
                       json_string_value(json_object_get(c, "stamp")));
        }
}

/* The query of GET /files for ls. */
static int files_query(struct buf *q, const char *prefix, int deleted)
{
        char *esc = NULL;
        int r;

        r = buf_append_str(q, "/api/v1/files");
        if (r == 0 && prefix) {
                esc = remote_escape(prefix);
                r = esc ? buf_printf(q, "?prefix=%s", esc) : -ENOMEM;
        }
        if (r == 0 && deleted)
                r = buf_printf(q, "%cdeleted=1", prefix ? '&' : '?');
        free(esc);
        return r;
}

/* What ls prints, from the answers; out gets the --json object when json. */
static int ls_output(const json_t *resp, const json_t *transfers, const char *prefix, int json,
                     int conflicts)
{
        json_t *out = NULL, *records = NULL, *list = NULL;
        int r = -ENOMEM;

        if (conflicts) {
                list = conflicts_of(resp);
                if (!list)
                        goto out;
                if (!json) {
                        conflicts_text(list);
                        r = 0;
                        goto out;
                }
                out =
                    json_pack("{s:I, s:O}", "seq", json_integer_value(json_object_get(resp, "seq")),
                              "conflicts", list);
                r = out ? cli_print_json(out) : -ENOMEM;
                goto out;
        }
        if (transfers) {
                records = open_records(transfers, prefix);
                if (!records || sort_by_path(records) < 0)
                        goto out;
        }
        if (!json) {
                ls_text(resp, records);
                r = 0;
                goto out;
        }
        out = json_pack("{s:I, s:o}", "seq", json_integer_value(json_object_get(resp, "seq")),
                        "files", files_json(resp, records != NULL));
        if (out && records && json_object_set(out, "incomplete", records) < 0) {
                json_decref(out);
                out = NULL;
        }
        r = out ? cli_print_json(out) : -ENOMEM;
out:
        json_decref(out);
        json_decref(records);
        json_decref(list);
        return r;
}

int cmd_ls(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON}, {"deleted", no_argument, NULL, OPT_DELETED},
            {"all", no_argument, NULL, OPT_ALL},   {"conflicts", no_argument, NULL, OPT_CONFLICTS},
            {"help", no_argument, NULL, OPT_HELP}, {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        struct remote *rem = NULL;
        struct buf q = BUF_INIT;
        json_t *resp = NULL, *transfers = NULL;
        char *prefix = NULL;
        int c, json = 0, deleted = 0, all = 0, conflicts = 0, r, rc = CLI_OK;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_JSON:
                        json = 1;
                        break;
                case OPT_DELETED:
                        deleted = 1;
                        break;
                case OPT_ALL:
                        all = 1;
                        break;
                case OPT_CONFLICTS:
                        conflicts = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts(
                            "usage: ferry [-C DIR] ls [PATH] [--json] [--deleted] [--all]\n"
                            "       ferry [-C DIR] ls [PATH] --conflicts [--json]\n"
                            "\n"
                            "Lists what the server holds for this account: everything, or PATH\n"
                            "and what is under it (PATH is relative to the linked folder's root).\n"
                            "--deleted also lists deleted entries (tombstones).\n"
                            "--all adds, with a status column, the uploads of every device that\n"
                            "are not complete: pending, uploading N%, failed: REASON (complete\n"
                            "files show ok).\n"
                            "--conflicts lists only the conflict copies, with the file each was\n"
                            "made from; a copy stays listed until it is deleted or renamed.");
                        return CLI_OK;
                default:
                        return cli_bad_option("ls", argc, argv, c);
                }
        }
        if (argc - optind > 1)
                return cli_usage("ls", "at most one PATH");
        if (conflicts && (all || deleted))
                return cli_usage("ls", "--conflicts goes with neither --all nor --deleted");
        if (optind < argc) {
                size_t n;

                prefix = strdup(argv[optind]);
                if (!prefix)
                        return cli_fail("ls", -ENOMEM);
                n = strlen(prefix);
                while (n > 1 && prefix[n - 1] == '/')
                        prefix[--n] = '\0';
                if (path_validate(prefix) < 0) {
                        rc = cli_usage("ls", "invalid PATH: %s", err_msg(-EINVAL));
                        goto out;
                }
        }
        r = cli_load_config(g, &cfg);
        if (r == 0)
                r = remote_new(cfg.server, cfg.token, &rem);
        if (r == 0)
                r = files_query(&q, prefix, deleted);
        if (r == 0)
                r = remote_get_json(rem, (const char *)q.data, &resp);
        if (r == 0 && all)
                r = remote_get_json(rem, "/api/v1/transfers?status=incomplete", &transfers);
        if (r == 0)
                r = ls_output(resp, transfers, prefix, json, conflicts);
        if (r < 0)
                rc = cli_fail("ls", r);
out:
        json_decref(resp);
        json_decref(transfers);
        remote_free(rem);
        buf_free(&q);
        free(prefix);
        config_free(&cfg);
        return rc;
}
