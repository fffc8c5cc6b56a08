/* meta_sqlite: the embedded metadata store of ferryd, one SQLite database
 * (DATA/meta.db) in WAL mode, implementing struct meta_ops (meta.h).
 *
 * Concurrency: one connection, guarded by one recursive mutex. Every
 * operation takes the mutex; begin() takes it and keeps it until commit() or
 * rollback(), so a transaction runs alone and the operations inside it (on
 * the same thread) re-enter the mutex. This serialises metadata work across
 * ferryd's worker threads, which is simple and plenty for one machine; a
 * connection pool (or PostgreSQL) is the way out when it is not. Another
 * process (`ferryd user add` while the server runs) is handled by SQLite's
 * own locking and busy_timeout.
 *
 * The tables are those of schema.c's steps: setup_schema() applies, at
 * open, the ones above the version the database records.
 *
 * Prepared statements are cached per connection. Listing callbacks run with
 * the mutex held and must not call back into the store.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "log.h"
#include "meta.h"
#include "meta_sqlite.h"
#include "schema.h"

#define ENTRY_COLS MSQ_ENTRY_COLS
/* The time in SQL, for rows written without a caller-given time. */
#define SQL_NOW "CAST(strftime('%s', 'now') AS INTEGER)"
#define DEVICE_COLS "id, user_id, name, platform, address, created, last_seen"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_USER_ADD] = "INSERT INTO users (name, email, pwhash, created) VALUES (?, ?, ?, ?)",
    [ST_SPACE_ADD] = "INSERT INTO spaces (user_id, seq) VALUES (?, 0)",
    [ST_USER_GET] = "SELECT id, name, email, pwhash, created FROM users WHERE name = ?",
    [ST_DEVICE_ADD] = "INSERT INTO devices (" DEVICE_COLS ", token_hash)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_DEVICE_BY_TOKEN] = "SELECT " DEVICE_COLS " FROM devices WHERE token_hash = ?",
    [ST_DEVICE_TOUCH] = "UPDATE devices SET last_seen = ?, address = ? WHERE id = ?",
    [ST_DEVICE_LIST] = "SELECT " DEVICE_COLS " FROM devices WHERE user_id = ?"
                       " ORDER BY created, rowid",
    [ST_CHUNK_ADD] = "INSERT OR IGNORE INTO chunks (hash, size) VALUES (?, ?)",
    [ST_USER_CHUNK_ADD] = "INSERT INTO user_chunks (user_id, hash, touched) VALUES (?, ?, " SQL_NOW
                          ") ON CONFLICT (user_id, hash) DO UPDATE SET touched = excluded.touched",
    [ST_CHUNK_HELD] = "SELECT c.size FROM user_chunks u JOIN chunks c ON c.hash = u.hash"
                      " WHERE u.user_id = ? AND u.hash = ?",
    [ST_CHUNK_TOUCH] = "UPDATE user_chunks SET touched = ?3 WHERE user_id = ?1 AND hash = ?2"
                       " AND touched < ?3",
    [ST_ENTRY_GET] = "SELECT " ENTRY_COLS " FROM entries WHERE user_id = ? AND path = ?",
    [ST_ENTRY_PUT] = "INSERT INTO entries (user_id, " ENTRY_COLS ")"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                     " ON CONFLICT (user_id, path) DO UPDATE SET seq = excluded.seq,"
                     " deleted = excluded.deleted, kind = excluded.kind,"
                     " size = excluded.size, mtime_ns = excluded.mtime_ns,"
                     " mode = excluded.mode, hash = excluded.hash,"
                     " target = excluded.target, device = excluded.device,"
                     " chunks = excluded.chunks, time = excluded.time",
    [ST_SEQ_NEXT] = "UPDATE spaces SET seq = seq + 1 WHERE user_id = ?",
    [ST_SEQ_GET] = "SELECT seq FROM spaces WHERE user_id = ?",
    [ST_CHANGES] = "SELECT " ENTRY_COLS " FROM entries WHERE user_id = ? AND seq > ?"
                   " ORDER BY seq LIMIT ?",
    [ST_LIST_ALL] = "SELECT " ENTRY_COLS " FROM entries WHERE user_id = ?"
                    " AND (deleted = 0 OR ?) ORDER BY path",
    /* '/' + 1 == '0': the range holds exactly the paths under "P/". */
    [ST_LIST_PREFIX] = "SELECT " ENTRY_COLS " FROM entries WHERE user_id = ?"
                       " AND (deleted = 0 OR ?) AND (path = ?3 OR"
                       " (path > ?3 || '/' AND path < ?3 || '0')) ORDER BY path",
};

