/* meta_pg_transfers: transfer records, download records, each device's
 * download policy and the device history, for the PostgreSQL metadata
 * backend (the "transfers" block of struct meta_ops; the rules that drive
 * them are in transfers.c). The twin of meta_sqlite_transfers.c, which
 * describes the tables (schema.c has their PostgreSQL DDL) and is the
 * reference for what each operation does.
 *
 * What differs from SQLite: ids come back with RETURNING; status bit masks
 * are tested with a bigint shift (the status column is bigint, and
 * PostgreSQL shifts by an int); a removed device's token hash becomes 32
 * strong random bytes from two gen_random_uuid(); and a "removed" device
 * event is written by one statement (data-modifying CTEs), so that it is
 * atomic without a savepoint also outside a transaction. Parameters carry
 * explicit casts where PostgreSQL could not infer their type (a parameter
 * only compared with NULL or 0).
 *
 * Listings fetch the whole result first, so callbacks may call back into
 * the store.
 */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "meta_pg.h"

/* "the status column's bit is set in mask $n (0: any)". */
#define STATUS_IN(col, n) "($" n "::bigint = 0 OR (($" n "::bigint >> " col "::int) & 1) = 1)"

int mpg_xfer_version(struct meta *m, int64_t user, int64_t *version)
{
        return mpg_query_int(m, "transfers version", 0, version,
                             "SELECT version FROM xfer_versions WHERE user_id = $1", "i", user);
}

int mpg_xfer_version_bump(struct meta *m, int64_t user, int64_t *version)
{
        return mpg_query_int(m, "transfers version", 0, version,
                             "INSERT INTO xfer_versions (user_id, version) VALUES ($1, 1)"
                             " ON CONFLICT (user_id) DO UPDATE"
                             " SET version = xfer_versions.version + 1 RETURNING version",
                             "i", user);
}

int mpg_xfer_batch_add(struct meta *m, int64_t user, const char *device, int64_t now,
                       int64_t *batch)
{
        return mpg_query_int(m, "batch", 0, batch,
                             "INSERT INTO batches (user_id, device, created) VALUES ($1, $2, $3)"
                             " RETURNING id",
                             "iti", user, device, now);
}

#define REC_SELECT                                                                                 \
        "SELECT r.id, r.batch, r.ord, r.device, COALESCE(d.name, ''), r.path, r.kind, r.size,"     \
        " r.hash, r.status, r.bytes_done, r.started, r.updated, r.reason, r.seq FROM records r"    \
        " LEFT JOIN devices d ON d.id = r.device WHERE r.user_id = $1"
/* $2 device, $n status mask */
#define REC_FILTER(n) " AND ($2::text IS NULL OR r.device = $2) AND " STATUS_IN("r.status", n)
#define REC_ORDER " ORDER BY r.batch DESC, r.ord, r.id"

static void read_record(const PGresult *res, int row, struct meta_record *r)
{
        memset(r, 0, sizeof(*r));
        r->id = mpg_int(res, row, 0);
        r->batch = mpg_int(res, row, 1);
        r->ord = mpg_int(res, row, 2);
        mpg_copy_text(r->device, sizeof(r->device), res, row, 3);
        r->device_name = mpg_text(res, row, 4);
        r->path = mpg_text(res, row, 5);
        r->kind = (int)mpg_int(res, row, 6);
        r->size = (uint64_t)mpg_int(res, row, 7);
        r->has_hash = mpg_hash(res, row, 8, &r->hash);
        r->status = (int)mpg_int(res, row, 9);
        r->bytes_done = (uint64_t)mpg_int(res, row, 10);
        r->started = mpg_int(res, row, 11);
        r->updated = mpg_int(res, row, 12);
        r->reason = mpg_text(res, row, 13);
        r->seq = mpg_int(res, row, 14);
}

