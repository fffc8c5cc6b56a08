/* cmd_transfers: the commands around transfer records (docs/cli.md):
 * `ferry transfers` (every device's uploads, batch by batch, and the
 * downloads not done, from GET /api/v1/transfers), `ferry retry` (upload
 * this device's failed files again, download failed files again: one sync
 * round that re-announces them, with the failed downloads fetched anew),
 * and `ferry forget` (drop failed records). `ferry config` is in
 * cmd_config.c.
 *
 * The --json shapes are documented and kept stable: fields are copied one
 * by one, so a new server field does not change them. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "path.h"
#include "progress.h"
#include "remote.h"
#include "sync.h"

enum { OPT_JSON = 1000, OPT_DEVICE, OPT_ALL, OPT_FAILED, OPT_HELP };

/* Batches shown without --all: those with something not complete, and the
 * newest ones. */
#define TRANSFERS_RECENT 5

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

/* Copies keys from src into a new object (null for absent ones). */
static json_t *pick(const json_t *src, const char *const *keys)
{
        json_t *o = json_object();

        for (size_t k = 0; o && keys[k]; k++) {
                json_t *v = json_object_get(src, keys[k]);

                if (json_object_set_new(o, keys[k], v ? json_incref(v) : json_null()) < 0) {
                        json_decref(o);
                        o = NULL;
                }
        }
        return o;
}

static int64_t num(const json_t *o, const char *key)
{
        return json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));

        return s ? s : "";
}

static int incomplete(const json_t *b)
{
        return num(b, "pending") + num(b, "uploading") + num(b, "failed") > 0;
}

static int shown_batch(const json_t *b, size_t i, int all)
{
        return all || i < TRANSFERS_RECENT || incomplete(b);
}

static int shown_download(const json_t *d, int all)
{
        return all || strcmp(str(d, "status"), "done") != 0;
}

