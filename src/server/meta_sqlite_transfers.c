/* meta_sqlite_transfers: transfer records, download records, each device's
 * download policy and the device history, for the SQLite metadata backend
 * (the operations of the "transfers" block of struct meta_ops; the rules
 * that drive them are in transfers.c).
 *
 * Tables: `batches` (one per announce) hold `records` (one per announced
 * file; a record moves to a newer batch when its path is announced again
 * while it is still open), `downloads` (per downloading device and path),
 * `device_events` with the files a removed device held in
 * `device_event_files`, and `xfer_versions`, the per-user counter that
 * every change of a record or download record bumps (the event streams
 * announce it). The devices table gains the download policy, the applied
 * seq each device reported, and `removed` (the time of its removal, 0 while
 * active): a removed device keeps its row, so that its records and its
 * versions still have a name, but its token hash is replaced by random
 * bytes, which no token hashes to.
 *
 * Every device has at most one open (not complete) record per path: a
 * partial unique index says so. The tables are created by the schema steps
 * (schema.c, version 2).
 *
 * Locking as described in meta_sqlite.c.
 */
#include <stdarg.h>
#include <string.h>

#include "err.h"
#include "meta_sqlite.h"

enum {
        SL_VERSION = MSQ_SLOT_TRANSFERS,
        SL_VERSION_BUMP,
        SL_BATCH_ADD,
        SL_REC_BY_ID,
        SL_REC_BY_PATH,
        SL_REC_ALL,
        SL_REC_INSERT,
        SL_REC_UPDATE,
        SL_REC_DELETE,
        SL_REC_FAIL,
        SL_BATCHES,
        SL_PRUNE,
        SL_ACTIVE,
        SL_DL_PUT,
        SL_DL_LIST,
        SL_DL_READY,
        SL_DL_APPLIED,
        SL_DL_DELETE,
        SL_DEV_BY_ID,
        SL_DEV_BY_NAME,
        SL_DEV_BY_NAME_REMOVED,
        SL_DEV_POLICY,
        SL_DEV_APPLIED,
        SL_DEV_REMOVE,
        SL_DEV_OPEN,
        SL_EVENT_ADD,
        SL_EVENT_FILES_ADD,
        SL_EVENT_COUNT,
        SL_EVENTS,
        SL_EVENT_FILES,
        SL_END,
};
_Static_assert(SL_END <= MSQ_SLOT_DEVICE_BY_TOKEN, "statement slots overlap");

enum { SL_REC_OPEN = MSQ_SLOT_RECORDS, SL_REC_COMPLETE, SL_RECORDS_END };
_Static_assert(SL_RECORDS_END <= MSQ_EXTRA_SLOTS, "statement slots overflow");

/* The end of a listing loop: a positive callback result means "enough". */
static int list_end(struct meta_sqlite *ms, sqlite3_stmt *s, int r, int rc, const char *what)
{
        sqlite3_reset(s);
        if (r > 0)
                return 0;
        if (r == 0 && rc != SQLITE_DONE)
                return msq_db_err(ms, what);
        return r;
}

int msq_xfer_version(struct meta *m, int64_t user, int64_t *version)
{
        return msq_query_int(m, SL_VERSION, "SELECT version FROM xfer_versions WHERE user_id = ?",
                             0, version, "i", user);
}

int msq_xfer_version_bump(struct meta *m, int64_t user, int64_t *version)
{
        return msq_query_int(m, SL_VERSION_BUMP,
                             "INSERT INTO xfer_versions (user_id, version) VALUES (?, 1)"
                             " ON CONFLICT (user_id) DO UPDATE SET version = version + 1"
                             " RETURNING version",
                             0, version, "i", user);
}

int msq_xfer_batch_add(struct meta *m, int64_t user, const char *device, int64_t now,
                       int64_t *batch)
{
        return msq_run(m, SL_BATCH_ADD,
                       "INSERT INTO batches (user_id, device, created) VALUES (?, ?, ?)", "batch",
                       NULL, batch, "iti", user, device, now);
}

