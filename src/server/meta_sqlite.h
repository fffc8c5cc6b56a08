/* meta_sqlite: what the files of the SQLite metadata backend share (not a
 * public interface: callers use struct meta_ops from meta.h). The backend is
 * split by concern: meta_sqlite.c holds the connection, schema,
 * transactions, statements and the space's entries; meta_sqlite_account.c
 * the users, devices and chunk ownership rows. */
#ifndef FERRY_META_SQLITE_H
#define FERRY_META_SQLITE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>

#include "meta.h"

#define MSQ_EXTRA_SLOTS 64
#define MSQ_SLOT_HISTORY 0
#define MSQ_SLOT_TRANSFERS 32

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
         * [32, 64). */
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

/* meta_sqlite_history.c: versions, trash, retention and GC rows.
 * msq_history_schema() runs inside the schema transaction of
 * meta_sqlite_open (after the base tables exist) and creates or migrates
 * what that file needs. */
int msq_history_schema(struct meta_sqlite *ms, int old_version);

/* meta_sqlite_transfers.c: transfer records, download records, device
 * policy and device history. Same contract as msq_history_schema. */
int msq_transfers_schema(struct meta_sqlite *ms, int old_version);

#endif
