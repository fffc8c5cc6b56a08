/* meta_sqlite_history: the version history of each space, the trash,
 * retention and the rows the garbage collector works on, for the SQLite
 * metadata backend (the operations of the "history" block of struct
 * meta_ops).
 *
 * The `versions` table holds every committed version of every path (the
 * current one too, which is also the path's row in `entries`) until
 * retention prunes it. A version's `superseded` column is the commit time
 * of the next version of its path (NULL while it is the current one), so
 * that the keep-days rule is one comparison and does not depend on the next
 * version still being retained.
 *
 * Chunk lists are stored as manifest blobs (manifest.h: 36 bytes a chunk,
 * the hash first), which SQL cannot look into: to find the chunks an
 * account still refers to, chunk_refs_drop decodes the blobs of the
 * account's versions and entries into a temporary table and drops the
 * ownership rows outside it, all in the caller's transaction. A temporary
 * table rather than a set in memory because SQLite spills it to disk: an
 * account with millions of chunks costs disk, not RAM.
 *
 * Snapshots (snapshot_list): the space as of a seq is, for each path, its
 * newest version with seq <= that point, when it is not a tombstone. Once
 * retention pruned versions, that answer is exact only from a certain seq
 * on: a pruned version was current from its own seq until the seq of the
 * version that superseded it, so the table history_horizon keeps, per
 * account, the highest such superseding seq (raised by every prune), and
 * a snapshot below it is refused rather than silently missing files.
 *
 * The tables are created by the schema steps (schema.c, version 2), which
 * also turn a database of version 1 (no versions, no times) into one.
 *
 * Locking as described in meta_sqlite.c.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "meta_sqlite.h"

#define CHUNK_BLOB_ITEM 36 /* manifest_to_blob(): hash (32) + size (4) */

enum {
        SL_SUPERSEDE = MSQ_SLOT_HISTORY,
        SL_VERSION_ADD,
        SL_VERSION_GET,
        SL_LAST_LIVE,
        SL_VERSION_LIST,
        SL_TRASH_ALL,
        SL_TRASH_PREFIX,
        SL_USER_IDS,
        SL_PRUNE,
        SL_REFS_CANDIDATE,
        SL_REFS_SCAN,
        SL_REFS_ADD,
        SL_REFS_DROP,
        SL_REFS_CLEAR,
        SL_ORPHANS,
        SL_FORGET,
        SL_HORIZON_RAISE,
        SL_HORIZON_GET,
        SL_SNAP_CURRENT,
        SL_SNAP_TIME,
        SL_SNAP_ALL,
        SL_SNAP_PREFIX,
};

/* A version's columns without its chunk list, for listings. */
#define V_COLS                                                                                     \
        "v.path, v.seq, v.deleted, v.kind, v.size, v.mtime_ns, v.mode, v.hash, v.target,"          \
        " v.device, NULL, v.time"
#define E_COLS                                                                                     \
        "e.path, e.seq, e.deleted, e.kind, e.size, e.mtime_ns, e.mode, e.hash, e.target,"          \
        " e.device, NULL, e.time"

/* The versions version_prune deletes (?1 user, ?2 superseded before, ?3
 * keep versions), shared by the delete and the horizon it raises first.
 * The current version (superseded NULL, and the path's row in entries) is
 * never a candidate, whatever the rules say. rn counts a path's versions
 * from the newest: rn - 1 are newer than it. */
#define PRUNE_WHERE                                                                                \
        "user_id = ?1 AND superseded IS NOT NULL"                                                  \
        " AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.user_id = ?1"                            \
        "   AND e.seq = versions.seq)"                                                             \
        " AND ((?2 > 0 AND superseded < ?2) OR (?3 > 0 AND seq IN (SELECT seq FROM"                \
        "   (SELECT seq, ROW_NUMBER() OVER (PARTITION BY path ORDER BY seq DESC) AS rn"            \
        "    FROM versions WHERE user_id = ?1) WHERE rn > ?3)))"

/* The newest version of each path with seq <= ?3, when live, for paths
 * after ?2, in path order (the versions_path index: user, path, seq). */
