/* meta_sqlite: what the files of the SQLite metadata backend share (not a
 * public interface: callers use struct meta_ops from meta.h). The backend is
 * split by concern: meta_sqlite.c holds the connection, transactions,
 * statements, the space's entries and the loop that applies the schema
 * steps (the tables themselves are in schema.c, for both database
 * backends); meta_sqlite_account.c the users, devices and chunk ownership
 * rows; meta_sqlite_history.c, meta_sqlite_transfers.c and
 * meta_sqlite_requests.c the rows of the blocks below. */
#ifndef FERRY_META_SQLITE_H
#define FERRY_META_SQLITE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stddef.h>

#include "meta.h"

#define MSQ_EXTRA_SLOTS 104
#define MSQ_SLOT_HISTORY 0
#define MSQ_SLOT_TRANSFERS 32
#define MSQ_SLOT_REQUESTS 64 /* requests/registry */
#define MSQ_SLOT_RECORDS 96  /* meta_sqlite_transfers.c, its range being full */

enum stmt_id {
        ST_USER_ADD,
        ST_SPACE_ADD,
        ST_USER_GET,
        ST_DEVICE_ADD,
        ST_DEVICE_BY_TOKEN,
        ST_DEVICE_TOUCH,
        ST_DEVICE_LIST,
        ST_CHUNK_ADD,
        ST_USER_CHUNK_ADD,
        ST_CHUNK_HELD,
        ST_CHUNK_TOUCH,
        ST_ENTRY_GET,
        ST_ENTRY_PUT,
        ST_SEQ_NEXT,
        ST_SEQ_GET,
        ST_CHANGES,
        ST_LIST_ALL,
        ST_LIST_PREFIX,
        ST_COUNT
};

struct meta_sqlite {
        struct meta base; /* first: struct meta * is cast back */
        sqlite3 *db;
        pthread_mutex_t lock;
        sqlite3_stmt *st[ST_COUNT];
        /* Statements of the files added by concern, each with its own range
         * of slots: meta_sqlite_history.c [0, 32), meta_sqlite_transfers.c
         * [32, 64) and [96, 104), meta_sqlite_requests.c [64, 96). */
        sqlite3_stmt *st_extra[MSQ_EXTRA_SLOTS];
};

struct meta_sqlite *msq_of(struct meta *m);
/* Records the connection's last error for what; returns -EIO. */
int msq_db_err(struct meta_sqlite *ms, const char *what);
/* The cached statement id, reset, bindings cleared; NULL on error. */
sqlite3_stmt *msq_prep(struct meta_sqlite *ms, enum stmt_id id);
int msq_exec(struct meta_sqlite *ms, const char *sql);
/* Like msq_prep for the statement sql cached in st_extra[slot]. */
sqlite3_stmt *msq_prep_sql(struct meta_sqlite *ms, unsigned slot, const char *sql);
/* Runs a statement for its effect; -EEXIST on a constraint violation. */
int msq_step_done(struct meta_sqlite *ms, sqlite3_stmt *s, const char *what);
void msq_lock(struct meta_sqlite *ms);
void msq_unlock(struct meta_sqlite *ms);
void msq_copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col);
/* Steps s (bound, its columns an entry from column 0), handing each row
 * to cb as meta_entry_cb says; what names the listing in an error. Resets
 * s. */
int msq_each_entry(struct meta_sqlite *ms, sqlite3_stmt *s, meta_entry_cb cb, void *userdata,
                   const char *what);

/* Statement helpers of the store modules, on st_extra[slot] (the
 * statement sql, cached). msq_stmt: the statement reset, with parameters
 * 1.. bound from fmt: 'i' an int64_t, 't' a string (NULL binds null), 'h'
 * a const struct hash * (NULL binds null); values must outlive the run;
 * NULL on error. msq_vstmt: the same with a va_list. */
sqlite3_stmt *msq_vstmt(struct meta_sqlite *ms, unsigned slot, const char *sql, const char *fmt,
                        va_list ap);
sqlite3_stmt *msq_stmt(struct meta_sqlite *ms, unsigned slot, const char *sql, const char *fmt,
                       ...);
/* Runs the statement of slot (bound as for msq_stmt) for its effect, under
 * the lock. *n: the rows it changed, *rowid: the row it inserted (either
 * may be NULL). */
