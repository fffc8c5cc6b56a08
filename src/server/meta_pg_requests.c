/* meta_pg_requests: the rows of the device registry and of upload requests
 * for the PostgreSQL metadata backend (the "requests/registry" block of
 * struct meta_ops), the same statements as meta_sqlite_requests.c, which is
 * the reference for what each operation does (the rules are in
 * api_requests.c).
 *
 * Tables (schema.c, version 3): `requests` (one per upload request, its
 * paths kept as the JSON array the requester sent), `lan_keys` (the
 * account's secret of the LAN peer protocol with its version) and
 * `registry_versions`, the per-user counters (devices, requests) the event
 * streams announce. Kept in the database, these counters are shared by
 * every ferryd instance: an upsert bumps them atomically whichever instance
 * does it, so no number is handed out twice.
 *
 * None of these rows belongs to a space's sequence, so no operation here
 * takes mpg_lock_space(): row locks and the primary keys order concurrent
 * writers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "meta_pg.h"

int mpg_registry_version(struct meta *m, int64_t user, int counter, int64_t *version)
{
        return mpg_query_int(m, "registry version", 0, version,
                             "SELECT version FROM registry_versions"
                             " WHERE user_id = $1 AND counter = $2",
                             "ii", user, (int64_t)counter);
}

int mpg_registry_version_bump(struct meta *m, int64_t user, int counter, int64_t *version)
{
        return mpg_query_int(m, "registry version", 0, version,
                             "INSERT INTO registry_versions (user_id, counter, version)"
                             " VALUES ($1, $2, 1) ON CONFLICT (user_id, counter)"
                             " DO UPDATE SET version = registry_versions.version + 1"
                             " RETURNING version",
                             "ii", user, (int64_t)counter);
}

int mpg_device_set_info(struct meta *m, const struct meta_device *d, int *changed)
{
        int64_t n = 0;
        int r;

        /* Only a row that differs is updated: the count says whether the
         * control list changed. */
        r = mpg_exec(m, "device info", NULL, &n,
                     "UPDATE devices SET platform = $2, lan_addr = $3, lan_port = $4,"
                     " lan_prefix = $5 WHERE id = $1 AND removed = 0 AND (platform <> $2"
                     " OR lan_addr <> $3 OR lan_port <> $4 OR lan_prefix <> $5)",
                     "tttii", d->id, d->platform, d->lan_addr, (int64_t)d->lan_port,
                     (int64_t)d->lan_prefix);
        if (r == 0 && changed)
                *changed = n > 0;
        return r;
}

int mpg_device_rename(struct meta *m, const char *device, const char *name)
{
        int64_t n = 0;
        int r;

        r = mpg_exec(m, "device rename", NULL, &n,
                     "UPDATE devices SET name = $2 WHERE id = $1 AND removed = 0", "tt", device,
                     name);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no device %s", device);
        return r;
}

int mpg_lan_key_get(struct meta *m, int64_t user, const char *fresh, char key[META_LAN_KEY_HEX + 1],
                    int64_t *version)
{
        PGresult *res = NULL;
        int64_t n = 0;
        int r;

        /* Two devices (on two instances, maybe) asking at once for a new
         * account's key: the first insert wins, the other waits for it and
         * does nothing, and both read the same key. Two statements, so that
         * the read sees the winner's row (a statement of its own, with a
         * snapshot taken after the insert settled). */
        r = mpg_exec(m, "LAN key", NULL, NULL,
                     "INSERT INTO lan_keys (user_id, key, version) VALUES ($1, $2, 1)"
                     " ON CONFLICT (user_id) DO NOTHING",
                     "it", user, fresh);
        if (r < 0)
                goto out;
        r = mpg_exec(m, "LAN key", &res, &n, "SELECT key, version FROM lan_keys WHERE user_id = $1",
                     "i", user);
        if (r < 0)
                goto out;
        if (n < 1) {
                r = err_set(-EIO, "metadata store: LAN key: no key for user %lld", (long long)user);
                goto out;
        }
        snprintf(key, META_LAN_KEY_HEX + 1, "%s", mpg_text(res, 0, 0));
        *version = mpg_int(res, 0, 1);
out:
        PQclear(res);
        return r;
}

int mpg_lan_key_rotate(struct meta *m, int64_t user, const char *fresh, int64_t *version)
{
        return mpg_query_int(m, "LAN key rotation", 0, version,
                             "UPDATE lan_keys SET key = $2, version = version + 1"
                             " WHERE user_id = $1 RETURNING version",
                             "it", user, fresh);
}

