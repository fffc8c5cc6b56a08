/* meta_sqlite_account: the account rows of the SQLite metadata backend —
 * users (with their space), devices (active ones: a removed device is
 * neither found by its token nor listed) and their token hashes, and which
 * chunks each account holds (with when each was last touched, for the
 * GC's grace period). Locking as described in meta_sqlite.c. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "meta_sqlite.h"

int msq_user_add(struct meta *m, const char *name, const char *email, const char *pwhash,
                 int64_t now, int64_t *id)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;
        int64_t uid;

        msq_lock(ms);
        if (msq_exec(ms, "SAVEPOINT user_add") < 0)
                goto out_unlock;
        if (!(s = msq_prep(ms, ST_USER_ADD)))
                goto out;
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, pwhash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, now);
        r = msq_step_done(ms, s, "user");
        if (r == -EEXIST)
                r = err_set(-EEXIST, "user name '%s' is taken", name);
        if (r < 0)
                goto out;
        uid = sqlite3_last_insert_rowid(ms->db);
        r = -EIO;
        if (!(s = msq_prep(ms, ST_SPACE_ADD)))
                goto out;
        sqlite3_bind_int64(s, 1, uid);
        r = msq_step_done(ms, s, "space");
        if (r < 0)
                goto out;
        r = msq_exec(ms, "RELEASE user_add");
        if (r == 0 && id)
                *id = uid;
out:
        if (r < 0) {
                msq_exec(ms, "ROLLBACK TO user_add");
                msq_exec(ms, "RELEASE user_add");
        }
out_unlock:
        msq_unlock(ms);
        return r;
}

int msq_user_get(struct meta *m, const char *name, struct meta_user *out)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_USER_GET)))
                goto out;
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                memset(out, 0, sizeof(*out));
                out->id = sqlite3_column_int64(s, 0);
                msq_copy_text(out->name, sizeof(out->name), s, 1);
                msq_copy_text(out->email, sizeof(out->email), s, 2);
                msq_copy_text(out->pwhash, sizeof(out->pwhash), s, 3);
                out->created = sqlite3_column_int64(s, 4);
                r = 0;
        } else if (rc == SQLITE_DONE) {
                r = -ENOENT;
        } else {
                r = msq_db_err(ms, "user lookup");
        }
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

/* Fills d from the MSQ_DEVICE_COLS of the current row. */
void msq_read_device(sqlite3_stmt *s, struct meta_device *d)
{
        memset(d, 0, sizeof(*d));
        msq_copy_text(d->id, sizeof(d->id), s, 0);
        d->user_id = sqlite3_column_int64(s, 1);
        msq_copy_text(d->name, sizeof(d->name), s, 2);
        msq_copy_text(d->platform, sizeof(d->platform), s, 3);
        msq_copy_text(d->address, sizeof(d->address), s, 4);
        d->created = sqlite3_column_int64(s, 5);
        d->last_seen = sqlite3_column_int64(s, 6);
        d->download_incomplete = sqlite3_column_int(s, 7);
        d->applied_seq = sqlite3_column_int64(s, 8);
        msq_copy_text(d->lan_addr, sizeof(d->lan_addr), s, 9);
        d->lan_port = sqlite3_column_int(s, 10);
        d->lan_prefix = sqlite3_column_int(s, 11);
}

int msq_device_add(struct meta *m, const struct meta_device *d, const struct hash *token_hash)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_DEVICE_ADD)))
                goto out;
        sqlite3_bind_text(s, 1, d->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, d->user_id);
        sqlite3_bind_text(s, 3, d->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, d->platform, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, d->address, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, d->created);
        sqlite3_bind_int64(s, 7, d->last_seen);
        sqlite3_bind_blob(s, 8, token_hash->b, HASH_LEN, SQLITE_STATIC);
        r = msq_step_done(ms, s, "device");
out:
        msq_unlock(ms);
        return r;
}

int msq_device_by_token(struct meta *m, const struct hash *token_hash, struct meta_device *out)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        /* A removed device's token hash is random bytes anyway; the
         * condition says it again. */
        s = msq_prep_sql(ms, MSQ_SLOT_DEVICE_BY_TOKEN,
                         "SELECT " MSQ_DEVICE_COLS " FROM devices WHERE token_hash = ?"
                         " AND removed = 0");
        if (!s)
                goto out;
        sqlite3_bind_blob(s, 1, token_hash->b, HASH_LEN, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                msq_read_device(s, out);
                r = 0;
        } else if (rc == SQLITE_DONE) {
                r = -ENOENT;
        } else {
                r = msq_db_err(ms, "device lookup");
        }
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

int msq_device_touch(struct meta *m, const char *device_id, int64_t now, const char *address)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_DEVICE_TOUCH)))
                goto out;
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_text(s, 2, address, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, device_id, -1, SQLITE_STATIC);
        r = msq_step_done(ms, s, "device touch");
out:
        msq_unlock(ms);
        return r;
}

int msq_device_list(struct meta *m, int64_t user, meta_device_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_device d;
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        s = msq_prep_sql(ms, MSQ_SLOT_DEVICE_LIST,
                         "SELECT " MSQ_DEVICE_COLS " FROM devices WHERE user_id = ?"
                         " AND removed = 0 ORDER BY created, rowid");
        if (!s)
                goto out;
        sqlite3_bind_int64(s, 1, user);
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                msq_read_device(s, &d);
                r = cb(&d, userdata);
                if (r != 0)
                        break;
        }
        if (r > 0)
                r = 0;
        else if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, "device list");
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

int msq_chunk_add(struct meta *m, int64_t user, const struct hash *h, uint32_t size)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_CHUNK_ADD)))
                goto out;
        sqlite3_bind_blob(s, 1, h->b, HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, size);
        r = msq_step_done(ms, s, "chunk");
        if (r < 0)
                goto out;
        r = -EIO;
        if (!(s = msq_prep(ms, ST_USER_CHUNK_ADD)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_blob(s, 2, h->b, HASH_LEN, SQLITE_STATIC);
        r = msq_step_done(ms, s, "user chunk");
out:
        msq_unlock(ms);
        return r;
}

int msq_chunk_held(struct meta *m, int64_t user, const struct hash *h, uint32_t *size)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        if (!(s = msq_prep(ms, ST_CHUNK_HELD)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_blob(s, 2, h->b, HASH_LEN, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                if (size)
                        *size = (uint32_t)sqlite3_column_int64(s, 0);
                r = 1;
        } else if (rc == SQLITE_DONE) {
                r = 0;
        } else {
                r = msq_db_err(ms, "chunk lookup");
        }
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

int msq_chunk_touch(struct meta *m, int64_t user, const struct hash *h, int64_t now, uint32_t *size)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r, held;

        msq_lock(ms);
        held = r = msq_chunk_held(m, user, h, size);
        if (r <= 0)
                goto out;
        r = -EIO;
        if (!(s = msq_prep(ms, ST_CHUNK_TOUCH)))
                goto out;
        sqlite3_bind_int64(s, 1, user);
        sqlite3_bind_blob(s, 2, h->b, HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now);
        r = msq_step_done(ms, s, "chunk touch");
        if (r == 0)
                r = held;
out:
        msq_unlock(ms);
        return r;
}
