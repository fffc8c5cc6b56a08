/* meta_pg_account: the account rows of the PostgreSQL metadata backend, as
 * meta_sqlite_account.c keeps them — users (with their space), devices
 * (active ones: a removed device is neither found by its token nor listed)
 * and their token hashes, and which chunks each account holds (with when
 * each was last touched, for the GC's grace period). Statements that must
 * change two rows together are one statement (a data-modifying WITH), so
 * that they are atomic outside a transaction too. Connections as described
 * in meta_pg.c. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "meta_pg.h"

/* Now, in seconds since the epoch, for rows written without a caller-given
 * time. */
#define SQL_NOW "CAST(extract(epoch FROM clock_timestamp()) AS BIGINT)"

int mpg_user_add(struct meta *m, const char *name, const char *email, const char *pwhash,
                 int64_t now, int64_t *id)
{
        int64_t uid = 0;
        int r;

        r = mpg_query_int(
            m, "user", 0, &uid,
            "WITH u AS (INSERT INTO users (name, email, pwhash, created)"
            " VALUES ($1, $2, $3, $4) RETURNING id)"
            " INSERT INTO spaces (user_id, seq) SELECT id, 0 FROM u RETURNING user_id",
            "ttti", name, email, pwhash, now);
        if (r == -EEXIST)
                return err_set(-EEXIST, "user name '%s' is taken", name);
        if (r == 0 && id)
                *id = uid;
        return r;
}

int mpg_user_get(struct meta *m, const char *name, struct meta_user *out)
{
        PGresult *res;
        int64_t n;
        int r;

        r = mpg_exec(m, "user lookup", &res, &n,
                     "SELECT id, name, email, pwhash, created FROM users WHERE name = $1", "t",
                     name);
        if (r < 0)
                return r;
        if (n > 0) {
                memset(out, 0, sizeof(*out));
                out->id = mpg_int(res, 0, 0);
                mpg_copy_text(out->name, sizeof(out->name), res, 0, 1);
                mpg_copy_text(out->email, sizeof(out->email), res, 0, 2);
                mpg_copy_text(out->pwhash, sizeof(out->pwhash), res, 0, 3);
                out->created = mpg_int(res, 0, 4);
        } else {
                r = -ENOENT;
        }
        PQclear(res);
        return r;
}

void mpg_read_device(const PGresult *res, int row, int col, struct meta_device *d)
{
        memset(d, 0, sizeof(*d));
        mpg_copy_text(d->id, sizeof(d->id), res, row, col);
        d->user_id = mpg_int(res, row, col + 1);
        mpg_copy_text(d->name, sizeof(d->name), res, row, col + 2);
        mpg_copy_text(d->platform, sizeof(d->platform), res, row, col + 3);
        mpg_copy_text(d->address, sizeof(d->address), res, row, col + 4);
        d->created = mpg_int(res, row, col + 5);
        d->last_seen = mpg_int(res, row, col + 6);
        d->download_incomplete = (int)mpg_int(res, row, col + 7);
        d->applied_seq = mpg_int(res, row, col + 8);
        mpg_copy_text(d->lan_addr, sizeof(d->lan_addr), res, row, col + 9);
        d->lan_port = (int)mpg_int(res, row, col + 10);
        d->lan_prefix = (int)mpg_int(res, row, col + 11);
}

int mpg_device_add(struct meta *m, const struct meta_device *d, const struct hash *token_hash)
{
        return mpg_exec(m, "device", NULL, NULL,
                        "INSERT INTO devices (id, user_id, name, platform, address, created,"
                        " last_seen, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        "titttiih", d->id, d->user_id, d->name, d->platform, d->address, d->created,
                        d->last_seen, token_hash);
}

int mpg_device_by_token(struct meta *m, const struct hash *token_hash, struct meta_device *out)
{
        PGresult *res;
        int64_t n;
        int r;

        /* A removed device's token hash is random bytes anyway; the
         * condition says it again. */
        r = mpg_exec(m, "device lookup", &res, &n,
                     "SELECT " MPG_DEVICE_COLS " FROM devices WHERE token_hash = $1"
                     " AND removed = 0",
                     "h", token_hash);
        if (r < 0)
                return r;
        if (n > 0)
                mpg_read_device(res, 0, 0, out);
        else
                r = -ENOENT;
        PQclear(res);
        return r;
}

int mpg_device_touch(struct meta *m, const char *device_id, int64_t now, const char *address)
{
        return mpg_exec(m, "device touch", NULL, NULL,
                        "UPDATE devices SET last_seen = $1, address = $2 WHERE id = $3", "itt", now,
                        address, device_id);
}

int mpg_device_list(struct meta *m, int64_t user, meta_device_cb cb, void *userdata)
{
        struct meta_device d;
        PGresult *res;
        int64_t n, i;
        int r;

        /* ord: the insertion order among devices created in one second. */
        r = mpg_exec(m, "device list", &res, &n,
                     "SELECT " MPG_DEVICE_COLS " FROM devices WHERE user_id = $1"
                     " AND removed = 0 ORDER BY created, ord",
                     "i", user);
        if (r < 0)
                return r;
        for (i = 0; r == 0 && i < n; i++) {
                mpg_read_device(res, (int)i, 0, &d);
                r = cb(&d, userdata);
        }
        PQclear(res);
        return r > 0 ? 0 : r;
}

int mpg_chunk_add(struct meta *m, int64_t user, const struct hash *h, uint32_t size)
{
        return mpg_exec(m, "chunk", NULL, NULL,
                        "WITH c AS (INSERT INTO chunks (hash, size) VALUES ($2, $3)"
                        " ON CONFLICT (hash) DO NOTHING)"
                        " INSERT INTO user_chunks (user_id, hash, touched)"
                        " VALUES ($1, $2, " SQL_NOW ")"
                        " ON CONFLICT (user_id, hash) DO UPDATE SET touched = excluded.touched",
                        "ihi", user, h, (int64_t)size);
}

int mpg_chunk_held(struct meta *m, int64_t user, const struct hash *h, uint32_t *size)
{
        PGresult *res;
        int64_t n;
        int r;

        r = mpg_exec(m, "chunk lookup", &res, &n,
                     "SELECT c.size FROM user_chunks u JOIN chunks c ON c.hash = u.hash"
                     " WHERE u.user_id = $1 AND u.hash = $2",
                     "ih", user, h);
        if (r < 0)
                return r;
        r = n > 0;
        if (r && size)
                *size = (uint32_t)mpg_int(res, 0, 0);
        PQclear(res);
        return r;
}

int mpg_chunk_touch(struct meta *m, int64_t user, const struct hash *h, int64_t now, uint32_t *size)
{
        PGresult *res;
        int64_t n;
        int r;

        /* One round trip: the lookup of chunk_held and, when held, the
         * touch (the WITH runs whether or not its rows are read). */
        r = mpg_exec(m, "chunk touch", &res, &n,
                     "WITH t AS (UPDATE user_chunks SET touched = $3 WHERE user_id = $1"
                     " AND hash = $2 AND touched < $3"
                     " AND EXISTS (SELECT 1 FROM chunks WHERE hash = $2))"
                     " SELECT c.size FROM user_chunks u JOIN chunks c ON c.hash = u.hash"
                     " WHERE u.user_id = $1 AND u.hash = $2",
                     "ihi", user, h, now);
        if (r < 0)
                return r;
        r = n > 0;
        if (r && size)
                *size = (uint32_t)mpg_int(res, 0, 0);
        PQclear(res);
        return r;
}