int msq_run(struct meta *m, unsigned slot, const char *sql, const char *what, int64_t *n,
            int64_t *rowid, const char *fmt, ...);
/* Runs the statement of slot, which returns at most one integer: *v, or
 * dflt without a row. Steps to the end, so that a RETURNING applies. */
int msq_query_int(struct meta *m, unsigned slot, const char *sql, int64_t dflt, int64_t *v,
                  const char *fmt, ...);
/* Column col as text, "" for NULL. */
const char *msq_text(sqlite3_stmt *s, int col);

/* The columns of an entry as msq_read_entry() reads them, shared by the
 * entries and versions tables. */
#define MSQ_ENTRY_COLS                                                                             \
        "path, seq, deleted, kind, size, mtime_ns, mode, hash, target, device, chunks, time"
#define MSQ_ENTRY_NCOLS 12
/* Fills e from the MSQ_ENTRY_COLS of the current row starting at column
 * col. 0 or -ENOMEM. */
int msq_read_entry(sqlite3_stmt *s, int col, struct meta_entry *e);
/* Binds the MSQ_ENTRY_COLS of e to parameters col.. col + 11 (e must
 * outlive the statement's run). */
void msq_bind_entry(sqlite3_stmt *s, int col, const struct meta_entry *e);

/* meta_sqlite_account.c: the account rows of struct meta_ops. */
int msq_user_add(struct meta *m, const char *name, const char *email, const char *pwhash,
                 int64_t now, int64_t *id);
int msq_user_get(struct meta *m, const char *name, struct meta_user *out);
int msq_device_add(struct meta *m, const struct meta_device *d, const struct hash *token_hash);
int msq_device_by_token(struct meta *m, const struct hash *token_hash, struct meta_device *out);
int msq_device_touch(struct meta *m, const char *device_id, int64_t now, const char *address);
int msq_device_list(struct meta *m, int64_t user, meta_device_cb cb, void *userdata);
int msq_chunk_add(struct meta *m, int64_t user, const struct hash *h, uint32_t size);
int msq_chunk_held(struct meta *m, int64_t user, const struct hash *h, uint32_t *size);
int msq_chunk_touch(struct meta *m, int64_t user, const struct hash *h, int64_t now,
                    uint32_t *size);

/* meta_sqlite_history.c: versions, trash, retention and GC rows. */
int msq_version_add(struct meta *m, int64_t user, const struct meta_entry *e);
int msq_version_get(struct meta *m, int64_t user, const char *path, int64_t seq,
                    struct meta_entry *out);
int msq_version_last_live(struct meta *m, int64_t user, const char *path, struct meta_entry *out);
int msq_version_list(struct meta *m, int64_t user, const char *path, int64_t limit,
                     meta_version_cb cb, void *userdata);
int msq_trash_list(struct meta *m, int64_t user, const char *prefix, meta_trash_cb cb,
                   void *userdata);
int msq_snapshot_list(struct meta *m, int64_t user, struct meta_snapshot *q, meta_entry_cb cb,
                      void *userdata);
int msq_user_ids(struct meta *m, int64_t **ids, size_t *n);
int msq_version_prune(struct meta *m, int64_t user, int64_t superseded_before,
                      int64_t keep_versions, int64_t *pruned);
int msq_chunk_refs_drop(struct meta *m, int64_t user, int64_t touched_before, int64_t *dropped);
int msq_chunk_orphans(struct meta *m, const struct hash *after, size_t max, struct meta_chunk *out,
                      size_t *n);
int msq_chunk_forget(struct meta *m, const struct hash *h);

/* meta_sqlite_transfers.c: transfer records, download records, device
 * policy and device history. */
int msq_xfer_version(struct meta *m, int64_t user, int64_t *version);
int msq_xfer_version_bump(struct meta *m, int64_t user, int64_t *version);
int msq_xfer_batch_add(struct meta *m, int64_t user, const char *device, int64_t now,
                       int64_t *batch);
int msq_xfer_records(struct meta *m, int64_t user, const struct meta_record_filter *f,
                     meta_record_cb cb, void *userdata);
