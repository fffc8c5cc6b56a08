/* index: the device's local record of what it last synced, in SQLite.
 *
 * Three tables:
 *   entries  one row per path: kind, stat (size, mtime, ctime, inode, mode),
 *            content hash or link target, the server seq it corresponds to,
 *            and when the stat was recorded (for the racy-file check);
 *   chunks   where each chunk of each indexed file sits (path, offset,
 *            size), so that downloads can copy chunks the device already
 *            has instead of fetching them;
 *   state    small integers: the last applied seq, the last sync time;
 *   held     the files the rules hold back (rules.h), per direction, with
 *            why: what `ferry held` lists;
 *   overrides the paths `ferry push` / `ferry pull` (or an answer to ask)
 *            exempted from the rules.
 *
 * The schema only grows: every table is created IF NOT EXISTS, so opening
 * an index.db written by an older ferry adds the new tables to it, and
 * PRAGMA user_version records the version; a file from a newer ferry (a
 * higher version) is refused rather than half understood.
 *
 * The database runs in WAL mode with synchronous=NORMAL: a power cut can lose
 * the last committed transactions, but never corrupts the database, and
 * losing them is safe because the index is re-derivable: a lost entry makes
 * the next scan hash the file again and the server's compare-and-set (or its
 * "same content is a no-op" rule) sorts it out; a lost last_seq makes the
 * next pull re-apply changes that are already on disk, which are detected as
 * identical. Statements are prepared once and cached in struct index, since
 * a scan of a large folder does tens of thousands of lookups.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "index.h"

enum stmt_id {
        ST_GET,
        ST_PUT,
        ST_DEL_ENTRY,
        ST_DEL_CHUNKS,
        ST_ADD_CHUNK,
        ST_COUNT,
        ST_MANIFEST,
        ST_FIND_CHUNK,
        ST_STATE_GET,
        ST_STATE_SET,
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_HELD_PUT,
        ST_HELD_DEL,
        ST_HELD_COUNT,
        ST_HELD_COUNT_DIR,
        ST_OVR_ADD,
        ST_OVR_DEL,
        ST_OVR_HAS,
        ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_GET] = "SELECT path, kind, size, mtime_ns, ctime_ns, ino, mode, hash, target, seq, "
               "recorded_ns FROM entries WHERE path = ?1",
    [ST_PUT] = "INSERT OR REPLACE INTO entries (path, kind, size, mtime_ns, ctime_ns, ino, "
               "mode, hash, target, seq, recorded_ns) VALUES "
               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_DEL_ENTRY] = "DELETE FROM entries WHERE path = ?1",
    [ST_DEL_CHUNKS] = "DELETE FROM chunks WHERE path = ?1",
    [ST_ADD_CHUNK] = "INSERT INTO chunks (hash, path, offset, size) VALUES (?1, ?2, ?3, ?4)",
    [ST_COUNT] = "SELECT count(*) FROM entries",
    [ST_MANIFEST] = "SELECT hash, size FROM chunks WHERE path = ?1 ORDER BY offset",
    [ST_FIND_CHUNK] = "SELECT path, offset FROM chunks WHERE hash = ?1 LIMIT 1",
    [ST_STATE_GET] = "SELECT value FROM state WHERE key = ?1",
    [ST_STATE_SET] = "INSERT OR REPLACE INTO state (key, value) VALUES (?1, ?2)",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_HELD_PUT] = "INSERT OR REPLACE INTO held (dir, path, kind, size, mtime_ns, seq, reason) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_HELD_DEL] = "DELETE FROM held WHERE dir = ?1 AND path = ?2",
    [ST_HELD_COUNT] = "SELECT count(*) FROM held",
    [ST_HELD_COUNT_DIR] = "SELECT count(*) FROM held WHERE dir = ?1",
    [ST_OVR_ADD] = "INSERT OR IGNORE INTO overrides (path) VALUES (?1)",
    [ST_OVR_DEL] = "DELETE FROM overrides WHERE path = ?1",
    [ST_OVR_HAS] = "SELECT 1 FROM overrides WHERE path = ?1",
};

/* PRAGMA user_version of the schema below. 1: entries, chunks, state
 * (never written as such: files without a version are 0 and read as 1);
 * 2: held and overrides. */