#define REC_SELECT                                                                                 \
        "SELECT r.id, r.batch, r.ord, r.device, COALESCE(d.name, ''), r.path, r.kind, r.size,"     \
        " r.hash, r.status, r.bytes_done, r.started, r.updated, r.reason, r.seq FROM records r"    \
        " LEFT JOIN devices d ON d.id = r.device WHERE r.user_id = ?1"
/* ?2 device, ?4 status mask */
#define REC_FILTER " AND (?2 IS NULL OR r.device = ?2) AND (?4 = 0 OR (?4 >> r.status) & 1)"
#define REC_ORDER " ORDER BY r.batch DESC, r.ord, r.id"

static void read_record(sqlite3_stmt *s, struct meta_record *r)
{
        const void *h = sqlite3_column_blob(s, 8);

        memset(r, 0, sizeof(*r));
        r->id = sqlite3_column_int64(s, 0);
        r->batch = sqlite3_column_int64(s, 1);
        r->ord = sqlite3_column_int64(s, 2);
        msq_copy_text(r->device, sizeof(r->device), s, 3);
        r->device_name = msq_text(s, 4);
        r->path = msq_text(s, 5);
        r->kind = sqlite3_column_int(s, 6);
        r->size = (uint64_t)sqlite3_column_int64(s, 7);
        if (h && sqlite3_column_bytes(s, 8) == HASH_LEN) {
                memcpy(r->hash.b, h, HASH_LEN);
                r->has_hash = 1;
        }
        r->status = sqlite3_column_int(s, 9);
        r->bytes_done = (uint64_t)sqlite3_column_int64(s, 10);
        r->started = sqlite3_column_int64(s, 11);
        r->updated = sqlite3_column_int64(s, 12);
        r->reason = msq_text(s, 13);
        r->seq = sqlite3_column_int64(s, 14);
}

int msq_xfer_records(struct meta *m, int64_t user, const struct meta_record_filter *f,
                     meta_record_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_record rec;
        sqlite3_stmt *s;
        int r = -EIO, rc = SQLITE_DONE;

        msq_lock(ms);
        /* One statement per way in, so that each uses its index. A
         * device's open records of a path (every commit and announce looks
         * for it) are at most one row of the partial unique index
         * records_open: no sort. */
        if (f->id)
                s = msq_stmt(ms, SL_REC_BY_ID, REC_SELECT " AND r.id = ?3" REC_FILTER, "itii", user,
                             f->device, f->id, (int64_t)f->statuses);
        else if (f->path && f->device && f->statuses && !(f->statuses & (1u << META_XFER_COMPLETE)))
                s = msq_stmt(ms, SL_REC_OPEN,
                             REC_SELECT " AND r.device = ?2 AND r.path = ?3 AND r.status <> 2"
                                        " AND (?4 >> r.status) & 1",
                             "itti", user, f->device, f->path, (int64_t)f->statuses);
        else if (f->path)
                s = msq_stmt(ms, SL_REC_BY_PATH, REC_SELECT " AND r.path = ?3" REC_FILTER REC_ORDER,
                             "itti", user, f->device, f->path, (int64_t)f->statuses);
        else
                s = msq_stmt(ms, SL_REC_ALL, REC_SELECT REC_FILTER REC_ORDER, "itii", user,
                             f->device, (int64_t)0, (int64_t)f->statuses);
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                read_record(s, &rec);
                r = cb(&rec, userdata);
                if (r != 0)
                        break;
        }
        r = list_end(ms, s, r, rc, "record listing");
out:
        msq_unlock(ms);
        return r;
}

int msq_xfer_record_put(struct meta *m, int64_t user, struct meta_record *rec)
{
        const struct hash *h = rec->has_hash ? &rec->hash : NULL;
        const char *reason = rec->reason ? rec->reason : "";
        int64_t n = 0;
        int r;

        if (rec->id == 0)
                return msq_run(m, SL_REC_INSERT,
                               "INSERT INTO records (user_id, batch, ord, device, path, kind, size,"
                               " hash, status, bytes_done, started, updated, reason, seq)"
                               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               "record", NULL, &rec->id, "iiittiihiiiiti", user, rec->batch,
                               rec->ord, rec->device, rec->path, (int64_t)rec->kind,
                               (int64_t)rec->size, h, (int64_t)rec->status,
                               (int64_t)rec->bytes_done, rec->started, rec->updated, reason,
                               rec->seq);
        r = msq_run(m, SL_REC_UPDATE,
                    "UPDATE records SET batch = ?3, ord = ?4, kind = ?5, size = ?6,"
                    " hash = ?7, status = ?8, bytes_done = ?9, updated = ?10,"
                    " reason = ?11, seq = ?12 WHERE id = ?1 AND user_id = ?2",
                    "record", &n, NULL, "iiiiiihiiiti", rec->id, user, rec->batch, rec->ord,
                    (int64_t)rec->kind, (int64_t)rec->size, h, (int64_t)rec->status,
                    (int64_t)rec->bytes_done, rec->updated, reason, rec->seq);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no transfer record %lld", (long long)rec->id);
        return r;
}

