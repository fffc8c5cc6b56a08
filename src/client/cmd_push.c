/* cmd_push: `ferry push PATH...`: upload now files the upload rules hold
 * back.
 *
 * push does not upload anything itself: it gives the held-up files at or
 * under each PATH an override of the rules (index.h) and runs one sync
 * round, whose scan then lets them through like any other change, so a
 * pushed file is uploaded, committed and recorded exactly as usual, and
 * syncs both ways afterwards. A file the rules hold that no round has seen
 * yet (created since the last sync) can be pushed by its own path too. The
 * held folders above a pushed file get an override as well, so that it
 * goes up with the folders it is in.
 * Ignored files are never pushed: .ferryignore keeps them on the device.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "heldcmd.h"
#include "ignore.h"
#include "index.h"
#include "manifest.h"
#include "path.h"
#include "progress.h"
#include "rules.h"
#include "sync.h"

enum { OPT_HELP = 1000 };

struct pick {
        char **paths; /* operands, valid Ferry paths */
        size_t npaths;
        size_t *found;  /* per operand: held files at or under it */
        json_t *pushed; /* the files given an override: ["path"] */
};

static int pick_one(const struct index_held *h, void *ud)
{
        struct pick *pk = ud;
        int take = 0;

        for (size_t i = 0; i < pk->npaths; i++) {
                if (heldcmd_at_or_under(h->path, pk->paths[i])) {
                        pk->found[i]++;
                        take = 1;
                }
        }
        if (take && json_array_append_new(pk->pushed, json_string(h->path)) < 0)
                return -ENOMEM;
        return 0;
}

/* Operand i has no held-up row: a file the rules would hold that no round
 * has looked at yet is pushed all the same (1); otherwise says why there
 * is nothing to push (0). */
static int not_held_yet(const struct config *cfg, struct index *idx, const struct rules *rules,
                        const struct ignore *ig, struct pick *pk, size_t i)
{
        const char *p = pk->paths[i];
        char *full = path_join(cfg->root, p);
        struct index_entry e = {0};
        struct stat st;
        int kind = -1, take = 0;

        if (full && lstat(full, &st) == 0)
                kind = S_ISREG(st.st_mode)   ? KIND_FILE
                       : S_ISLNK(st.st_mode) ? KIND_SYMLINK
                       : S_ISDIR(st.st_mode) ? KIND_DIR
                                             : -1;
        free(full);
        if (kind >= 0 && ignore_match(ig, p, kind == KIND_DIR)) {
                fprintf(stderr,
                        "ferry: push: %s is ignored (.ferryignore or a built-in pattern): "
                        "ignored files never leave this device\n",
                        p);
        } else if (kind != KIND_DIR && index_get(idx, p, &e) == 0) {
                fprintf(stderr, "ferry: push: %s is not held: it is synced already\n", p);
        } else if ((kind == KIND_FILE || kind == KIND_SYMLINK) &&
                   rules_check(rules, RULES_UP, p, kind,
                               kind == KIND_FILE ? (uint64_t)st.st_size : 0, NULL,
                               0) != RULES_SYNC) {
                take = json_array_append_new(pk->pushed, json_string(p)) < 0 ? -ENOMEM : 1;
        } else if (kind == KIND_FILE || kind == KIND_SYMLINK) {
                fprintf(stderr,
                        "ferry: push: %s is not held: the rules upload it (run 'ferry sync')\n", p);
        } else {
                fprintf(stderr,
                        "ferry: push: nothing held at or under %s ('ferry held up' lists the held "
                        "files)\n",
                        p);
        }
        index_entry_free(&e);
        err_clear();
        return take;
}

/* Overrides for the folders above path that the rules hold and the index
 * does not have, so that the folders a pushed file sits in go up with it
 * rather than be left held on this device. */
static int override_parents(struct index *idx, const struct rules *rules, const char *path)
{
        struct index_entry e = {0};
        char *q = strdup(path), *slash;
        int r = 0;

        if (!q)
                return -ENOMEM;
        for (slash = strchr(q, '/'); slash && r == 0; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (rules_check(rules, RULES_UP, q, KIND_DIR, 0, NULL, 0) != RULES_SYNC) {
                        if (index_get(idx, q, &e) == 0)
                                index_entry_free(&e);
                        else
                                r = index_override_add(idx, q);
                        err_clear();
                }
                *slash = '/';
        }
        free(q);
        return r;
}

static int add_overrides(struct index *idx, const struct rules *rules, const json_t *paths)
{
        const json_t *v;
        size_t i;
        int r;

        r = index_begin(idx);
        json_array_foreach(paths, i, v)
        {
                if (r == 0)
                        r = index_override_add(idx, json_string_value(v));
                if (r == 0)
                        r = override_parents(idx, rules, json_string_value(v));
        }
        if (r < 0) {
                index_rollback(idx);
                return r;
        }
        return index_commit(idx);
}

