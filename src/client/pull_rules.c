/* pull_rules: the download rules in the pull, and prune (see
 * pull_rules.h).
 *
 * The rules are asked only about entries the index does not have: a file
 * that was synced keeps syncing when a new rule stops selecting it, since
 * taking it away is the user's call (`ferry prune`). The ignore patterns
 * come first, whatever the index or an override say: an ignored name is
 * never written from the network.
 *
 * Held entries are not asked for again page by page: the release step
 * walks the held-down rows, which only matters when something that decides
 * their fate changed. A full round (`ferry sync`, `ferry pull`, the watch's
 * periodic scan) always walks them; the watch's small rounds only when a
 * fingerprint of rules.json and .ferryignore differs from the one kept in
 * the index's state ("held_fp"), so that editing the rules under a running
 * watch lets the newly selected files down at its next round.
 */
#include "pull_rules.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "ignore.h"
#include "localfs.h"
#include "log.h"
#include "manifest.h"
#include "path.h"
#include "pull_apply.h"
#include "rules.h"

#define PULL_RULES_FP_KEY "held_fp"

/* Index writes of prune grouped in one transaction. */
#define PRUNE_BATCH 1000

int pull_rules_is_backup(const char *path)
{
        size_t n = strlen(RULES_BACKUP_PREFIX);

        return !strncmp(path, RULES_BACKUP_PREFIX, n) && (path[n] == '\0' || path[n] == '/');
}

static int hold(struct sync_ctx *s, const struct index_held *e, const char *reason)
{
        struct index_held h = *e;

        h.dir = RULES_DOWN;
        h.reason = (char *)reason;
        log_debug("holding %s back: %s", e->path, reason);
        return index_held_put(s->idx, &h);
}

/* The reason of a verdict that is not RULES_SYNC, when rules_check gave
 * none. */
static const char *reason_of(enum rules_verdict v, const char *why)
{
        if (why[0])
                return why;
        return v == RULES_ASK ? "ask" : "not selected by the download rules";
}

int pull_rules_fate(struct sync_ctx *s, const struct index_held *e, int deleted, int in_index)
{
        enum rules_verdict v;
        char why[256] = "";
        int r;

        if (pull_rules_is_backup(e->path))
                return 1;
        if (deleted) {
                r = index_held_remove(s->idx, RULES_DOWN, e->path);
                if (r < 0 || !ignore_match(s->ignore, e->path, e->kind == KIND_DIR))
                        return r;
                /* an ignored name here is this device's business only: its
                 * local copy stays, and is no longer a synced file */
                r = in_index ? index_delete(s->idx, e->path) : 0;
                return r < 0 ? r : 1;
        }
        if (ignore_match(s->ignore, e->path, e->kind == KIND_DIR)) {
                r = hold(s, e, PULL_RULES_IGNORED);
                return r < 0 ? r : 1;
        }
        if (in_index)
                return 0;
        r = index_override_has(s->idx, e->path);
        if (r != 0)
                return r < 0 ? r : 0;
        v = rules_check(s->rules, RULES_DOWN, e->path, e->kind, e->size, why, sizeof(why));
        if (v == RULES_SYNC)
                return 0;
        r = hold(s, e, reason_of(v, why));
        return r < 0 ? r : 1;
}

/* ---- release ---- */

static uint64_t fp_mix(uint64_t h, uint64_t v)
{
        for (int i = 0; i < 8; i++) {
                h ^= (v >> (8 * i)) & 0xff;
                h *= 1099511628211ull; /* FNV-1a */
        }
        return h;
}

static uint64_t fp_file(uint64_t h, const char *file)
{
        struct stat st;

        if (!file || stat(file, &st) < 0)
                return fp_mix(h, 0);
        h = fp_mix(h, (uint64_t)st.st_ino);
        h = fp_mix(h, (uint64_t)st.st_size);
        h = fp_mix(h, (uint64_t)st.st_mtim.tv_sec);
        return fp_mix(h, (uint64_t)st.st_mtim.tv_nsec);
}

