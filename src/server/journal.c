/* journal: the compare-and-set rules of a space's journal (see journal.h and
 * docs/api.md "commit"), on top of any struct meta backend.
 *
 * Every entry stored is also recorded as a version of its path, with the
 * commit time, in the same transaction: the history keeps what the space
 * held at every seq (puts, tombstones, both ends of a rename) until the
 * GC's retention prunes it. A restore commits a kept version again as a
 * new one, so history only ever grows at its end.
 *
 * Every change is validated first (path rules, kind, sizes add up), then
 * checked against the path's current entry (compare-and-set on base), then
 * against the chunks the account holds, and only then applied with the next
 * seq of the space. The whole list runs in one store transaction, so a crash
 * or a store failure commits nothing; per-change refusals (conflict, missing
 * chunks, invalid) do not stop the other changes. A put by patch is
 * resolved against the path's current entry first (its base must be that
 * entry), a put by same_as against the retained version it names (a copy
 * of another file), and either is then checked exactly like a put with a
 * full chunk list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunker.h"
#include "err.h"
#include "journal.h"
#include "path.h"

#define TARGET_MAX 4096 /* bytes of a symlink's text, like PATH_MAX */

void journal_result_clear(struct journal_result *r)
{
        meta_entry_clear(&r->current);
        free(r->missing);
        memset(r, 0, sizeof(*r));
}

static void set_invalid(struct journal_result *res, const char *msg)
{
        res->status = JOURNAL_INVALID;
        snprintf(res->error, sizeof(res->error), "%s", msg);
}

static void set_conflict(struct journal_result *res, struct meta_entry *cur)
{
        res->status = JOURNAL_CONFLICT;
        if (cur && cur->path) {
                res->current = *cur; /* moves ownership */
                res->has_current = 1;
                memset(cur, 0, sizeof(*cur));
        }
}

/* Looks up path: 0 with *e filled, 0 with e->path NULL when absent, or a
 * negative store error. */
static int lookup(struct meta *m, int64_t user, const char *path, struct meta_entry *e)
{
        int r = m->ops->entry_get(m, user, path, e);

        if (r == -ENOENT) {
                memset(e, 0, sizeof(*e));
                return 0;
        }
        return r;
}

static int is_live(const struct meta_entry *e)
{
        return e->path && !e->deleted;
}

static int valid_path(const char *p, struct journal_result *res)
{
        int r;

        if (!p) {
                set_invalid(res, "missing path");
                return 0;
        }
        r = path_validate(p);
        if (r < 0) {
                set_invalid(res, err_msg(r));
                return 0;
        }
        return 1;
}

/* The entry a put would store (seq and device filled in later), normalised
 * so that what does not matter for a kind is zero. 1 if valid, 0 with res
 * set to invalid, or -ENOMEM. */
static int build_put(const struct journal_change *c, struct meta_entry *e,
                     struct journal_result *res)
{
        size_t i;
        int r;

        memset(e, 0, sizeof(*e));
        e->kind = c->kind;
        e->mtime_ns = c->mtime_ns;
        switch (c->kind) {
        case KIND_FILE:
                if (!c->has_hash) {
                        set_invalid(res, "a file needs its content hash");
                        return 0;
                }
                if (c->manifest.n > MANIFEST_MAX_CHUNKS) {
                        set_invalid(res, "too many chunks");
                        return 0;
                }
                for (i = 0; i < c->manifest.n; i++) {
                        uint32_t sz = c->manifest.chunks[i].size;
                        if (sz == 0 || sz > CHUNK_MAX) {
                                set_invalid(res, "chunk size out of range");
                                return 0;
                        }
                }
                if (c->manifest.size != c->size) {
                        set_invalid(res, "chunk sizes do not add up to size");
                        return 0;
                }
                e->size = c->size;
                e->mode = c->mode & 07777;
                e->has_hash = 1;
                e->hash = c->hash;
                if (c->manifest.n) {
                        r = manifest_to_blob(&c->manifest, &e->chunks, &e->chunks_len);
                        if (r < 0)
                                return r;
                }
                break;
        case KIND_DIR:
                break;
        case KIND_SYMLINK:
                if (!c->target || !c->target[0] || strlen(c->target) > TARGET_MAX) {
                        set_invalid(res, "a symlink needs a target of 1-4096 bytes");
                        return 0;
                }
                e->target = strdup(c->target);
                if (!e->target)
                        return -ENOMEM;
                break;
        default:
                set_invalid(res, "unknown kind");
                return 0;
        }
        e->path = strdup(c->path);
        if (!e->path)
                return -ENOMEM;
        return 1;
}