#define INDEX_SCHEMA_VERSION 2
#define INDEX_STR_(x) #x
#define INDEX_STR(x) INDEX_STR_(x)

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS entries ("
    " path TEXT PRIMARY KEY NOT NULL, kind INTEGER NOT NULL, size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL,"
    " mode INTEGER NOT NULL, hash BLOB, target TEXT, seq INTEGER NOT NULL,"
    " recorded_ns INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chunks ("
    " hash BLOB NOT NULL, path TEXT NOT NULL, offset INTEGER NOT NULL,"
    " size INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS chunks_hash ON chunks (hash);"
    "CREATE INDEX IF NOT EXISTS chunks_path ON chunks (path);"
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY NOT NULL, value INTEGER);"
    "CREATE TABLE IF NOT EXISTS held ("
    " dir INTEGER NOT NULL, path TEXT NOT NULL, kind INTEGER NOT NULL,"
    " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " reason TEXT NOT NULL, PRIMARY KEY (dir, path));"
    "CREATE TABLE IF NOT EXISTS overrides (path TEXT PRIMARY KEY NOT NULL);"
    "PRAGMA user_version = " INDEX_STR(INDEX_SCHEMA_VERSION) ";";

struct index {
        sqlite3 *db;
        sqlite3_stmt *st[ST__COUNT];
        int depth; /* index_begin nesting */
};

static int db_error(struct index *idx, const char *what)
{
        return err_set(-EIO, "local index: %s: %s", what, sqlite3_errmsg(idx->db));
}

/* The cached statement, reset and with its bindings cleared. */
static sqlite3_stmt *stmt(struct index *idx, enum stmt_id id)
{
        sqlite3_stmt *s = idx->st[id];

        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
}

/* Runs a statement that returns no rows. */
static int exec_done(struct index *idx, sqlite3_stmt *s, const char *what)
{
        int rc = sqlite3_step(s);
        int r = 0;

        if (rc != SQLITE_DONE)
                r = db_error(idx, what);
        sqlite3_reset(s);
        return r;
}