#define SNAP_SQL(where)                                                                            \
        "SELECT " MSQ_ENTRY_COLS " FROM versions v"                                                \
        " WHERE v.user_id = ?1 AND v.path > ?2" where " AND v.seq <= ?3 AND v.deleted = 0"         \
        " AND v.seq = (SELECT MAX(x.seq) FROM versions x WHERE x.user_id = ?1"                     \
        "   AND x.path = v.path AND x.seq <= ?3)"                                                  \
        " ORDER BY v.path LIMIT ?4"

#define TRASH_SQL(where)                                                                           \
        "SELECT " E_COLS ", d.name, " V_COLS " FROM entries e"                                     \
        " JOIN versions v ON v.user_id = e.user_id AND v.seq = (SELECT MAX(x.seq)"                 \
        "   FROM versions x WHERE x.user_id = e.user_id AND x.path = e.path AND x.deleted = 0)"    \
        " LEFT JOIN devices d ON d.id = e.device AND d.user_id = e.user_id"                        \
        " WHERE e.user_id = ?1 AND e.deleted = 1" where " ORDER BY e.time DESC, e.seq DESC"

int msq_version_add(struct meta *m, int64_t user, const struct meta_entry *e)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        s = msq_prep_sql(ms, SL_SUPERSEDE,
                         "UPDATE versions SET superseded = ?3 WHERE user_id = ?1 AND path = ?2"
                         " AND superseded IS NULL");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_text(s, 2, e->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, e->time);
        r = msq_step_done(ms, s, "version supersede");
        if (r < 0)
                goto out;
        r = -EIO;
        s = msq_prep_sql(ms, SL_VERSION_ADD,
                         "INSERT INTO versions (user_id, " MSQ_ENTRY_COLS ", superseded)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        msq_bind_entry(s, 2, e);
        r = msq_step_done(ms, s, "version");
out:
        msq_unlock(ms);
        return r;
}

/* Runs s (bound) for one entry row into out: 0, -ENOENT or -EIO. */
static int one_entry(struct meta_sqlite *ms, sqlite3_stmt *s, struct meta_entry *out)
{
        int rc = sqlite3_step(s), r;

        if (rc == SQLITE_ROW)
                r = msq_read_entry(s, 0, out);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = msq_db_err(ms, "version lookup");
        sqlite3_reset(s);
        return r;
}

int msq_version_get(struct meta *m, int64_t user, const char *path, int64_t seq,
                    struct meta_entry *out)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        s = msq_prep_sql(ms, SL_VERSION_GET,
                         "SELECT " MSQ_ENTRY_COLS " FROM versions"
                         " WHERE user_id = ? AND seq = ? AND path = ?");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_int64(s, 2, seq);
        sqlite3_bind_text(s, 3, path, -1, SQLITE_STATIC);
        r = one_entry(ms, s, out);
out:
        msq_unlock(ms);
        return r;
}

int msq_version_last_live(struct meta *m, int64_t user, const char *path, struct meta_entry *out)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        s = msq_prep_sql(ms, SL_LAST_LIVE,
                         "SELECT " MSQ_ENTRY_COLS " FROM versions"
                         " WHERE user_id = ? AND path = ? AND deleted = 0"
                         " ORDER BY seq DESC LIMIT 1");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
        r = one_entry(ms, s, out);
out:
        msq_unlock(ms);
        return r;
}

int msq_version_list(struct meta *m, int64_t user, const char *path, int64_t limit,
                     meta_version_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_entry e;
        char name[META_DEVICE_NAME_MAX + 1];
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        s = msq_prep_sql(ms, SL_VERSION_LIST,
                         "SELECT " V_COLS ", d.name FROM versions v"
                         " LEFT JOIN devices d ON d.id = v.device AND d.user_id = v.user_id"
                         " WHERE v.user_id = ? AND v.path = ? ORDER BY v.seq DESC LIMIT ?");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, limit);
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = msq_read_entry(s, 0, &e);
                if (r < 0)
                        break;
                msq_copy_text(name, sizeof(name), s, MSQ_ENTRY_NCOLS);
                r = cb(&e, name, userdata);
                meta_entry_clear(&e);
                if (r != 0)
                        break;
        }
        if (r > 0)
                r = 0;
        else if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, "version listing");
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

