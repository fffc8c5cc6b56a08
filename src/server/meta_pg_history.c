/* meta_pg_history: (being written) versions, trash, retention and GC rows of the PostgreSQL
 * backend. */
#include <errno.h>

#include "err.h"
#include "meta_pg.h"

int mpg_version_add(struct meta *m, int64_t user, const struct meta_entry *e)
{
        (void)m;
        (void)user;
        (void)e;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_version_add not written yet");
}

int mpg_version_get(struct meta *m, int64_t user, const char *path, int64_t seq,
                    struct meta_entry *out)
{
        (void)m;
        (void)user;
        (void)path;
        (void)seq;
        (void)out;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_version_get not written yet");
}

int mpg_version_last_live(struct meta *m, int64_t user, const char *path, struct meta_entry *out)
{
        (void)m;
        (void)user;
        (void)path;
        (void)out;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_version_last_live not written yet");
}

int mpg_version_list(struct meta *m, int64_t user, const char *path, int64_t limit,
                     meta_version_cb cb, void *userdata)
{
        (void)m;
        (void)user;
        (void)path;
        (void)limit;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_version_list not written yet");
}

int mpg_trash_list(struct meta *m, int64_t user, const char *prefix, meta_trash_cb cb,
                   void *userdata)
{
        (void)m;
        (void)user;
        (void)prefix;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_trash_list not written yet");
}

int mpg_snapshot_list(struct meta *m, int64_t user, struct meta_snapshot *q, meta_entry_cb cb,
                      void *userdata)
{
        (void)m;
        (void)user;
        (void)q;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_snapshot_list not written yet");
}

int mpg_user_ids(struct meta *m, int64_t **ids, size_t *n)
{
        (void)m;
        (void)ids;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_user_ids not written yet");
}

int mpg_version_prune(struct meta *m, int64_t user, int64_t superseded_before,
                      int64_t keep_versions, int64_t *pruned)
{
        (void)m;
        (void)user;
        (void)superseded_before;
        (void)keep_versions;
        (void)pruned;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_version_prune not written yet");
}

int mpg_chunk_refs_drop(struct meta *m, int64_t user, int64_t touched_before, int64_t *dropped)
{
        (void)m;
        (void)user;
        (void)touched_before;
        (void)dropped;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_chunk_refs_drop not written yet");
}

int mpg_chunk_orphans(struct meta *m, const struct hash *after, size_t max, struct meta_chunk *out,
                      size_t *n)
{
        (void)m;
        (void)after;
        (void)max;
        (void)out;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_chunk_orphans not written yet");
}

int mpg_chunk_forget(struct meta *m, const struct hash *h)
{
        (void)m;
        (void)h;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_chunk_forget not written yet");
}
