/* cmd_pull: `ferry pull PATH...` (download held files now) and `ferry prune
 * [PATH...] [--dry-run]` (remove local files the download rules no longer
 * select).
 *
 * pull does not download anything itself: it gives the held-down files
 * under each PATH an override of the rules (index.h) and runs one sync
 * round, whose pull fetches every held entry with an override
 * (pull_rules_release) through the usual download machinery, so a pulled
 * file is written, verified and recorded exactly as any other, and syncs
 * both ways afterwards. Held-down folders above a PATH get an override
 * too, so that the folders the file lands in are synced ones rather than
 * new local folders to upload.
 *
 * prune is pull_rules_prune() under the folder's lock; the round the watch
 * or a sync would run meanwhile waits (or is waited for) as for restore.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "heldcmd.h"
#include "ignore.h"
#include "index.h"
#include "localfs.h"
#include "path.h"
#include "progress.h"
#include "pull_rules.h"
#include "rules.h"
#include "sync.h"

enum { OPT_DRY_RUN = 1000, OPT_HELP };

static void size_text(int kind, uint64_t size, char *out, size_t len)
{
        if (kind == KIND_DIR)
                snprintf(out, len, "folder");
        else if (kind == KIND_SYMLINK)
                snprintf(out, len, "link");
        else
                progress_human((int64_t)size, out, len);
}

/* ---- pull ---- */

struct pick {
        char **paths; /* operands */
        size_t npaths;
        const struct ignore *ignore;
        size_t *found;   /* per operand: held files under it to pull */
        size_t *ignored; /* per operand: held files under it .ferryignore names */
        json_t *pulled;  /* [{"path", "kind", "size"}] */
        json_t *above;   /* held folders above an operand: ["path"] */
};

static int pick_one(const struct index_held *h, void *ud)
{
        struct pick *pk = ud;
        int take = 0, above = 0;

        for (size_t i = 0; i < pk->npaths; i++) {
                if (heldcmd_at_or_under(h->path, pk->paths[i])) {
                        if (ignore_match(pk->ignore, h->path, h->kind == KIND_DIR)) {
                                pk->ignored[i]++;
                                continue;
                        }
                        pk->found[i]++;
                        take = 1;
                } else if (h->kind == KIND_DIR && heldcmd_at_or_under(pk->paths[i], h->path)) {
                        above = 1;
                }
        }
        if (take)
                return json_array_append_new(pk->pulled,
                                             json_pack("{s:s, s:i, s:I}", "path", h->path, "kind",
                                                       h->kind, "size", (json_int_t)h->size)) < 0
                           ? -ENOMEM
                           : 0;
        if (above && !ignore_match(pk->ignore, h->path, 1))
                return json_array_append_new(pk->above, json_string(h->path)) < 0 ? -ENOMEM : 0;
        return 0;
}

/* 1 when an operand has nothing held, is not ignored and is not synced
 * here: the server may hold it since this device's last round. */
static int unknown_operand(struct index *idx, const struct pick *pk)
{
        for (size_t i = 0; i < pk->npaths; i++) {
                struct index_entry e = {0};

                if (pk->found[i] || pk->ignored[i])
                        continue;
                if (index_get(idx, pk->paths[i], &e) == 0) {
                        index_entry_free(&e);
                        continue;
                }
                return 1;
        }
        return 0;
}

/* Says why operand i has nothing to pull. */
static void nothing_held(struct index *idx, const struct pick *pk, size_t i)
{
        struct index_entry e = {0};
        const char *p = pk->paths[i];

        if (pk->ignored[i])
                fprintf(stderr,
                        "ferry: pull: %s is ignored by .ferryignore; remove the pattern that "
                        "names it to download it\n",
                        p);
        else if (index_get(idx, p, &e) == 0)
                fprintf(stderr, "ferry: pull: %s is not held: it is synced here already\n", p);
        else
                fprintf(stderr,
                        "ferry: pull: nothing held at or under %s ('ferry held down' lists the "
                        "held files)\n",
                        p);
        index_entry_free(&e);
        err_clear();
}