/* After the round: each file is synced now (in the index), or says why
 * not. Returns the number not pushed. */
static size_t tell_pushed(struct index *idx, const json_t *pushed)
{
        const json_t *v;
        size_t i, missed = 0;

        json_array_foreach(pushed, i, v)
        {
                const char *p = json_string_value(v);
                struct index_entry e = {0};
                char size[32];

                if (index_get(idx, p, &e) == 0) {
                        if (e.kind == KIND_FILE)
                                progress_human((int64_t)e.size, size, sizeof(size));
                        else
                                snprintf(size, sizeof(size), "%s", kind_name(e.kind));
                        printf("pushed %s (%s)\n", p, size);
                        index_entry_free(&e);
                        continue;
                }
                err_clear();
                missed++;
                fprintf(stderr,
                        "ferry: push: %s was not uploaded (gone or changing meanwhile, or refused: "
                        "see the log; it stays marked to upload and the next sync tries again)\n",
                        p);
        }
        return missed;
}

int cmd_push(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct pick pk = {0};
        struct config cfg = {0};
        struct index *idx = NULL;
        struct ignore *ig = NULL;
        struct rules *rules = NULL;
        struct sync_stats st = {0};
        int c, r, rc = CLI_OK;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] push PATH...\n"
                             "\n"
                             "Uploads now files the upload rules hold back (see 'ferry held up'):\n"
                             "PATH is a file, or a folder meaning every held file under it (Ferry\n"
                             "paths, relative to the folder's root). Each gets an override of the\n"
                             "rules, so it syncs both ways from then on like any other file. A "
                             "file\n"
                             "the rules hold that no sync has seen yet can be pushed by its path.\n"
                             "Then runs one sync round (waiting up to 15 s for a running sync or\n"
                             "watch round) and prints each file pushed. Files .ferryignore names\n"
                             "are never pushed. Exit 1 when a PATH has nothing held or a file\n"
                             "could not be uploaded.");
                        return CLI_OK;
                default:
                        return cli_bad_option("push", argc, argv, c);
                }
        }
        if (argc - optind < 1)
                return cli_usage("push", "PATH is missing");
        rc = heldcmd_take_paths("push", argc - optind, argv + optind, &pk.paths);
        if (rc != CLI_OK)
                goto out;
        pk.npaths = (size_t)(argc - optind);
        pk.found = calloc(pk.npaths + 1, sizeof(*pk.found));
        pk.pushed = json_array();
        if (!pk.found || !pk.pushed) {
                rc = cli_fail("push", -ENOMEM);
                goto out;
        }
        r = cli_load_config(g, &cfg);
        if (r == 0)
                r = heldcmd_open_index(&cfg, &idx);
        if (r == 0)
                r = ignore_load(cfg.root, &ig);
        if (r == 0)
                r = rules_load(cfg.root, &rules);
        if (r == 0)
                r = index_held_foreach(idx, RULES_UP, NULL, pick_one, &pk);
        for (size_t i = 0; r >= 0 && i < pk.npaths; i++) {
                if (pk.found[i] > 0)
                        continue;
                r = not_held_yet(&cfg, idx, rules, ig, &pk, i);
                if (r == 0)
                        rc = CLI_FAIL;
        }
        if (r < 0) {
                rc = cli_fail("push", r);
                goto out;
        }
        if (json_array_size(pk.pushed) == 0)
                goto out;
        r = add_overrides(idx, rules, pk.pushed);
        index_close(idx);
        idx = NULL;
        if (r < 0) {
                rc = cli_fail("push", r);
                goto out;
        }
        r = heldcmd_round_waiting(&cfg, &st);
        if (r < 0) {
                fprintf(stderr,
                        "ferry: push: the sync round failed: %s; the files are marked to upload "
                        "and the next 'ferry sync' sends them\n",
                        err_msg(r));
                rc = CLI_FAIL;
                goto out;
        }
        r = heldcmd_open_index(&cfg, &idx);
        if (r < 0) {
                rc = cli_fail("push", r);
                goto out;
        }
        if (tell_pushed(idx, pk.pushed) > 0)
                rc = CLI_FAIL;
        printf("synced: uploaded %lld, downloaded %lld, deleted %lld, conflicts %lld\n",
               (long long)st.uploaded, (long long)st.downloaded, (long long)st.deleted,
               (long long)st.conflicts);
out:
        if (idx)
                index_close(idx);
        ignore_free(ig);
        rules_free(rules);
        json_decref(pk.pushed);
        free(pk.found);
        heldcmd_free_paths(pk.paths);
        config_free(&cfg);
        return rc;
}
