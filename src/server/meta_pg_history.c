/* meta_pg_history: the version history of each space, the trash, retention
 * and the rows the garbage collector works on, for the PostgreSQL metadata
 * backend (the "history" block of struct meta_ops). It behaves as
 * meta_sqlite_history.c does, whose top comment explains the tables: a
 * version's `superseded` time, the per-account history_horizon below which
 * snapshots are refused, and chunk lists stored as manifest blobs (36
 * bytes a chunk, the hash first).
 *
 * Where PostgreSQL lets the database do more than SQLite:
 * - chunk_refs_drop decodes the chunk lists in SQL (generate_series over
 *   the blob, substring of each hash) and drops the unreferenced ownership
 *   rows in one statement. The references are never in ferryd's memory and
 *   the anti-join spills to disk past work_mem, as SQLite's temporary table
 *   did. Being one statement, it sees one snapshot of the account's
 *   versions; the caller's transaction holds the space's row lock
 *   (mpg_lock_space) so no commit to the space slips in, and an ownership
 *   row touched meanwhile by an upload is re-checked by PostgreSQL
 *   (touched < before no longer holds) and kept.
 * - snapshot_list runs its reads as separate statements when no
 *   transaction is open (SQLite held one lock over all of them), so a
 *   retention run on another instance could raise the horizon between the
 *   check and the listing: the horizon is read again after the listing and
 *   the answer is refused then too (the caller drops what it was handed).
 *
 * Every operation on a user's space locks the space first (mpg_lock_space:
 * inside a transaction only), as meta_pg.h asks.
 */
#include <errno.h>
#include <stdlib.h>

#include "err.h"
#include "meta_pg.h"

/* A version's columns without its chunk list, for listings. */
#define V_COLS                                                                                     \
        "v.path, v.seq, v.deleted, v.kind, v.size, v.mtime_ns, v.mode, v.hash, v.target,"          \
        " v.device, NULL::bytea, v.time"
#define E_COLS                                                                                     \
        "e.path, e.seq, e.deleted, e.kind, e.size, e.mtime_ns, e.mode, e.hash, e.target,"          \
        " e.device, NULL::bytea, e.time"

/* The versions version_prune deletes ($1 user, $2 superseded before, $3
 * keep versions), shared by the delete and the horizon it raises first.
 * The current version (superseded NULL, and the path's row in entries) is
 * never a candidate, whatever the rules say. rn counts a path's versions
 * from the newest: rn - 1 are newer than it. */
#define PRUNE_WHERE                                                                                \
        "versions.user_id = $1::bigint AND versions.superseded IS NOT NULL"                        \
        " AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.user_id = $1::bigint"                    \
        "   AND e.seq = versions.seq)"                                                             \
        " AND (($2::bigint > 0 AND versions.superseded < $2::bigint)"                              \
        "  OR ($3::bigint > 0 AND versions.seq IN (SELECT r.seq FROM"                              \
        "   (SELECT y.seq, ROW_NUMBER() OVER (PARTITION BY y.path ORDER BY y.seq DESC) AS rn"      \
        "    FROM versions y WHERE y.user_id = $1::bigint) AS r WHERE r.rn > $3::bigint)))"

/* The newest version of each path with seq <= $3, when live, for paths
 * after $2, in path order (the versions_path index: user, path, seq). */
#define SNAP_SQL(where)                                                                            \
        "SELECT " MPG_ENTRY_COLS " FROM versions v"                                                \
        " WHERE v.user_id = $1::bigint AND v.path > $2::text" where                                \
        " AND v.seq <= $3::bigint AND v.deleted = 0"                                               \
        " AND v.seq = (SELECT MAX(x.seq) FROM versions x WHERE x.user_id = $1::bigint"             \
        "   AND x.path = v.path AND x.seq <= $3::bigint)"                                          \
        " ORDER BY v.path LIMIT $4::bigint"

#define TRASH_SQL(where)                                                                           \
        "SELECT " E_COLS ", d.name, " V_COLS " FROM entries e"                                     \
        " JOIN versions v ON v.user_id = e.user_id AND v.seq = (SELECT MAX(x.seq)"                 \
        "   FROM versions x WHERE x.user_id = e.user_id AND x.path = e.path AND x.deleted = 0)"    \
        " LEFT JOIN devices d ON d.id = e.device AND d.user_id = e.user_id"                        \
        " WHERE e.user_id = $1::bigint AND e.deleted <> 0" where                                   \
        " ORDER BY e.time DESC, e.seq DESC"