int mpg_xfer_records(struct meta *m, int64_t user, const struct meta_record_filter *f,
                     meta_record_cb cb, void *userdata)
{
        struct meta_record rec;
        PGresult *res = NULL;
        int r, i, rows;

        /* One statement per way in, so that each uses its index. */
        if (f->id)
                r = mpg_exec(m, "record listing", &res, NULL,
                             REC_SELECT " AND r.id = $3" REC_FILTER("4"), "itii", user, f->device,
                             f->id, (int64_t)f->statuses);
        else if (f->path)
                r = mpg_exec(m, "record listing", &res, NULL,
                             REC_SELECT " AND r.path = $3" REC_FILTER("4") REC_ORDER, "itti", user,
                             f->device, f->path, (int64_t)f->statuses);
        else
                r = mpg_exec(m, "record listing", &res, NULL, REC_SELECT REC_FILTER("3") REC_ORDER,
                             "iti", user, f->device, (int64_t)f->statuses);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; i < rows && r == 0; i++) {
                read_record(res, i, &rec);
                r = cb(&rec, userdata);
        }
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

int mpg_xfer_record_put(struct meta *m, int64_t user, struct meta_record *rec)
{
        const struct hash *h = rec->has_hash ? &rec->hash : NULL;
        const char *reason = rec->reason ? rec->reason : "";
        int64_t n = 0;
        int r;

        if (rec->id == 0)
                return mpg_query_int(
                    m, "record", 0, &rec->id,
                    "INSERT INTO records (user_id, batch, ord, device, path, kind, size,"
                    " hash, status, bytes_done, started, updated, reason, seq)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                    " RETURNING id",
                    "iiittiihiiiiti", user, rec->batch, rec->ord, rec->device, rec->path,
                    (int64_t)rec->kind, (int64_t)rec->size, h, (int64_t)rec->status,
                    (int64_t)rec->bytes_done, rec->started, rec->updated, reason, rec->seq);
        r = mpg_exec(m, "record", NULL, &n,
                     "UPDATE records SET batch = $3, ord = $4, kind = $5, size = $6,"
                     " hash = $7, status = $8, bytes_done = $9, updated = $10,"
                     " reason = $11, seq = $12 WHERE id = $1 AND user_id = $2",
                     "iiiiiihiiiti", rec->id, user, rec->batch, rec->ord, (int64_t)rec->kind,
                     (int64_t)rec->size, h, (int64_t)rec->status, (int64_t)rec->bytes_done,
                     rec->updated, reason, rec->seq);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no transfer record %lld", (long long)rec->id);
        return r;
}

int mpg_xfer_records_complete(struct meta *m, int64_t user, const char *device,
                              const struct meta_committed *c, size_t n, int64_t now,
                              int64_t *changed)
{
        int64_t k;
        size_t i;
        int r = 0;

        /* One statement per record, not a lookup and an update: the
         * device's open record of a path is one row of records_open. */
        *changed = 0;
        for (i = 0; i < n && r == 0; i++) {
                k = 0;
                r = mpg_exec(m, "record completion", NULL, &k,
                             "UPDATE records SET status = 2, size = $4, bytes_done = $4,"
                             " hash = $5, seq = $6, reason = '', updated = $7"
                             " WHERE device = $2 AND path = $3 AND status <> 2 AND user_id = $1",
                             "ittihii", user, device, c[i].path, (int64_t)c[i].size, c[i].hash,
                             c[i].seq, now);
                *changed += k;
        }
        return r;
}

int mpg_xfer_record_delete(struct meta *m, int64_t user, int64_t id)
{
        int64_t n = 0;
        int r;

        r = mpg_exec(m, "record delete", NULL, &n,
                     "DELETE FROM records WHERE id = $1 AND user_id = $2", "ii", id, user);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no transfer record %lld", (long long)id);
        return r;
}

int mpg_xfer_records_fail(struct meta *m, int64_t user, const char *device, unsigned from,
                          const char *reason, int64_t now, int64_t *n)
{
        /* "status <> 2" lets the partial index records_open find the rows;
         * from = 0 fails none, as in SQLite (no "0: any" here). */
        return mpg_exec(m, "record failure", NULL, n,
                        "UPDATE records SET status = 3, reason = $4, updated = $5"
                        " WHERE device = $2 AND status <> 2 AND user_id = $1"
                        " AND (($3::bigint >> status::int) & 1) = 1",
                        "ititi", user, device, (int64_t)from, reason, now);
}