static int same_content(const struct meta_entry *a, const struct meta_entry *b)
{
        if (a->kind != b->kind || a->mode != b->mode || a->has_hash != b->has_hash)
                return 0;
        if (a->has_hash && !hash_equal(&a->hash, &b->hash))
                return 0;
        if (a->size != b->size)
                return 0;
        if (!a->target != !b->target)
                return 0;
        return !a->target || strcmp(a->target, b->target) == 0;
}

/* A small open-addressing set of chunk indices, to list each missing chunk
 * once even when a file repeats it (runs of zeros do). */
struct hset {
        uint32_t *slot; /* index + 1, 0 = empty */
        size_t mask;
};

static uint64_t hkey(const struct hash *h)
{
        uint64_t k;

        memcpy(&k, h->b, sizeof(k)); /* SHA-256 bytes are already uniform */
        return k;
}

/* 1 if added, 0 if already there, -ENOMEM. */
static int hset_add(struct hset *s, const struct chunk_ref *all, size_t n, uint32_t idx)
{
        size_t i;

        if (!s->slot) {
                size_t cap = 16;
                while (cap < 2 * n)
                        cap <<= 1;
                s->slot = calloc(cap, sizeof(*s->slot));
                if (!s->slot)
                        return -ENOMEM;
                s->mask = cap - 1;
        }
        for (i = hkey(&all[idx].hash) & s->mask; s->slot[i]; i = (i + 1) & s->mask)
                if (hash_equal(&all[s->slot[i] - 1].hash, &all[idx].hash))
                        return 0;
        s->slot[i] = idx + 1;
        return 1;
}

/* The index in all[] of a chunk with hash h in s, or -1. */
static ssize_t hset_find(const struct hset *s, const struct chunk_ref *all, const struct hash *h)
{
        if (!s->slot)
                return -1;
        for (size_t i = hkey(h) & s->mask; s->slot[i]; i = (i + 1) & s->mask)
                if (hash_equal(&all[s->slot[i] - 1].hash, h))
                        return (ssize_t)s->slot[i] - 1;
        return -1;
}

/* Fills res with the distinct chunks of c the account lacks. Returns the
 * number missing, -EBADMSG (res set to invalid) when a held chunk's real
 * size is not the one the change claims, or a negative store code.
 *
 * A chunk of the path's current entry cur is held (the GC keeps every chunk
 * a current entry names) with the size cur's commit checked, so only the
 * others are looked up: a one-chunk edit of a 1 GiB file asks the store
 * about one chunk, not 16,000. Chunks are touched (the GC's grace) only
 * when some are missing: the client then uploads those and commits again,
 * and the grace keeps the held ones meanwhile; a commit that goes through
 * makes its version refer to them, which keeps them by itself. */
