/* meta_sqlite_requests: the rows of the device registry and of upload
 * requests for the SQLite metadata backend (the "requests/registry" block
 * of struct meta_ops; the rules are in api_requests.c).
 *
 * Tables: `requests` (one per upload request, its paths kept as the JSON
 * array the requester sent, validated before), `lan_keys` (the account's
 * secret of the LAN peer protocol with its version) and
 * `registry_versions`, the per-user counters (devices, requests) that the
 * event streams announce, kept in the database like the transfers version
 * so that a restarted ferryd never hands out a number twice. Schema 3 adds
 * the LAN listener columns to `devices`. The tables are created by the
 * schema steps (schema.c).
 *
 * Locking as described in meta_sqlite.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "meta_sqlite.h"

enum {
        SL_VERSION = MSQ_SLOT_REQUESTS,
        SL_VERSION_BUMP,
        SL_SET_INFO,
        SL_RENAME,
        SL_KEY_ADD,
        SL_KEY_GET,
        SL_KEY_ROTATE,
        SL_REQ_ADD,
        SL_REQ_LIST,
        SL_REQ_SET,
        SL_REQ_EXPIRE,
        SL_REQ_FAIL,
        SL_END,
};
_Static_assert(SL_END <= MSQ_EXTRA_SLOTS, "statement slots overflow");

int msq_registry_version(struct meta *m, int64_t user, int counter, int64_t *version)
{
        return msq_query_int(
            m, SL_VERSION,
            "SELECT version FROM registry_versions WHERE user_id = ? AND counter = ?", 0, version,
            "ii", user, (int64_t)counter);
}

int msq_registry_version_bump(struct meta *m, int64_t user, int counter, int64_t *version)
{
        return msq_query_int(
            m, SL_VERSION_BUMP,
            "INSERT INTO registry_versions (user_id, counter, version) VALUES (?, ?, 1)"
            " ON CONFLICT (user_id, counter) DO UPDATE SET version = version + 1"
            " RETURNING version",
            0, version, "ii", user, (int64_t)counter);
}

int msq_device_set_info(struct meta *m, const struct meta_device *d, int *changed)
{
        int64_t n = 0;
        int r;

        /* Only a row that differs is updated: the change count says
         * whether the control list changed. */
        r = msq_run(
            m, SL_SET_INFO,
            "UPDATE devices SET platform = ?2, lan_addr = ?3, lan_port = ?4, lan_prefix = ?5"
            " WHERE id = ?1 AND removed = 0 AND (platform <> ?2 OR lan_addr <> ?3"
            " OR lan_port <> ?4 OR lan_prefix <> ?5)",
            "device info", &n, NULL, "tttii", d->id, d->platform, d->lan_addr, (int64_t)d->lan_port,
            (int64_t)d->lan_prefix);
        if (r == 0 && changed)
                *changed = n > 0;
        return r;
}

int msq_device_rename(struct meta *m, const char *device, const char *name)
{
        int64_t n = 0;
        int r;

        r = msq_run(m, SL_RENAME, "UPDATE devices SET name = ?2 WHERE id = ?1 AND removed = 0",
                    "device rename", &n, NULL, "tt", device, name);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no device %s", device);
        return r;
}

int msq_lan_key_get(struct meta *m, int64_t user, const char *fresh, char key[META_LAN_KEY_HEX + 1],
                    int64_t *version)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r, rc;

        msq_lock(ms);
        /* Two devices asking at once for a new account's key: the first
         * insert wins and both read the same key. */
        r = msq_run(m, SL_KEY_ADD,
                    "INSERT INTO lan_keys (user_id, key, version) VALUES (?, ?, 1)"
                    " ON CONFLICT (user_id) DO NOTHING",
                    "LAN key", NULL, NULL, "it", user, fresh);
        if (r < 0)
                goto out;
        r = -EIO;
        s = msq_stmt(ms, SL_KEY_GET, "SELECT key, version FROM lan_keys WHERE user_id = ?", "i",
                     user);
        if (!s)
                goto out;
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                snprintf(key, META_LAN_KEY_HEX + 1, "%s", msq_text(s, 0));
                *version = sqlite3_column_int64(s, 1);
                r = 0;
        } else {
                r = msq_db_err(ms, "LAN key");
        }
        sqlite3_reset(s);
out:
        msq_unlock(ms);
        return r;
}

int msq_lan_key_rotate(struct meta *m, int64_t user, const char *fresh, int64_t *version)
{
        return msq_query_int(
            m, SL_KEY_ROTATE,
            "UPDATE lan_keys SET key = ?2, version = version + 1 WHERE user_id = ?1"
            " RETURNING version",
            0, version, "it", user, fresh);
}

