/* gc: retention and garbage collection of ferryd's stores (see gc.h).
 *
 * A run has two stages.
 *
 * 1. Per account, in one metadata transaction: prune the versions the
 *    retention settings no longer keep, then drop the account's chunk
 *    ownership rows that no retained version or current entry refers to
 *    and that were not touched (stored, found present by /chunks/missing,
 *    used in a commit) for gc_grace seconds. The grace keeps the chunks of
 *    uploads in flight: a client uploads (or finds present) the chunks of
 *    a file and commits it a moment later, and in between nothing refers
 *    to them. Because a commit checks (and touches) every chunk it names
 *    inside its own transaction, and this stage runs in one transaction
 *    too, the two are serialised: either the commit comes first and this
 *    stage sees its version refer to the chunks, or this stage comes first
 *    and the commit finds the chunks missing and the client uploads them
 *    again. Nothing is ever committed that refers to a freed chunk.
 *
 * 2. Chunks that no account holds any more lose their row and their blob,
 *    in batches, each under the server's gc_lock held exclusively. Uploads
 *    hold that lock shared from storing a chunk (or finding it already
 *    stored) until its ownership row exists, so a batch never removes a
 *    blob an upload has just stored or counted on: every chunk such an
 *    upload touched is held by an account by the time the batch looks.
 *    Last, the blob store compacts (blob_ops.compact, when it has one) to
 *    give back the space of what was removed; that needs no lock, since it
 *    moves chunks without changing which are stored.
 *
 * Several ferryd instances on one shared store (PostgreSQL): every
 * instance's housekeeping thread calls gc_run, but one collector runs at a
 * time: a run first tries the store-wide lock GC_RUN_LOCK and skips
 * (-EBUSY) when another instance holds it. And since an upload on another
 * instance cannot see this one's gc_lock, uploads also hold the store-wide
 * META_LOCK_GC shared (server_gc_shared) and each batch of stage 2 holds
 * it exclusive, after gc_lock. Stage 1 needs no lock: it is one metadata
 * transaction per account, serialised with commits by the store. The
 * SQLite store grants every lock at once: one process serves it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gc.h"
#include "log.h"
#include "server.h"

/* Orphan chunks per locked batch: uploads wait for at most one batch. */
#define GC_BATCH 512
/* The store-wide lock of a whole run (one collector at a time), beside
 * META_LOCK_GC, which a run holds only per batch so that uploads wait for
 * one batch, not for a run. */
#define GC_RUN_LOCK ((int64_t)META_LOCK_GC + 1)
#define DAY 86400

/* Stage 1 for one account. */
static int gc_account(struct server *s, int64_t user, int64_t now, struct gc_stats *st)
{
        const struct server_settings *set = &s->settings;
        struct meta *m = s->meta;
        int64_t pruned = 0, dropped = 0, before = 0;
        int r;

        if (set->keep_days > 0 && now > set->keep_days * DAY)
                before = now - set->keep_days * DAY;
        r = m->ops->begin(m);
        if (r < 0)
                return r;
        if (before > 0 || set->keep_versions > 0)
                r = m->ops->version_prune(m, user, before, set->keep_versions, &pruned);
        if (r == 0)
                r = m->ops->chunk_refs_drop(m, user, now - set->gc_grace, &dropped);
        if (r < 0) {
                m->ops->rollback(m);
                return r;
        }
        r = m->ops->commit(m);
        if (r == 0) {
                st->versions_pruned += pruned;
                st->refs_dropped += dropped;
        }
        return r;
}

/* One batch of stage 2, after *after (NULL: from the start). Sets *n to
 * the orphans seen and *after to the last of them. */
static int free_batch(struct server *s, struct hash *after, int from_start, struct meta_chunk *b,
                      size_t *n, struct gc_stats *st)
{
        struct meta *m = s->meta;
        int64_t freed = 0, bytes = 0;
        int r, locked = 0;
        size_t i;

        pthread_rwlock_wrlock(&s->gc_lock);
        if (s->shared) {
                r = m->ops->cluster_lock(m, META_LOCK_GC, 0, 0);
                if (r < 0)
                        goto unlock;
                locked = 1;
        }
        r = m->ops->begin(m);
        if (r < 0)
                goto unlock;
        r = m->ops->chunk_orphans(m, from_start ? NULL : after, GC_BATCH, b, n);
        for (i = 0; r == 0 && i < *n; i++) {
                r = m->ops->chunk_forget(m, &b[i].hash);
                if (r <= 0)
                        continue; /* held again after all: keep it */
                r = s->blob->ops->remove(s->blob, &b[i].hash);
                if (r == -ENOENT) {
                        r = 0; /* a run that crashed removed it already */
                } else if (r == 0) {
                        freed++;
                        bytes += b[i].size;
                }
        }
        /* On failure the rows come back and point at blobs that may be
         * gone: still orphans, which the next run forgets. */
        if (r < 0)
                m->ops->rollback(m);
        else
                r = m->ops->commit(m);
unlock:
        if (locked)
                m->ops->cluster_unlock(m, META_LOCK_GC, 0);
        pthread_rwlock_unlock(&s->gc_lock);
        if (r < 0)
                return r;
        st->chunks_freed += freed;
        st->bytes_freed += bytes;
        if (*n)
                *after = b[*n - 1].hash;
        return 0;
}

static int free_orphans(struct server *s, struct gc_stats *st)
{
        struct meta_chunk *b;
        struct hash after;
        size_t n;
        int r, first = 1;

        b = calloc(GC_BATCH, sizeof(*b));
        if (!b)
                return -ENOMEM;
        memset(&after, 0, sizeof(after));
        do {
                r = free_batch(s, &after, first, b, &n, st);
                first = 0;
        } while (r == 0 && n == GC_BATCH);
        free(b);
        return r;
}

int gc_run(struct server *s, int64_t now, struct gc_stats *st)
{
        int64_t *users = NULL;
        size_t n = 0, i;
        int r;

        memset(st, 0, sizeof(*st));
        r = s->meta->ops->cluster_lock(s->meta, GC_RUN_LOCK, 0, 1);
        if (r < 0)
                return r;
        if (r == 0)
                return err_set(-EBUSY, "another instance is collecting");
        r = s->meta->ops->user_ids(s->meta, &users, &n);
        for (i = 0; r == 0 && i < n; i++)
                r = gc_account(s, users[i], now, st);
        free(users);
        if (r == 0)
                r = free_orphans(s, st);
        /* the space of what was removed, for stores that do not free it at
         * remove() (folder packs); a failure here loses no data */
        if (r == 0 && s->blob->ops->compact) {
                uint64_t compacted = 0;
                int c = s->blob->ops->compact(s->blob, &compacted);

                if (c < 0)
                        log_warn("gc: compacting the chunk store: %s", err_msg(c));
        }
        s->meta->ops->cluster_unlock(s->meta, GC_RUN_LOCK, 0);
        if (st->versions_pruned || st->chunks_freed)
                log_info("gc: %lld versions pruned, %lld chunks freed (%lld bytes)",
                         (long long)st->versions_pruned, (long long)st->chunks_freed,
                         (long long)st->bytes_freed);
        log_debug("gc: %lld chunk ownership rows dropped", (long long)st->refs_dropped);
        return r;
}