static int find_missing(struct meta *m, int64_t user, int64_t now, const struct journal_change *c,
                        const struct meta_entry *cur, struct journal_result *res)
{
        const struct chunk_ref *ch = c->manifest.chunks;
        struct manifest prev = MANIFEST_INIT;
        struct hset set = {NULL, 0}, known = {NULL, 0};
        size_t i, cap = 0;
        uint32_t size;
        int r = 0;

        if (cur && is_live(cur) && cur->kind == KIND_FILE && cur->chunks_len &&
            manifest_from_blob(cur->chunks, cur->chunks_len, &prev) == 0) {
                for (i = 0; i < prev.n && r >= 0; i++)
                        r = hset_add(&known, prev.chunks, prev.n, (uint32_t)i);
                if (r < 0)
                        goto out;
        }
        for (i = 0; i < c->manifest.n; i++) {
                ssize_t k = hset_find(&known, prev.chunks, &ch[i].hash);

                if (k >= 0) {
                        r = 1;
                        size = prev.chunks[k].size;
                } else {
                        /* In this transaction: a GC dropping the chunk either
                         * ran before (then it is missing and the client
                         * uploads it again) or runs after and sees this
                         * version refer to it. */
                        r = m->ops->chunk_held(m, user, &ch[i].hash, &size);
                }
                if (r < 0)
                        goto out;
                if (r == 1 && size != ch[i].size) {
                        /* Sizes that lie would make every download fail its
                         * hash check: refuse them here. */
                        snprintf(res->error, sizeof(res->error),
                                 "chunks[%zu]: size %u, but the stored chunk has %u bytes", i,
                                 ch[i].size, size);
                        res->status = JOURNAL_INVALID;
                        r = -EBADMSG;
                        goto out;
                }
                if (r == 1)
                        continue;
                r = hset_add(&set, ch, c->manifest.n, (uint32_t)i);
                if (r < 0)
                        goto out;
                if (r == 0)
                        continue;
                if (res->n_missing == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct hash *nm = realloc(res->missing, ncap * sizeof(*nm));
                        if (!nm) {
                                r = -ENOMEM;
                                goto out;
                        }
                        res->missing = nm;
                        cap = ncap;
                }
                res->missing[res->n_missing++] = ch[i].hash;
        }
        /* The commit waits for the missing ones: keep the rest meanwhile. */
        for (i = 0; res->n_missing > 0 && i < c->manifest.n; i++) {
                if (hset_find(&set, ch, &ch[i].hash) >= 0)
                        continue;
                r = m->ops->chunk_touch(m, user, &ch[i].hash, now, NULL);
                if (r < 0)
                        goto out;
        }
        r = (int)res->n_missing;
out:
        manifest_free(&prev);
        free(set.slot);
        free(known.slot);
        return r;
}

/* Stores e (seq, device and time set) as the path's entry and as a new
 * version of it. */
static int store(struct meta *m, int64_t user, const struct meta_entry *e)
{
        int r = m->ops->entry_put(m, user, e);

        return r < 0 ? r : m->ops->version_add(m, user, e);
}

/* A put with its full chunk list, given the path's entry cur. */
static int apply_put_full(struct meta *m, int64_t user, const char *device, int64_t now,
                          const struct journal_change *c, struct meta_entry *cur,
                          struct journal_result *res)
{
        struct meta_entry ne = {0};
        int r;

        r = build_put(c, &ne, res);
        if (r <= 0)
                goto out;
        if (is_live(cur) && same_content(cur, &ne) &&
            (cur->seq != c->base || cur->mtime_ns == ne.mtime_ns)) {
                /* Already there: a retry of a commit that went through. */
                res->status = JOURNAL_OK;
                res->seq = cur->seq;
                goto out;
        }
        if (is_live(cur) && cur->seq != c->base) {
                set_conflict(res, cur);
                goto out;
        }
        if (ne.kind == KIND_FILE) {
                r = find_missing(m, user, now, c, cur, res);
                if (r == -EBADMSG) {
                        free(res->missing);
                        res->missing = NULL;
                        res->n_missing = 0;
                        r = 0;
                        goto out;
                }
                if (r < 0)
                        goto out;
                if (r > 0) {
                        res->status = JOURNAL_MISSING_CHUNKS;
                        r = 0;
                        goto out;
                }
        }
        snprintf(ne.device, sizeof(ne.device), "%s", device);
        ne.time = now;
        r = m->ops->seq_next(m, user, &ne.seq);
        if (r < 0)
                goto out;
        r = store(m, user, &ne);
        if (r < 0)
                goto out;
        res->status = JOURNAL_OK;
        res->seq = ne.seq;
out:
        meta_entry_clear(&ne);
        return r < 0 ? r : 0;
}

/* For a put by patch: resolves the patch against cur (the path's entry)
 * into *pm. 1 when *pm holds the new chunk list; 0 when res is decided
 * (conflict, invalid, or the no-op of a retried commit); or a negative
 * store code. */
static int resolve_patch(const struct journal_change *c, struct meta_entry *cur,
                         struct manifest *pm, struct journal_result *res)
{
        struct manifest base = MANIFEST_INIT;
        int r;

        if (!is_live(cur) || cur->seq != c->base || cur->kind != KIND_FILE) {
                /* nothing to patch: only the retry of a commit that went
                 * through is fine (same content as the live entry) */
                if (is_live(cur) && c->kind == KIND_FILE && cur->kind == KIND_FILE && c->has_hash &&
                    cur->has_hash && hash_equal(&cur->hash, &c->hash) && cur->size == c->size &&
                    cur->mode == (c->mode & 07777)) {
                        res->status = JOURNAL_OK;
                        res->seq = cur->seq;
                        return 0;
                }
                set_conflict(res, cur);
                return 0;
        }
        if (cur->chunks_len && (r = manifest_from_blob(cur->chunks, cur->chunks_len, &base)) < 0)
                return r;
        r = patch_apply(&base, c->patch, c->n_patch, pm);
        manifest_free(&base);
        if (r == -EINVAL) {
                set_invalid(res, err_msg(r));
                return 0;
        }
        return r < 0 ? r : 1;
}

