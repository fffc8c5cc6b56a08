/* push_rules: the upload rules (rules.h) and ignore patterns (ignore.h) in
 * the push (see push.h): the scan of a round under them, and what becomes
 * of the changes the rules hold back.
 *
 * The scan asks about each new or changed entry before reading it
 * (scan_options.hold): a path with an override (`ferry push`, an answer to
 * ask) syncs; otherwise the upload rules decide, and a held or ask file is
 * reported held, with the reason. push_rules_apply then takes the held
 * changes out of the round: each gets a held-up row (what `ferry held`
 * lists), nothing goes to the server, the index is not touched, so the
 * file stays a pending change that the next round looks at again. A held
 * rename (a synced file moved to a name the rules do not select) sends
 * neither the delete of the old name nor the new file; the index keeps the
 * old entry until the user pushes the new name (or renames it back).
 *
 * The held-up rows stay true without a separate sweep: every held file is
 * reported by every scan that looks at it (a held file is never in the
 * index with its current stat), so a row the scan did not hold again is
 * stale (the file vanished, is ignored now, or syncs now) and goes. Rows
 * that did not change are not written again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ignore.h"
#include "log.h"
#include "push.h"
#include "rules.h"
#include "scan.h"

struct hold_ctx {
        const struct rules *rules;
        struct index *idx;
};

static int hold_cb(void *ud, const char *path, int kind, uint64_t size, char *why, size_t whylen)
{
        struct hold_ctx *h = ud;
        int r;

        if (rules_check(h->rules, RULES_UP, path, kind, size, why, whylen) == RULES_SYNC)
                return 0;
        r = index_override_has(h->idx, path);
        return r < 0 ? r : !r;
}

int push_scan(struct index *idx, const char *root, const struct rules *rules,
              const struct ignore *ig, int targeted, const char *const *paths, size_t n,
              struct scan_result *out)
{
        struct hold_ctx h = {.rules = rules, .idx = idx};
        struct scan_options o = {
            .ignore = ig, .hold = hold_cb, .ud = &h, .stream_min = PUSH_STREAM_MIN};
        int r;

        if (rules_mode(rules) == RULES_MODE_SINCE) {
                o.since = 1;
                r = index_state_get(idx, PUSH_LAST_UPLOAD_KEY, &o.since_ns);
                if (r == -ENOENT) {
                        err_clear();
                        o.since_ns = 0; /* never uploaded: everything is new */
                } else if (r < 0) {
                        return r;
                }
        }
        if (targeted)
                return scan_paths_opts(root, idx, &o, paths, n, out);
        return scan_folder_opts(root, idx, &o, out);
}

/* A held-up row as it was before this round. */
struct old_row {
        char *path, *reason;
        int kind;
        uint64_t size;
        int64_t mtime_ns;
        int kept; /* held again this round */
};

struct rows {
        struct old_row *v;
        size_t n, cap;
};

static int load_row(const struct index_held *h, void *ud)
{
        struct rows *rs = ud;
        struct old_row *o;

        if (rs->n == rs->cap) {
                size_t ncap = rs->cap ? rs->cap * 2 : 16;
                struct old_row *nv = realloc(rs->v, ncap * sizeof(*nv));

                if (!nv)
                        return -ENOMEM;
                rs->v = nv;
                rs->cap = ncap;
        }
        o = &rs->v[rs->n];
        memset(o, 0, sizeof(*o));
        o->path = strdup(h->path);
        o->reason = strdup(h->reason ? h->reason : "");
        if (!o->path || !o->reason) {
                free(o->path);
                free(o->reason);
                return -ENOMEM;
        }
        o->kind = h->kind;
        o->size = h->size;
        o->mtime_ns = h->mtime_ns;
        rs->n++;
        return 0;
}

static int cmp_row(const void *a, const void *b)
{
        return strcmp(((const struct old_row *)a)->path, ((const struct old_row *)b)->path);
}

static struct old_row *find_row(struct rows *rs, const char *path)
{
        size_t lo = 0, hi = rs->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(path, rs->v[mid].path);