/* What decides the fate of held entries besides the overrides (which only
 * `ferry pull` and the answers to ask add, both before a full round). */
static int64_t fingerprint(const struct config *cfg)
{
        char *rules = rules_path(cfg->root);
        char *ign = path_join(cfg->root, IGNORE_FILE);
        uint64_t h = 14695981039346656037ull;

        h = fp_file(h, rules);
        h = fp_file(h, ign);
        free(rules);
        free(ign);
        return (int64_t)(h >> 1);
}

struct release {
        struct sync_ctx *s;
        char **fetch, **drop;
        size_t nfetch, capfetch, ndrop, capdrop;
};

static int push_path(char ***a, size_t *n, size_t *cap, const char *path)
{
        if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 32;
                char **p = realloc(*a, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                *a = p;
                *cap = ncap;
        }
        (*a)[*n] = strdup(path);
        if (!(*a)[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

static int release_one(const struct index_held *h, void *ud)
{
        struct release *rl = ud;
        struct sync_ctx *s = rl->s;
        struct index_entry ie = {0};
        int64_t seq = 0;
        char why[256];
        int r, in_index;

        r = index_get(s->idx, h->path, &ie);
        if (r < 0 && r != -ENOENT)
                return r;
        in_index = r == 0;
        if (in_index) {
                seq = ie.seq;
                index_entry_free(&ie);
        }
        if ((in_index && seq >= h->seq) || pull_rules_is_backup(h->path))
                return push_path(&rl->drop, &rl->ndrop, &rl->capdrop, h->path);
        if (ignore_match(s->ignore, h->path, h->kind == KIND_DIR))
                return 0;
        r = in_index ? 1 : index_override_has(s->idx, h->path);
        if (r == 0 && rules_check(s->rules, RULES_DOWN, h->path, h->kind, h->size, why,
                                  sizeof(why)) == RULES_SYNC)
                r = 1;
        return r <= 0 ? r : push_path(&rl->fetch, &rl->nfetch, &rl->capfetch, h->path);
}

/* Asks the server for each path to release, into s->pending. A path the
 * server never had is dropped from the held store; one it cannot give now
 * (an upload not complete) waits for another round. */
static int release_fetch(struct sync_ctx *s, char *const *paths, size_t n)
{
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++) {
                json_t *e = NULL;

                r = pull_apply_get_file(s, paths[i], &e);
                if (r == 0 && json_array_append(s->pending, e) < 0)
                        r = -ENOMEM;
                if (r == -ENOENT)
                        r = index_held_remove(s->idx, RULES_DOWN, paths[i]);
                else if (r == -EEXIST) {
                        log_info("%s is not downloaded yet: %s", paths[i], err_msg(r));
                        r = 0;
                }
                if (r == 0)
                        err_clear();
                json_decref(e);
                if (r == 0 && i % 64 == 63)
                        r = sync_check_cancel(s->opts);
        }
        return r;
}

int pull_rules_release(struct sync_ctx *s)
{
        struct release rl = {.s = s};
        int64_t fp = fingerprint(s->cfg), old = 0, n = 0;
        int r;

        if (s->pass != 0)
                return 0;
        r = index_state_get(s->idx, PULL_RULES_FP_KEY, &old);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == 0 && old == fp && s->opts->targeted)
                return 0;
        r = index_held_count(s->idx, RULES_DOWN, &n);
        if (r == 0 && n > 0)
                r = index_held_foreach(s->idx, RULES_DOWN, NULL, release_one, &rl);
        for (size_t i = 0; i < rl.ndrop && r == 0; i++)
                r = index_held_remove(s->idx, RULES_DOWN, rl.drop[i]);
        if (r == 0 && rl.nfetch > 0) {
                log_info("downloading %zu held file(s) now let through", rl.nfetch);
                r = release_fetch(s, rl.fetch, rl.nfetch);
        }
        if (r == 0)
                r = index_state_set(s->idx, PULL_RULES_FP_KEY, fp);
        for (size_t i = 0; i < rl.nfetch; i++)
                free(rl.fetch[i]);
        for (size_t i = 0; i < rl.ndrop; i++)
                free(rl.drop[i]);
        free(rl.fetch);
        free(rl.drop);
        return r;
}

/* ---- prune ---- */

struct cand {
        struct index_entry e; /* own copy */
        char *reason;
        enum pull_prune_what what;
        int act;      /* to move (files) or remove (folders) */
        int reported; /* told to p->report */
};

struct plan {
        const struct pull_prune *p;
        struct cand *c;
        size_t n, cap;
};

static int under_any(const struct pull_prune *p, const char *path)
{
        if (p->npaths == 0)
                return 1;
        for (size_t i = 0; i < p->npaths; i++) {
                size_t n = strlen(p->paths[i]);

                if (!strncmp(path, p->paths[i], n) && (path[n] == '\0' || path[n] == '/'))
                        return 1;
        }
        return 0;
}

static int plan_one(const struct index_entry *e, void *ud)
{
        struct plan *pl = ud;
        const struct pull_prune *p = pl->p;
        enum rules_verdict v;
        struct cand *c;
        char why[256] = "";
        int r;

        if (!under_any(p, e->path) || pull_rules_is_backup(e->path) ||
            ignore_match(p->ignore, e->path, e->kind == KIND_DIR))
                return 0;
        v = rules_check(p->rules, RULES_DOWN, e->path, e->kind, e->size, why, sizeof(why));
        if (v == RULES_SYNC)
                return 0;
        r = index_override_has(p->idx, e->path);
        if (r != 0)
                return r < 0 ? r : 0;
        if (pl->n == pl->cap) {
                size_t ncap = pl->cap ? pl->cap * 2 : 64;
                struct cand *a = realloc(pl->c, ncap * sizeof(*a));

                if (!a)
                        return -ENOMEM;
                pl->c = a;
                pl->cap = ncap;
        }
        c = &pl->c[pl->n];
        memset(c, 0, sizeof(*c));
        c->e = *e;
        c->e.path = strdup(e->path);
        c->e.target = e->target ? strdup(e->target) : NULL;
        c->reason = strdup(reason_of(v, why));
        pl->n++;
        if (!c->e.path || !c->reason || (e->target && !c->e.target))
                return -ENOMEM;
        return 0;
}

/* 1 when the local copy is what the index recorded as synced. */
static int is_clean(const char *root, const struct index_entry *e, const struct stat *st)
{
        char link[PATH_MAX_BYTES + 1];
        struct hash h;
        char *full;
        ssize_t n;

        if (localfs_kind(st) != e->kind)
                return 0;
        if (e->kind == KIND_SYMLINK) {
                full = path_join(root, e->path);
                n = full ? readlink(full, link, sizeof(link) - 1) : -1;
                free(full);
                if (n < 0)
                        return 0;
                link[n] = '\0';
                return e->target && !strcmp(link, e->target);
        }
        if (localfs_stat_matches(e, st))
                return 1;
        return (uint64_t)st->st_size == e->size && localfs_hash_file(root, e->path, &h) == 0 &&
               hash_equal(&h, &e->hash);
}

/* 1 when the directory at full holds nothing. */
static int is_empty_dir(const char *full)
{
        DIR *d = opendir(full);
        struct dirent *de;
        int empty = 1;

        if (!d)
                return 0;
        while (empty && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        empty = 0;
        closedir(d);
        return empty;
}

/* Index writes for the files of c[0..n) to move: held down, out of the
 * index; in one transaction, before anything moves (a crash in between
 * leaves a file the next sync uploads again as identical, never a local
 * delete). */
static int record_pruned(const struct pull_prune *p, const struct cand *c, size_t n)
{
        int r;

        r = index_begin(p->idx);
        for (size_t i = 0; i < n && r == 0; i++) {
                struct index_held h = {.path = c[i].e.path,
                                       .dir = RULES_DOWN,
                                       .kind = c[i].e.kind,
                                       .size = c[i].e.size,
                                       .mtime_ns = c[i].e.mtime_ns,
                                       .seq = c[i].e.seq,
                                       .reason = c[i].reason};

                if (!c[i].act)
                        continue;
                r = index_held_put(p->idx, &h);
                if (r == 0)
                        r = index_delete(p->idx, c[i].e.path);
        }
        if (r < 0) {
                index_rollback(p->idx);
                return r;
        }
        return index_commit(p->idx);
}

/* Sorts out the files: missing here (left alone), changed here (kept),
 * or to move. Returns how many are to move. */
static int classify(const struct pull_prune *p, struct plan *pl)
{
        int n = 0;

        for (size_t i = 0; i < pl->n; i++) {
                struct cand *c = &pl->c[i];
                struct stat st;
                char *full;
                int have;

                if (c->e.kind == KIND_DIR)
                        continue;
                full = path_join(p->root, c->e.path);
                if (!full)
                        return -ENOMEM;
                have = lstat(full, &st) == 0;
                free(full);
                if (!have)
                        continue;
                c->act = is_clean(p->root, &c->e, &st);
                c->what = !c->act ? PULL_PRUNE_CHANGED
                                  : (p->dry_run ? PULL_PRUNE_WOULD : PULL_PRUNE_MOVED);
                c->reported = 1;
                n += c->act;
        }
        return n;
}

/* Moves the files to the trash, PRUNE_BATCH at a time. */
static int move_files(const struct pull_prune *p, struct plan *pl)
{
        int r = 0;

        for (size_t from = 0; from < pl->n && r == 0; from += PRUNE_BATCH) {
                size_t n = pl->n - from < PRUNE_BATCH ? pl->n - from : PRUNE_BATCH;

                r = record_pruned(p, pl->c + from, n);
                for (size_t i = from; i < from + n && r == 0; i++)
                        if (pl->c[i].act && pl->c[i].e.kind != KIND_DIR)
                                r = localfs_trash(p->root, p->stamp, pl->c[i].e.path, NULL);
        }
        return r;
}

/* The folders, deepest first (a folder sorts before what is under it):
 * removed when empty now. */
static int remove_dirs(const struct pull_prune *p, struct plan *pl)
{
        int r = 0;

        for (size_t i = pl->n; i-- > 0 && r == 0;) {
                struct cand *c = &pl->c[i];
                char *full;

                if (c->e.kind != KIND_DIR)
                        continue;
                full = path_join(p->root, c->e.path);
                if (!full)
                        return -ENOMEM;
                c->act = is_empty_dir(full);
                if (c->act)
                        r = record_pruned(p, c, 1);
                if (r == 0 && c->act && rmdir(full) < 0)
                        r = err_set(-errno, "cannot remove the folder %s: %s", c->e.path,
                                    strerror(errno));
                c->what = PULL_PRUNE_DIR;
                c->reported = c->act;
                free(full);
        }
        return r;
}

static void report(const struct pull_prune *p, const struct cand *c)
{
        struct pull_prune_item it = {.path = c->e.path,
                                     .kind = c->e.kind,
                                     .size = c->e.size,
                                     .reason = c->reason,
                                     .what = c->what};

        if (p->report && c->reported)
                p->report(p->ud, &it);
}

int pull_rules_prune(const struct pull_prune *p)
{
        struct plan pl = {.p = p};
        int r, moved = 0;

        r = index_foreach(p->idx, plan_one, &pl);
        if (r == 0)
                r = moved = classify(p, &pl);
        if (r >= 0 && !p->dry_run)
                r = move_files(p, &pl);
        for (size_t i = 0; i < pl.n && r >= 0; i++)
                if (pl.c[i].e.kind != KIND_DIR)
                        report(p, &pl.c[i]);
        if (r >= 0 && !p->dry_run) {
                r = remove_dirs(p, &pl);
                for (size_t i = pl.n; i-- > 0 && r >= 0;)
                        if (pl.c[i].e.kind == KIND_DIR)
                                report(p, &pl.c[i]);
        }
        for (size_t i = 0; i < pl.n; i++) {
                index_entry_free(&pl.c[i].e);
                free(pl.c[i].reason);
        }
        free(pl.c);
        return r < 0 ? r : moved;
}