/* 1 when the held folder dir is above an operand that has files to pull. */
static int above_pulled(const struct pick *pk, const char *dir)
{
        for (size_t i = 0; i < pk->npaths; i++)
                if (pk->found[i] && heldcmd_at_or_under(pk->paths[i], dir))
                        return 1;
        return 0;
}

/* Gives the chosen rows their overrides, in one transaction. */
static int add_overrides(struct index *idx, const struct pick *pk)
{
        const json_t *v;
        size_t i;
        int r;

        r = index_begin(idx);
        json_array_foreach(pk->pulled, i, v)
        {
                if (r == 0)
                        r = index_override_add(idx, json_string_value(json_object_get(v, "path")));
        }
        json_array_foreach(pk->above, i, v)
        {
                if (r == 0 && above_pulled(pk, json_string_value(v)))
                        r = index_override_add(idx, json_string_value(v));
        }
        if (r < 0) {
                index_rollback(idx);
                return r;
        }
        return index_commit(idx);
}

/* After the round: each chosen file is in the index now, or says why not.
 * Returns the number not pulled. */
static size_t tell_pulled(struct index *idx, const json_t *pulled)
{
        const json_t *v;
        size_t i, missed = 0;

        json_array_foreach(pulled, i, v)
        {
                const char *p = json_string_value(json_object_get(v, "path"));
                struct index_entry e = {0};
                char size[32];

                if (index_get(idx, p, &e) == 0) {
                        size_text(e.kind, e.size, size, sizeof(size));
                        printf("pulled %s (%s)\n", p, size);
                        index_entry_free(&e);
                        continue;
                }
                err_clear();
                missed++;
                fprintf(stderr,
                        "ferry: pull: %s was not downloaded (deleted on the server meanwhile, or "
                        "the download failed: see the log; the next sync tries again)\n",
                        p);
        }
        return missed;
}