                if (c == 0)
                        return &rs->v[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

static void rows_free(struct rows *rs)
{
        for (size_t i = 0; i < rs->n; i++) {
                free(rs->v[i].path);
                free(rs->v[i].reason);
        }
        free(rs->v);
}

static int under(const char *p, const char *dir)
{
        size_t n = strlen(dir);

        return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* Writes c's held-up row unless the same row is there already. */
static int put_row(struct index *idx, struct rows *old, const struct local_change *c)
{
        struct old_row *o = find_row(old, c->path);
        struct index_held h = {0};

        if (o) {
                o->kept = 1;
                if (o->kind == c->kind && o->size == c->size && o->mtime_ns == c->mtime_ns &&
                    strcmp(o->reason, c->held) == 0)
                        return 0;
        }
        h.path = c->path;
        h.dir = RULES_UP;
        h.kind = c->kind;
        h.size = c->size;
        h.mtime_ns = c->mtime_ns;
        h.reason = c->held;
        return index_held_put(idx, &h);
}

/* Whether the delete c is of a directory a held rename moved a file out
 * of: the file is still synced under its old name there. */
static int holds_dir(const struct scan_result *sr, const struct local_change *c)
{
        if (c->op != CHANGE_DELETE || c->kind != KIND_DIR)
                return 0;
        for (size_t i = 0; i < sr->n; i++) {
                const struct local_change *x = &sr->changes[i];

                if (x->held && x->op == CHANGE_RENAME && under(x->from, c->path))
                        return 1;
        }
        return 0;
}

/* A held rename of a file pushed (or chosen) before it was moved: the
 * override goes with the file, so the rename is sent. */
static int unhold_renames(struct index *idx, struct scan_result *sr)
{
        for (size_t i = 0; i < sr->n; i++) {
                struct local_change *c = &sr->changes[i];
                int r;

                if (!c->held || c->op != CHANGE_RENAME)
                        continue;
                r = index_override_has(idx, c->from);
                if (r < 0)
                        return r;
                if (r > 0) {
                        free(c->held);
                        c->held = NULL;
                }
        }
        return 0;
}

int push_rules_apply(struct index *idx, struct scan_result *sr, int whole, const char *const *scope,
                     size_t nscope)
{
        struct rows old = {0};
        unsigned char *drop = NULL;
        size_t i, kept = 0;
        int r, intx = 0;

        r = unhold_renames(idx, sr);
        if (r < 0)
                goto out;
        for (i = 0; i < nscope; i++)
                whole |= scope[i][0] == '\0'; /* scan_paths: the whole folder */
        if (whole)
                r = index_held_foreach(idx, RULES_UP, NULL, load_row, &old);
        for (i = 0; !whole && i < nscope && r == 0; i++)
                r = index_held_foreach(idx, RULES_UP, scope[i], load_row, &old);
        if (r < 0)
                goto out;
        if (old.n > 1)
                qsort(old.v, old.n, sizeof(*old.v), cmp_row);
        r = index_begin(idx);
        if (r < 0)
                goto out;
        intx = 1;
        for (i = 0; i < sr->n; i++) {
                struct local_change *c = &sr->changes[i];

                /* held directories get no row: what is under them is
                 * listed file by file, and a pushed file takes its
                 * parents along on every device */
                if (c->held && c->kind != KIND_DIR && (r = put_row(idx, &old, c)) < 0)
                        goto out;
        }
        for (i = 0; i < old.n; i++) {
                if (!old.v[i].kept && (r = index_held_remove(idx, RULES_UP, old.v[i].path)) < 0)
                        goto out;
        }
        r = index_commit(idx);
        intx = 0;
        if (r < 0)
                goto out;
        /* take the held changes, and the deletes they keep, out (decided
         * first: holds_dir looks at the held renames) */
        drop = calloc(sr->n ? sr->n : 1, 1);
        if (!drop) {
                r = -ENOMEM;
                goto out;
        }
        for (i = 0; i < sr->n; i++)
                drop[i] = sr->changes[i].held || holds_dir(sr, &sr->changes[i]);
        sr->deletes = 0;
        for (i = 0; i < sr->n; i++) {
                struct local_change *c = &sr->changes[i];

                if (drop[i]) {
                        scan_change_free(c);
                        continue;
                }
                if (c->op == CHANGE_DELETE)
                        sr->deletes++;
                sr->changes[kept++] = *c;
        }
        sr->n = kept;
out:
        if (intx)
                index_rollback(idx);
        free(drop);
        rows_free(&old);
        return r;
}

int push_rules_moved(struct index *idx, const struct local_change *c)
{
        int r;

        if (c->op == CHANGE_DELETE)
                return index_override_remove(idx, c->path);
        if (c->op != CHANGE_RENAME)
                return 0;
        r = index_override_has(idx, c->from);
        if (r <= 0)
                return r;
        r = index_override_remove(idx, c->from);
        return r < 0 ? r : index_override_add(idx, c->path);
}
