/* cmd_devices: `ferry devices`, the account's devices (GET /api/v1/devices);
 * `ferry devices --history [--files] [NAME]`, when devices were added and
 * removed and which files a removed device held then (GET
 * /api/v1/devices/history); `ferry devices remove NAME`, which revokes a
 * device's token (POST /api/v1/devices/remove), for a lost or retired
 * machine; `ferry devices rename NAME NEW` (POST /api/v1/devices/rename).
 * The listing shows each device's LAN listener (address:port, from the
 * watch's report) and its subnet, which decide the LAN path of
 * `ferry request-upload` and of downloads (peers.h).
 *
 * The --json outputs are documented in docs/cli.md and kept stable: fields
 * are copied one by one, not passed through. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "remote.h"

enum { OPT_JSON = 1000, OPT_HISTORY, OPT_FILES, OPT_HELP };

#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const device_keys[] = {"id",
                                          "name",
                                          "platform",
                                          "address",
                                          "created",
                                          "last_seen",
                                          "online",
                                          "this",
                                          "lan",
                                          "subnet",
                                          "download_incomplete",
                                          "applied_seq",
                                          "uploading",
                                          "first_seen"};
static const char *const event_keys[] = {"device", "name", "event", "time", "applied_seq", "files"};
static const char *const held_keys[] = {"path", "size", "seq"};

/* A new object with keys copied from src (null when absent), appended to
 * arr when arr is not NULL. NULL on out of memory. */