int cmd_pull(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct pick pk = {0};
        struct config cfg = {0};
        struct index *idx = NULL;
        struct ignore *ig = NULL;
        struct sync_stats st = {0};
        size_t missing = 0;
        int c, r, rc = CLI_OK;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] pull PATH...\n"
                             "\n"
                             "Downloads now files the download rules hold back (see 'ferry held\n"
                             "down'): PATH is a file, or a folder meaning every held file under\n"
                             "it. Each gets an override of the rules, so it syncs both ways from\n"
                             "then on like any other file. Then runs one sync round (waiting up\n"
                             "to 15 s for a running sync or watch round) and prints each file\n"
                             "pulled. Files .ferryignore names are not pulled: remove the\n"
                             "pattern first. Exit 1 when a PATH has nothing held or a file could\n"
                             "not be downloaded.");
                        return CLI_OK;
                default:
                        return cli_bad_option("pull", argc, argv, c);
                }
        }
        if (argc - optind < 1)
                return cli_usage("pull", "PATH is missing");
        pk.npaths = (size_t)(argc - optind);
        rc = heldcmd_take_paths("pull", argc - optind, argv + optind, &pk.paths);
        if (rc != CLI_OK)
                goto out;
        pk.found = calloc(pk.npaths, sizeof(*pk.found));
        pk.ignored = calloc(pk.npaths, sizeof(*pk.ignored));
        pk.pulled = json_array();
        pk.above = json_array();
        r = pk.found && pk.ignored && pk.pulled && pk.above ? 0 : -ENOMEM;
        if (r == 0)
                r = cli_load_config(g, &cfg);
        if (r == 0)
                r = heldcmd_open_index(&cfg, &idx);
        if (r == 0)
                r = ignore_load(cfg.root, &ig);
        pk.ignore = ig;
        if (r == 0)
                r = index_held_foreach(idx, RULES_DOWN, NULL, pick_one, &pk);
        if (r == 0 && unknown_operand(idx, &pk)) {
                /* A file another device uploaded since this device's last
                 * round is not held here yet: one round learns of it. */
                index_close(idx);
                idx = NULL;
                r = heldcmd_round_waiting(&cfg, &st);
                if (r == 0)
                        r = heldcmd_open_index(&cfg, &idx);
                if (r == 0) {
                        memset(pk.found, 0, pk.npaths * sizeof(*pk.found));
                        memset(pk.ignored, 0, pk.npaths * sizeof(*pk.ignored));
                        json_array_clear(pk.pulled);
                        json_array_clear(pk.above);
                        r = index_held_foreach(idx, RULES_DOWN, NULL, pick_one, &pk);
                }
        }
        if (r < 0) {
                rc = cli_fail("pull", r);
                goto out;
        }
        for (size_t i = 0; i < pk.npaths; i++) {
                if (pk.found[i] == 0) {
                        nothing_held(idx, &pk, i);
                        rc = CLI_FAIL;
                }
        }
        if (json_array_size(pk.pulled) == 0)
                goto out;
        r = add_overrides(idx, &pk);
        index_close(idx);
        idx = NULL;
        if (r < 0) {
                rc = cli_fail("pull", r);
                goto out;
        }
        r = heldcmd_round_waiting(&cfg, &st);
        if (r < 0) {
                fprintf(stderr,
                        "ferry: pull: the sync round failed: %s; the files are marked to download "
                        "and the next 'ferry sync' fetches them\n",
                        err_msg(r));
                rc = CLI_FAIL;
                goto out;
        }
        r = heldcmd_open_index(&cfg, &idx);
        if (r < 0) {
                rc = cli_fail("pull", r);
                goto out;
        }
        missing = tell_pulled(idx, pk.pulled);
        if (missing)
                rc = CLI_FAIL;
        printf("synced: uploaded %lld, downloaded %lld, deleted %lld, conflicts %lld\n",
               (long long)st.uploaded, (long long)st.downloaded, (long long)st.deleted,
               (long long)st.conflicts);
out:
        if (idx)
                index_close(idx);
        ignore_free(ig);
        json_decref(pk.pulled);
        json_decref(pk.above);
        free(pk.found);
        free(pk.ignored);
        heldcmd_free_paths(pk.paths);
        config_free(&cfg);
        return rc;
}

/* ---- prune ---- */

struct tally {
        int64_t files, bytes, kept;
};

static void on_item(void *ud, const struct pull_prune_item *it)
{
        struct tally *t = ud;
        char size[32];

        size_text(it->kind, it->size, size, sizeof(size));
        switch (it->what) {
        case PULL_PRUNE_MOVED:
        case PULL_PRUNE_WOULD:
                printf("%s %s (%s): %s\n", it->what == PULL_PRUNE_MOVED ? "pruned" : "would prune",
                       it->path, size, it->reason);
                t->files++;
                t->bytes += (int64_t)it->size;
                break;
        case PULL_PRUNE_CHANGED:
                printf("kept %s: changed here and not uploaded yet (run 'ferry sync' first)\n",
                       it->path);
                t->kept++;
                break;
        case PULL_PRUNE_DIR:
                printf("removed the empty folder %s\n", it->path);
                break;
        }
}

/* 1 when the index has path or something under it. */
static int stop_first(const struct index_entry *e, void *ud)
{
        (void)e, (void)ud;
        return -EEXIST;
}

static int has_synced(struct index *idx, const char *path)
{
        int r = index_foreach_under(idx, path, stop_first, NULL);

        return r == -EEXIST ? 1 : r;
}

