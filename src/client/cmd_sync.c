/* cmd_sync: `ferry sync` (one sync round, sync.c) and `ferry status` (the
 * linked folder, its last sync and the local changes waiting to be
 * uploaded). status scans but never talks to the server. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "index.h"
#include "localfs.h"
#include "scan.h"
#include "sync.h"
#include "wstatus.h"

enum { OPT_ALLOW_MASS = 1000, OPT_JSON, OPT_HELP };

int cmd_sync(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"allow-mass-delete", no_argument, NULL, OPT_ALLOW_MASS},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct sync_options so = {0};
        struct sync_stats st;
        struct config cfg = {0};
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ALLOW_MASS:
                        so.allow_mass_delete = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] sync [--allow-mass-delete]\n"
                             "\n"
                             "One sync round: uploads local changes, downloads remote ones, keeps\n"
                             "both versions of a file changed on two devices (a conflict copy).\n"
                             "Prints \"uploaded N, downloaded M, deleted K, conflicts C\".\n"
                             "Refuses a round that would delete more than the configured number\n"
                             "and share of files (default 50 and 25%) unless --allow-mass-delete\n"
                             "is given.");
                        return CLI_OK;
                default:
                        return cli_bad_option("sync", argc, argv, c);
                }
        }
        if (optind < argc)
                return cli_usage("sync", "unexpected argument '%s'", argv[optind]);
        r = cli_load_config(g, &cfg);
        if (r < 0)
                return cli_fail("sync", r);
        r = sync_run(&cfg, &so, &st);
        config_free(&cfg);
        if (r < 0)
                return cli_fail("sync", r);
        printf("uploaded %lld, downloaded %lld, deleted %lld, conflicts %lld\n",
               (long long)st.uploaded, (long long)st.downloaded, (long long)st.deleted,
               (long long)st.conflicts);
        return CLI_OK;
}

struct status {
        int64_t last_seq, last_sync_ns, indexed;
        int have_sync, have_pending;
        int64_t put, del;
        json_t *watch; /* watch.json of a running watch, or NULL */
};

static int collect(const struct config *cfg, struct status *s)
{
        struct scan_result sr = {0};
        struct index *idx = NULL;
        char *db = NULL;
        int lock = -1, r;

        memset(s, 0, sizeof(*s));
        r = wstatus_read(cfg->root, &s->watch);
        if (r < 0)
                return r;
        db = config_state_path(cfg, INDEX_FILE);
        if (!db)
                return -ENOMEM;
        r = index_open(db, &idx);
        if (r < 0)
                goto out;
        r = index_state_get(idx, "last_seq", &s->last_seq);
        if (r == -ENOENT)
                s->last_seq = 0;
        else if (r < 0)
                goto out;
        r = index_state_get(idx, "last_sync_ns", &s->last_sync_ns);
        if (r < 0 && r != -ENOENT)
                goto out;
        s->have_sync = r == 0;
        /* A running sync holds the lock and is changing the index: then the
         * pending counts are unknown rather than wrong. */
        if (localfs_lock(cfg->root, &lock) == 0) {
                r = scan_folder(cfg->root, idx, &sr);
                if (r < 0)
                        goto out;
                for (size_t i = 0; i < sr.n; i++) {
                        if (sr.changes[i].op == CHANGE_DELETE)
                                s->del++;
                        else
                                s->put++;
                }
                s->have_pending = 1;
        } else {
                err_clear();
        }
        r = index_count(idx, &s->indexed);
out:
        scan_result_free(&sr);
        localfs_unlock(lock);
        if (idx)
                index_close(idx);
        free(db);
        return r;
}

static json_t *status_json(const struct config *cfg, const struct status *s)
{
        return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:I, s:o, s:I, s:o, s:O}", "root",
                         cfg->root, "server", cfg->server, "user", cfg->user, "device", "id",
                         cfg->device_id ? cfg->device_id : "", "name", cfg->device_name, "last_seq",
                         (json_int_t)s->last_seq, "last_sync",
                         s->have_sync ? json_integer(s->last_sync_ns / 1000000000) : json_null(),
                         "indexed", (json_int_t)s->indexed, "pending",
                         s->have_pending ? json_pack("{s:I, s:I}", "put", (json_int_t)s->put,
                                                     "delete", (json_int_t)s->del)
                                         : json_null(),
                         "watch", s->watch ? s->watch : json_null());
}

int cmd_status(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        struct status s = {0};
        char when[64];
        json_t *j;
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
                        puts("usage: ferry [-C DIR] status [--json]\n"
                             "\n"
                             "Shows the linked folder, its server, user and device, the last\n"
                             "applied seq and sync time, how many entries are synced, and the\n"
                             "local changes the next sync would upload (a scan; nothing is sent).");
                        return CLI_OK;
                default:
                        return cli_bad_option("status", argc, argv, c);
                }
        }
        if (optind < argc)
                return cli_usage("status", "unexpected argument '%s'", argv[optind]);
        r = cli_load_config(g, &cfg);
        if (r < 0)
                return cli_fail("status", r);
        r = collect(&cfg, &s);
        if (r < 0) {
                rc = cli_fail("status", r);
                goto out;
        }
        if (json) {
                j = status_json(&cfg, &s);
                r = j ? cli_print_json(j) : -ENOMEM;
                json_decref(j);
                if (r < 0)
                        rc = cli_fail("status", r);
                goto out;
        }
        if (s.have_sync)
                cli_format_time(s.last_sync_ns / 1000000000, when, sizeof(when));
        else
                snprintf(when, sizeof(when), "never");
        printf("folder:    %s\n", cfg.root);
        printf("server:    %s\n", cfg.server);
        printf("user:      %s\n", cfg.user);
        printf("device:    %s (%s)\n", cfg.device_name, cfg.device_id ? cfg.device_id : "?");
        printf("last seq:  %lld\n", (long long)s.last_seq);
        printf("last sync: %s\n", when);
        printf("synced:    %lld entries\n", (long long)s.indexed);
        if (s.have_pending)
                printf("pending:   %lld to upload, %lld to delete\n", (long long)s.put,
                       (long long)s.del);
        else
                printf("pending:   unknown (a sync or watch round holds the lock)\n");
        if (s.watch) {
                char what[128];

                wstatus_describe(s.watch, what, sizeof(what));
                printf("watch:     %s (pid %lld)\n", what,
                       (long long)json_integer_value(json_object_get(s.watch, "pid")));
        } else {
                printf("watch:     not running\n");
        }
out:
        json_decref(s.watch);
        config_free(&cfg);
        return rc;
}
