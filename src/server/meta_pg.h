/* meta_pg: what the files of the PostgreSQL metadata backend share (not a
 * public interface: callers use struct meta_ops from meta.h). Split by
 * concern like the SQLite backend: meta_pg.c holds the connection pool,
 * transactions, the schema steps (schema.h), the query helpers below and
 * the space's entries; meta_pg_account.c the users, devices and chunk
 * ownership rows; meta_pg_history.c versions, trash, retention and GC rows;
 * meta_pg_transfers.c transfer and download records, device policy and
 * device events; meta_pg_requests.c upload requests, LAN keys and the
 * registry versions.
 *
 * Connections: a pool of libpq connections, one per concurrently running
 * operation. A transaction (meta_ops begin) takes a connection for the
 * calling thread until commit or rollback; every operation that thread
 * runs meanwhile goes through that connection. Outside a transaction an
 * operation borrows a pooled connection and runs in autocommit.
 *
 * Several ferryd instances share one database, so what SQLite gets from
 * its single writer is asked of PostgreSQL explicitly: inside a
 * transaction, the first operation on a user's space locks that space's
 * row (mpg_lock_space), which orders concurrent commits to one space and
 * keeps its sequence numbers gap-free in commit order. Operations on other
 * rows rely on row locks and unique constraints.
 *
 * Queries are sent with parameters ($1, $2, ...) in text form, bytea in
 * binary; results come back in text form and are read with the column
 * helpers below.
 */
#ifndef FERRY_META_PG_H
#define FERRY_META_PG_H

#include <libpq-fe.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"

/* Runs sql with parameters $1.. taken from the arguments after fmt, one
 * per letter:
 *   'i'  int64_t
 *   't'  const char * (NULL: null)
 *   'h'  const struct hash * as bytea (NULL: null)
 *   'b'  const uint8_t *, size_t as bytea (NULL or length 0: null)
 * on the calling thread's transaction connection, or else a pooled one.
 * *res (may be NULL, then the result is dropped): the result, which the
 * caller frees with PQclear(). *n (may be NULL): the rows it affected or
 * returned. Errors: -EEXIST on a unique violation (SQLSTATE 23505),
 * -EAGAIN on a serialization failure or deadlock (40001, 40P01), -EIO for
 * the rest (a lost connection is reopened on the next call), each with a
 * message naming what. */
int mpg_exec(struct meta *m, const char *what, PGresult **res, int64_t *n, const char *sql,
             const char *fmt, ...);
int mpg_vexec(struct meta *m, const char *what, PGresult **res, int64_t *n, const char *sql,
              const char *fmt, va_list ap);
/* Runs sql, which returns at most one row with one integer column: *v, or
 * dflt when no row (or a null). */
int mpg_query_int(struct meta *m, const char *what, int64_t dflt, int64_t *v, const char *sql,
                  const char *fmt, ...);

/* Column readers of a text-format result: an int64 (0 for null), a string
 * ("" for null, valid while res lives), whether the value is null, a hash
 * (1 and *h set when it is a 32-byte bytea, else 0), and a bytea copied
 * into malloc'd memory (*out NULL and *len 0 for null; 0 or -ENOMEM). */
int64_t mpg_int(const PGresult *res, int row, int col);
const char *mpg_text(const PGresult *res, int row, int col);
int mpg_null(const PGresult *res, int row, int col);
int mpg_hash(const PGresult *res, int row, int col, struct hash *h);
int mpg_bytea(const PGresult *res, int row, int col, uint8_t **out, size_t *len);
/* Copies column col as text into dst (cap bytes, truncated). */
void mpg_copy_text(char *dst, size_t cap, const PGresult *res, int row, int col);

/* Inside a transaction: locks user's space row for the rest of it (once
 * per transaction and user; later calls return at once). Outside one:
 * does nothing. Every operation that reads or writes a space's entries,
 * versions or sequence within a transaction calls it first. 0 or -errno. */
int mpg_lock_space(struct meta *m, int64_t user);