struct meta_sqlite *msq_of(struct meta *m)
{
        return (struct meta_sqlite *)m;
}

int msq_db_err(struct meta_sqlite *ms, const char *what)
{
        return err_set(-EIO, "metadata store: %s: %s", what, sqlite3_errmsg(ms->db));
}

/* The cached statement id, reset and with bindings cleared; NULL on error. */
sqlite3_stmt *msq_prep(struct meta_sqlite *ms, enum stmt_id id)
{
        sqlite3_stmt *s = ms->st[id];

        if (!s) {
                if (sqlite3_prepare_v3(ms->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s,
                                       NULL) != SQLITE_OK) {
                        msq_db_err(ms, "prepare");
                        return NULL;
                }
                ms->st[id] = s;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
}

sqlite3_stmt *msq_prep_sql(struct meta_sqlite *ms, unsigned slot, const char *sql)
{
        sqlite3_stmt *s;

        if (slot >= MSQ_EXTRA_SLOTS) {
                err_set(-EINVAL, "metadata store: statement slot %u out of range", slot);
                return NULL;
        }
        s = ms->st_extra[slot];
        if (!s) {
                if (sqlite3_prepare_v3(ms->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
                    SQLITE_OK) {
                        msq_db_err(ms, "prepare");
                        return NULL;
                }
                ms->st_extra[slot] = s;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
}

int msq_exec(struct meta_sqlite *ms, const char *sql)
{
        char *msg = NULL;

        if (sqlite3_exec(ms->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                int r = err_set(-EIO, "metadata store: %s: %s", sql, msg ? msg : "?");
                sqlite3_free(msg);
                return r;
        }
        return 0;
}

/* Runs a statement that returns no rows (or ignores them). */
int msq_step_done(struct meta_sqlite *ms, sqlite3_stmt *s, const char *what)
{
        int rc = sqlite3_step(s);

        sqlite3_reset(s);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
                return 0;
        if (rc == SQLITE_CONSTRAINT)
                return err_set(-EEXIST, "%s: already exists", what);
        return msq_db_err(ms, what);
}

void msq_lock(struct meta_sqlite *ms)
{
        pthread_mutex_lock(&ms->lock);
}

void msq_unlock(struct meta_sqlite *ms)
{
        pthread_mutex_unlock(&ms->lock);
}

void msq_copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
        const unsigned char *t = sqlite3_column_text(s, col);

        snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int ms_begin(struct meta *m)
{
        struct meta_sqlite *ms = msq_of(m);
        int r;

        msq_lock(ms);
        r = msq_exec(ms, "BEGIN IMMEDIATE");
        if (r < 0)
                msq_unlock(ms);
        return r;
}

static int ms_commit(struct meta *m)
{
        struct meta_sqlite *ms = msq_of(m);
        int r = msq_exec(ms, "COMMIT");

        if (r < 0)
                msq_exec(ms, "ROLLBACK");
        msq_unlock(ms);
        return r;
}

static int ms_rollback(struct meta *m)
{
        struct meta_sqlite *ms = msq_of(m);
        int r = msq_exec(ms, "ROLLBACK");

        msq_unlock(ms);
        return r;
}

int msq_read_entry(sqlite3_stmt *s, int col, struct meta_entry *e)
{
        const void *blob;
        int n;

        memset(e, 0, sizeof(*e));
        e->path = strdup((const char *)sqlite3_column_text(s, col));
        if (!e->path)
                goto nomem;
        e->seq = sqlite3_column_int64(s, col + 1);
        e->deleted = sqlite3_column_int(s, col + 2) != 0;
        e->kind = sqlite3_column_int(s, col + 3);
        e->size = (uint64_t)sqlite3_column_int64(s, col + 4);
        e->mtime_ns = sqlite3_column_int64(s, col + 5);
        e->mode = (uint32_t)sqlite3_column_int64(s, col + 6);
        blob = sqlite3_column_blob(s, col + 7);
        if (blob && sqlite3_column_bytes(s, col + 7) == HASH_LEN) {
                memcpy(e->hash.b, blob, HASH_LEN);
                e->has_hash = 1;
        }
        if (sqlite3_column_type(s, col + 8) != SQLITE_NULL) {
                e->target = strdup((const char *)sqlite3_column_text(s, col + 8));
                if (!e->target)
                        goto nomem;
        }
        msq_copy_text(e->device, sizeof(e->device), s, col + 9);
        blob = sqlite3_column_blob(s, col + 10);
        n = sqlite3_column_bytes(s, col + 10);
        if (blob && n > 0) {
                e->chunks = malloc((size_t)n);
                if (!e->chunks)
                        goto nomem;
                memcpy(e->chunks, blob, (size_t)n);
                e->chunks_len = (size_t)n;
        }
        e->time = sqlite3_column_int64(s, col + 11);
        return 0;
nomem:
        meta_entry_clear(e);
        return -ENOMEM;
}

static int ms_entry_get(struct meta *m, int64_t user, const char *path, struct meta_entry *out)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_ENTRY_GET)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                r = msq_read_entry(s, 0, out);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = msq_db_err(ms, "entry lookup");
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

void msq_bind_entry(sqlite3_stmt *s, int col, const struct meta_entry *e)
{
        sqlite3_bind_text(s, col, e->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, col + 1, e->seq);
        sqlite3_bind_int(s, col + 2, e->deleted ? 1 : 0);
        sqlite3_bind_int(s, col + 3, e->kind);
        sqlite3_bind_int64(s, col + 4, (int64_t)e->size);
        sqlite3_bind_int64(s, col + 5, e->mtime_ns);
        sqlite3_bind_int64(s, col + 6, e->mode);
        if (e->has_hash)
                sqlite3_bind_blob(s, col + 7, e->hash.b, HASH_LEN, SQLITE_STATIC);
        if (e->target)
                sqlite3_bind_text(s, col + 8, e->target, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, col + 9, e->device, -1, SQLITE_STATIC);
        if (e->chunks && e->chunks_len)
                sqlite3_bind_blob64(s, col + 10, e->chunks, e->chunks_len, SQLITE_STATIC);
        sqlite3_bind_int64(s, col + 11, e->time);
}

static int ms_entry_put(struct meta *m, int64_t user, const struct meta_entry *e)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_ENTRY_PUT)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        msq_bind_entry(s, 2, e);
        r = msq_step_done(ms, s, "entry");
out:
        msq_unlock(ms);
        return r;
}

/* The space's current number. */
static int seq_get(struct meta_sqlite *ms, int64_t user, int64_t *seq)
{
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_SEQ_GET)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *seq = sqlite3_column_int64(s, 0);
                r = 0;
        } else if (rc == SQLITE_DONE) {
                r = err_set(-ENOENT, "no space for user %lld", (long long)user);
        } else {
                r = msq_db_err(ms, "space sequence");
        }
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