int msq_trash_list(struct meta *m, int64_t user, const char *prefix, meta_trash_cb cb,
                   void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_entry tomb, last;
        char name[META_DEVICE_NAME_MAX + 1];
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        if (prefix)
                /* '/' + 1 == '0': the range holds exactly the paths under
                 * "P/" (as in entry_list). */
                s = msq_prep_sql(ms, SL_TRASH_PREFIX,
                                 TRASH_SQL(" AND (e.path = ?2 OR"
                                           " (e.path > ?2 || '/' AND e.path < ?2 || '0'))"));
        else
                s = msq_prep_sql(ms, SL_TRASH_ALL, TRASH_SQL(""));
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        if (prefix)
                sqlite3_bind_text(s, 2, prefix, -1, SQLITE_STATIC);
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = msq_read_entry(s, 0, &tomb);
                if (r < 0)
                        break;
                r = msq_read_entry(s, MSQ_ENTRY_NCOLS + 1, &last);
                if (r < 0) {
                        meta_entry_clear(&tomb);
                        break;
                }
                msq_copy_text(name, sizeof(name), s, MSQ_ENTRY_NCOLS);
                r = cb(&tomb, name, &last, userdata);
                meta_entry_clear(&tomb);
                meta_entry_clear(&last);
                if (r != 0)
                        break;
        }
        if (r > 0)
                r = 0;
        else if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, "trash listing");
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

/* One integer of a one-row query on user (?1, and ?2 = arg when arg >= 0)
 * into *v; a missing row or NULL reads as 0. */
static int one_int(struct meta_sqlite *ms, unsigned slot, const char *sql, int64_t user,
                   int64_t arg, int64_t *v)
{
        sqlite3_stmt *s = msq_prep_sql(ms, slot, sql);
        int rc, r = 0;

        *v = 0;
        if (!s)
                return -EIO;
        sqlite3_bind_int64(s, 1, user);
        if (arg >= 0)
                sqlite3_bind_int64(s, 2, arg);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *v = sqlite3_column_int64(s, 0);
        else if (rc != SQLITE_DONE)
                r = msq_db_err(ms, "snapshot");
        sqlite3_reset(s);
        return r;
}

int msq_snapshot_list(struct meta *m, int64_t user, struct meta_snapshot *q, meta_entry_cb cb,
                      void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r;

        msq_lock(ms);
        r = one_int(ms, SL_SNAP_CURRENT, "SELECT seq FROM spaces WHERE user_id = ?1", user, -1,
                    &q->current);
        if (r == 0)
                r = one_int(ms, SL_HORIZON_GET,
                            "SELECT seq FROM history_horizon WHERE user_id = ?1", user, -1,
                            &q->horizon);
        /* Once a restore, not a sync: a scan of the account's versions is
         * cheaper than an index on time that every commit would pay for. */
        if (r == 0 && q->time >= 0)
                r = one_int(ms, SL_SNAP_TIME,
                            "SELECT MAX(seq) FROM versions WHERE user_id = ?1 AND time <= ?2", user,
                            q->time, &q->at);
        if (r < 0)
                goto out;
        if (q->at > q->current)
                q->at = q->current;
        if (q->at < 0)
                q->at = 0;
        if (q->at < q->horizon) {
                r = err_set(-ESTALE,
                            "the history before seq %lld was pruned by the server's retention "
                            "settings: the space can be listed as of seq %lld or later",
                            (long long)q->horizon, (long long)q->horizon);
                goto out;
        }
        r = -EIO;
        if (q->prefix)
                /* the range [P, P0) holds P and P/...; the test drops P!, P-x... */
                s = msq_prep_sql(ms, SL_SNAP_PREFIX,
                                 SNAP_SQL(" AND v.path >= ?5 AND v.path < ?5 || '0'"
                                          " AND (v.path = ?5 OR v.path > ?5 || '/')"));
        else
                s = msq_prep_sql(ms, SL_SNAP_ALL, SNAP_SQL(""));
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_text(s, 2, q->after ? q->after : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, q->at);
        sqlite3_bind_int64(s, 4, q->limit);
        if (q->prefix)
                sqlite3_bind_text(s, 5, q->prefix, -1, SQLITE_STATIC);
        r = msq_each_entry(ms, s, cb, userdata, "snapshot listing");
out:
        msq_unlock(ms);
        return r;
}