int msq_xfer_records_complete(struct meta *m, int64_t user, const char *device,
                              const struct meta_committed *c, size_t n, int64_t now,
                              int64_t *changed)
{
        struct meta_sqlite *ms = msq_of(m);
        int64_t k;
        size_t i;
        int r = 0;

        /* Only the columns that change: batch and ord stay, and so do their
         * index rows (records_batch). */
        *changed = 0;
        msq_lock(ms);
        for (i = 0; i < n && r == 0; i++) {
                k = 0;
                r = msq_run(m, SL_REC_COMPLETE,
                            "UPDATE records SET status = 2, size = ?4, bytes_done = ?4, hash = ?5,"
                            " seq = ?6, reason = '', updated = ?7"
                            " WHERE device = ?2 AND path = ?3 AND status <> 2 AND user_id = ?1",
                            "record completion", &k, NULL, "ittihii", user, device, c[i].path,
                            (int64_t)c[i].size, c[i].hash, c[i].seq, now);
                *changed += k;
        }
        msq_unlock(ms);
        return r;
}

int msq_xfer_record_delete(struct meta *m, int64_t user, int64_t id)
{
        int64_t n = 0;
        int r;

        r = msq_run(m, SL_REC_DELETE, "DELETE FROM records WHERE id = ? AND user_id = ?",
                    "record delete", &n, NULL, "ii", id, user);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no transfer record %lld", (long long)id);
        return r;
}

int msq_xfer_records_fail(struct meta *m, int64_t user, const char *device, unsigned from,
                          const char *reason, int64_t now, int64_t *n)
{
        /* "status <> 2" lets the partial index records_open find the rows. */
        return msq_run(m, SL_REC_FAIL,
                       "UPDATE records SET status = 3, reason = ?4, updated = ?5"
                       " WHERE device = ?2 AND status <> 2 AND user_id = ?1 AND (?3 >> status) & 1",
                       "record failure", n, NULL, "ititi", user, device, (int64_t)from, reason,
                       now);
}

int msq_xfer_batches(struct meta *m, int64_t user, meta_batch_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_batch b;
        sqlite3_stmt *s;
        int r = -EIO, rc = SQLITE_DONE, i;

        msq_lock(ms);
        s = msq_stmt(ms, SL_BATCHES,
                     "SELECT b.id, b.device, COALESCE(d.name, ''), b.created, MAX(r.updated),"
                     " COUNT(*), SUM(r.status = 0), SUM(r.status = 1), SUM(r.status = 2),"
                     " SUM(r.status = 3), SUM(r.size), SUM(r.bytes_done) FROM batches b"
                     " JOIN records r ON r.batch = b.id LEFT JOIN devices d ON d.id = b.device"
                     " WHERE b.user_id = ? GROUP BY b.id ORDER BY b.id DESC",
                     "i", user);
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                memset(&b, 0, sizeof(b));
                b.id = sqlite3_column_int64(s, 0);
                msq_copy_text(b.device, sizeof(b.device), s, 1);
                b.device_name = msq_text(s, 2);
                b.created = sqlite3_column_int64(s, 3);
                b.updated = sqlite3_column_int64(s, 4);
                b.files = sqlite3_column_int64(s, 5);
                for (i = 0; i < META_XFER_NSTATUS; i++)
                        b.count[i] = sqlite3_column_int64(s, 6 + i);
                b.bytes_total = (uint64_t)sqlite3_column_int64(s, 10);
                b.bytes_done = (uint64_t)sqlite3_column_int64(s, 11);
                r = cb(&b, userdata);
                if (r != 0)
                        break;
        }
        r = list_end(ms, s, r, rc, "batch listing");