/* The folder's lock, waiting (bounded) for a running round. */
static int lock_waiting(const char *root, int *fd)
{
        struct timespec pause = {0, 200 * 1000000L};
        int waited = 0, r;

        for (;;) {
                r = localfs_lock(root, fd);
                if (r != -EBUSY || waited >= HELDCMD_LOCK_WAIT_MS)
                        return r;
                err_clear();
                nanosleep(&pause, NULL);
                waited += 200;
        }
}

int cmd_prune(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"dry-run", no_argument, NULL, OPT_DRY_RUN},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct pull_prune p = {0};
        struct tally t = {0};
        struct config cfg = {0};
        struct index *idx = NULL;
        struct rules *rules = NULL;
        struct ignore *ig = NULL;
        char **paths = NULL, stamp[16], bytes[32];
        int c, r, lock = -1, rc = CLI_OK;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hn", opts, NULL)) != -1) {
                switch (c) {
                case 'n':
                case OPT_DRY_RUN:
                        p.dry_run = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] prune [PATH...] [--dry-run]\n"
                             "\n"
                             "Removes from this folder the synced files the download rules no\n"
                             "longer select (see 'ferry rules'), everywhere or at or under each\n"
                             "PATH. Each is moved to .ferry/trash/<time>/ (never deleted on the\n"
                             "server or on other devices), dropped from the index and held down:\n"
                             "it does not come back, and it is not uploaded as a deletion;\n"
                             "'ferry pull PATH' brings it back. Files changed here and not\n"
                             "uploaded yet are kept, as are files with an override and names\n"
                             ".ferryignore matches. Folders the rules do not select that are\n"
                             "left empty are removed too.\n"
                             "\n"
                             "  -n, --dry-run   list what would be pruned; change nothing");
                        return CLI_OK;
                default:
                        return cli_bad_option("prune", argc, argv, c);
                }
        }
        rc = heldcmd_take_paths("prune", argc - optind, argv + optind, &paths);
        if (rc != CLI_OK)
                goto out;
        r = cli_load_config(g, &cfg);
        if (r == 0 && !p.dry_run)
                r = lock_waiting(cfg.root, &lock);
        if (r == 0)
                r = heldcmd_open_index(&cfg, &idx);
        if (r == 0)
                r = rules_load(cfg.root, &rules);
        if (r == 0)
                r = ignore_load(cfg.root, &ig);
        for (int i = 0; r == 0 && i < argc - optind; i++) {
                r = has_synced(idx, paths[i]);
                if (r == 0) {
                        fprintf(stderr, "ferry: prune: no synced file at or under %s\n", paths[i]);
                        rc = CLI_FAIL;
                }
                r = r < 0 ? r : 0;
        }
        if (r < 0 || rc != CLI_OK) {
                rc = r < 0 ? cli_fail("prune", r) : rc;
                goto out;
        }
        localfs_trash_stamp(time(NULL), stamp);
        p.root = cfg.root;
        p.idx = idx;
        p.rules = rules;
        p.ignore = ig;
        p.paths = paths;
        p.npaths = (size_t)(argc - optind);
        p.stamp = stamp;
        p.report = on_item;
        p.ud = &t;
        r = pull_rules_prune(&p);
        if (r < 0) {
                rc = cli_fail("prune", r);
                goto out;
        }
        progress_human(t.bytes, bytes, sizeof(bytes));
        if (t.files == 0)
                printf("nothing to prune: the download rules select every synced file%s\n",
                       p.npaths ? " there" : "");
        else if (p.dry_run)
                printf("would prune %lld file(s), %s; nothing changed (--dry-run)\n",
                       (long long)t.files, bytes);
        else
                printf("pruned %lld file(s), %s: in .ferry/trash/%s/, now held down ('ferry held "
                       "down')\n",
                       (long long)t.files, bytes, stamp);
out:
        if (idx)
                index_close(idx);
        localfs_unlock(lock);
        rules_free(rules);
        ignore_free(ig);
        heldcmd_free_paths(paths);
        config_free(&cfg);
        return rc;
}