/* PRAGMA user_version of the open database. */
static int schema_version(struct index *idx, int *version)
{
        sqlite3_stmt *s = NULL;
        int r = 0;

        if (sqlite3_prepare_v2(idx->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
            sqlite3_step(s) != SQLITE_ROW)
                r = db_error(idx, "schema version");
        else
                *version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        return r;
}

int index_open(const char *db_path, struct index **out)
{
        struct index *idx = calloc(1, sizeof(*idx));
        char *msg = NULL;
        int r = 0, i, version = 0;

        if (idx == NULL)
                return -ENOMEM;
        if (sqlite3_open_v2(db_path, &idx->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK) {
                r = err_set(-EIO, "cannot open the local index %s: %s", db_path,
                            idx->db ? sqlite3_errmsg(idx->db) : "out of memory");
                goto out;
        }
        /* another ferry process (sync, status, the daemon) may hold the
         * write lock for a moment: wait rather than fail */
        sqlite3_busy_timeout(idx->db, 10000);
        if (sqlite3_exec(idx->db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         "PRAGMA foreign_keys=OFF;",
                         NULL, NULL, &msg) != SQLITE_OK) {
                r = err_set(-EIO, "cannot set up the local index %s: %s", db_path,
                            msg ? msg : sqlite3_errmsg(idx->db));
                goto out;
        }
        r = schema_version(idx, &version);
        if (r < 0)
                goto out;
        if (version > INDEX_SCHEMA_VERSION) {
                r = err_set(-EINVAL,
                            "the local index %s was written by a newer ferry (schema %d, this "
                            "one knows up to %d)",
                            db_path, version, INDEX_SCHEMA_VERSION);
                goto out;
        }
        if (sqlite3_exec(idx->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
                r = err_set(-EIO, "cannot set up the local index %s: %s", db_path,
                            msg ? msg : sqlite3_errmsg(idx->db));
                goto out;
        }
        for (i = 0; i < ST__COUNT; i++) {
                if (sqlite3_prepare_v3(idx->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                       &idx->st[i], NULL) != SQLITE_OK) {
                        r = db_error(idx, "prepare");
                        goto out;
                }
        }
        *out = idx;
        idx = NULL;
out:
        sqlite3_free(msg);
        index_close(idx);
        return r;
}

void index_close(struct index *idx)
{
        int i;

        if (idx == NULL)
                return;
        for (i = 0; i < ST__COUNT; i++)
                sqlite3_finalize(idx->st[i]);
        if (idx->db && !sqlite3_get_autocommit(idx->db))
                sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(idx->db);
        free(idx);
}

int index_begin(struct index *idx)
{
        int r;

        if (idx->depth > 0) {
                idx->depth++;
                return 0;
        }
        r = exec_done(idx, stmt(idx, ST_BEGIN), "begin");
        if (r == 0)
                idx->depth = 1;
        return r;
}

int index_commit(struct index *idx)
{
        int r;

        if (idx->depth == 0)
                return err_set(-EINVAL, "local index: commit without a transaction");
        if (idx->depth > 1) {
                idx->depth--;
                return 0;
        }
        r = exec_done(idx, stmt(idx, ST_COMMIT), "commit");
        if (r == 0)
                idx->depth = 0;
        return r;
}

int index_rollback(struct index *idx)
{
        int r;

        if (idx->depth == 0)
                return 0;
        /* whatever depth asked, the whole transaction is gone */
        idx->depth = 0;
        r = exec_done(idx, stmt(idx, ST_ROLLBACK), "rollback");
        return r;
}

/* A statement-level transaction for the multi-statement writes, so that an
 * entry never exists without its chunk rows (or the other way round). */
static int write_begin(struct index *idx, int *own)
{
        *own = idx->depth == 0;
        return *own ? index_begin(idx) : 0;
}

static int write_end(struct index *idx, int own, int r)
{
        if (!own)
                return r;
        if (r < 0) {
                index_rollback(idx);
                return r;
        }
        return index_commit(idx);
}

static char *column_strdup(sqlite3_stmt *s, int col)
{
        const unsigned char *t = sqlite3_column_text(s, col);

        return t ? strdup((const char *)t) : NULL;
}

/* Fills e from the current row of an entries SELECT (columns in ST_GET
 * order). Strings are malloc'd. */
static int row_to_entry(sqlite3_stmt *s, struct index_entry *e)
{
        const void *h;

        memset(e, 0, sizeof(*e));
        e->path = column_strdup(s, 0);
        if (e->path == NULL)
                return -ENOMEM;
        e->kind = sqlite3_column_int(s, 1);
        e->size = (uint64_t)sqlite3_column_int64(s, 2);
        e->mtime_ns = sqlite3_column_int64(s, 3);
        e->ctime_ns = sqlite3_column_int64(s, 4);
        e->ino = (uint64_t)sqlite3_column_int64(s, 5);
        e->mode = (uint32_t)sqlite3_column_int64(s, 6);
        h = sqlite3_column_blob(s, 7);
        if (h && sqlite3_column_bytes(s, 7) == HASH_LEN)
                memcpy(e->hash.b, h, HASH_LEN);
        if (sqlite3_column_type(s, 8) != SQLITE_NULL) {
                e->target = column_strdup(s, 8);
                if (e->target == NULL) {
                        index_entry_free(e);
                        return -ENOMEM;
                }
        }
        e->seq = sqlite3_column_int64(s, 9);
        e->recorded_ns = sqlite3_column_int64(s, 10);
        return 0;
}

int index_get(struct index *idx, const char *path, struct index_entry *out)
{
        sqlite3_stmt *s = stmt(idx, ST_GET);
        int rc, r;

        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                r = row_to_entry(s, out);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = db_error(idx, "get");
        sqlite3_reset(s);
        return r;
}

int index_put(struct index *idx, const struct index_entry *e, const struct manifest *m)
{
        sqlite3_stmt *s;
        uint64_t offset = 0;
        size_t i;
        int own, r;

        r = write_begin(idx, &own);
        if (r < 0)
                return r;
        s = stmt(idx, ST_PUT);
        sqlite3_bind_text(s, 1, e->path, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, e->kind);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)e->size);
        sqlite3_bind_int64(s, 4, e->mtime_ns);
        sqlite3_bind_int64(s, 5, e->ctime_ns);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)e->ino);
        sqlite3_bind_int64(s, 7, e->mode);
        if (e->kind == KIND_FILE)
                sqlite3_bind_blob(s, 8, e->hash.b, HASH_LEN, SQLITE_STATIC);
        if (e->target)
                sqlite3_bind_text(s, 9, e->target, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 10, e->seq);
        sqlite3_bind_int64(s, 11, e->recorded_ns);
        r = exec_done(idx, s, "put");
        if (r < 0)
                goto out;

        s = stmt(idx, ST_DEL_CHUNKS);
        sqlite3_bind_text(s, 1, e->path, -1, SQLITE_STATIC);
        r = exec_done(idx, s, "put (chunks)");
        if (r < 0 || m == NULL || e->kind != KIND_FILE)
                goto out;

        for (i = 0; i < m->n; i++) {
                s = stmt(idx, ST_ADD_CHUNK);
                sqlite3_bind_blob(s, 1, m->chunks[i].hash.b, HASH_LEN, SQLITE_STATIC);
                sqlite3_bind_text(s, 2, e->path, -1, SQLITE_STATIC);
                sqlite3_bind_int64(s, 3, (sqlite3_int64)offset);
                sqlite3_bind_int64(s, 4, m->chunks[i].size);
                r = exec_done(idx, s, "put (chunk)");
                if (r < 0)
                        goto out;
                offset += m->chunks[i].size;
        }