/* The chunk lists of user $1's versions and current entries. */
#define CHUNK_LISTS                                                                                \
        "SELECT chunks FROM versions WHERE user_id = $1::bigint AND chunks IS NOT NULL"            \
        " UNION ALL"                                                                               \
        " SELECT chunks FROM entries WHERE user_id = $1::bigint AND chunks IS NOT NULL"

int mpg_version_add(struct meta *m, int64_t user, const struct meta_entry *e)
{
        int r;

        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        r = mpg_exec(m, "version supersede", NULL, NULL,
                     "UPDATE versions SET superseded = $3 WHERE user_id = $1 AND path = $2"
                     " AND superseded IS NULL",
                     "iti", user, e->path, (int64_t)e->time);
        if (r < 0)
                return r;
        return mpg_exec(m, "version", NULL, NULL,
                        "INSERT INTO versions (user_id, " MPG_ENTRY_COLS ", superseded)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)",
                        "i" MPG_ENTRY_FMT, user, MPG_ENTRY_ARGS(e));
}

/* The one entry row of res into out: 0, -ENOENT when there is none, or
 * -ENOMEM. */
static int one_entry(PGresult *res, struct meta_entry *out)
{
        if (PQntuples(res) < 1)
                return -ENOENT;
        return mpg_read_entry(res, 0, 0, out);
}

int mpg_version_get(struct meta *m, int64_t user, const char *path, int64_t seq,
                    struct meta_entry *out)
{
        PGresult *res = NULL;
        int r;

        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        r = mpg_exec(m, "version lookup", &res, NULL,
                     "SELECT " MPG_ENTRY_COLS " FROM versions"
                     " WHERE user_id = $1 AND seq = $2 AND path = $3",
                     "iit", user, seq, path);
        if (r == 0)
                r = one_entry(res, out);
        PQclear(res);
        return r;
}

int mpg_version_last_live(struct meta *m, int64_t user, const char *path, struct meta_entry *out)
{
        PGresult *res = NULL;
        int r;

        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        r = mpg_exec(m, "version lookup", &res, NULL,
                     "SELECT " MPG_ENTRY_COLS " FROM versions"
                     " WHERE user_id = $1 AND path = $2 AND deleted = 0"
                     " ORDER BY seq DESC LIMIT 1",
                     "it", user, path);
        if (r == 0)
                r = one_entry(res, out);
        PQclear(res);
        return r;
}

int mpg_version_list(struct meta *m, int64_t user, const char *path, int64_t limit,
                     meta_version_cb cb, void *userdata)
{
        PGresult *res = NULL;
        struct meta_entry e;
        char name[META_DEVICE_NAME_MAX + 1];
        int r, i, rows;

        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        r = mpg_exec(m, "version listing", &res, NULL,
                     "SELECT " V_COLS ", d.name FROM versions v"
                     " LEFT JOIN devices d ON d.id = v.device AND d.user_id = v.user_id"
                     " WHERE v.user_id = $1 AND v.path = $2 ORDER BY v.seq DESC LIMIT $3",
                     "iti", user, path, limit);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; r == 0 && i < rows; i++) {
                r = mpg_read_entry(res, i, 0, &e);
                if (r < 0)
                        break;
                mpg_copy_text(name, sizeof(name), res, i, MPG_ENTRY_NCOLS);
                r = cb(&e, name, userdata);
                meta_entry_clear(&e);
        }
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

