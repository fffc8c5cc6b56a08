/* cmd_config: `ferry config [KEY [VALUE]]`, this device's settings in
 * .ferry/config.json (docs/cli.md): the download policy for files other
 * devices have not finished uploading (download-incomplete skip|wait, which
 * the server is told at once with POST /api/v1/device, or by the next sync
 * when it cannot be reached), and the mass-delete guard's thresholds.
 *
 * A running watch reads config.json again when it changes, so a new policy
 * applies to it from its next round on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "index.h"
#include "remote.h"
#include "xferlog.h"

enum { OPT_HELP = 1000 };

static const char *const config_keys[] = {"download-incomplete", "mass-delete-count",
                                          "mass-delete-percent", NULL};

static void config_value(const struct config *c, const char *key, char *out, size_t len)
{
        if (!strcmp(key, "download-incomplete"))
                snprintf(out, len, "%s", config_dl_policy_name(c->dl_policy));
        else if (!strcmp(key, "mass-delete-count"))
                snprintf(out, len, "%lld", (long long)c->mass_delete_count);
        else
                snprintf(out, len, "%d", c->mass_delete_percent);
}

/* Parses value for key into c; CLI_USAGE after a message when bad. */
static int config_set(struct config *c, const char *key, const char *value)
{
        char *end = NULL;
        long long v;

        if (!strcmp(key, "download-incomplete")) {
                int p = config_dl_policy_parse(value);

                if (p < 0)
                        return cli_usage("config",
                                         "download-incomplete is 'skip' or 'wait', "
                                         "not '%s'",
                                         value);
                c->dl_policy = p;
                return CLI_OK;
        }
        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno || !*value || *end || v < 0 || (!strcmp(key, "mass-delete-percent") && v > 100))
                return cli_usage("config", "%s takes a whole number%s, not '%s'", key,
                                 !strcmp(key, "mass-delete-percent") ? " from 0 to 100" : " >= 0",
                                 value);
        if (!strcmp(key, "mass-delete-count"))
                c->mass_delete_count = v;
        else
                c->mass_delete_percent = (int)v;
        return CLI_OK;
}

/* Tells the server the new policy at once and records that it knows (the
 * next sync would do it otherwise). */
static int tell_policy(const struct config *c)
{
        struct remote *rem = NULL;
        struct index *idx = NULL;
        char *db = NULL;
        int r;

        r = remote_new(c->server, c->token, &rem);
        if (r == 0)
                r = xferlog_send_policy(rem, c->dl_policy);
        remote_free(rem);
        if (r < 0)
                return r;
        db = config_state_path(c, INDEX_FILE);
        r = db ? index_open(db, &idx) : -ENOMEM;
        if (r == 0)
                r = index_state_set(idx, "dl_policy_sent", c->dl_policy);
        if (idx)
                index_close(idx);
        free(db);
        err_clear();
        return 0;
}

int cmd_config(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        const char *key = NULL;
        char val[64];
        int c, r, rc = CLI_OK, k;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] config [KEY [VALUE]]\n"
                             "\n"
                             "Shows or changes this device's settings (.ferry/config.json).\n"
                             "Without KEY: every setting as KEY = VALUE; with KEY: its value;\n"
                             "with VALUE: sets it. Settings:\n"
                             "  download-incomplete skip|wait  files another device has not\n"
                             "      finished uploading: skip them until complete (default), or\n"
                             "      wait: list them as waiting (sync, status) and download them\n"
                             "      as soon as they are complete. The server is told at once\n"
                             "      (or by the next sync when it cannot be reached).\n"
                             "  mass-delete-count N     the mass-delete guard: a round may not\n"
                             "  mass-delete-percent P   delete more than N entries AND P% of them");
                        return CLI_OK;
                default:
                        return cli_bad_option("config", argc, argv, c);
                }
        }
        if (argc - optind > 2)
                return cli_usage("config", "unexpected argument '%s'", argv[optind + 2]);
        if (optind < argc) {
                key = argv[optind];
                for (k = 0; config_keys[k] && strcmp(config_keys[k], key) != 0; k++)
                        ;
                if (!config_keys[k])
                        return cli_usage("config",
                                         "unknown setting '%s' (settings: download-incomplete, "
                                         "mass-delete-count, mass-delete-percent)",
                                         key);
        }
        r = cli_load_config(g, &cfg);
        if (r < 0)
                return cli_fail("config", r);
        if (!key) {
                for (k = 0; config_keys[k]; k++) {
                        config_value(&cfg, config_keys[k], val, sizeof(val));
                        printf("%s = %s\n", config_keys[k], val);
                }
                goto out;
        }
        if (argc - optind == 1) {
                config_value(&cfg, key, val, sizeof(val));
                printf("%s\n", val);
                goto out;
        }
        rc = config_set(&cfg, key, argv[optind + 1]);
        if (rc != CLI_OK)
                goto out;
        r = config_save(&cfg);
        if (r < 0) {
                rc = cli_fail("config", r);
                goto out;
        }
        config_value(&cfg, key, val, sizeof(val));
        printf("%s = %s\n", key, val);
        if (!strcmp(key, "download-incomplete") && (r = tell_policy(&cfg)) < 0)
                fprintf(stderr,
                        "ferry: config: saved; the server was not told yet (%s): the next sync "
                        "tells it\n",
                        err_msg(r));
out:
        config_free(&cfg);
        return rc;
}