/* An UPDATE and then a SELECT, under the lock and in the caller's
 * transaction, rather than UPDATE ... RETURNING, which SQLite runs through
 * a temporary table at three times the cost of the two: a commit of many
 * files takes a number for each. A user without a space changes no row,
 * and the SELECT then says -ENOENT. */
static int ms_seq_next(struct meta *m, int64_t user, int64_t *seq)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_SEQ_NEXT)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        r = msq_step_done(ms, s, "space sequence");
        if (r == 0)
                r = seq_get(ms, user, seq);
out:
        msq_unlock(ms);
        return r;
}

static int ms_seq_current(struct meta *m, int64_t user, int64_t *seq)
{
        return seq_get(msq_of(m), user, seq);
}

int msq_each_entry(struct meta_sqlite *ms, sqlite3_stmt *s, meta_entry_cb cb, void *userdata,
                   const char *what)
{
        struct meta_entry e;
        int r = 0, rc;

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = msq_read_entry(s, 0, &e);
                if (r < 0)
                        break;
                r = cb(&e, userdata);
                meta_entry_clear(&e);
                if (r != 0)
                        break;
        }
        if (r > 0)
                r = 0;
        else if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, what);
        sqlite3_reset(s);
        return r;
}

static int ms_entry_changes(struct meta *m, int64_t user, int64_t since, int64_t limit,
                            meta_entry_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_CHANGES)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_int64(s, 2, since);
        sqlite3_bind_int64(s, 3, limit);
        r = msq_each_entry(ms, s, cb, userdata, "entry listing");