static json_t *transfers_json(const json_t *resp, int all)
{
        static const char *const dev_keys[] = {
            "id", "name", "online", "last_seen", "download_incomplete", "applied_seq", NULL};
        static const char *const batch_keys[] = {
            "id",        "device",   "device_name", "created",     "updated",    "files", "pending",
            "uploading", "complete", "failed",      "bytes_total", "bytes_done", NULL};
        static const char *const rec_keys[] = {"id",      "path",   "kind",       "size",
                                               "hash",    "status", "bytes_done", "started",
                                               "updated", "reason", "seq",        NULL};
        static const char *const dl_keys[] = {"device", "device_name", "path",    "seq",
                                              "status", "reason",      "updated", NULL};
        json_t *out = json_pack("{s:[], s:[], s:[]}", "devices", "batches", "downloads"), *v;
        size_t i, k;

        if (!out)
                return NULL;
        json_array_foreach(json_object_get(resp, "devices"), i, v)
        {
                if (json_array_append_new(json_object_get(out, "devices"), pick(v, dev_keys)) < 0)
                        goto fail;
        }
        json_array_foreach(json_object_get(resp, "batches"), i, v)
        {
                json_t *b, *recs = json_array(), *rec;

                if (!shown_batch(v, i, all)) {
                        json_decref(recs);
                        continue;
                }
                b = pick(v, batch_keys);
                if (!b || !recs || json_object_set_new(b, "records", recs) < 0 ||
                    json_array_append_new(json_object_get(out, "batches"), b) < 0) {
                        if (!b)
                                json_decref(recs);
                        goto fail;
                }
                json_array_foreach(json_object_get(v, "records"), k, rec)
                {
                        if (json_array_append_new(recs, pick(rec, rec_keys)) < 0)
                                goto fail;
                }
        }
        json_array_foreach(json_object_get(resp, "downloads"), i, v)
        {
                if (shown_download(v, all) &&
                    json_array_append_new(json_object_get(out, "downloads"), pick(v, dl_keys)) < 0)
                        goto fail;
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

/* "online" or "offline since T" of device id, from the answer's list. */
static void presence(const json_t *resp, const char *id, char *out, size_t len)
{
        const json_t *d;
        char when[64];
        size_t i;

        json_array_foreach(json_object_get(resp, "devices"), i, d)
        {
                if (strcmp(str(d, "id"), id) != 0)
                        continue;
                if (json_is_true(json_object_get(d, "online"))) {
                        snprintf(out, len, "online");
                } else {
                        cli_format_time(num(d, "last_seen"), when, sizeof(when));
                        snprintf(out, len, "offline since %s", when);
                }
                return;
        }
        snprintf(out, len, "removed");
}

static void transfers_text(const json_t *resp, int all)
{
        const json_t *b, *rec, *d;
        size_t i, k, shown = 0, dls = 0;
        char where[96], done[32], size[32];

        json_array_foreach(json_object_get(resp, "batches"), i, b)
        {
                if (!shown_batch(b, i, all))
                        continue;
                shown++;
                presence(resp, str(b, "device"), where, sizeof(where));
                printf("batch %" PRId64 " from %s (%s): %" PRId64 " announced, %" PRId64
                       " uploaded, %" PRId64 " failed, %" PRId64 " pending/uploading\n",
                       num(b, "id"), str(b, "device_name"), where, num(b, "files"),
                       num(b, "complete"), num(b, "failed"),
                       num(b, "pending") + num(b, "uploading"));
                json_array_foreach(json_object_get(b, "records"), k, rec)
                {
                        const char *why = str(rec, "reason");

                        if (!strcmp(str(rec, "status"), "complete") && !all)
                                continue;
                        progress_human(num(rec, "bytes_done"), done, sizeof(done));
                        progress_human(num(rec, "size"), size, sizeof(size));
                        printf("  %-9s %10s of %-10s  %s%s%s%s\n", str(rec, "status"), done, size,
                               str(rec, "path"), *why ? "  (" : "", why, *why ? ")" : "");
                }
        }
        json_array_foreach(json_object_get(resp, "downloads"), i, d)
        {
                const char *why = str(d, "reason");

                if (!shown_download(d, all))
                        continue;
                if (dls++ == 0)
                        printf("downloads%s:\n", all ? "" : " not done");
                printf("  %-9s to %s: %s (seq %" PRId64 ")%s%s%s\n", str(d, "status"),
                       str(d, "device_name"), str(d, "path"), num(d, "seq"), *why ? "  (" : "", why,
                       *why ? ")" : "");
        }
        if (shown == 0 && dls == 0)
                printf("no transfers\n");
}

int cmd_transfers(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"device", required_argument, NULL, OPT_DEVICE},
            {"all", no_argument, NULL, OPT_ALL},
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        const char *device = NULL;
        struct buf q = BUF_INIT;
        json_t *resp = NULL, *out = NULL;
        char *esc = NULL;
        int c, all = 0, json = 0, r, rc;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_DEVICE:
                        device = optarg;
                        break;
                case OPT_ALL:
                        all = 1;
                        break;
                case OPT_JSON:
                        json = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] transfers [--device NAME] [--all] [--json]\n"
                             "\n"
                             "Shows what the account's devices announced they upload, batch by\n"
                             "batch: one line per batch (\"batch B from DEVICE (online|offline\n"
                             "since T): N announced, M uploaded, K failed, P pending/uploading\")\n"
                             "and one per file not complete (status, bytes done, path, reason),\n"
                             "then the downloads not done. Without --all: the batches with\n"
                             "something not complete and the 5 newest; --all shows every batch,\n"
                             "file and download. --device NAME (or id): that device's uploads\n"
                             "and downloads only. --json: one JSON object (docs/cli.md).");
                        return CLI_OK;
                default:
                        return cli_bad_option("transfers", argc, argv, c);
                }
        }
        rc = cli_open_folder(g, "transfers", argc, argv, &cfg);
        if (rc != CLI_OK)
                return rc;
        r = buf_append_str(&q, "/api/v1/transfers");
        if (r == 0 && device) {
                esc = remote_escape(device);
                r = esc ? buf_printf(&q, "?device=%s", esc) : -ENOMEM;
        }
        if (r == 0)
                r = get_json(&cfg, (const char *)q.data, &resp);
        if (r == 0 && !json_is_array(json_object_get(resp, "batches")))
                r = err_set(-EPROTO, "the server's transfers answer has no \"batches\" list");
        if (r == -ENOENT && device)
                r = err_set(r, "no device named '%s' in this account", device);
        if (r < 0) {
                rc = cli_fail("transfers", r);
                goto out;
        }
        if (json) {
                out = transfers_json(resp, all);
                r = out ? cli_print_json(out) : -ENOMEM;
                if (r < 0)
                        rc = cli_fail("transfers", r);
        } else {
                transfers_text(resp, all);
        }