int mpg_xfer_batches(struct meta *m, int64_t user, meta_batch_cb cb, void *userdata)
{
        struct meta_batch b;
        PGresult *res = NULL;
        int r, i, k, rows;

        r = mpg_exec(m, "batch listing", &res, NULL,
                     "SELECT b.id, b.device, COALESCE(d.name, ''), b.created, MAX(r.updated),"
                     " COUNT(*), COUNT(*) FILTER (WHERE r.status = 0),"
                     " COUNT(*) FILTER (WHERE r.status = 1), COUNT(*) FILTER (WHERE r.status = 2),"
                     " COUNT(*) FILTER (WHERE r.status = 3), SUM(r.size), SUM(r.bytes_done)"
                     " FROM batches b JOIN records r ON r.batch = b.id"
                     " LEFT JOIN devices d ON d.id = b.device"
                     " WHERE b.user_id = $1 GROUP BY b.id, d.name ORDER BY b.id DESC",
                     "i", user);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; i < rows && r == 0; i++) {
                memset(&b, 0, sizeof(b));
                b.id = mpg_int(res, i, 0);
                mpg_copy_text(b.device, sizeof(b.device), res, i, 1);
                b.device_name = mpg_text(res, i, 2);
                b.created = mpg_int(res, i, 3);
                b.updated = mpg_int(res, i, 4);
                b.files = mpg_int(res, i, 5);
                for (k = 0; k < META_XFER_NSTATUS; k++)
                        b.count[k] = mpg_int(res, i, 6 + k);
                b.bytes_total = (uint64_t)mpg_int(res, i, 10);
                b.bytes_done = (uint64_t)mpg_int(res, i, 11);
                r = cb(&b, userdata);
        }
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

int mpg_xfer_prune(struct meta *m, int64_t before, int64_t *n)
{
        /* The records go with their batch (ON DELETE CASCADE). */
        return mpg_exec(m, "batch prune", NULL, n,
                        "DELETE FROM batches WHERE created < $1 AND NOT EXISTS (SELECT 1 FROM"
                        " records r WHERE r.batch = batches.id"
                        " AND (r.status <> 2 OR r.updated >= $1))",
                        "i", before);
}

int mpg_xfer_active_devices(struct meta *m, meta_active_cb cb, void *userdata)
{
        PGresult *res = NULL;
        int r, i, rows;

        r = mpg_exec(m, "active devices", &res, NULL,
                     "SELECT DISTINCT r.user_id, r.device, COALESCE(d.last_seen, 0) FROM records r"
                     " LEFT JOIN devices d ON d.id = r.device WHERE r.status < 2",
                     "");
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; i < rows && r == 0; i++)
                r = cb(mpg_int(res, i, 0), mpg_text(res, i, 1), mpg_int(res, i, 2), userdata);
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

int mpg_dl_put(struct meta *m, int64_t user, const struct meta_download *d)
{
        return mpg_exec(m, "download record", NULL, NULL,
                        "INSERT INTO downloads (device, path, user_id, seq, status, reason,"
                        " updated) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                        " ON CONFLICT (device, path) DO UPDATE SET seq = EXCLUDED.seq,"
                        " status = EXCLUDED.status, reason = EXCLUDED.reason,"
                        " updated = EXCLUDED.updated",
                        "ttiiiti", d->device, d->path, user, d->seq, (int64_t)d->status,
                        d->reason ? d->reason : "", d->updated);
}

int mpg_dl_list(struct meta *m, int64_t user, const char *device, const char *path,
                unsigned statuses, meta_download_cb cb, void *userdata)
{
        struct meta_download d;
        PGresult *res = NULL;
        int r, i, rows;

        r = mpg_exec(m, "download listing", &res, NULL,
                     "SELECT w.device, COALESCE(d.name, ''), w.path, w.seq, w.status, w.reason,"
                     " w.updated FROM downloads w LEFT JOIN devices d ON d.id = w.device"
                     " WHERE w.user_id = $1 AND ($2::text IS NULL OR w.device = $2)"
                     " AND ($3::text IS NULL OR w.path = $3) AND " STATUS_IN(
                         "w.status", "4") " ORDER BY w.device COLLATE \"C\", w.path",
                     "itti", user, device, path, (int64_t)statuses);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; i < rows && r == 0; i++) {
                memset(&d, 0, sizeof(d));
                mpg_copy_text(d.device, sizeof(d.device), res, i, 0);
                d.device_name = mpg_text(res, i, 1);
                d.path = mpg_text(res, i, 2);
                d.seq = mpg_int(res, i, 3);
                d.status = (int)mpg_int(res, i, 4);
                d.reason = mpg_text(res, i, 5);
                d.updated = mpg_int(res, i, 6);
                r = cb(&d, userdata);
        }
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