out:
        msq_unlock(ms);
        return r;
}

int msq_xfer_prune(struct meta *m, int64_t before, int64_t *n)
{
        /* The records go with their batch (ON DELETE CASCADE). */
        return msq_run(
            m, SL_PRUNE,
            "DELETE FROM batches WHERE created < ?1 AND NOT EXISTS (SELECT 1 FROM"
            " records r WHERE r.batch = batches.id AND (r.status <> 2 OR r.updated >= ?1))",
            "batch prune", n, NULL, "i", before);
}

int msq_xfer_active_devices(struct meta *m, meta_active_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO, rc = SQLITE_DONE;

        msq_lock(ms);
        s = msq_stmt(ms, SL_ACTIVE,
                     "SELECT DISTINCT r.user_id, r.device, COALESCE(d.last_seen, 0) FROM records r"
                     " LEFT JOIN devices d ON d.id = r.device WHERE r.status < 2",
                     "");
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = cb(sqlite3_column_int64(s, 0), msq_text(s, 1), sqlite3_column_int64(s, 2),
                       userdata);
                if (r != 0)
                        break;
        }
        r = list_end(ms, s, r, rc, "active devices");
out:
        msq_unlock(ms);
        return r;
}

int msq_dl_put(struct meta *m, int64_t user, const struct meta_download *d)
{
        return msq_run(m, SL_DL_PUT,
                       "INSERT INTO downloads (device, path, user_id, seq, status, reason, updated)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, path) DO UPDATE SET"
                       " seq = excluded.seq, status = excluded.status, reason = excluded.reason,"
                       " updated = excluded.updated",
                       "download record", NULL, NULL, "ttiiiti", d->device, d->path, user, d->seq,
                       (int64_t)d->status, d->reason ? d->reason : "", d->updated);
}

int msq_dl_list(struct meta *m, int64_t user, const char *device, const char *path,
                unsigned statuses, meta_download_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_download d;
        sqlite3_stmt *s;
        int r = -EIO, rc = SQLITE_DONE;

        msq_lock(ms);
        s = msq_stmt(ms, SL_DL_LIST,
                     "SELECT w.device, COALESCE(d.name, ''), w.path, w.seq, w.status, w.reason,"
                     " w.updated FROM downloads w LEFT JOIN devices d ON d.id = w.device"
                     " WHERE w.user_id = ?1 AND (?2 IS NULL OR w.device = ?2)"
                     " AND (?3 IS NULL OR w.path = ?3) AND (?4 = 0 OR (?4 >> w.status) & 1)"
                     " ORDER BY w.device, w.path",
                     "itti", user, device, path, (int64_t)statuses);
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                memset(&d, 0, sizeof(d));
                msq_copy_text(d.device, sizeof(d.device), s, 0);
                d.device_name = msq_text(s, 1);
                d.path = msq_text(s, 2);
                d.seq = sqlite3_column_int64(s, 3);
                d.status = sqlite3_column_int(s, 4);
                d.reason = msq_text(s, 5);
                d.updated = sqlite3_column_int64(s, 6);
                r = cb(&d, userdata);
                if (r != 0)
                        break;
        }
        r = list_end(ms, s, r, rc, "download listing");
out:
        msq_unlock(ms);
        return r;
}

int msq_dl_ready(struct meta *m, int64_t user, const char *path, int64_t seq, const char *reason,
                 int64_t now, int64_t *n)
{
        return msq_run(m, SL_DL_READY,
                       "UPDATE downloads SET seq = ?3, reason = ?4, updated = ?5"
                       " WHERE user_id = ?1 AND path = ?2 AND status = 0",
                       "download record", n, NULL, "ititi", user, path, seq, reason, now);
}

int msq_dl_applied(struct meta *m, const char *device, int64_t applied_seq, int64_t now, int64_t *n)
{
        return msq_run(m, SL_DL_APPLIED,
                       "UPDATE downloads SET status = 1, reason = '', updated = ?3"
                       " WHERE device = ?1 AND status = 0 AND seq > 0 AND seq <= ?2",
                       "download record", n, NULL, "tii", device, applied_seq, now);
}