int msq_xfer_record_put(struct meta *m, int64_t user, struct meta_record *rec);
int msq_xfer_records_complete(struct meta *m, int64_t user, const char *device,
                              const struct meta_committed *c, size_t n, int64_t now,
                              int64_t *changed);
int msq_xfer_record_delete(struct meta *m, int64_t user, int64_t id);
int msq_xfer_records_fail(struct meta *m, int64_t user, const char *device, unsigned from,
                          const char *reason, int64_t now, int64_t *n);
int msq_xfer_batches(struct meta *m, int64_t user, meta_batch_cb cb, void *userdata);
int msq_xfer_prune(struct meta *m, int64_t before, int64_t *n);
int msq_xfer_active_devices(struct meta *m, meta_active_cb cb, void *userdata);
int msq_dl_put(struct meta *m, int64_t user, const struct meta_download *d);
int msq_dl_list(struct meta *m, int64_t user, const char *device, const char *path,
                unsigned statuses, meta_download_cb cb, void *userdata);
int msq_dl_ready(struct meta *m, int64_t user, const char *path, int64_t seq, const char *reason,
                 int64_t now, int64_t *n);
int msq_dl_applied(struct meta *m, const char *device, int64_t applied_seq, int64_t now,
                   int64_t *n);
int msq_dl_delete(struct meta *m, const char *device, const char *path, unsigned statuses,
                  int64_t *n);
int msq_device_find(struct meta *m, int64_t user, const char *id_or_name, int with_removed,
                    struct meta_device *out, int64_t *removed);
int msq_device_set_policy(struct meta *m, const char *device, int policy);
int msq_device_set_applied(struct meta *m, const char *device, int64_t seq);
int msq_device_remove(struct meta *m, const char *device, int64_t now);
int msq_device_open_records(struct meta *m, const char *device, int64_t *n);
int msq_device_event_add(struct meta *m, int64_t user, const struct meta_device *d,
                         const char *event, int64_t now, int64_t *files);
int msq_device_events(struct meta *m, int64_t user, const char *device, meta_device_event_cb cb,
                      void *userdata);
int msq_device_event_files(struct meta *m, int64_t event, meta_held_file_cb cb, void *userdata);

/* requests/registry: meta_sqlite_requests.c (upload requests, LAN keys,
 * the devices and requests versions, the devices' LAN columns). */
int msq_registry_version(struct meta *m, int64_t user, int counter, int64_t *version);
int msq_registry_version_bump(struct meta *m, int64_t user, int counter, int64_t *version);
int msq_device_set_info(struct meta *m, const struct meta_device *d, int *changed);
int msq_device_rename(struct meta *m, const char *device, const char *name);
int msq_lan_key_get(struct meta *m, int64_t user, const char *fresh, char key[META_LAN_KEY_HEX + 1],
                    int64_t *version);
int msq_lan_key_rotate(struct meta *m, int64_t user, const char *fresh, int64_t *version);
int msq_request_add(struct meta *m, int64_t user, struct meta_request *r);
int msq_requests_list(struct meta *m, int64_t user, const struct meta_request_filter *f,
                      meta_request_cb cb, void *userdata);
int msq_request_set(struct meta *m, int64_t user, const struct meta_request *r);
int msq_requests_expire(struct meta *m, int64_t now, int64_t **users, size_t *n);
int msq_requests_fail_target(struct meta *m, int64_t user, const char *target, const char *reason,
                             int64_t now, int64_t *n);

/* The device rows as meta_sqlite_account.c reads them (msq_read_device),
 * with the columns schemas 2 and 3 (the LAN listener) added, and the two statement slots of that
 * file (the last ones of the transfers range): removed devices are left
 * out there. */
#define MSQ_DEVICE_COLS                                                                            \
        "id, user_id, name, platform, address, created, last_seen, download_incomplete,"           \
        " applied_seq, lan_addr, lan_port, lan_prefix"
#define MSQ_DEVICE_NCOLS 12
#define MSQ_SLOT_DEVICE_BY_TOKEN (MSQ_SLOT_TRANSFERS + 30)
#define MSQ_SLOT_DEVICE_LIST (MSQ_SLOT_TRANSFERS + 31)
void msq_read_device(sqlite3_stmt *s, struct meta_device *d);

#endif