static json_t *pick(const json_t *src, const char *const *keys, size_t n, json_t *arr)
{
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (size_t k = 0; k < n; k++) {
                json_t *v = json_object_get(src, keys[k]);

                if (json_object_set_new(o, keys[k], v ? json_incref(v) : json_null()) < 0)
                        goto fail;
        }
        if (arr && json_array_append_new(arr, o) < 0)
                return NULL;
        return o;
fail:
        json_decref(o);
        return NULL;
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

/* "10.77.1.2:8701", or "[fd00::2]:8701" for IPv6. */
static void lan_text(const json_t *lan, char *out, size_t len)
{
        const char *a = json_string_value(json_object_get(lan, "addr"));
        long long port = (long long)json_integer_value(json_object_get(lan, "port"));

        if (strchr(a, ':'))
                snprintf(out, len, "[%s]:%lld", a, port);
        else
                snprintf(out, len, "%s:%lld", a, port);
}

static int list_devices(const struct config *cfg, int json)
{
        json_t *resp = NULL, *out = NULL, *list, *d;
        size_t i;
        int r;

        r = get_json(cfg, "/api/v1/devices", &resp);
        if (r < 0)
                goto out;
        list = json_object_get(resp, "devices");
        if (json) {
                out = json_pack("{s:[]}", "devices");
                r = out ? 0 : -ENOMEM;
                json_array_foreach(list, i, d)
                {
                        if (r == 0 && !pick(d, device_keys, NKEYS(device_keys),
                                            json_object_get(out, "devices")))
                                r = -ENOMEM;
                }
                if (r == 0)
                        r = cli_print_json(out);
                goto out;
        }
        printf("  %-20s %-32s %-15s %-21s %-18s %-19s %s\n", "NAME", "ID", "ADDRESS", "LAN",
               "SUBNET", "LAST SEEN", "ONLINE");
        json_array_foreach(list, i, d)
        {
                const char *addr = json_string_value(json_object_get(d, "address"));
                const char *subnet = json_string_value(json_object_get(d, "subnet"));
                int64_t seen = json_integer_value(json_object_get(d, "last_seen"));
                json_t *lan = json_object_get(d, "lan");
                char when[64], lanbuf[64] = "-";

                if (seen > 0)
                        cli_format_time(seen, when, sizeof(when));
                else
                        snprintf(when, sizeof(when), "never");
                if (json_is_string(json_object_get(lan, "addr")))
                        lan_text(lan, lanbuf, sizeof(lanbuf));
                printf("%c %-20s %-32s %-15s %-21s %-18s %-19s %s\n",
                       json_is_true(json_object_get(d, "this")) ? '*' : ' ',
                       json_string_value(json_object_get(d, "name")) ?: "?",
                       json_string_value(json_object_get(d, "id")) ?: "?", addr ? addr : "-",
                       lanbuf, subnet ? subnet : "-", when,
                       json_is_true(json_object_get(d, "online")) ? "yes" : "no");
        }
out:
        json_decref(resp);
        json_decref(out);
        return r;
}

static void history_text(const json_t *resp, int files)
{
        json_t *events = json_object_get(resp, "events"), *e, *f;
        size_t i, j;

        if (json_array_size(events) == 0) {
                puts("no device events");
                return;
        }
        json_array_foreach(events, i, e)
        {
                const char *ev = json_string_value(json_object_get(e, "event")) ?: "?";
                const char *id = json_string_value(json_object_get(e, "device")) ?: "?";
                int64_t t = json_integer_value(json_object_get(e, "time"));
                char when[64];

                cli_format_time(t, when, sizeof(when));
                printf("%-19s  %-8s %-20s %s", when, ev,
                       json_string_value(json_object_get(e, "name")) ?: "?", id);
                if (!strcmp(ev, "removed"))
                        printf("  held %lld files (as of seq %lld)",
                               (long long)json_integer_value(json_object_get(e, "files")),
                               (long long)json_integer_value(json_object_get(e, "applied_seq")));
                putchar('\n');
                if (!files)
                        continue;
                json_array_foreach(json_object_get(e, "file_list"), j, f)
                {
                        printf("    %12lld  %8lld  %s\n",
                               (long long)json_integer_value(json_object_get(f, "size")),
                               (long long)json_integer_value(json_object_get(f, "seq")),
                               json_string_value(json_object_get(f, "path")) ?: "?");
                }
        }
}

static json_t *history_json(const json_t *resp, int files)
{
        json_t *out = json_pack("{s:[]}", "events"), *e, *f;
        size_t i, j;

        if (!out)
                return NULL;
        json_array_foreach(json_object_get(resp, "events"), i, e)
        {
                json_t *o = pick(e, event_keys, NKEYS(event_keys), json_object_get(out, "events"));
                json_t *held;

                if (!o)
                        goto fail;
                if (!files)
                        continue;
                held = json_array();
                if (!held || json_object_set_new(o, "file_list", held) < 0)
                        goto fail;
                json_array_foreach(json_object_get(e, "file_list"), j, f)
                {
                        if (!pick(f, held_keys, NKEYS(held_keys), held))
                                goto fail;
                }
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

static int device_history(const struct config *cfg, const char *name, int files, int json)
{
        struct buf q = BUF_INIT;
        json_t *resp = NULL, *out = NULL;
        char *esc = NULL;
        int r;

        r = buf_append_str(&q, "/api/v1/devices/history");
        if (r == 0 && name) {
                esc = remote_escape(name);
                r = esc ? buf_printf(&q, "?device=%s", esc) : -ENOMEM;
        }
        if (r == 0 && files)
                r = buf_printf(&q, "%cfiles=1", name ? '&' : '?');
        if (r == 0)
                r = get_json(cfg, (const char *)q.data, &resp);
        if (r == -ENOENT && name)
                r = err_set(r,
                            "no device %s in this account ('ferry devices --history' lists "
                            "them all)",
                            name);
        if (r < 0)
                goto out;
        if (json) {
                out = history_json(resp, files);
                r = out ? cli_print_json(out) : -ENOMEM;
        } else {
                history_text(resp, files);
        }
out:
        json_decref(resp);
        json_decref(out);
        buf_free(&q);
        free(esc);
        return r;
}

static int remove_device(const struct config *cfg, const char *name, int json)
{
        struct remote *rem = NULL;
        json_t *body = NULL, *resp = NULL, *out = NULL, *d;
        int r;

        body = json_pack("{s:s}", "device", name);
        r = body ? remote_new(cfg->server, cfg->token, &rem) : -ENOMEM;
        if (r == 0)
                r = remote_post_json(rem, "/api/v1/devices/remove", body, &resp);
        if (r == -ENOENT)
                r = err_set(r, "no device %s in this account ('ferry devices' lists them)", name);
        else if (r == -EEXIST)
                r = err_set(r, "%s is this device; remove it from another device of the account",
                            name);
        if (r < 0)
                goto out;
        d = json_object_get(resp, "removed");
        if (json) {
                out = json_object();
                r = out && json_object_set_new(out, "removed",
                                               pick(d, device_keys, NKEYS(device_keys), NULL)) == 0
                        ? cli_print_json(out)
                        : -ENOMEM;
                goto out;
        }
        printf("removed device %s (%s): its token no longer works; 'ferry devices --history "
               "--files %s' shows what it held\n",
               json_string_value(json_object_get(d, "name")) ?: name,
               json_string_value(json_object_get(d, "id")) ?: "?", name);
out:
        remote_free(rem);
        json_decref(body);
        json_decref(resp);
        json_decref(out);
        return r;
}

static int rename_device(const struct config *cfg, const char *name, const char *new_name, int json)
{
        struct remote *rem = NULL;
        json_t *body = NULL, *resp = NULL, *out = NULL, *d;
        int r;

        body = json_pack("{s:s, s:s}", "device", name, "name", new_name);
        r = body ? remote_new(cfg->server, cfg->token, &rem) : -ENOMEM;
        if (r == 0)
                r = remote_post_json(rem, "/api/v1/devices/rename", body, &resp);
        if (r == -ENOENT)
                r = err_set(r, "no device %s in this account ('ferry devices' lists them)", name);
        else if (r == -EEXIST)
                r = err_set(r, "another device of this account is called %s already", new_name);
        if (r < 0)
                goto out;
        d = json_object_get(resp, "device");
        if (json) {
                out = json_object();
                r = out && json_object_set_new(out, "device",
                                               pick(d, device_keys, NKEYS(device_keys), NULL)) == 0
                        ? cli_print_json(out)
                        : -ENOMEM;
                goto out;
        }
        printf("renamed device %s (%s) to %s\n", name,
               json_string_value(json_object_get(d, "id")) ?: "?",
               json_string_value(json_object_get(d, "name")) ?: new_name);
out:
        remote_free(rem);
        json_decref(body);
        json_decref(resp);
        json_decref(out);
        return r;
}

int cmd_devices(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"history", no_argument, NULL, OPT_HISTORY},
            {"files", no_argument, NULL, OPT_FILES},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        int c, json = 0, history = 0, files = 0, r, rc = CLI_OK, nargs;
        const char *name = NULL, *new_name = NULL;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_JSON:
                        json = 1;
                        break;
                case OPT_HISTORY:
                        history = 1;
                        break;
                case OPT_FILES:
                        files = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts(
                            "usage: ferry [-C DIR] devices [--json]\n"
                            "       ferry [-C DIR] devices --history [--files] [NAME] [--json]\n"
                            "       ferry [-C DIR] devices remove NAME [--json]\n"
                            "       ferry [-C DIR] devices rename NAME NEW [--json]\n"
                            "\n"
                            "Lists this account's devices: name, id, address, LAN listener\n"
                            "(address:port of its 'ferry watch', '-' when none), subnet, last\n"
                            "seen, and whether each is online; '*' marks this device.\n"
                            "--history: when devices were added and removed (of NAME only, a\n"
                            "name or an id), with how many files a removed device held then;\n"
                            "--files lists those files.\n"
                            "remove NAME: revokes that device (its token stops working), for a\n"
                            "lost or retired machine; not this device itself.\n"
                            "rename NAME NEW: gives a device (this one too; NAME a name or an id)\n"
                            "a new name, unique among the account's devices.");
                        return CLI_OK;
                default:
                        return cli_bad_option("devices", argc, argv, c);
                }
        }
        nargs = argc - optind;
        if (files && !history)
                return cli_usage("devices", "--files goes with --history");
        if (history) {
                if (nargs > 1)
                        return cli_usage("devices", "--history takes at most one NAME");
                name = nargs ? argv[optind] : NULL;
        } else if (nargs > 0 && !strcmp(argv[optind], "rename")) {
                if (nargs != 3)
                        return cli_usage("devices", nargs < 3 ? "rename: NAME and NEW are needed"
                                                              : "rename takes NAME and NEW");
                name = argv[optind + 1];
                new_name = argv[optind + 2];
                if (!*name || !*new_name)
                        return cli_usage("devices", "rename: NAME and NEW must not be empty");
        } else if (nargs > 0 && strcmp(argv[optind], "remove") != 0) {
                return cli_usage("devices", "unexpected argument '%s'", argv[optind]);
        } else if (nargs > 0) {
                if (nargs != 2)
                        return cli_usage("devices", nargs == 1 ? "remove: NAME is missing"
                                                               : "remove takes one NAME");
                name = argv[optind + 1];
                if (!*name)
                        return cli_usage("devices", "remove: NAME is empty");
        }
        r = cli_load_config(g, &cfg);
        if (r < 0)
                return cli_fail("devices", r);
        if (history)
                r = device_history(&cfg, name, files, json);
        else if (new_name)
                r = rename_device(&cfg, name, new_name, json);
        else if (name)
                r = remove_device(&cfg, name, json);
        else
                r = list_devices(&cfg, json);
        if (r < 0)
                rc = cli_fail("devices", r);
        config_free(&cfg);
        return rc;
}