out:
        return write_end(idx, own, r);
}

int index_delete(struct index *idx, const char *path)
{
        sqlite3_stmt *s;
        int own, r;

        r = write_begin(idx, &own);
        if (r < 0)
                return r;
        s = stmt(idx, ST_DEL_ENTRY);
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        r = exec_done(idx, s, "delete");
        if (r == 0) {
                s = stmt(idx, ST_DEL_CHUNKS);
                sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
                r = exec_done(idx, s, "delete (chunks)");
        }
        return write_end(idx, own, r);
}

/* Steps a private entries SELECT (so that cb may use the index, even
 * foreach, without resetting our cursor), calling cb for each row. */
static int foreach_stmt(struct index *idx, sqlite3_stmt *s,
                        int (*cb)(const struct index_entry *e, void *ud), void *ud)
{
        struct index_entry e;
        int rc, r = 0;

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = row_to_entry(s, &e);
                if (r < 0)
                        return r;
                r = cb(&e, ud);
                index_entry_free(&e);
                if (r < 0)
                        return r;
        }
        if (rc != SQLITE_DONE)
                r = db_error(idx, "foreach");
        return r;
}

int index_foreach(struct index *idx, int (*cb)(const struct index_entry *e, void *ud), void *ud)
{
        sqlite3_stmt *s = NULL;
        int r;

        if (sqlite3_prepare_v2(idx->db,
                               "SELECT path, kind, size, mtime_ns, ctime_ns, ino, mode, hash, "
                               "target, seq, recorded_ns FROM entries ORDER BY path",
                               -1, &s, NULL) != SQLITE_OK)
                return db_error(idx, "foreach");
        r = foreach_stmt(idx, s, cb, ud);
        sqlite3_finalize(s);
        return r;
}