out:
        json_decref(resp);
        json_decref(out);
        buf_free(&q);
        free(esc);
        config_free(&cfg);
        return rc;
}

/* ---- retry and forget ---- */

/* The PATH operands, checked and without trailing '/'; *n of them. */
static int take_paths(const char *cmd, int argc, char **argv, char ***out, size_t *n)
{
        char **p = calloc((size_t)(argc - optind) + 1, sizeof(*p));
        int rc = CLI_OK;

        *n = 0;
        if (!p)
                return cli_fail(cmd, -ENOMEM);
        for (int i = optind; i < argc && rc == CLI_OK; i++) {
                size_t len;

                p[*n] = strdup(argv[i]);
                if (!p[*n]) {
                        rc = cli_fail(cmd, -ENOMEM);
                        break;
                }
                len = strlen(p[*n]);
                while (len > 1 && p[*n][len - 1] == '/')
                        p[*n][--len] = '\0';
                if (path_validate(p[(*n)++]) < 0)
                        rc = cli_usage(cmd, "invalid PATH '%s': %s", argv[i], err_msg(-EINVAL));
        }
        if (rc != CLI_OK) {
                for (size_t i = 0; i < *n; i++)
                        free(p[i]);
                free(p);
                *n = 0;
                return rc;
        }
        *out = p;
        return CLI_OK;
}

static void free_paths(char **p, size_t n)
{
        for (size_t i = 0; p && i < n; i++)
                free(p[i]);
        free(p);
}

/* PATH...|--failed, as retry and forget take them. */
static int parse_targets(const char *cmd, const char *usage, int argc, char **argv, int *failed)
{
        static const struct option opts[] = {
            {"failed", no_argument, NULL, OPT_FAILED},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        int c;

        *failed = 0;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_FAILED:
                        *failed = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts(usage);
                        return -1;
                default:
                        return cli_bad_option(cmd, argc, argv, c);
                }
        }
        if (*failed && optind < argc)
                return cli_usage(cmd, "give PATH... or --failed, not both");
        if (!*failed && optind == argc)
                return cli_usage(cmd, "nothing to %s: give PATH... or --failed", cmd);
        return CLI_OK;
}

/* 1 when path is among paths[0..n). */
static int has_path(char *const *paths, size_t n, const char *path)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(paths[i], path))
                        return 1;
        return 0;
}

/* This device's failed uploads and downloads in resp (GET
 * /api/v1/transfers?device=SELF), limited to paths unless want_all. */