int mpg_dl_ready(struct meta *m, int64_t user, const char *path, int64_t seq, const char *reason,
                 int64_t now, int64_t *n)
{
        return mpg_exec(m, "download record", NULL, n,
                        "UPDATE downloads SET seq = $3, reason = $4, updated = $5"
                        " WHERE user_id = $1 AND path = $2 AND status = 0",
                        "ititi", user, path, seq, reason, now);
}

int mpg_dl_applied(struct meta *m, const char *device, int64_t applied_seq, int64_t now, int64_t *n)
{
        return mpg_exec(m, "download record", NULL, n,
                        "UPDATE downloads SET status = 1, reason = '', updated = $3"
                        " WHERE device = $1 AND status = 0 AND seq > 0 AND seq <= $2",
                        "tii", device, applied_seq, now);
}

int mpg_dl_delete(struct meta *m, const char *device, const char *path, unsigned statuses,
                  int64_t *n)
{
        return mpg_exec(m, "download record delete", NULL, n,
                        "DELETE FROM downloads WHERE device = $1"
                        " AND ($2::text IS NULL OR path = $2) AND " STATUS_IN("status", "3"),
                        "tti", device, path, (int64_t)statuses);
}

/* Runs a device query (MPG_DEVICE_COLS, removed; at most 2 rows): 1 row
 * into out, -ENOENT without one, -EEXIST with several. */
static int device_one(struct meta *m, struct meta_device *out, int64_t *removed, const char *sql,
                      const char *fmt, ...)
{
        PGresult *res = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = mpg_vexec(m, "device lookup", &res, NULL, sql, fmt, ap);
        va_end(ap);
        if (r < 0)
                goto out;
        if (PQntuples(res) == 0) {
                r = -ENOENT;
                goto out;
        }
        if (PQntuples(res) > 1) {
                r = -EEXIST;
                goto out;
        }
        mpg_read_device(res, 0, 0, out);
        if (removed)
                *removed = mpg_int(res, 0, MPG_DEVICE_NCOLS);
out:
        PQclear(res);
        return r;
}

int mpg_device_find(struct meta *m, int64_t user, const char *id_or_name, int with_removed,
                    struct meta_device *out, int64_t *removed)
{
        int r;

        r = device_one(m, out, removed,
                       "SELECT " MPG_DEVICE_COLS ", removed FROM devices"
                       " WHERE id = $2 AND user_id = $1 AND (removed = 0 OR $3::bigint <> 0)",
                       "iti", user, id_or_name, (int64_t)(with_removed != 0));
        if (r == -ENOENT)
                r = device_one(m, out, removed,
                               "SELECT " MPG_DEVICE_COLS ", removed FROM devices"
                               " WHERE user_id = $1 AND name = $2 AND removed = 0 LIMIT 2",
                               "it", user, id_or_name);
        /* A name taken again after a removal means the active device; a
         * removed one only when no active device has it (the newest). */
        if (r == -ENOENT && with_removed)
                r = device_one(m, out, removed,
                               "SELECT " MPG_DEVICE_COLS ", removed FROM devices"
                               " WHERE user_id = $1 AND name = $2 AND removed <> 0"
                               " ORDER BY removed DESC LIMIT 1",
                               "it", user, id_or_name);
        if (r == -ENOENT)
                r = err_set(-ENOENT, "no device '%s'", id_or_name);
        else if (r == -EEXIST)
                r = err_set(-EEXIST, "several devices are named '%s': use the id", id_or_name);
        return r;
}

int mpg_device_set_policy(struct meta *m, const char *device, int policy)
{
        return mpg_exec(m, "device policy", NULL, NULL,
                        "UPDATE devices SET download_incomplete = $1 WHERE id = $2", "it",
                        (int64_t)policy, device);
}

int mpg_device_set_applied(struct meta *m, const char *device, int64_t seq)
{
        return mpg_exec(m, "device applied seq", NULL, NULL,
                        "UPDATE devices SET applied_seq = GREATEST(applied_seq, $1) WHERE id = $2",
                        "it", seq, device);
}