int mpg_request_add(struct meta *m, int64_t user, struct meta_request *r)
{
        return mpg_query_int(m, "request", 0, &r->id,
                             "INSERT INTO requests (user_id, requester, target, paths, all_files,"
                             " via, status, files, reason, created, updated, expires)"
                             " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                             " RETURNING id",
                             "itttitiitiii", user, r->requester, r->target, r->paths,
                             (int64_t)(r->all != 0), r->via, (int64_t)r->status, r->files,
                             r->reason ? r->reason : "", r->created, r->updated, r->expires);
}

int mpg_requests_list(struct meta *m, int64_t user, const struct meta_request_filter *f,
                      meta_request_cb cb, void *userdata)
{
        struct meta_request q;
        PGresult *res = NULL;
        int64_t n = 0;
        int r, i;

        /* The casts give the optional filters a type when they are unset. */
        r = mpg_exec(
            m, "request listing", &res, &n,
            "SELECT r.id, r.requester, COALESCE(a.name, ''), r.target, COALESCE(t.name, ''),"
            " r.paths, r.all_files, r.via, r.status, r.files, r.reason, r.created, r.updated,"
            " r.expires FROM requests r LEFT JOIN devices a ON a.id = r.requester"
            " LEFT JOIN devices t ON t.id = r.target WHERE r.user_id = $1"
            " AND ($2::bigint = 0 OR r.id = $2::bigint)"
            " AND ($3::text IS NULL OR r.target = $3::text) ORDER BY r.id DESC",
            "iit", user, f ? f->id : (int64_t)0, f ? f->target : (const char *)NULL);
        if (r < 0)
                goto out;
        for (i = 0; i < (int)n; i++) {
                memset(&q, 0, sizeof(q));
                q.id = mpg_int(res, i, 0);
                mpg_copy_text(q.requester, sizeof(q.requester), res, i, 1);
                q.requester_name = mpg_text(res, i, 2);
                mpg_copy_text(q.target, sizeof(q.target), res, i, 3);
                q.target_name = mpg_text(res, i, 4);
                q.paths = mpg_text(res, i, 5);
                q.all = mpg_int(res, i, 6) != 0;
                q.via = mpg_text(res, i, 7);
                q.status = (int)mpg_int(res, i, 8);
                q.files = mpg_int(res, i, 9);
                q.reason = mpg_text(res, i, 10);
                q.created = mpg_int(res, i, 11);
                q.updated = mpg_int(res, i, 12);
                q.expires = mpg_int(res, i, 13);
                if ((r = cb(&q, userdata)) != 0)
                        break;
        }
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

int mpg_request_set(struct meta *m, int64_t user, const struct meta_request *r)
{
        int64_t n = 0;
        int rr;

        rr = mpg_exec(m, "request update", NULL, &n,
                      "UPDATE requests SET status = $3, files = $4, reason = $5, updated = $6"
                      " WHERE user_id = $1 AND id = $2",
                      "iiiiti", user, r->id, (int64_t)r->status, r->files,
                      r->reason ? r->reason : "", r->updated);
        if (rr == 0 && n == 0)
                rr = err_set(-ENOENT, "no request %lld", (long long)r->id);
        return rr;
}

int mpg_requests_expire(struct meta *m, int64_t now, int64_t **users, size_t *n)
{
        PGresult *res = NULL;
        int64_t *u = NULL, rows = 0;
        size_t cnt = 0, i;
        int r;

        /* One statement: the update applies whole, and the users come back
         * each once (as the SQLite backend dedupes them). */
        r = mpg_exec(m, "request expiry", &res, &rows,
                     "WITH x AS (UPDATE requests SET status = 5, updated = $1"
                     " WHERE status = 0 AND expires <= $1 RETURNING user_id)"
                     " SELECT DISTINCT user_id FROM x ORDER BY user_id",
                     "i", now);
        if (r < 0)
                goto out;
        if (rows > 0) {
                u = malloc((size_t)rows * sizeof(*u));
                if (!u) {
                        r = err_set(-ENOMEM, "out of memory");
                        goto out;
                }
                for (i = 0; i < (size_t)rows; i++)
                        u[cnt++] = mpg_int(res, (int)i, 0);
        }
out:
        PQclear(res);
        if (r < 0) {
                free(u);
                u = NULL;
                cnt = 0;
        }
        *users = u;
        *n = cnt;
        return r;
}

int mpg_requests_fail_target(struct meta *m, int64_t user, const char *target, const char *reason,
                             int64_t now, int64_t *n)
{
        return mpg_exec(m, "request failure", NULL, n,
                        "UPDATE requests SET status = 4, reason = $3, updated = $4"
                        " WHERE user_id = $1 AND target = $2 AND status < 3",
                        "itti", user, target, reason, now);
}