/* For a put by same_as: the chunks of the version it names into *pm. 1
 * when *pm holds them; 0 when res is decided (that version is not a
 * retained live file with this hash and size: missing_chunks with an
 * empty list, so that the client sends the list itself); or a negative
 * store code. */
static int resolve_same(struct meta *m, int64_t user, const struct journal_change *c,
                        struct manifest *pm, struct journal_result *res)
{
        struct meta_entry v = {0};
        int r;

        if (path_validate(c->same_path) < 0 || c->same_seq <= 0) {
                set_invalid(res, "same_as needs a valid path and a seq > 0");
                return 0;
        }
        r = m->ops->version_get(m, user, c->same_path, c->same_seq, &v);
        if (r == -ENOENT ||
            (r == 0 && (v.deleted || v.kind != KIND_FILE || !v.has_hash || !c->has_hash ||
                        !hash_equal(&v.hash, &c->hash) || v.size != c->size))) {
                res->status = JOURNAL_MISSING_CHUNKS;
                r = 0;
                goto out;
        }
        if (r < 0)
                goto out;
        r = v.chunks_len ? manifest_from_blob(v.chunks, v.chunks_len, pm) : 0;
        if (r == 0)
                r = 1;
out:
        meta_entry_clear(&v);
        return r;
}

static int apply_put(struct meta *m, int64_t user, const char *device, int64_t now,
                     const struct journal_change *c, struct journal_result *res)
{
        struct meta_entry cur = {0};
        struct journal_change pc;
        int r;

        if (!valid_path(c->path, res))
                return 0;
        r = lookup(m, user, c->path, &cur);
        if (r < 0)
                goto out;
        if (c->has_patch || c->same_path) {
                /* from here on, the list resolved stands in for "chunks" */
                pc = *c;
                memset(&pc.manifest, 0, sizeof(pc.manifest));
                pc.has_patch = 0;
                pc.same_path = NULL;
                r = c->has_patch ? resolve_patch(c, &cur, &pc.manifest, res)
                                 : resolve_same(m, user, c, &pc.manifest, res);
                if (r > 0)
                        r = apply_put_full(m, user, device, now, &pc, &cur, res);
                manifest_free(&pc.manifest);
                goto out;
        }
        r = apply_put_full(m, user, device, now, c, &cur, res);
out:
        meta_entry_clear(&cur);
        return r < 0 ? r : 0;
}

/* Writes a tombstone for e (keeping its kind, so that devices know whether a
 * file or a directory went away). */
static int put_tombstone(struct meta *m, int64_t user, const char *device, int64_t now,
                         const struct meta_entry *e, int64_t *seq)
{
        struct meta_entry t = {0};
        int r;

        t.path = e->path;
        t.deleted = 1;
        t.kind = e->kind;
        t.time = now;
        snprintf(t.device, sizeof(t.device), "%s", device);
        r = m->ops->seq_next(m, user, &t.seq);
        if (r < 0)
                return r;
        r = store(m, user, &t);
        if (r == 0)
                *seq = t.seq;
        return r;
}

static int apply_delete(struct meta *m, int64_t user, const char *device, int64_t now,
                        const struct journal_change *c, struct journal_result *res)
{
        struct meta_entry cur = {0};
        int r;

        if (!valid_path(c->path, res))
                return 0;
        r = lookup(m, user, c->path, &cur);
        if (r < 0)
                goto out;
        if (!is_live(&cur)) {
                /* Already gone: nothing to do, and nothing lost. */
                res->status = JOURNAL_OK;
                res->seq = cur.path ? cur.seq : 0;
                goto out;
        }
        if (cur.seq != c->base) {
                set_conflict(res, &cur);
                goto out;
        }
        r = put_tombstone(m, user, device, now, &cur, &res->seq);
        if (r == 0)
                res->status = JOURNAL_OK;
out:
        meta_entry_clear(&cur);
        return r;
}