out:
        msq_unlock(ms);
        return r;
}

static int ms_entry_list(struct meta *m, int64_t user, const char *prefix, int with_deleted,
                         meta_entry_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        if (!(s = msq_prep(ms, prefix ? ST_LIST_PREFIX : ST_LIST_ALL)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_int(s, 2, with_deleted ? 1 : 0);
        if (prefix)
                sqlite3_bind_text(s, 3, prefix, -1, SQLITE_STATIC);
        r = msq_each_entry(ms, s, cb, userdata, "entry listing");
out:
        msq_unlock(ms);
        return r;
}

static void ms_close(struct meta *m)
{
        struct meta_sqlite *ms = msq_of(m);
        int i;

        for (i = 0; i < ST_COUNT; i++)
                sqlite3_finalize(ms->st[i]);
        for (i = 0; i < MSQ_EXTRA_SLOTS; i++)
                sqlite3_finalize(ms->st_extra[i]);
        if (sqlite3_close(ms->db) != SQLITE_OK)
                log_warn("metadata store: close: %s", sqlite3_errmsg(ms->db));
        pthread_mutex_destroy(&ms->lock);
        free(ms);
}

/* One process serves a SQLite store (blob claim and SQLite's own locking
 * keep a second one out of harm's way), so every lock is granted. */
static int ms_cluster_lock(struct meta *m, int64_t key, int shared, int try_only)
{
        (void)m;
        (void)key;
        (void)shared;
        (void)try_only;
        return 1;
}

static void ms_cluster_unlock(struct meta *m, int64_t key, int shared)
{
        (void)m;
        (void)key;
        (void)shared;
}

static const struct meta_ops sqlite_ops = {
    .begin = ms_begin,
    .commit = ms_commit,
    .rollback = ms_rollback,
    .user_add = msq_user_add,
    .user_get = msq_user_get,
    .device_add = msq_device_add,
    .device_by_token = msq_device_by_token,
    .device_touch = msq_device_touch,
    .device_list = msq_device_list,
    .chunk_add = msq_chunk_add,
    .chunk_held = msq_chunk_held,
    .entry_get = ms_entry_get,
    .entry_put = ms_entry_put,
    .seq_next = ms_seq_next,
    .seq_current = ms_seq_current,
    .entry_changes = ms_entry_changes,
    .entry_list = ms_entry_list,
    /* history, trash, retention, GC */
    .version_add = msq_version_add,
    .version_get = msq_version_get,
    .version_last_live = msq_version_last_live,
    .version_list = msq_version_list,
    .trash_list = msq_trash_list,
    .snapshot_list = msq_snapshot_list,
    .chunk_touch = msq_chunk_touch,
    .user_ids = msq_user_ids,
    .version_prune = msq_version_prune,
    .chunk_refs_drop = msq_chunk_refs_drop,
    .chunk_orphans = msq_chunk_orphans,
    .chunk_forget = msq_chunk_forget,
    /* transfer records, download records, device policy and history */
    .xfer_version = msq_xfer_version,
    .xfer_version_bump = msq_xfer_version_bump,
    .xfer_batch_add = msq_xfer_batch_add,
    .xfer_records = msq_xfer_records,
    .xfer_record_put = msq_xfer_record_put,
    .xfer_records_complete = msq_xfer_records_complete,
    .xfer_record_delete = msq_xfer_record_delete,
    .xfer_records_fail = msq_xfer_records_fail,
    .xfer_batches = msq_xfer_batches,
    .xfer_prune = msq_xfer_prune,
    .xfer_active_devices = msq_xfer_active_devices,
    .dl_put = msq_dl_put,
    .dl_list = msq_dl_list,
    .dl_ready = msq_dl_ready,
    .dl_applied = msq_dl_applied,
    .dl_delete = msq_dl_delete,
    .device_find = msq_device_find,
    .device_set_policy = msq_device_set_policy,
    .device_set_applied = msq_device_set_applied,
    .device_remove = msq_device_remove,
    .device_open_records = msq_device_open_records,
    .device_event_add = msq_device_event_add,
    .device_events = msq_device_events,
    .device_event_files = msq_device_event_files,
    /* requests/registry: upload requests, LAN keys, devices and requests
     * versions, device info and names */
    .registry_version = msq_registry_version,
    .registry_version_bump = msq_registry_version_bump,
    .device_set_info = msq_device_set_info,
    .device_rename = msq_device_rename,
    .lan_key_get = msq_lan_key_get,
    .lan_key_rotate = msq_lan_key_rotate,
    .request_add = msq_request_add,
    .requests_list = msq_requests_list,
    .request_set = msq_request_set,
    .requests_expire = msq_requests_expire,
    .requests_fail_target = msq_requests_fail_target,
    .cluster_lock = ms_cluster_lock,
    .cluster_unlock = ms_cluster_unlock,
    .close = ms_close,
};

/* The version the database records; 0 for a new one (no row). */
static int schema_recorded(struct meta_sqlite *ms, int *version, int *has_row)
{
        sqlite3_stmt *s = NULL;
        int rc;

        *version = 0;
        *has_row = 0;
        if (sqlite3_prepare_v2(ms->db, "SELECT version FROM schema_version", -1, &s, NULL) !=
            SQLITE_OK)
                return msq_db_err(ms, "schema version");
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *version = sqlite3_column_int(s, 0);
                *has_row = 1;
        }
        sqlite3_finalize(s);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : msq_db_err(ms, "schema version");
}

/* Brings the schema up to date: every step of schema.h above the recorded
 * version, its SQLite text, in order, then the new version, all in one
 * transaction, so that two processes opening at once agree and a failed
 * step leaves the database as it was. A step whose data migration needs C
 * would get a call here after its SQL, to a function in the meta_sqlite
 * file of its concern (none does: the migrations from version 1 are SQL,
 * in schema.c). */
static int setup_schema(struct meta_sqlite *ms)
{
        const struct schema_step *step = NULL;
        char sql[96];
        int r, version, has_row;
        size_t n = 0, i;
        char *msg = NULL;

        r = msq_exec(ms, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = msq_exec(ms, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        if (r == 0)
                r = schema_recorded(ms, &version, &has_row);
        if (r == 0)
                r = schema_pending(version, &step, &n);
        for (i = 0; r == 0 && i < n; i++) {
                schema_log_step(&step[i]);
                if (sqlite3_exec(ms->db, step[i].sql[SCHEMA_SQLITE], NULL, NULL, &msg) != SQLITE_OK)
                        r = err_set(-EIO, "metadata store: schema step %d (%s): %s",
                                    step[i].version, step[i].what, msg ? msg : "?");
                sqlite3_free(msg);
                msg = NULL;
        }
        if (r == 0 && n > 0) {
                snprintf(sql, sizeof(sql),
                         has_row ? "UPDATE schema_version SET version = %d"
                                 : "INSERT INTO schema_version (version) VALUES (%d)",
                         step[n - 1].version);
                r = msq_exec(ms, sql);
        }
        if (r < 0)
                msq_exec(ms, "ROLLBACK");
        else
                r = msq_exec(ms, "COMMIT");
        return r;
}

int meta_sqlite_open(const char *path, struct meta **out)
{
        struct meta_sqlite *ms;
        pthread_mutexattr_t attr;
        int r;

        ms = calloc(1, sizeof(*ms));
        if (!ms)
                return -ENOMEM;
        ms->base.ops = &sqlite_ops;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&ms->lock, &attr);
        pthread_mutexattr_destroy(&attr);

        if (sqlite3_open_v2(path, &ms->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
                r = err_set(-EIO, "cannot open %s: %s", path,
                            ms->db ? sqlite3_errmsg(ms->db) : "out of memory");
                goto fail;
        }
        sqlite3_busy_timeout(ms->db, 10000);
        /* WAL: readers of other processes never block the writer. FULL: a
         * commit the server acknowledged survives a power cut, not only a
         * crash, since clients store the seq we return. */
        r = msq_exec(ms, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         " PRAGMA foreign_keys=ON;");
        if (r < 0)
                goto fail;
        r = setup_schema(ms);
        if (r < 0)
                goto fail;
        *out = &ms->base;
        return 0;
fail:
        ms_close(&ms->base);
        return r;
}

sqlite3_stmt *msq_vstmt(struct meta_sqlite *ms, unsigned slot, const char *sql, const char *fmt,
                        va_list ap)
{
        sqlite3_stmt *s = msq_prep_sql(ms, slot, sql);
        const struct hash *h;
        const char *t;
        int i;

        for (i = 1; s && *fmt; fmt++, i++) {
                if (*fmt == 'i') {
                        sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
                } else if (*fmt == 't') {
                        if ((t = va_arg(ap, const char *)))
                                sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
                } else if ((h = va_arg(ap, const struct hash *))) {
                        sqlite3_bind_blob(s, i, h->b, HASH_LEN, SQLITE_STATIC);
                }
        }
        return s;
}

sqlite3_stmt *msq_stmt(struct meta_sqlite *ms, unsigned slot, const char *sql, const char *fmt, ...)
{
        sqlite3_stmt *s;
        va_list ap;

        va_start(ap, fmt);
        s = msq_vstmt(ms, slot, sql, fmt, ap);
        va_end(ap);
        return s;
}

int msq_run(struct meta *m, unsigned slot, const char *sql, const char *what, int64_t *n,
            int64_t *rowid, const char *fmt, ...)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        va_list ap;
        int r = -EIO;

        msq_lock(ms);
        va_start(ap, fmt);
        s = msq_vstmt(ms, slot, sql, fmt, ap);
        va_end(ap);
        if (s)
                r = msq_step_done(ms, s, what);
        if (r == 0 && n)
                *n = sqlite3_changes(ms->db);
        if (r == 0 && rowid)
                *rowid = sqlite3_last_insert_rowid(ms->db);
        msq_unlock(ms);
        return r;
}

int msq_query_int(struct meta *m, unsigned slot, const char *sql, int64_t dflt, int64_t *v,
                  const char *fmt, ...)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        va_list ap;
        int r = -EIO, rc;

        msq_lock(ms);
        va_start(ap, fmt);
        s = msq_vstmt(ms, slot, sql, fmt, ap);
        va_end(ap);
        if (s) {
                *v = dflt;
                while ((rc = sqlite3_step(s)) == SQLITE_ROW)
                        *v = sqlite3_column_int64(s, 0);
                sqlite3_reset(s);
                r = rc == SQLITE_DONE ? 0 : msq_db_err(ms, sql);
        }
        msq_unlock(ms);
        return r;
}

const char *msq_text(sqlite3_stmt *s, int col)
{
        const unsigned char *t = sqlite3_column_text(s, col);

        return t ? (const char *)t : "";
}