/* The columns of an entry, shared by the entries and versions tables, as
 * in meta_sqlite.h, and how to bind and read them: MPG_ENTRY_FMT with
 * MPG_ENTRY_ARGS(e) in a mpg_exec() argument list binds the 12 columns
 * in this order. */
#define MPG_ENTRY_COLS                                                                             \
        "path, seq, deleted, kind, size, mtime_ns, mode, hash, target, device, chunks, time"
#define MPG_ENTRY_NCOLS 12
#define MPG_ENTRY_FMT "tiiiiiihttbi"
#define MPG_ENTRY_ARGS(e)                                                                          \
        (e)->path, (int64_t)(e)->seq, (int64_t)((e)->deleted ? 1 : 0), (int64_t)(e)->kind,         \
            (int64_t)(e)->size, (int64_t)(e)->mtime_ns, (int64_t)(e)->mode,                        \
            (const struct hash *)((e)->has_hash ? &(e)->hash : NULL), (e)->target, (e)->device,    \
            (const uint8_t *)(e)->chunks, (size_t)(e)->chunks_len, (int64_t)(e)->time
/* Fills e from MPG_ENTRY_COLS of row starting at column col. 0 or
 * -ENOMEM. */
int mpg_read_entry(const PGresult *res, int row, int col, struct meta_entry *e);
/* Hands each row of res (MPG_ENTRY_COLS from column 0) to cb as
 * meta_entry_cb says. */
int mpg_each_entry(const PGresult *res, meta_entry_cb cb, void *userdata);

/* The device columns (as meta_sqlite.h's MSQ_DEVICE_COLS) and reading them
 * (meta_pg_account.c). */
#define MPG_DEVICE_COLS                                                                            \
        "id, user_id, name, platform, address, created, last_seen, download_incomplete,"           \
        " applied_seq, lan_addr, lan_port, lan_prefix"
#define MPG_DEVICE_NCOLS 12
void mpg_read_device(const PGresult *res, int row, int col, struct meta_device *d);

/* meta_pg_account.c */
int mpg_user_add(struct meta *m, const char *name, const char *email, const char *pwhash,
                 int64_t now, int64_t *id);
int mpg_user_get(struct meta *m, const char *name, struct meta_user *out);
int mpg_device_add(struct meta *m, const struct meta_device *d, const struct hash *token_hash);
int mpg_device_by_token(struct meta *m, const struct hash *token_hash, struct meta_device *out);
int mpg_device_touch(struct meta *m, const char *device_id, int64_t now, const char *address);
int mpg_device_list(struct meta *m, int64_t user, meta_device_cb cb, void *userdata);
int mpg_chunk_add(struct meta *m, int64_t user, const struct hash *h, uint32_t size);
int mpg_chunk_held(struct meta *m, int64_t user, const struct hash *h, uint32_t *size);
int mpg_chunk_touch(struct meta *m, int64_t user, const struct hash *h, int64_t now,
                    uint32_t *size);

/* meta_pg_history.c */
int mpg_version_add(struct meta *m, int64_t user, const struct meta_entry *e);
int mpg_version_get(struct meta *m, int64_t user, const char *path, int64_t seq,
                    struct meta_entry *out);
int mpg_version_last_live(struct meta *m, int64_t user, const char *path, struct meta_entry *out);
int mpg_version_list(struct meta *m, int64_t user, const char *path, int64_t limit,
                     meta_version_cb cb, void *userdata);
int mpg_trash_list(struct meta *m, int64_t user, const char *prefix, meta_trash_cb cb,
                   void *userdata);
int mpg_snapshot_list(struct meta *m, int64_t user, struct meta_snapshot *q, meta_entry_cb cb,
                      void *userdata);
int mpg_user_ids(struct meta *m, int64_t **ids, size_t *n);
int mpg_version_prune(struct meta *m, int64_t user, int64_t superseded_before,
                      int64_t keep_versions, int64_t *pruned);
int mpg_chunk_refs_drop(struct meta *m, int64_t user, int64_t touched_before, int64_t *dropped);
int mpg_chunk_orphans(struct meta *m, const struct hash *after, size_t max, struct meta_chunk *out,
                      size_t *n);