int msq_dl_delete(struct meta *m, const char *device, const char *path, unsigned statuses,
                  int64_t *n)
{
        return msq_run(m, SL_DL_DELETE,
                       "DELETE FROM downloads WHERE device = ?1 AND (?2 IS NULL OR path = ?2)"
                       " AND (?3 = 0 OR (?3 >> status) & 1)",
                       "download record delete", n, NULL, "tti", device, path, (int64_t)statuses);
}

/* Runs a device query (MSQ_DEVICE_COLS, removed): 1 row into out, -ENOENT
 * without one, -EEXIST with several. */
static int device_one(struct meta_sqlite *ms, sqlite3_stmt *s, struct meta_device *out,
                      int64_t *removed)
{
        int rc, n = 0;

        if (!s)
                return -EIO;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < 2) {
                if (n++ == 0) {
                        msq_read_device(s, out);
                        if (removed)
                                *removed = sqlite3_column_int64(s, MSQ_DEVICE_NCOLS);
                }
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return msq_db_err(ms, "device lookup");
        return n == 0 ? -ENOENT : n > 1 ? -EEXIST : 0;
}

int msq_device_find(struct meta *m, int64_t user, const char *id_or_name, int with_removed,
                    struct meta_device *out, int64_t *removed)
{
        struct meta_sqlite *ms = msq_of(m);
        int r;

        msq_lock(ms);
        r = device_one(ms,
                       msq_stmt(ms, SL_DEV_BY_ID,
                                "SELECT " MSQ_DEVICE_COLS ", removed FROM devices"
                                " WHERE id = ?2 AND user_id = ?1 AND (removed = 0 OR ?3)",
                                "iti", user, id_or_name, (int64_t)(with_removed != 0)),
                       out, removed);
        if (r == -ENOENT)
                r = device_one(ms,
                               msq_stmt(ms, SL_DEV_BY_NAME,
                                        "SELECT " MSQ_DEVICE_COLS ", removed FROM devices"
                                        " WHERE user_id = ?1 AND name = ?2 AND removed = 0",
                                        "it", user, id_or_name),
                               out, removed);
        /* A name taken again after a removal means the active device; a
         * removed one only when no active device has it (the newest). */
        if (r == -ENOENT && with_removed)
                r = device_one(ms,
                               msq_stmt(ms, SL_DEV_BY_NAME_REMOVED,
                                        "SELECT " MSQ_DEVICE_COLS ", removed FROM devices"
                                        " WHERE user_id = ?1 AND name = ?2 AND removed > 0"
                                        " ORDER BY removed DESC LIMIT 1",
                                        "it", user, id_or_name),
                               out, removed);
        if (r == -ENOENT)
                r = err_set(-ENOENT, "no device '%s'", id_or_name);
        else if (r == -EEXIST)
                r = err_set(-EEXIST, "several devices are named '%s': use the id", id_or_name);
        msq_unlock(ms);
        return r;
}

int msq_device_set_policy(struct meta *m, const char *device, int policy)
{
        return msq_run(m, SL_DEV_POLICY, "UPDATE devices SET download_incomplete = ? WHERE id = ?",
                       "device policy", NULL, NULL, "it", (int64_t)policy, device);
}

int msq_device_set_applied(struct meta *m, const char *device, int64_t seq)
{
        return msq_run(m, SL_DEV_APPLIED,
                       "UPDATE devices SET applied_seq = MAX(applied_seq, ?) WHERE id = ?",
                       "device applied seq", NULL, NULL, "it", seq, device);
}

int msq_device_remove(struct meta *m, const char *device, int64_t now)
{
        int64_t n = 0;
        int r;

        /* 32 random bytes: no token hashes to them, so the token is dead. */
        r = msq_run(m, SL_DEV_REMOVE,
                    "UPDATE devices SET removed = ?2, token_hash = randomblob(32)"
                    " WHERE id = ?1 AND removed = 0",
                    "device removal", &n, NULL, "ti", device, now > 0 ? now : (int64_t)1);
        if (r == 0 && n == 0)
                r = err_set(-ENOENT, "no device %s", device);
        return r;
}