int mpg_trash_list(struct meta *m, int64_t user, const char *prefix, meta_trash_cb cb,
                   void *userdata)
{
        PGresult *res = NULL;
        struct meta_entry tomb, last;
        char name[META_DEVICE_NAME_MAX + 1];
        int r, i, rows;

        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        if (prefix)
                /* '/' + 1 == '0': the range holds exactly the paths under
                 * "P/" (as in entry_list; paths compare bytewise). */
                r = mpg_exec(m, "trash listing", &res, NULL,
                             TRASH_SQL(" AND (e.path = $2::text OR"
                                       " (e.path > $2::text || '/' AND e.path < $2::text || '0'))"),
                             "it", user, prefix);
        else
                r = mpg_exec(m, "trash listing", &res, NULL, TRASH_SQL(""), "i", user);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; r == 0 && i < rows; i++) {
                r = mpg_read_entry(res, i, 0, &tomb);
                if (r < 0)
                        break;
                r = mpg_read_entry(res, i, MPG_ENTRY_NCOLS + 1, &last);
                if (r < 0) {
                        meta_entry_clear(&tomb);
                        break;
                }
                mpg_copy_text(name, sizeof(name), res, i, MPG_ENTRY_NCOLS);
                r = cb(&tomb, name, &last, userdata);
                meta_entry_clear(&tomb);
                meta_entry_clear(&last);
        }
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

/* -ESTALE with the message snapshot_list promises when q->at is below the
 * horizon, else 0. */
static int below_horizon(const struct meta_snapshot *q)
{
        if (q->at >= q->horizon)
                return 0;
        return err_set(-ESTALE,
                       "the history before seq %lld was pruned by the server's retention "
                       "settings: the space can be listed as of seq %lld or later",
                       (long long)q->horizon, (long long)q->horizon);
}

static int horizon_get(struct meta *m, int64_t user, int64_t *horizon)
{
        return mpg_query_int(m, "snapshot", 0, horizon,
                             "SELECT seq FROM history_horizon WHERE user_id = $1", "i", user);
}

int mpg_snapshot_list(struct meta *m, int64_t user, struct meta_snapshot *q, meta_entry_cb cb,
                      void *userdata)
{
        PGresult *res = NULL;
        int r;

        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        r = mpg_query_int(m, "snapshot", 0, &q->current,
                          "SELECT seq FROM spaces WHERE user_id = $1", "i", user);
        if (r == 0)
                r = horizon_get(m, user, &q->horizon);
        /* Once a restore, not a sync: a scan of the account's versions is
         * cheaper than an index on time that every commit would pay for. */
        if (r == 0 && q->time >= 0)
                r = mpg_query_int(m, "snapshot", 0, &q->at,
                                  "SELECT MAX(seq) FROM versions WHERE user_id = $1 AND time <= $2",
                                  "ii", user, q->time);
        if (r < 0)
                goto out;
        if (q->at > q->current)
                q->at = q->current;
        if (q->at < 0)
                q->at = 0;
        r = below_horizon(q);
        if (r < 0)
                goto out;
        if (q->prefix)
                /* the range [P, P0) holds P and P/...; the test drops P!, P-x... */
                r = mpg_exec(m, "snapshot listing", &res, NULL,
                             SNAP_SQL(" AND v.path >= $5::text AND v.path < $5::text || '0'"
                                      " AND (v.path = $5::text OR v.path > $5::text || '/')"),
                             "itiit", user, q->after ? q->after : "", q->at, q->limit, q->prefix);
        else
                r = mpg_exec(m, "snapshot listing", &res, NULL, SNAP_SQL(""), "itii", user,
                             q->after ? q->after : "", q->at, q->limit);
        if (r < 0)
                goto out;
        /* A prune committed before the listing's statement began may have
         * taken versions it needed (see the top). */
        r = horizon_get(m, user, &q->horizon);
        if (r == 0)
                r = below_horizon(q);
        if (r == 0)
                r = mpg_each_entry(res, cb, userdata);
out:
        PQclear(res);
        return r;
}