int mpg_device_remove(struct meta *m, const char *device, int64_t now)
{
        int64_t n = 0;
        int r;

        /* 32 strong random bytes: no token hashes to them, so the token is
         * dead. */
        r = mpg_exec(m, "device removal", NULL, &n,
                     "UPDATE devices SET removed = $2,"
                     " token_hash = uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())"
                     " WHERE id = $1 AND removed = 0",
                     "ti", device, now > 0 ? now : (int64_t)1);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no device %s", device);
        return r;
}

int mpg_device_open_records(struct meta *m, const char *device, int64_t *n)
{
        return mpg_query_int(m, "open records", 0, n,
                             "SELECT COUNT(*) FROM records WHERE device = $1 AND status <> 2", "t",
                             device);
}

int mpg_device_event_add(struct meta *m, int64_t user, const struct meta_device *d,
                         const char *event, int64_t now, int64_t *files)
{
        int64_t n = 0;
        int r;

        /* It reads the space's versions. */
        r = mpg_lock_space(m, user);
        if (r < 0)
                return r;
        /* The space as the device last said it applied it: per path the
         * newest retained version up to applied_seq, when a live file. The
         * files are counted before the event row is written, as the
         * statement's parts do not see each other's rows. */
        r = mpg_query_int(
            m, "device event", 0, &n,
            "WITH held AS MATERIALIZED (SELECT v.path, v.size, v.seq FROM versions v"
            " WHERE $4::text = 'removed' AND v.user_id = $1 AND v.seq <= $6 AND v.deleted = 0"
            " AND v.kind = 0 AND v.seq = (SELECT MAX(x.seq) FROM versions x"
            " WHERE x.user_id = $1 AND x.path = v.path AND x.seq <= $6)),"
            " ev AS (INSERT INTO device_events (user_id, device, name, event, time,"
            " applied_seq, files) SELECT $1::bigint, $2::text, $3::text, $4::text, $5::bigint,"
            " $6::bigint, (SELECT COUNT(*) FROM held)"
            " RETURNING id, files),"
            " f AS (INSERT INTO device_event_files (event, path, size, seq)"
            " SELECT ev.id, held.path, held.size, held.seq FROM ev, held)"
            " SELECT files FROM ev",
            "itttii", user, d->id, d->name, event, now, d->applied_seq);
        if (r == 0 && files)
                *files = n;
        return r;
}

int mpg_device_events(struct meta *m, int64_t user, const char *device, meta_device_event_cb cb,
                      void *userdata)
{
        struct meta_device_event ev;
        PGresult *res = NULL;
        int r, i, rows;

        r = mpg_exec(m, "device history", &res, NULL,
                     "SELECT id, device, name, event, time, applied_seq, files FROM device_events"
                     " WHERE user_id = $1 AND ($2::text IS NULL OR device = $2 OR name = $2)"
                     " ORDER BY id",
                     "it", user, device);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; i < rows && r == 0; i++) {
                memset(&ev, 0, sizeof(ev));
                ev.id = mpg_int(res, i, 0);
                mpg_copy_text(ev.device, sizeof(ev.device), res, i, 1);
                ev.name = mpg_text(res, i, 2);
                ev.event = mpg_text(res, i, 3);
                ev.time = mpg_int(res, i, 4);
                ev.applied_seq = mpg_int(res, i, 5);
                ev.files = mpg_int(res, i, 6);
                r = cb(&ev, userdata);
        }
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}

int mpg_device_event_files(struct meta *m, int64_t event, meta_held_file_cb cb, void *userdata)
{
        PGresult *res = NULL;
        int r, i, rows;

        r = mpg_exec(m, "device files", &res, NULL,
                     "SELECT path, size, seq FROM device_event_files WHERE event = $1"
                     " ORDER BY path",
                     "i", event);
        if (r < 0)
                goto out;
        rows = PQntuples(res);
        for (i = 0; i < rows && r == 0; i++)
                r = cb(mpg_text(res, i, 0), (uint64_t)mpg_int(res, i, 1), mpg_int(res, i, 2),
                       userdata);
        if (r > 0)
                r = 0;
out:
        PQclear(res);
        return r;
}