int msq_device_open_records(struct meta *m, const char *device, int64_t *n)
{
        return msq_query_int(m, SL_DEV_OPEN,
                             "SELECT COUNT(*) FROM records WHERE device = ? AND status <> 2", 0, n,
                             "t", device);
}

int msq_device_event_add(struct meta *m, int64_t user, const struct meta_device *d,
                         const char *event, int64_t now, int64_t *files)
{
        struct meta_sqlite *ms = msq_of(m);
        int64_t id = 0, n = 0;
        int r;

        msq_lock(ms);
        if ((r = msq_exec(ms, "SAVEPOINT device_event")) < 0)
                goto out_unlock;
        r = msq_run(m, SL_EVENT_ADD,
                    "INSERT INTO device_events (user_id, device, name, event, time, applied_seq,"
                    " files) VALUES (?, ?, ?, ?, ?, ?, 0)",
                    "device event", NULL, &id, "itttii", user, d->id, d->name, event, now,
                    d->applied_seq);
        if (r < 0 || strcmp(event, "removed") != 0)
                goto out;
        /* The space as the device last said it applied it: per path the
         * newest retained version up to applied_seq, when a live file. */
        r = msq_run(m, SL_EVENT_FILES_ADD,
                    "INSERT INTO device_event_files (event, path, size, seq)"
                    " SELECT ?1, v.path, v.size, v.seq FROM versions v"
                    " WHERE v.user_id = ?2 AND v.seq <= ?3 AND v.deleted = 0 AND v.kind = 0"
                    " AND v.seq = (SELECT MAX(x.seq) FROM versions x WHERE x.user_id = ?2"
                    " AND x.path = v.path AND x.seq <= ?3)",
                    "device files", &n, NULL, "iii", id, user, d->applied_seq);
        if (r == 0)
                r = msq_run(m, SL_EVENT_COUNT, "UPDATE device_events SET files = ? WHERE id = ?",
                            "device event", NULL, NULL, "ii", n, id);
out:
        if (r < 0)
                msq_exec(ms, "ROLLBACK TO device_event");
        msq_exec(ms, "RELEASE device_event");
        if (r == 0 && files)
                *files = n;
out_unlock:
        msq_unlock(ms);
        return r;
}

int msq_device_events(struct meta *m, int64_t user, const char *device, meta_device_event_cb cb,
                      void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        struct meta_device_event ev;
        sqlite3_stmt *s;
        int r = -EIO, rc = SQLITE_DONE;

        msq_lock(ms);
        s = msq_stmt(ms, SL_EVENTS,
                     "SELECT id, device, name, event, time, applied_seq, files FROM device_events"
                     " WHERE user_id = ?1 AND (?2 IS NULL OR device = ?2 OR name = ?2) ORDER BY id",
                     "it", user, device);
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                memset(&ev, 0, sizeof(ev));
                ev.id = sqlite3_column_int64(s, 0);
                msq_copy_text(ev.device, sizeof(ev.device), s, 1);
                ev.name = msq_text(s, 2);
                ev.event = msq_text(s, 3);
                ev.time = sqlite3_column_int64(s, 4);
                ev.applied_seq = sqlite3_column_int64(s, 5);
                ev.files = sqlite3_column_int64(s, 6);
                r = cb(&ev, userdata);
                if (r != 0)
                        break;
        }
        r = list_end(ms, s, r, rc, "device history");
out:
        msq_unlock(ms);
        return r;
}

int msq_device_event_files(struct meta *m, int64_t event, meta_held_file_cb cb, void *userdata)
{
        struct meta_sqlite *ms = msq_of(m);
        sqlite3_stmt *s;
        int r = -EIO, rc = SQLITE_DONE;

        msq_lock(ms);
        s = msq_stmt(ms, SL_EVENT_FILES,
                     "SELECT path, size, seq FROM device_event_files WHERE event = ? ORDER BY path",
                     "i", event);
        if (!s)
                goto out;
        r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                r = cb(msq_text(s, 0), (uint64_t)sqlite3_column_int64(s, 1),
                       sqlite3_column_int64(s, 2), userdata);
                if (r != 0)
                        break;
        }
        r = list_end(ms, s, r, rc, "device files");
out:
        msq_unlock(ms);
        return r;
}