int msq_user_ids(struct meta *m, int64_t **ids, size_t *n)
{
        struct meta_sqlite *ms = msq_of(m);
        int64_t *v = NULL, *nv;
        size_t cnt = 0, cap = 0;
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        s = msq_prep_sql(ms, SL_USER_IDS, "SELECT id FROM users ORDER BY id");
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (cnt == cap) {
                        cap = cap ? cap * 2 : 16;
                        nv = realloc(v, cap * sizeof(*v));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                }
                v[cnt++] = sqlite3_column_int64(s, 0);
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, "user listing");
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        if (r < 0) {
                free(v);
                return r;
        }
        *ids = v;
        *n = cnt;
        return 0;
}

int msq_version_prune(struct meta *m, int64_t user, int64_t superseded_before,
                      int64_t keep_versions, int64_t *pruned)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        *pruned = 0;
        msq_lock(ms);
        /* Under the same lock (and the GC's transaction): the horizon is
         * raised for exactly the versions deleted next. */
        s = msq_prep_sql(ms, SL_HORIZON_RAISE,
                         "INSERT INTO history_horizon (user_id, seq)"
                         " SELECT ?1, h FROM (SELECT MAX((SELECT MIN(x.seq) FROM versions x"
                         "   WHERE x.user_id = ?1 AND x.path = versions.path"
                         "   AND x.seq > versions.seq)) AS h"
                         "  FROM versions WHERE " PRUNE_WHERE ") WHERE h IS NOT NULL"
                         " ON CONFLICT (user_id) DO UPDATE SET seq = MAX(seq, excluded.seq)");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_int64(s, 2, superseded_before);
        sqlite3_bind_int64(s, 3, keep_versions);
        r = msq_step_done(ms, s, "history horizon");
        if (r < 0)
                goto out;
        r = -EIO;
        s = msq_prep_sql(ms, SL_PRUNE, "DELETE FROM versions WHERE " PRUNE_WHERE);
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_int64(s, 2, superseded_before);
        sqlite3_bind_int64(s, 3, keep_versions);
        r = msq_step_done(ms, s, "version pruning");
        if (r == 0)
                *pruned = sqlite3_changes64(ms->db);
out:
        msq_unlock(ms);
        return r;
}

/* Fills temp.gc_refs with every chunk user's versions and entries refer
 * to. */
static int collect_refs(struct meta_sqlite *ms, int64_t user)
{
        sqlite3_stmt *scan, *add;
        const uint8_t *p;
        size_t len, off;
        int r = 0, rc;

        scan =
            msq_prep_sql(ms, SL_REFS_SCAN,
                         "SELECT chunks FROM versions WHERE user_id = ?1 AND chunks IS NOT NULL"
                         " UNION ALL"
                         " SELECT chunks FROM entries WHERE user_id = ?1 AND chunks IS NOT NULL");
        if (!scan)
                return -EIO;
        sqlite3_bind_int64(scan, 1, user);
        while (r == 0 && (rc = sqlite3_step(scan)) == SQLITE_ROW) {
                p = sqlite3_column_blob(scan, 0);
                len = (size_t)sqlite3_column_bytes(scan, 0);
                if (len % CHUNK_BLOB_ITEM) {
                        /* Not knowing what it refers to, free nothing. */
                        r = err_set(-EIO, "metadata store: corrupt chunk list (%zu bytes)", len);
                        break;
                }
                for (off = 0; r == 0 && off < len; off += CHUNK_BLOB_ITEM) {
                        add = msq_prep_sql(ms, SL_REFS_ADD,
                                           "INSERT OR IGNORE INTO temp.gc_refs (hash) VALUES (?)");
                        if (!add) {
                                r = -EIO;
                                break;
                        }
                        sqlite3_bind_blob(add, 1, p + off, HASH_LEN, SQLITE_STATIC);
                        r = msq_step_done(ms, add, "chunk reference");
                }
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, "chunk references");
        sqlite3_reset(scan);
        return r;
}