int index_foreach_under(struct index *idx, const char *prefix,
                        int (*cb)(const struct index_entry *e, void *ud), void *ud)
{
        sqlite3_stmt *s = NULL;
        size_t n = strlen(prefix);
        char *lo = malloc(n + 2), *hi = malloc(n + 2);
        int r;

        if (!lo || !hi) {
                r = -ENOMEM;
                goto out;
        }
        /* the descendants of "a/b" are the paths in ["a/b/", "a/b0"): '0'
         * follows '/' in byte order, so the primary key's b-tree answers it
         * as one range */
        memcpy(lo, prefix, n);
        memcpy(hi, prefix, n);
        lo[n] = '/';
        hi[n] = '0';
        lo[n + 1] = hi[n + 1] = '\0';
        if (sqlite3_prepare_v2(idx->db,
                               "SELECT path, kind, size, mtime_ns, ctime_ns, ino, mode, hash, "
                               "target, seq, recorded_ns FROM entries WHERE path = ?1 UNION ALL "
                               "SELECT path, kind, size, mtime_ns, ctime_ns, ino, mode, hash, "
                               "target, seq, recorded_ns FROM entries WHERE path >= ?2 AND "
                               "path < ?3",
                               -1, &s, NULL) != SQLITE_OK) {
                r = db_error(idx, "foreach under");
                goto out;
        }
        sqlite3_bind_text(s, 1, prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, hi, -1, SQLITE_STATIC);
        r = foreach_stmt(idx, s, cb, ud);
out:
        sqlite3_finalize(s);
        free(lo);
        free(hi);
        return r;
}

int index_count(struct index *idx, int64_t *n)
{
        sqlite3_stmt *s = stmt(idx, ST_COUNT);
        int r = 0;

        if (sqlite3_step(s) == SQLITE_ROW)
                *n = sqlite3_column_int64(s, 0);
        else
                r = db_error(idx, "count");
        sqlite3_reset(s);
        return r;
}

int index_get_manifest(struct index *idx, const char *path, struct manifest *m)
{
        struct index_entry e;
        sqlite3_stmt *s;
        struct hash h;
        int rc, r = 0;

        s = stmt(idx, ST_MANIFEST);
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (sqlite3_column_bytes(s, 0) != HASH_LEN) {
                        r = err_set(-EIO, "local index: bad chunk hash for %s", path);
                        goto out;
                }
                memcpy(h.b, sqlite3_column_blob(s, 0), HASH_LEN);
                r = manifest_add(m, &h, (uint32_t)sqlite3_column_int64(s, 1));
                if (r < 0)
                        goto out;
        }
        if (rc != SQLITE_DONE) {
                r = db_error(idx, "manifest");
                goto out;
        }
        if (m->n == 0) {
                r = -ENOENT;
                goto out;
        }
        sqlite3_reset(s);
        if (index_get(idx, path, &e) == 0) {
                m->file_hash = e.hash;
                index_entry_free(&e);
        }
out:
        sqlite3_reset(s);
        return r;
}

int index_find_chunk(struct index *idx, const struct hash *h, char **path, uint64_t *offset)
{
        sqlite3_stmt *s = stmt(idx, ST_FIND_CHUNK);
        int rc, r = 0;

        sqlite3_bind_blob(s, 1, h->b, HASH_LEN, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *path = column_strdup(s, 0);
                *offset = (uint64_t)sqlite3_column_int64(s, 1);
                if (*path == NULL)
                        r = -ENOMEM;
        } else if (rc == SQLITE_DONE) {
                r = -ENOENT;
        } else {
                r = db_error(idx, "find chunk");
        }
        sqlite3_reset(s);
        return r;
}

int index_state_get(struct index *idx, const char *key, int64_t *value)
{
        sqlite3_stmt *s = stmt(idx, ST_STATE_GET);
        int rc, r = 0;

        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *value = sqlite3_column_int64(s, 0);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = db_error(idx, "state get");
        sqlite3_reset(s);
        return r;
}

int index_state_set(struct index *idx, const char *key, int64_t value)
{
        sqlite3_stmt *s = stmt(idx, ST_STATE_SET);

        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, value);
        return exec_done(idx, s, "state set");
}

void index_entry_free(struct index_entry *e)
{
        if (e == NULL)
                return;
        free(e->path);
        free(e->target);
        e->path = NULL;
        e->target = NULL;
}