static int apply_rename(struct meta *m, int64_t user, const char *device, int64_t now,
                        const struct journal_change *c, struct journal_result *res)
{
        struct meta_entry src = {0}, dst = {0}, ne = {0};
        int64_t tomb_seq;
        int r;

        if (!valid_path(c->from, res) || !valid_path(c->path, res))
                return 0;
        if (strcmp(c->from, c->path) == 0) {
                set_invalid(res, "rename to the same path");
                return 0;
        }
        r = lookup(m, user, c->from, &src);
        if (r < 0)
                goto out;
        if (!is_live(&src) || src.seq != c->base) {
                set_conflict(res, &src);
                goto out;
        }
        r = lookup(m, user, c->path, &dst);
        if (r < 0)
                goto out;
        if (is_live(&dst)) {
                set_conflict(res, &dst);
                goto out;
        }
        /* The new path first, so that a device pulling the changes in order
         * can take the content from the old path before it sees it go. */
        r = meta_entry_copy(&ne, &src);
        if (r < 0)
                goto out;
        free(ne.path);
        ne.path = strdup(c->path);
        if (!ne.path) {
                r = -ENOMEM;
                goto out;
        }
        snprintf(ne.device, sizeof(ne.device), "%s", device);
        ne.time = now;
        r = m->ops->seq_next(m, user, &ne.seq);
        if (r < 0)
                goto out;
        r = store(m, user, &ne);
        if (r < 0)
                goto out;
        r = put_tombstone(m, user, device, now, &src, &tomb_seq);
        if (r < 0)
                goto out;
        res->status = JOURNAL_OK;
        res->seq = ne.seq;
out:
        meta_entry_clear(&src);
        meta_entry_clear(&dst);
        meta_entry_clear(&ne);
        return r;
}

int journal_commit(struct meta *m, int64_t user, const char *device,
                   const struct journal_change *changes, size_t n, struct journal_result *results,
                   int64_t *seq)
{
        return journal_commit_at(m, user, device, changes, n, results, seq, (int64_t)time(NULL));
}

int journal_commit_at(struct meta *m, int64_t user, const char *device,
                      const struct journal_change *changes, size_t n,
                      struct journal_result *results, int64_t *seq, int64_t now)
{
        size_t i;
        int r;

        memset(results, 0, n * sizeof(*results));
        r = m->ops->begin(m);
        if (r < 0)
                return r;
        for (i = 0; i < n && r == 0; i++) {
                const struct journal_change *c = &changes[i];
                switch (c->op) {
                case JOURNAL_PUT:
                        r = apply_put(m, user, device, now, c, &results[i]);
                        break;
                case JOURNAL_DELETE:
                        r = apply_delete(m, user, device, now, c, &results[i]);
                        break;
                case JOURNAL_RENAME:
                        r = apply_rename(m, user, device, now, c, &results[i]);
                        break;
                default:
                        set_invalid(&results[i], "unknown op");
                        break;
                }
        }
        if (r == 0)
                r = m->ops->seq_current(m, user, seq);
        if (r < 0) {
                m->ops->rollback(m);
                for (i = 0; i < n; i++)
                        journal_result_clear(&results[i]);
                return r;
        }
        return m->ops->commit(m);
}

void journal_restore_clear(struct journal_restore *r)
{
        meta_entry_clear(&r->entry);
        memset(r, 0, sizeof(*r));
}

/* Touches every chunk of e, a retained version about to be committed
 * again. The GC drops no ownership row a retained version refers to, so a
 * chunk not held means a damaged store: refuse rather than commit a
 * version nobody could download. */
static int touch_chunks(struct meta *m, int64_t user, int64_t now, const struct meta_entry *e)
{
        struct manifest mf = MANIFEST_INIT;
        size_t i;
        int r = 0;

        if (e->chunks_len && manifest_from_blob(e->chunks, e->chunks_len, &mf) < 0)
                return err_set(-EIO, "version %lld of %s: corrupt chunk list", (long long)e->seq,
                               e->path);
        for (i = 0; i < mf.n && r == 0; i++) {
                r = m->ops->chunk_touch(m, user, &mf.chunks[i].hash, now, NULL);
                if (r == 0)
                        r = err_set(-EIO, "version %lld of %s refers to a chunk no longer stored",
                                    (long long)e->seq, e->path);
                else if (r == 1)
                        r = 0;
        }
        manifest_free(&mf);
        return r;
}