int msq_request_add(struct meta *m, int64_t user, struct meta_request *r)
{
        return msq_run(m, SL_REQ_ADD,
                       "INSERT INTO requests (user_id, requester, target, paths, all_files, via,"
                       " status, files, reason, created, updated, expires)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       "request", NULL, &r->id, "itttitiitiii", user, r->requester, r->target,
                       r->paths, (int64_t)(r->all != 0), r->via, (int64_t)r->status, r->files,
                       r->reason ? r->reason : "", r->created, r->updated, r->expires);
}

int msq_requests_list(struct meta *m, int64_t user, const struct meta_request_filter *f,
                      meta_request_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_request q;
        sqlite3_stmt *s;
        int r = -EIO, rc = SQLITE_DONE;

        msq_lock(ms);
        s = msq_stmt(
            ms, SL_REQ_LIST,
            "SELECT r.id, r.requester, COALESCE(a.name, ''), r.target, COALESCE(t.name, ''),"
            " r.paths, r.all_files, r.via, r.status, r.files, r.reason, r.created, r.updated,"
            " r.expires FROM requests r LEFT JOIN devices a ON a.id = r.requester"
            " LEFT JOIN devices t ON t.id = r.target WHERE r.user_id = ?1"
            " AND (?2 = 0 OR r.id = ?2) AND (?3 IS NULL OR r.target = ?3)"
            " ORDER BY r.id DESC",
            "iit", user, f ? f->id : 0, f ? f->target : NULL);
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                memset(&q, 0, sizeof(q));
                q.id = sqlite3_column_int64(s, 0);
                msq_copy_text(q.requester, sizeof(q.requester), s, 1);
                q.requester_name = msq_text(s, 2);
                msq_copy_text(q.target, sizeof(q.target), s, 3);
                q.target_name = msq_text(s, 4);
                q.paths = msq_text(s, 5);
                q.all = sqlite3_column_int(s, 6) != 0;
                q.via = msq_text(s, 7);
                q.status = sqlite3_column_int(s, 8);
                q.files = sqlite3_column_int64(s, 9);
                q.reason = msq_text(s, 10);
                q.created = sqlite3_column_int64(s, 11);
                q.updated = sqlite3_column_int64(s, 12);
                q.expires = sqlite3_column_int64(s, 13);
                if ((r = cb(&q, userdata)) != 0)
                        break;
        }
        sqlite3_reset(s);
        if (r > 0)
                r = 0;
        else if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, "request listing");
out:
        msq_unlock(ms);
        return r;
}

int msq_request_set(struct meta *m, int64_t user, const struct meta_request *r)
{
        int64_t n = 0;
        int rr;

        rr = msq_run(m, SL_REQ_SET,
                     "UPDATE requests SET status = ?3, files = ?4, reason = ?5, updated = ?6"
                     " WHERE user_id = ?1 AND id = ?2",
                     "request update", &n, NULL, "iiiiti", user, r->id, (int64_t)r->status,
                     r->files, r->reason ? r->reason : "", r->updated);
        if (rr == 0 && n == 0)
                rr = err_set(-ENOENT, "no request %lld", (long long)r->id);
        return rr;
}

int msq_requests_expire(struct meta *m, int64_t now, int64_t **users, size_t *n)
{
        struct meta_sqlite *ms = msq_of(m);
        int64_t *u = NULL, *nu, id;
        size_t cnt = 0, cap = 0, i;
        sqlite3_stmt *s;
        int r = -EIO, rc;

        msq_lock(ms);
        s = msq_stmt(
            ms, SL_REQ_EXPIRE,
            "UPDATE requests SET status = 5, updated = ?1 WHERE status = 0 AND expires <= ?1"
            " RETURNING user_id",
            "i", now);
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                id = sqlite3_column_int64(s, 0);
                for (i = 0; i < cnt && u[i] != id; i++)
                        ;
                if (i < cnt || r < 0)
                        continue; /* seen; or out of memory: step on so that all apply */
                if (cnt == cap) {
                        cap = cap ? cap * 2 : 8;
                        if (!(nu = realloc(u, cap * sizeof(*u)))) {
                                r = err_set(-ENOMEM, "out of memory");
                                continue;
                        }
                        u = nu;
                }
                u[cnt++] = id;
        }
        sqlite3_reset(s);
        if (r == 0 && rc != SQLITE_DONE)
                r = msq_db_err(ms, "request expiry");
out:
        msq_unlock(ms);
        if (r < 0) {
                free(u);
                u = NULL;
                cnt = 0;
        }
        *users = u;
        *n = cnt;
        return r;
}

int msq_requests_fail_target(struct meta *m, int64_t user, const char *target, const char *reason,
                             int64_t now, int64_t *n)
{
        return msq_run(m, SL_REQ_FAIL,
                       "UPDATE requests SET status = 4, reason = ?3, updated = ?4"
                       " WHERE user_id = ?1 AND target = ?2 AND status < 3",
                       "request failure", n, NULL, "itti", user, target, reason, now);
}