int index_held_put(struct index *idx, const struct index_held *h)
{
        sqlite3_stmt *s = stmt(idx, ST_HELD_PUT);

        sqlite3_bind_int(s, 1, h->dir);
        sqlite3_bind_text(s, 2, h->path, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, h->kind);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)h->size);
        sqlite3_bind_int64(s, 5, h->mtime_ns);
        sqlite3_bind_int64(s, 6, h->seq);
        sqlite3_bind_text(s, 7, h->reason ? h->reason : "", -1, SQLITE_STATIC);
        return exec_done(idx, s, "held put");
}

int index_held_remove(struct index *idx, int dir, const char *path)
{
        sqlite3_stmt *s = stmt(idx, ST_HELD_DEL);

        sqlite3_bind_int(s, 1, dir);
        sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
        return exec_done(idx, s, "held remove");
}

int index_held_foreach(struct index *idx, int dir, const char *prefix,
                       int (*cb)(const struct index_held *h, void *ud), void *ud)
{
        sqlite3_stmt *s = NULL;
        struct index_held h;
        size_t n = prefix ? strlen(prefix) : 0;
        char *lo = malloc(n + 2), *hi = malloc(n + 2);
        int rc, r = 0;

        if (!lo || !hi) {
                r = -ENOMEM;
                goto out;
        }
        /* the same one-range trick as index_foreach_under; an empty or
         * NULL prefix is the whole space. A private statement, so that cb
         * may write the held table (push removes the rows it moves). */
        memcpy(lo, prefix ? prefix : "", n);
        memcpy(hi, prefix ? prefix : "", n);
        lo[n] = '/';
        hi[n] = '0';
        lo[n + 1] = hi[n + 1] = '\0';
        if (sqlite3_prepare_v2(idx->db,
                               "SELECT path, dir, kind, size, mtime_ns, seq, reason FROM held "
                               "WHERE (?1 < 0 OR dir = ?1) AND (?2 = '' OR path = ?2 OR "
                               "(path >= ?3 AND path < ?4)) ORDER BY path, dir",
                               -1, &s, NULL) != SQLITE_OK) {
                r = db_error(idx, "held foreach");
                goto out;
        }
        sqlite3_bind_int(s, 1, dir);
        sqlite3_bind_text(s, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, hi, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                h.path = (char *)sqlite3_column_text(s, 0);
                h.dir = sqlite3_column_int(s, 1);
                h.kind = sqlite3_column_int(s, 2);
                h.size = (uint64_t)sqlite3_column_int64(s, 3);
                h.mtime_ns = sqlite3_column_int64(s, 4);
                h.seq = sqlite3_column_int64(s, 5);
                h.reason = (char *)sqlite3_column_text(s, 6);
                if (h.path == NULL || h.reason == NULL) {
                        r = -ENOMEM;
                        goto out;
                }
                r = cb(&h, ud);
                if (r < 0)
                        goto out;
        }
        if (rc != SQLITE_DONE)
                r = db_error(idx, "held foreach");
out:
        sqlite3_finalize(s);
        free(lo);
        free(hi);
        return r;
}

int index_held_count(struct index *idx, int dir, int64_t *n)
{
        sqlite3_stmt *s = stmt(idx, dir < 0 ? ST_HELD_COUNT : ST_HELD_COUNT_DIR);
        int r = 0;

        if (dir >= 0)
                sqlite3_bind_int(s, 1, dir);
        if (sqlite3_step(s) == SQLITE_ROW)
                *n = sqlite3_column_int64(s, 0);
        else
                r = db_error(idx, "held count");
        sqlite3_reset(s);
        return r;
}

int index_override_add(struct index *idx, const char *path)
{
        sqlite3_stmt *s = stmt(idx, ST_OVR_ADD);

        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        return exec_done(idx, s, "override add");
}

int index_override_remove(struct index *idx, const char *path)
{
        sqlite3_stmt *s = stmt(idx, ST_OVR_DEL);

        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        return exec_done(idx, s, "override remove");
}

int index_override_has(struct index *idx, const char *path)
{
        sqlite3_stmt *s = stmt(idx, ST_OVR_HAS);
        int rc, r;

        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                r = 1;
        else if (rc == SQLITE_DONE)
                r = 0;
        else
                r = db_error(idx, "override has");
        sqlite3_reset(s);
        return r;
}