static int failed_of(const json_t *resp, const char *self, char *const *paths, size_t n,
                     int want_all, json_t *up, json_t *down)
{
        const json_t *b, *rec, *d;
        size_t i, k;

        json_array_foreach(json_object_get(resp, "batches"), i, b)
        {
                if (strcmp(str(b, "device"), self) != 0)
                        continue;
                json_array_foreach(json_object_get(b, "records"), k, rec)
                {
                        if (!strcmp(str(rec, "status"), "failed") &&
                            (want_all || has_path(paths, n, str(rec, "path"))) &&
                            json_array_append_new(up, json_string(str(rec, "path"))) < 0)
                                return -ENOMEM;
                }
        }
        json_array_foreach(json_object_get(resp, "downloads"), i, d)
        {
                if (!strcmp(str(d, "device"), self) && !strcmp(str(d, "status"), "failed") &&
                    (want_all || has_path(paths, n, str(d, "path"))) &&
                    json_array_append_new(down, json_string(str(d, "path"))) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int in_list(const json_t *list, const char *path)
{
        const json_t *v;
        size_t i;

        json_array_foreach(list, i, v)
        {
                if (!strcmp(json_string_value(v), path))
                        return 1;
        }
        return 0;
}

/* Why path has nothing of this device's to retry, on stderr. */
static void why_not(const struct config *cfg, const char *path)
{
        char *esc = remote_escape(path), *q = NULL;
        const json_t *b, *rec;
        json_t *resp = NULL;
        size_t i, k;

        if (esc && asprintf(&q, "/api/v1/transfers?path=%s", esc) >= 0 &&
            get_json(cfg, q, &resp) == 0) {
                json_array_foreach(json_object_get(resp, "batches"), i, b)
                {
                        json_array_foreach(json_object_get(b, "records"), k, rec)
                        {
                                if (strcmp(str(rec, "path"), path) != 0 ||
                                    !strcmp(str(b, "device"), cfg->device_id))
                                        continue;
                                fprintf(stderr,
                                        "ferry: retry: %s is %s from %s: only %s can upload it "
                                        "(run 'ferry retry' there)\n",
                                        path, str(rec, "status"), str(b, "device_name"),
                                        str(b, "device_name"));
                                goto out;
                        }
                }
        }
        fprintf(stderr, "ferry: retry: no failed transfer of %s on this device\n", path);
out:
        err_clear();
        json_decref(resp);
        free(esc);
        free(q);
}

/* After the round: how many of up and down (paths) are still failed, each
 * told on stderr; or a negative code. q asks for this device's records. */
static int still_failed(const struct config *cfg, const char *q, const json_t *up,
                        const json_t *down)
{
        json_t *resp = NULL, *up2 = json_array(), *down2 = json_array(), *v;
        int r, n = 0;
        size_t i;

        r = up2 && down2 ? get_json(cfg, q, &resp) : -ENOMEM;
        if (r == 0)
                r = failed_of(resp, cfg->device_id, NULL, 0, 1, up2, down2);
        if (r < 0)
                goto out;
        json_array_foreach(up, i, v)
        {
                if (!in_list(up2, json_string_value(v)))
                        continue;
                fprintf(stderr, "ferry: retry: the upload of %s failed again\n",
                        json_string_value(v));
                n++;
        }
        json_array_foreach(down, i, v)
        {
                if (!in_list(down2, json_string_value(v)))
                        continue;
                fprintf(stderr, "ferry: retry: the download of %s failed again\n",
                        json_string_value(v));
                n++;
        }
        r = n;
out:
        json_decref(resp);
        json_decref(up2);
        json_decref(down2);
        return r;
}

static const char *const retry_usage =
    "usage: ferry [-C DIR] retry PATH... | --failed\n"
    "\n"
    "Transfers failed files again. This device's failed uploads: one sync\n"
    "round announces and uploads them again (the file must still be in the\n"
    "folder). This device's failed downloads: the round downloads them again\n"
    "from the server. --failed retries all of them. Another device's failed\n"
    "upload can only be retried on that device. Prints the round's summary;\n"
    "exits 1 when a file is still not transferred afterwards.";

int cmd_retry(const struct cli *g, int argc, char **argv)
{
        struct sync_options so = {0};
        struct config cfg = {0};
        struct sync_stats st;
        json_t *resp = NULL, *up = json_array(), *down = json_array(), *v;
        char **paths = NULL, *q = NULL, *esc = NULL, sent[32], recv[32];
        const char **refetch = NULL;
        size_t n = 0, i;
        int failed, rc, r, problems = 0;

        rc = parse_targets("retry", retry_usage, argc, argv, &failed);
        if (rc != CLI_OK) {
                rc = rc < 0 ? CLI_OK : rc;
                goto out;
        }
        if (!failed && (rc = take_paths("retry", argc, argv, &paths, &n)) != CLI_OK)
                goto out;
        r = up && down ? cli_load_config(g, &cfg) : -ENOMEM;
        if (r < 0) {
                rc = cli_fail("retry", r);
                goto out;
        }
        esc = remote_escape(cfg.device_id ? cfg.device_id : "");
        if (!esc || asprintf(&q, "/api/v1/transfers?device=%s", esc) < 0) {
                q = NULL;
                rc = cli_fail("retry", -ENOMEM);
                goto out;
        }
        r = get_json(&cfg, q, &resp);
        if (r == 0)
                r = failed_of(resp, cfg.device_id, paths, n, failed, up, down);
        if (r < 0) {
                rc = cli_fail("retry", r);
                goto out;
        }
        for (i = 0; i < n; i++) {
                if (!in_list(up, paths[i]) && !in_list(down, paths[i])) {
                        why_not(&cfg, paths[i]);
                        problems++;
                }
        }
        json_array_foreach(up, i, v)
        {
                char *full = path_join(cfg.root, json_string_value(v));
                struct stat sb;

                if (full && lstat(full, &sb) < 0) {
                        fprintf(stderr,
                                "ferry: retry: %s is no longer in the folder; 'ferry forget %s' "
                                "drops its record\n",
                                json_string_value(v), json_string_value(v));
                        problems++;
                }
                free(full);
        }
        if (json_array_size(up) == 0 && json_array_size(down) == 0) {
                if (failed && problems == 0)
                        printf("nothing to retry: no failed transfer on this device\n");
                rc = problems ? CLI_FAIL : CLI_OK;
                goto out;
        }
        refetch = calloc(json_array_size(down) + 1, sizeof(*refetch));
        if (!refetch) {
                rc = cli_fail("retry", -ENOMEM);
                goto out;
        }
        json_array_foreach(down, i, v) refetch[i] = json_string_value(v);
        so.refetch = refetch;
        so.nrefetch = json_array_size(down);
        r = sync_run(&cfg, &so, &st);
        if (r < 0) {
                rc = cli_fail("retry", r);
                goto out;
        }
        progress_human(st.bytes_up, sent, sizeof(sent));
        progress_human(st.bytes_down, recv, sizeof(recv));
        printf(
            "uploaded %lld, downloaded %lld, deleted %lld, conflicts %lld, sent %s, received %s\n",
            (long long)st.uploaded, (long long)st.downloaded, (long long)st.deleted,
            (long long)st.conflicts, sent, recv);
        r = still_failed(&cfg, q, up, down);
        if (r < 0) {
                rc = cli_fail("retry", r);
                goto out;
        }
        printf("retried %zu upload%s and %zu download%s\n", json_array_size(up),
               json_array_size(up) == 1 ? "" : "s", json_array_size(down),
               json_array_size(down) == 1 ? "" : "s");
        rc = problems + r ? CLI_FAIL : CLI_OK;
out:
        free(refetch);
        free(q);
        free(esc);
        json_decref(resp);
        json_decref(up);
        json_decref(down);
        free_paths(paths, n);
        config_free(&cfg);
        return rc;
}

static const char *const forget_usage =
    "usage: ferry [-C DIR] forget PATH... | --failed\n"
    "\n"
    "Drops failed transfer records: those of PATH (any device of the\n"
    "account), or with --failed every failed record of the account, and\n"
    "this device's failed downloads of those files. Records that are not\n"
    "failed are left alone. Nothing is deleted from any folder. Exits 1\n"
    "when a PATH has no failed record.";

/* POST /api/v1/transfers/forget with body; *forgotten and *skipped. */
static int forget_one(struct remote *rem, json_t *body, int64_t *forgotten, int64_t *skipped)
{
        json_t *resp = NULL;
        int r;

        if (!body)
                return -ENOMEM;
        r = remote_post_json(rem, "/api/v1/transfers/forget", body, &resp);
        json_decref(body);
        *forgotten = num(resp, "forgotten");
        *skipped = num(resp, "skipped");
        json_decref(resp);
        return r;
}

int cmd_forget(const struct cli *g, int argc, char **argv)
{
        struct config cfg = {0};
        struct remote *rem = NULL;
        char **paths = NULL;
        int64_t fg = 0, sk = 0;
        size_t n = 0;
        int failed, rc, r, problems = 0;

        rc = parse_targets("forget", forget_usage, argc, argv, &failed);
        if (rc != CLI_OK)
                return rc < 0 ? CLI_OK : rc;
        if (!failed && (rc = take_paths("forget", argc, argv, &paths, &n)) != CLI_OK)
                return rc;
        r = cli_load_config(g, &cfg);
        if (r == 0)
                r = remote_new(cfg.server, cfg.token, &rem);
        if (r < 0) {
                rc = cli_fail("forget", r);
                goto out;
        }
        if (failed) {
                r = forget_one(rem, json_pack("{s:b}", "failed", 1), &fg, &sk);
                if (r < 0) {
                        rc = cli_fail("forget", r);
                        goto out;
                }
                printf("forgot %lld failed record%s\n", (long long)fg, fg == 1 ? "" : "s");
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                r = forget_one(rem, json_pack("{s:s}", "path", paths[i]), &fg, &sk);
                if (r < 0) {
                        rc = cli_fail("forget", r);
                        goto out;
                }
                if (fg > 0) {
                        printf("forgot %lld record%s of %s\n", (long long)fg, fg == 1 ? "" : "s",
                               paths[i]);
                        continue;
                }
                problems++;
                if (sk > 0)
                        fprintf(stderr,
                                "ferry: forget: %s has no failed record (%lld not failed: only "
                                "failed records are forgotten)\n",
                                paths[i], (long long)sk);
                else
                        fprintf(stderr, "ferry: forget: %s has no failed record\n", paths[i]);
        }
        rc = problems ? CLI_FAIL : CLI_OK;
out:
        remote_free(rem);
        free_paths(paths, n);
        config_free(&cfg);
        return rc;
}