int mpg_chunk_forget(struct meta *m, const struct hash *h);

/* meta_pg_transfers.c */
int mpg_xfer_version(struct meta *m, int64_t user, int64_t *version);
int mpg_xfer_version_bump(struct meta *m, int64_t user, int64_t *version);
int mpg_xfer_batch_add(struct meta *m, int64_t user, const char *device, int64_t now,
                       int64_t *batch);
int mpg_xfer_records(struct meta *m, int64_t user, const struct meta_record_filter *f,
                     meta_record_cb cb, void *userdata);
int mpg_xfer_record_put(struct meta *m, int64_t user, struct meta_record *rec);
int mpg_xfer_records_complete(struct meta *m, int64_t user, const char *device,
                              const struct meta_committed *c, size_t n, int64_t now,
                              int64_t *changed);
int mpg_xfer_record_delete(struct meta *m, int64_t user, int64_t id);
int mpg_xfer_records_fail(struct meta *m, int64_t user, const char *device, unsigned from,
                          const char *reason, int64_t now, int64_t *n);
int mpg_xfer_batches(struct meta *m, int64_t user, meta_batch_cb cb, void *userdata);
int mpg_xfer_prune(struct meta *m, int64_t before, int64_t *n);
int mpg_xfer_active_devices(struct meta *m, meta_active_cb cb, void *userdata);
int mpg_dl_put(struct meta *m, int64_t user, const struct meta_download *d);
int mpg_dl_list(struct meta *m, int64_t user, const char *device, const char *path,
                unsigned statuses, meta_download_cb cb, void *userdata);
int mpg_dl_ready(struct meta *m, int64_t user, const char *path, int64_t seq, const char *reason,
                 int64_t now, int64_t *n);
int mpg_dl_applied(struct meta *m, const char *device, int64_t applied_seq, int64_t now,
                   int64_t *n);
int mpg_dl_delete(struct meta *m, const char *device, const char *path, unsigned statuses,
                  int64_t *n);
int mpg_device_find(struct meta *m, int64_t user, const char *id_or_name, int with_removed,
                    struct meta_device *out, int64_t *removed);
int mpg_device_set_policy(struct meta *m, const char *device, int policy);
int mpg_device_set_applied(struct meta *m, const char *device, int64_t seq);
int mpg_device_remove(struct meta *m, const char *device, int64_t now);
int mpg_device_open_records(struct meta *m, const char *device, int64_t *n);
int mpg_device_event_add(struct meta *m, int64_t user, const struct meta_device *d,
                         const char *event, int64_t now, int64_t *files);
int mpg_device_events(struct meta *m, int64_t user, const char *device, meta_device_event_cb cb,
                      void *userdata);
int mpg_device_event_files(struct meta *m, int64_t event, meta_held_file_cb cb, void *userdata);

/* meta_pg_requests.c */
int mpg_registry_version(struct meta *m, int64_t user, int counter, int64_t *version);
int mpg_registry_version_bump(struct meta *m, int64_t user, int counter, int64_t *version);
int mpg_device_set_info(struct meta *m, const struct meta_device *d, int *changed);
int mpg_device_rename(struct meta *m, const char *device, const char *name);
int mpg_lan_key_get(struct meta *m, int64_t user, const char *fresh, char key[META_LAN_KEY_HEX + 1],
                    int64_t *version);
int mpg_lan_key_rotate(struct meta *m, int64_t user, const char *fresh, int64_t *version);
int mpg_request_add(struct meta *m, int64_t user, struct meta_request *r);
int mpg_requests_list(struct meta *m, int64_t user, const struct meta_request_filter *f,
                      meta_request_cb cb, void *userdata);
int mpg_request_set(struct meta *m, int64_t user, const struct meta_request *r);
int mpg_requests_expire(struct meta *m, int64_t now, int64_t **users, size_t *n);
int mpg_requests_fail_target(struct meta *m, int64_t user, const char *target, const char *reason,
                             int64_t now, int64_t *n);

#endif
