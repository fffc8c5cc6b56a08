/* cmd_info: the read-only commands that ask the server: `ferry ls` (the
 * account's current tree, GET /api/v1/files) and `ferry devices` (GET
 * /api/v1/devices). Their --json output is documented in docs/cli.md and
 * kept stable: fields are copied one by one, not passed through, so a new
 * server field does not change it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "path.h"
#include "remote.h"

enum { OPT_JSON = 1000, OPT_DELETED, OPT_HELP };

/* Copies key from src to dst, or null when absent. */
static int copy(json_t *dst, const json_t *src, const char *key)
{
        json_t *v = json_object_get(src, key);

        return json_object_set_new(dst, key, v ? json_incref(v) : json_null());
}

static json_t *ls_json(const json_t *resp)
{
        static const char *const keys[] = {"path", "kind", "size", "mtime_ns",
                                           "mode", "hash", "seq",  "deleted"};
        json_t *out = json_object(), *files = json_array(), *f;
        int r = -ENOMEM;
        size_t i;

        if (!out || !files) {
                json_decref(files);
                goto out;
        }
        json_object_set_new(out, "seq",
                            json_integer(json_integer_value(json_object_get(resp, "seq"))));
        json_object_set_new(out, "files", files);
        json_array_foreach(json_object_get(resp, "files"), i, f)
        {
                json_t *o = json_object();

                if (!o || json_array_append_new(files, o) < 0)
                        goto out;
                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                        if (copy(o, f, keys[k]) < 0)
                                goto out;
                if (json_is_null(json_object_get(o, "deleted")))
                        json_object_set_new(o, "deleted", json_false());
        }
        r = 0;
out:
        if (r < 0) {
                json_decref(out);
                out = NULL;
        }
        return out;
}

static void ls_text(const json_t *resp)
{
        json_t *f;
        size_t i;

        json_array_foreach(json_object_get(resp, "files"), i, f)
        {
                const char *path = json_string_value(json_object_get(f, "path"));
                const char *kind = json_string_value(json_object_get(f, "kind"));
                const char *target = json_string_value(json_object_get(f, "target"));
                int deleted = json_is_true(json_object_get(f, "deleted"));
                int64_t mtime = json_integer_value(json_object_get(f, "mtime_ns"));
                char when[64], size[32];

                if (!path)
                        continue;
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
                printf("%-7s %12s  %s  %s%s%s%s%s\n", kind, size, when, path,
                       !strcmp(kind, "dir") ? "/" : "", target ? " -> " : "", target ? target : "",
                       deleted ? "  (deleted)" : "");
        }
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

int cmd_ls(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"deleted", no_argument, NULL, OPT_DELETED},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        struct buf q = BUF_INIT;
        json_t *resp = NULL, *out = NULL;
        char *prefix = NULL, *esc = NULL;
        int c, json = 0, deleted = 0, r, rc = CLI_OK;

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
                case 'h':
                case OPT_HELP:
                        puts(
                            "usage: ferry [-C DIR] ls [PATH] [--json] [--deleted]\n"
                            "\n"
                            "Lists what the server holds for this account: everything, or PATH\n"
                            "and what is under it (PATH is relative to the linked folder's root).\n"
                            "--deleted also lists deleted entries (tombstones).");
                        return CLI_OK;
                default:
                        return cli_bad_option("ls", argc, argv, c);
                }
        }
        if (argc - optind > 1)
                return cli_usage("ls", "at most one PATH");
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
        if (r < 0) {
                rc = cli_fail("ls", r);
                goto out;
        }
        r = buf_append_str(&q, "/api/v1/files");
        if (r == 0 && prefix) {
                esc = remote_escape(prefix);
                r = esc ? buf_printf(&q, "?prefix=%s", esc) : -ENOMEM;
        }
        if (r == 0 && deleted)
                r = buf_printf(&q, "%cdeleted=1", prefix ? '&' : '?');
        if (r == 0)
                r = get_json(&cfg, (const char *)q.data, &resp);
        if (r < 0) {
                rc = cli_fail("ls", r);
                goto out;
        }
        if (json) {
                out = ls_json(resp);
                r = out ? cli_print_json(out) : -ENOMEM;
                if (r < 0)
                        rc = cli_fail("ls", r);
        } else {
                ls_text(resp);
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

int cmd_devices(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        static const char *const keys[] = {"id",      "name",      "platform", "address",
                                           "created", "last_seen", "online",   "this"};
        struct config cfg = {0};
        json_t *resp = NULL, *out = NULL, *list, *d;
        int c, json = 0, r, rc = CLI_OK;
        size_t i;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_JSON:
                        json = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] devices [--json]\n"
                             "\n"
                             "Lists this account's devices: name, id, address, last seen, and\n"
                             "whether each is online; '*' marks this device.");
                        return CLI_OK;
                default:
                        return cli_bad_option("devices", argc, argv, c);
                }
        }
        rc = cli_open_folder(g, "devices", argc, argv, &cfg);
        if (rc != CLI_OK)
                return rc;
        r = get_json(&cfg, "/api/v1/devices", &resp);
        if (r < 0) {
                rc = cli_fail("devices", r);
                goto out;
        }
        list = json_object_get(resp, "devices");
        if (json) {
                json_t *arr = json_array();

                out = json_pack("{s:o}", "devices", arr);
                if (!out) {
                        rc = cli_fail("devices", -ENOMEM);
                        goto out;
                }
                json_array_foreach(list, i, d)
                {
                        json_t *o = json_object();

                        if (!o || json_array_append_new(arr, o) < 0) {
                                rc = cli_fail("devices", -ENOMEM);
                                goto out;
                        }
                        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                                copy(o, d, keys[k]);
                }
                if (cli_print_json(out) < 0)
                        rc = cli_fail("devices", -EIO);
                goto out;
        }
        printf("  %-20s %-32s %-15s %-19s %s\n", "NAME", "ID", "ADDRESS", "LAST SEEN", "ONLINE");
        json_array_foreach(list, i, d)
        {
                const char *addr = json_string_value(json_object_get(d, "address"));
                int64_t seen = json_integer_value(json_object_get(d, "last_seen"));
                char when[64];

                if (seen > 0)
                        cli_format_time(seen, when, sizeof(when));
                else
                        snprintf(when, sizeof(when), "never");
                printf("%c %-20s %-32s %-15s %-19s %s\n",
                       json_is_true(json_object_get(d, "this")) ? '*' : ' ',
                       json_string_value(json_object_get(d, "name")) ?: "?",
                       json_string_value(json_object_get(d, "id")) ?: "?", addr ? addr : "-", when,
                       json_is_true(json_object_get(d, "online")) ? "yes" : "no");
        }
out:
        json_decref(resp);
        json_decref(out);
        config_free(&cfg);
        return rc;
}