int msq_chunk_refs_drop(struct meta *m, int64_t user, int64_t touched_before, int64_t *dropped)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO, rc;

        *dropped = 0;
        msq_lock(ms);
        /* Most runs find nothing old enough: then there is no need to look
         * at the account's chunk lists at all. */
        s = msq_prep_sql(ms, SL_REFS_CANDIDATE,
                         "SELECT 1 FROM user_chunks WHERE user_id = ? AND touched < ? LIMIT 1");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_int64(s, 2, touched_before);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc == SQLITE_DONE) {
                r = 0;
                goto out;
        }
        if (rc != SQLITE_ROW) {
                r = msq_db_err(ms, "chunk ownership");
                goto out;
        }
        r = msq_exec(ms, "CREATE TEMP TABLE IF NOT EXISTS gc_refs (hash BLOB PRIMARY KEY)"
                         " WITHOUT ROWID; DELETE FROM temp.gc_refs;");
        if (r < 0)
                goto out;
        r = collect_refs(ms, user);
        if (r < 0)
                goto clear;
        r = -EIO;
        s = msq_prep_sql(ms, SL_REFS_DROP,
                         "DELETE FROM user_chunks WHERE user_id = ? AND touched < ?"
                         " AND hash NOT IN (SELECT hash FROM temp.gc_refs)");
        if (!s)
                goto clear;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_int64(s, 2, touched_before);
        r = msq_step_done(ms, s, "chunk ownership drop");
        if (r == 0)
                *dropped = sqlite3_changes64(ms->db);
clear:
        s = msq_prep_sql(ms, SL_REFS_CLEAR, "DELETE FROM temp.gc_refs");
        if (s && msq_step_done(ms, s, "chunk references") < 0 && r == 0)
                r = -EIO;
out:
        msq_unlock(ms);
        return r;
}

int msq_chunk_orphans(struct meta *m, const struct hash *after, size_t max, struct meta_chunk *out,
                      size_t *n)
{
        static const uint8_t zero[HASH_LEN];
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        const void *h;
        int r = -EIO, rc;

        *n = 0;
        msq_lock(ms);
        s = msq_prep_sql(ms, SL_ORPHANS,
                         "SELECT hash, size FROM chunks c WHERE c.hash > ?1 AND NOT EXISTS"
                         " (SELECT 1 FROM user_chunks u WHERE u.hash = c.hash)"
                         " ORDER BY c.hash LIMIT ?2");
        if (!s)
                goto out;
        /* A zero-length blob sorts before every hash. */
        sqlite3_bind_blob(s, 1, after ? (const void *)after->b : (const void *)zero,
                          after ? HASH_LEN : 0, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)max);
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                h = sqlite3_column_blob(s, 0);
                if (!h || sqlite3_column_bytes(s, 0) != HASH_LEN)
                        continue;
                memcpy(out[*n].hash.b, h, HASH_LEN);
                out[*n].size = (uint32_t)sqlite3_column_int64(s, 1);
                (*n)++;
        }
        if (rc != SQLITE_DONE)
                r = msq_db_err(ms, "orphan chunks");
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

int msq_chunk_forget(struct meta *m, const struct hash *h)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        s = msq_prep_sql(ms, SL_FORGET,
                         "DELETE FROM chunks WHERE hash = ?1 AND NOT EXISTS"
                         " (SELECT 1 FROM user_chunks WHERE hash = ?1)");
        if (!s)
                goto out;
        sqlite3_bind_blob(s, 1, h->b, HASH_LEN, SQLITE_STATIC);
        r = msq_step_done(ms, s, "chunk forget");
        if (r == 0)
                r = sqlite3_changes(ms->db) > 0;
out:
        msq_unlock(ms);
        return r;
}