int mpg_user_ids(struct meta *m, int64_t **ids, size_t *n)
{
        PGresult *res = NULL;
        int64_t *v = NULL;
        size_t cnt, i;
        int r;

        r = mpg_exec(m, "user listing", &res, NULL, "SELECT id FROM users ORDER BY id", "");
        if (r < 0)
                goto out;
        cnt = (size_t)PQntuples(res);
        if (cnt) {
                v = calloc(cnt, sizeof(*v));
                if (!v) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        for (i = 0; i < cnt; i++)
                v[i] = mpg_int(res, (int)i, 0);
        *ids = v;
        *n = cnt;
out:
        PQclear(res);
        return r;
}

int mpg_version_prune(struct meta *m, int64_t user, int64_t superseded_before,
                      int64_t keep_versions, int64_t *pruned)
{
        int r;

        *pruned = 0;
        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        /* Under the space's lock (and the GC's transaction): the horizon is
         * raised for exactly the versions deleted next. */
        r = mpg_exec(m, "history horizon", NULL, NULL,
                     "INSERT INTO history_horizon (user_id, seq)"
                     " SELECT $1::bigint, h FROM (SELECT MAX((SELECT MIN(x.seq) FROM versions x"
                     "   WHERE x.user_id = $1::bigint AND x.path = versions.path"
                     "   AND x.seq > versions.seq)) AS h"
                     "  FROM versions WHERE " PRUNE_WHERE ") AS p WHERE h IS NOT NULL"
                     " ON CONFLICT (user_id) DO UPDATE"
                     " SET seq = GREATEST(history_horizon.seq, excluded.seq)",
                     "iii", user, superseded_before, keep_versions);
        if (r < 0)
                return r;
        return mpg_exec(m, "version pruning", NULL, pruned,
                        "DELETE FROM versions WHERE " PRUNE_WHERE, "iii", user, superseded_before,
                        keep_versions);
}

int mpg_chunk_refs_drop(struct meta *m, int64_t user, int64_t touched_before, int64_t *dropped)
{
        int64_t v;
        int r;

        *dropped = 0;
        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        /* Most runs find nothing old enough: then there is no need to look
         * at the account's chunk lists at all. */
        r = mpg_query_int(m, "chunk ownership", 0, &v,
                          "SELECT 1 FROM user_chunks WHERE user_id = $1 AND touched < $2 LIMIT 1",
                          "ii", user, touched_before);
        if (r < 0 || v == 0)
                return r;
        /* Not knowing what a corrupt list refers to, free nothing. */
        r = mpg_query_int(m, "chunk references", 0, &v,
                          "SELECT length(c.chunks) FROM (" CHUNK_LISTS ") AS c"
                          " WHERE length(c.chunks) % 36 <> 0 LIMIT 1",
                          "i", user);
        if (r < 0)
                return r;
        if (v)
                return err_set(-EIO, "metadata store: corrupt chunk list (%lld bytes)",
                               (long long)v);
        return mpg_exec(m, "chunk ownership drop", NULL, dropped,
                        "WITH refs AS (SELECT substring(c.chunks FROM i * 36 + 1 FOR 32) AS hash"
                        "  FROM (" CHUNK_LISTS ") AS c,"
                        "  generate_series(0, length(c.chunks) / 36 - 1) AS i)"
                        " DELETE FROM user_chunks u WHERE u.user_id = $1::bigint"
                        " AND u.touched < $2::bigint"
                        " AND NOT EXISTS (SELECT 1 FROM refs WHERE refs.hash = u.hash)",
                        "ii", user, touched_before);
}

int mpg_chunk_orphans(struct meta *m, const struct hash *after, size_t max, struct meta_chunk *out,
                      size_t *n)
{
        PGresult *res = NULL;
        int r, i, rows;

        *n = 0;
        if (after)
                r = mpg_exec(m, "orphan chunks", &res, NULL,
                             "SELECT hash, size FROM chunks c WHERE c.hash > $1 AND NOT EXISTS"
                             " (SELECT 1 FROM user_chunks u WHERE u.hash = c.hash)"
                             " ORDER BY c.hash LIMIT $2",
                             "hi", after, (int64_t)max);
        else
                r = mpg_exec(m, "orphan chunks", &res, NULL,
                             "SELECT hash, size FROM chunks c WHERE NOT EXISTS"
                             " (SELECT 1 FROM user_chunks u WHERE u.hash = c.hash)"
                             " ORDER BY c.hash LIMIT $1",
                             "i", (int64_t)max);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; i < rows && *n < max; i++) {
                if (!mpg_hash(res, i, 0, &out[*n].hash))
                        continue;
                out[*n].size = (uint32_t)mpg_int(res, i, 1);
                (*n)++;
        }
out:
        PQclear(res);
        return r;
}

int mpg_chunk_forget(struct meta *m, const struct hash *h)
{
        int64_t n = 0;
        int r;

        r = mpg_exec(m, "chunk forget", NULL, &n,
                     "DELETE FROM chunks WHERE hash = $1 AND NOT EXISTS"
                     " (SELECT 1 FROM user_chunks WHERE hash = $1)",
                     "h", h);
        if (r < 0)
                return r;
        return n > 0;
}