/* journal_restore inside its transaction. */
static int restore_in(struct meta *m, int64_t user, const char *device, const char *path,
                      int64_t seq, const char *to, int64_t now, struct journal_restore *out)
{
        struct meta_entry v = {0}, cur = {0};
        int r;

        r = seq ? m->ops->version_get(m, user, path, seq, &v)
                : m->ops->version_last_live(m, user, path, &v);
        if (r == -ENOENT) {
                out->status = JOURNAL_RESTORE_NOT_FOUND;
                r = 0;
                goto out;
        }
        if (r < 0)
                goto out;
        out->from = v.seq;
        if (v.deleted) {
                out->status = JOURNAL_RESTORE_TOMBSTONE;
                goto out;
        }
        r = lookup(m, user, to, &cur);
        if (r < 0)
                goto out;
        if (is_live(&cur) && strcmp(to, path) != 0) {
                out->status = JOURNAL_RESTORE_TARGET_LIVE;
                out->entry = cur; /* moves ownership */
                memset(&cur, 0, sizeof(cur));
                goto out;
        }
        if (is_live(&cur) && same_content(&cur, &v)) {
                out->status = JOURNAL_RESTORE_UNCHANGED;
                out->entry = cur;
                memset(&cur, 0, sizeof(cur));
                goto out;
        }
        /* Everything but where, when and by whom is version seq's. */
        r = touch_chunks(m, user, now, &v);
        if (r < 0)
                goto out;
        free(v.path);
        v.path = strdup(to);
        if (!v.path) {
                r = -ENOMEM;
                goto out;
        }
        snprintf(v.device, sizeof(v.device), "%s", device);
        v.time = now;
        r = m->ops->seq_next(m, user, &v.seq);
        if (r == 0)
                r = store(m, user, &v);
        if (r < 0)
                goto out;
        out->status = JOURNAL_RESTORED;
        out->entry = v;
        memset(&v, 0, sizeof(v));
out:
        meta_entry_clear(&v);
        meta_entry_clear(&cur);
        return r;
}

int journal_restore(struct meta *m, int64_t user, const char *device, const char *path, int64_t seq,
                    const char *to, int64_t now, struct journal_restore *out)
{
        int r;

        memset(out, 0, sizeof(*out));
        if ((r = path_validate(path)) < 0 || (to && (r = path_validate(to)) < 0))
                return r;
        if (seq < 0)
                return err_set(-EINVAL, "seq must not be negative");
        r = m->ops->begin(m);
        if (r < 0)
                return r;
        r = restore_in(m, user, device, path, seq, to ? to : path, now, out);
        if (r < 0) {
                m->ops->rollback(m);
                journal_restore_clear(out);
                return r;
        }
        r = m->ops->commit(m);
        if (r < 0)
                journal_restore_clear(out);
        return r;
}

struct since_ctx {
        meta_entry_cb cb;
        void *userdata;
        int64_t limit;
        int64_t seen;
        int more;
};

static int since_cb(const struct meta_entry *e, void *userdata)
{
        struct since_ctx *sc = userdata;
        int r;

        if (sc->seen == sc->limit) {
                sc->more = 1;
                return 1;
        }
        sc->seen++;
        r = sc->cb(e, sc->userdata);
        if (r > 0)
                sc->more = 1;
        return r;
}

int journal_changes_since(struct meta *m, int64_t user, int64_t since, int64_t limit,
                          meta_entry_cb cb, void *userdata, int *more)
{
        struct since_ctx sc = {cb, userdata, limit, 0, 0};
        int r;

        if (since < 0 || limit < 0)
                return err_set(-EINVAL, "since and limit must not be negative");
        /* One row past the limit tells whether there is more. */
        r = m->ops->entry_changes(m, user, since, limit + 1, since_cb, &sc);
        if (more)
                *more = sc.more;
        return r;
}

int journal_list(struct meta *m, int64_t user, const char *prefix, int with_deleted,
                 meta_entry_cb cb, void *userdata)
{
        int r;

        if (prefix) {
                r = path_validate(prefix);
                if (r < 0)
                        return r;
        }
        return m->ops->entry_list(m, user, prefix, with_deleted, cb, userdata);
}

int journal_get(struct meta *m, int64_t user, const char *path, struct meta_entry *out)
{
        int r = path_validate(path);

        if (r < 0)
                return r;
        return m->ops->entry_get(m, user, path, out);
}
