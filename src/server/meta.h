/* meta: the metadata store of ferryd, as a small function table so that the
 * embedded SQLite backend (meta_sqlite.c) and a later PostgreSQL backend are
 * interchangeable. The store knows rows, not rules: users, devices, which
 * chunks each account holds, and the entries of each user's space with the
 * space's sequence counter. The rules of the journal (compare-and-set,
 * tombstones, renames) live once above this interface, in journal.c.
 *
 * Conventions: every operation returns 0 (or 1/0 for yes/no questions) or a
 * negative errno code (-ENOENT when a row is absent, -EEXIST on a duplicate,
 * -EIO for storage failures, with a message via err_set()). begin/commit/
 * rollback bracket a write transaction; operations called inside it belong to
 * it. Operations called outside a transaction are atomic on their own. A
 * transaction belongs to the thread that began it.
 */
#ifndef FERRY_META_H
#define FERRY_META_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#define META_NAME_MAX 64         /* user names, in bytes (ASCII) */
#define META_EMAIL_MAX 254       /* bytes */
#define META_PWHASH_MAX 128      /* crypto_pwhash_STRBYTES */
#define META_DEVICE_ID_LEN 32    /* hex digits */
#define META_DEVICE_NAME_MAX 256 /* bytes: 64 UTF-8 characters */
#define META_PLATFORM_MAX 64     /* bytes */
#define META_ADDRESS_MAX 64      /* an IPv4 or IPv6 address as text */

struct meta_user {
        int64_t id;
        char name[META_NAME_MAX + 1];
        char email[META_EMAIL_MAX + 1];
        char pwhash[META_PWHASH_MAX + 1];
        int64_t created;
};

struct meta_device {
        char id[META_DEVICE_ID_LEN + 1];
        int64_t user_id;
        char name[META_DEVICE_NAME_MAX + 1];
        char platform[META_PLATFORM_MAX + 1];
        char address[META_ADDRESS_MAX + 1];
        int64_t created;   /* seconds since the epoch */
        int64_t last_seen; /* seconds since the epoch */
        /* Transfer records (meta_sqlite_transfers.c): */
        int download_incomplete; /* enum meta_policy */
        int64_t applied_seq;     /* the space applied up to here, as reported */
        /* requests/registry (meta_sqlite_requests.c): the device's LAN
         * listener as it reported it; lan_addr "" when it has none. */
        char lan_addr[META_ADDRESS_MAX + 1];
        int lan_port;
        int lan_prefix;
};

/* The current state of one path of a space. Owned strings and the chunk
 * blob are malloc'd; meta_entry_clear() frees them. */
struct meta_entry {
        char *path;
        int64_t seq;
        int deleted;
        int kind; /* enum file_kind */
        uint64_t size;
        int64_t mtime_ns;
        uint32_t mode;
        int has_hash; /* files have a content hash; dirs, links, tombstones not */
        struct hash hash;
        char *target; /* symlinks only, else NULL */
        char device[META_DEVICE_ID_LEN + 1];
        uint8_t *chunks; /* manifest_to_blob() encoding, NULL when empty */
        size_t chunks_len;
        /* When this version was committed, in seconds since the epoch; 0
         * for versions committed before ferryd recorded it (schema 1). */
        int64_t time;
};

/* Frees the members of e and zeroes it (e itself is not freed). */
void meta_entry_clear(struct meta_entry *e);
/* Deep copy of src into dst (which is overwritten). Returns 0 or -ENOMEM. */
int meta_entry_copy(struct meta_entry *dst, const struct meta_entry *src);

/* Iteration callbacks: the row is valid only during the call. A non-zero
 * return stops the iteration: positive means "enough", negative is an error
 * that the listing operation returns. */
typedef int (*meta_device_cb)(const struct meta_device *d, void *userdata);
typedef int (*meta_entry_cb)(const struct meta_entry *e, void *userdata);
/* A version with the name of the device that made it ("" when the device
 * is unknown). */
typedef int (*meta_version_cb)(const struct meta_entry *e, const char *device_name, void *userdata);
/* A trash item: the path's current tombstone (with the deleting device's
 * name) and its newest retained live version. */
typedef int (*meta_trash_cb)(const struct meta_entry *tomb, const char *device_name,
                             const struct meta_entry *last, void *userdata);

/* A query of the space as of a point (GET /api/v1/snapshot), see
 * snapshot_list. */
struct meta_snapshot {
        int64_t at;         /* in: a seq (used when time < 0); out: the seq listed */
        int64_t time;       /* in: >= 0: the newest seq committed at or before it */
        const char *prefix; /* the path and what is under it; NULL: everything */
        const char *after;  /* paths sorting after it (bytewise); NULL: from the start */
        int64_t limit;      /* at most this many entries */
        int64_t current;    /* out: the space's current seq */
        int64_t horizon;    /* out: the lowest seq that can be listed exactly */
};

/* A chunk the store knows, with its uncompressed size (GC). */
struct meta_chunk {
        struct hash hash;
        uint32_t size;
};

/* --- transfer records (meta_sqlite_transfers.c; the rules are in
 *     transfers.c) --- */

enum meta_xfer_status {
        META_XFER_PENDING = 0,
        META_XFER_UPLOADING,
        META_XFER_COMPLETE,
        META_XFER_FAILED,
        META_XFER_NSTATUS
};
#define META_XFER_OPEN                                                                             \
        ((1u << META_XFER_PENDING) | (1u << META_XFER_UPLOADING) | (1u << META_XFER_FAILED))
#define META_XFER_ACTIVE ((1u << META_XFER_PENDING) | (1u << META_XFER_UPLOADING))
enum meta_dl_status { META_DL_PENDING = 0, META_DL_DONE, META_DL_FAILED, META_DL_NSTATUS };
/* A device's download policy for files whose upload is not complete. */
enum meta_policy { META_POLICY_SKIP = 0, META_POLICY_WAIT };

/* One upload record. Strings are borrowed: in a listing they are valid
 * during the callback only; as input, during the call. */
struct meta_record {
        int64_t id;
        int64_t batch;
        int64_t ord; /* position in its batch's announce */
        char device[META_DEVICE_ID_LEN + 1];
        const char *device_name; /* listings only ("" when unknown) */
        const char *path;
        int kind;
        uint64_t size;
        int has_hash;
        struct hash hash;
        int status; /* enum meta_xfer_status */
        uint64_t bytes_done;
        int64_t started;
        int64_t updated;
        const char *reason; /* "" when none */
        int64_t seq;        /* the commit that completed it, else 0 */
};

/* Which records a listing returns: all set fields must match. */
struct meta_record_filter {
        int64_t id;         /* 0: any */
        const char *device; /* uploader id, NULL: any */
        const char *path;   /* NULL: any */
        unsigned statuses;  /* bit mask of 1 << enum meta_xfer_status; 0: any */
};

/* A batch with the counts of all its records. */
struct meta_batch {
        int64_t id;
        char device[META_DEVICE_ID_LEN + 1];
        const char *device_name;
        int64_t created;
        int64_t updated;                  /* the newest record update */
        int64_t files;                    /* records in it */
        int64_t count[META_XFER_NSTATUS]; /* by status */
        uint64_t bytes_total;
        uint64_t bytes_done;
};

/* One download record: what a device still has to download (or could
 * not). Strings borrowed as for struct meta_record. */
struct meta_download {
        char device[META_DEVICE_ID_LEN + 1]; /* the downloader */
        const char *device_name;
        const char *path;
        int64_t seq; /* the version to download; 0 while its upload runs */
        int status;  /* enum meta_dl_status */
        const char *reason;
        int64_t updated;
};

/* A device added or removed, with how many files it held then. */
struct meta_device_event {
        int64_t id;
        char device[META_DEVICE_ID_LEN + 1];
        const char *name;
        const char *event; /* "added" or "removed" */
        int64_t time;
        int64_t applied_seq;
        int64_t files;
};

/* A file a commit put: the version (path, size, content hash, seq) that
 * completes its uploader's open record. Strings borrowed, as input. */
struct meta_committed {
        const char *path;
        uint64_t size;
        const struct hash *hash; /* NULL: none */
        int64_t seq;
};

typedef int (*meta_record_cb)(const struct meta_record *r, void *userdata);
typedef int (*meta_batch_cb)(const struct meta_batch *b, void *userdata);
typedef int (*meta_download_cb)(const struct meta_download *d, void *userdata);
typedef int (*meta_device_event_cb)(const struct meta_device_event *ev, void *userdata);
/* A file a device held: path, size and the seq of that version. */
typedef int (*meta_held_file_cb)(const char *path, uint64_t size, int64_t seq, void *userdata);
/* A device with records pending or uploading (transfers_tick). */
typedef int (*meta_active_cb)(int64_t user, const char *device, int64_t last_seen, void *userdata);

/* --- requests/registry (meta_sqlite_requests.c; the rules are in
 *     api_requests.c): upload requests between the devices of an account,
 *     the account's LAN key, and the per-user "devices" and "requests"
 *     versions the event streams announce --- */

#define META_LAN_KEY_HEX 64 /* a 32-byte key as hex */

/* Stored statuses of an upload request; a pending request past its expiry
 * is turned into META_REQ_EXPIRED by requests_expire. */
enum meta_req_status {
        META_REQ_PENDING = 0,
        META_REQ_ACCEPTED,
        META_REQ_RUNNING,
        META_REQ_DONE,
        META_REQ_FAILED,
        META_REQ_EXPIRED,
        META_REQ_NSTATUS
};
/* The per-user counters of registry_version. */
enum meta_counter { META_COUNTER_DEVICES = 0, META_COUNTER_REQUESTS };

/* One upload request. Strings borrowed as for struct meta_record. */
struct meta_request {
        int64_t id;
        char requester[META_DEVICE_ID_LEN + 1];
        char target[META_DEVICE_ID_LEN + 1];
        const char *requester_name; /* listings only ("" when unknown) */
        const char *target_name;    /* listings only */
        const char *paths;          /* a JSON array of paths, as stored */
        int all;
        const char *via; /* "lan" or "relay" */
        int status;      /* enum meta_req_status */
        int64_t files;
        const char *reason; /* "" when none */
        int64_t created;
        int64_t updated;
        int64_t expires;
};

/* Which requests a listing returns: all set fields must match. */
struct meta_request_filter {
        int64_t id;         /* 0: any */
        const char *target; /* device id, NULL: any */
};

typedef int (*meta_request_cb)(const struct meta_request *r, void *userdata);

struct meta;

struct meta_ops {
        int (*begin)(struct meta *m);
        int (*commit)(struct meta *m);
        int (*rollback)(struct meta *m);

        /* -EEXIST when the name is taken. */
        int (*user_add)(struct meta *m, const char *name, const char *email, const char *pwhash,
                        int64_t now, int64_t *id);
        int (*user_get)(struct meta *m, const char *name, struct meta_user *out);

        int (*device_add)(struct meta *m, const struct meta_device *d,
                          const struct hash *token_hash);
        int (*device_by_token)(struct meta *m, const struct hash *token_hash,
                               struct meta_device *out);
        int (*device_touch)(struct meta *m, const char *device_id, int64_t now,
                            const char *address);
        /* Oldest first. */
        int (*device_list)(struct meta *m, int64_t user, meta_device_cb cb, void *userdata);

        /* Records that the account holds the chunk (and that the server
         * stores it, with its uncompressed size). Idempotent. */
        int (*chunk_add)(struct meta *m, int64_t user, const struct hash *h, uint32_t size);
        /* 1 (and *size when size is not NULL) if the account holds the
         * chunk, 0 if not. */
        int (*chunk_held)(struct meta *m, int64_t user, const struct hash *h, uint32_t *size);

        int (*entry_get)(struct meta *m, int64_t user, const char *path, struct meta_entry *out);
        /* Inserts or replaces the entry at e->path. */
        int (*entry_put)(struct meta *m, int64_t user, const struct meta_entry *e);
        /* Takes the next number of the user's space (inside a transaction). */
        int (*seq_next)(struct meta *m, int64_t user, int64_t *seq);
        int (*seq_current)(struct meta *m, int64_t user, int64_t *seq);
        /* Entries with seq > since, ascending, at most limit. */
        int (*entry_changes)(struct meta *m, int64_t user, int64_t since, int64_t limit,
                             meta_entry_cb cb, void *userdata);
        /* Entries equal to prefix or under prefix/ (all when prefix is NULL),
         * by path (bytewise); tombstones only with with_deleted. */
        int (*entry_list)(struct meta *m, int64_t user, const char *prefix, int with_deleted,
                          meta_entry_cb cb, void *userdata);

        /* --- history, trash, retention, GC (meta_sqlite_history.c) --- */

        /* Records e, an entry just stored with entry_put (seq and time set),
         * as a version of its path, and marks the path's previous version
         * superseded at e->time. Inside the transaction of the entry_put. */
        int (*version_add)(struct meta *m, int64_t user, const struct meta_entry *e);
        /* Version seq of path (with chunks); -ENOENT when path has no
         * retained version seq. */
        int (*version_get)(struct meta *m, int64_t user, const char *path, int64_t seq,
                           struct meta_entry *out);
        /* The newest retained live (not deleted) version of path, with its
         * chunks; -ENOENT when there is none. */
        int (*version_last_live)(struct meta *m, int64_t user, const char *path,
                                 struct meta_entry *out);
        /* The retained versions of path, newest first, at most limit,
         * without chunks. */
        int (*version_list)(struct meta *m, int64_t user, const char *path, int64_t limit,
                            meta_version_cb cb, void *userdata);
        /* Paths equal to prefix or under prefix/ (all when NULL) whose
         * current entry is a tombstone and which have a retained live
         * version (given without chunks), newest tombstone first. */
        int (*trash_list)(struct meta *m, int64_t user, const char *prefix, meta_trash_cb cb,
                          void *userdata);
        /* The space as of a point: resolves q->at (from q->time when that
         * is >= 0; clamped to the current seq) and lists, by path, for each
         * path in q's range its newest retained version with seq <= q->at
         * when that is not a tombstone, with its chunks, at most q->limit.
         * -ESTALE (with a message) when q->at is below q->horizon, the
         * highest seq that superseded a pruned version: a version current
         * at q->at may be gone, so the listing would not be exact. */
        int (*snapshot_list)(struct meta *m, int64_t user, struct meta_snapshot *q,
                             meta_entry_cb cb, void *userdata);
        /* Like chunk_held, and when the account holds the chunk sets the
         * ownership row's touched time to now (the GC's grace counts from
         * it). 1 (and *size when not NULL) or 0. */
        int (*chunk_touch)(struct meta *m, int64_t user, const struct hash *h, int64_t now,
                           uint32_t *size);
        /* Every user id, ascending, in *ids (malloc'd, caller frees). */
        int (*user_ids)(struct meta *m, int64_t **ids, size_t *n);
        /* Deletes the versions of user's space that are not a path's current
         * entry and were superseded before superseded_before (when > 0) or
         * have at least keep_versions newer versions of their path (when
         * > 0), and raises the space's prune horizon (snapshot_list) to the
         * seq of the newest version that superseded one of them. *pruned:
         * how many. */
        int (*version_prune)(struct meta *m, int64_t user, int64_t superseded_before,
                             int64_t keep_versions, int64_t *pruned);
        /* Deletes user's chunk ownership rows touched before
         * touched_before that no retained version or current entry of the
         * account refers to. *dropped: how many. Inside a transaction, so
         * that no commit slips in between the look at the references and
         * the delete. */
        int (*chunk_refs_drop)(struct meta *m, int64_t user, int64_t touched_before,
                               int64_t *dropped);
        /* Up to max chunks that no account holds, in hash order, after
         * the hash after (from the start when NULL), in out; *n: how many. */
        int (*chunk_orphans)(struct meta *m, const struct hash *after, size_t max,
                             struct meta_chunk *out, size_t *n);
        /* Deletes the chunk's row if still no account holds it: 1 if
         * deleted, 0 if not (held again, or absent). */
        int (*chunk_forget)(struct meta *m, const struct hash *h);

        /* --- transfer records, download records, device policy and
         *     history (meta_sqlite_transfers.c) --- */

        /* The user's transfers version (0 before any change), and the next
         * one (inside the transaction of the change it stands for). */
        int (*xfer_version)(struct meta *m, int64_t user, int64_t *version);
        int (*xfer_version_bump)(struct meta *m, int64_t user, int64_t *version);
        int (*xfer_batch_add)(struct meta *m, int64_t user, const char *device, int64_t now,
                              int64_t *batch);
        /* Records matching f, by batch (newest first) and announce order. */
        int (*xfer_records)(struct meta *m, int64_t user, const struct meta_record_filter *f,
                            meta_record_cb cb, void *userdata);
        /* Inserts r (r->id == 0: sets r->id) or updates the record r->id
         * (-ENOENT when it is not user's). -EEXIST when the device already
         * has an open record for the path. */
        int (*xfer_record_put)(struct meta *m, int64_t user, struct meta_record *r);
        /* The open record of device for each c[i].path (if it has one)
         * becomes complete: size and bytes done c[i].size, hash c[i].hash,
         * seq c[i].seq, no reason, updated now; its batch, place and kind
         * stay. *changed: how many records changed. */
        int (*xfer_records_complete)(struct meta *m, int64_t user, const char *device,
                                     const struct meta_committed *c, size_t n, int64_t now,
                                     int64_t *changed);
        int (*xfer_record_delete)(struct meta *m, int64_t user, int64_t id);
        /* Device's records with a status in from (mask) become failed with
         * reason; *n: how many changed. */
        int (*xfer_records_fail)(struct meta *m, int64_t user, const char *device, unsigned from,
                                 const char *reason, int64_t now, int64_t *n);
        /* The batches that hold records, newest first. */
        int (*xfer_batches)(struct meta *m, int64_t user, meta_batch_cb cb, void *userdata);
        /* Drops the batches created before `before` all of whose records
         * are complete and were last updated before it (or that hold no
         * record any more), with their records. *n: batches dropped. */
        int (*xfer_prune)(struct meta *m, int64_t before, int64_t *n);
        /* Every device (of any user) with records pending or uploading. */
        int (*xfer_active_devices)(struct meta *m, meta_active_cb cb, void *userdata);

        /* Inserts or replaces device's download record for path. */
        int (*dl_put)(struct meta *m, int64_t user, const struct meta_download *d);
        /* Download records of device (NULL: all devices of user) for path
         * (NULL: any) with a status in statuses (0: any), by device and
         * path. */
        int (*dl_list)(struct meta *m, int64_t user, const char *device, const char *path,
                       unsigned statuses, meta_download_cb cb, void *userdata);
        /* The pending download records of path (all devices of user) get
         * seq and reason. *n: how many. */
        int (*dl_ready)(struct meta *m, int64_t user, const char *path, int64_t seq,
                        const char *reason, int64_t now, int64_t *n);
        /* Device's pending download records with 0 < seq <= applied_seq are
         * done. *n: how many. */
        int (*dl_applied)(struct meta *m, const char *device, int64_t applied_seq, int64_t now,
                          int64_t *n);
        /* Deletes device's download records for path (NULL: any path) with
         * a status in statuses (0: any). *n: how many. */
        int (*dl_delete)(struct meta *m, const char *device, const char *path, unsigned statuses,
                         int64_t *n);

        /* The user's device whose id, or else whose name is id_or_name
         * (an active device; with with_removed, else the last removed one
         * of that name); -ENOENT, or -EEXIST when several active devices
         * have that name. with_removed: removed devices too. *removed: its
         * removal time, 0 while active (may be NULL). */
        int (*device_find)(struct meta *m, int64_t user, const char *id_or_name, int with_removed,
                           struct meta_device *out, int64_t *removed);
        int (*device_set_policy)(struct meta *m, const char *device, int policy);
        /* Raises the device's applied_seq to seq (never lowers it). */
        int (*device_set_applied)(struct meta *m, const char *device, int64_t seq);
        /* Revokes the device: its token stops working, it is no longer
         * listed; its rows stay for the records and history. */
        int (*device_remove)(struct meta *m, const char *device, int64_t now);
        /* The number of device's open (pending, uploading, failed) records. */
        int (*device_open_records)(struct meta *m, const char *device, int64_t *n);
        /* Records a device event. For "removed", the device's files (the
         * live file versions of the space as of its applied_seq) are kept
         * with it; *files: how many (may be NULL). */
        int (*device_event_add)(struct meta *m, int64_t user, const struct meta_device *d,
                                const char *event, int64_t now, int64_t *files);
        /* The user's device events, oldest first, of the device whose id or
         * name (at the time) is device (NULL: all). */
        int (*device_events)(struct meta *m, int64_t user, const char *device,
                             meta_device_event_cb cb, void *userdata);
        int (*device_event_files)(struct meta *m, int64_t event, meta_held_file_cb cb,
                                  void *userdata);

        /* --- requests/registry (meta_sqlite_requests.c) --- */

        /* The user's counter (enum meta_counter; 0 before any change), and
         * the next value of it. */
        int (*registry_version)(struct meta *m, int64_t user, int counter, int64_t *version);
        int (*registry_version_bump)(struct meta *m, int64_t user, int counter, int64_t *version);
        /* Sets the platform and LAN listener (lan_addr, lan_port,
         * lan_prefix) of the active device d->id from d. *changed: 1 when
         * one of them differed. */
        int (*device_set_info)(struct meta *m, const struct meta_device *d, int *changed);
        /* Renames the active device; -ENOENT when there is none. */
        int (*device_rename)(struct meta *m, const char *device, const char *name);
        /* The user's LAN key (hex) and its version; when the user has none
         * yet, fresh (hex) becomes it, version 1. */
        int (*lan_key_get)(struct meta *m, int64_t user, const char *fresh,
                           char key[META_LAN_KEY_HEX + 1], int64_t *version);
        /* Replaces the user's LAN key by fresh, version + 1; nothing when
         * the user has none yet. *version: the new version, or 0. */
        int (*lan_key_rotate)(struct meta *m, int64_t user, const char *fresh, int64_t *version);
        /* Inserts r (status, files, reason, times as given); sets r->id. */
        int (*request_add)(struct meta *m, int64_t user, struct meta_request *r);
        /* The user's requests matching f, newest first. */
        int (*requests_list)(struct meta *m, int64_t user, const struct meta_request_filter *f,
                             meta_request_cb cb, void *userdata);
        /* Sets status, files, reason and updated of the user's request
         * r->id; -ENOENT when there is none. */
        int (*request_set)(struct meta *m, int64_t user, const struct meta_request *r);
        /* Pending requests with expires <= now become expired (updated =
         * now). *users (malloc'd, caller frees): the users that had some,
         * each once; *n how many. */
        int (*requests_expire)(struct meta *m, int64_t now, int64_t **users, size_t *n);
        /* The user's requests for target that are not over (pending,
         * accepted, running) become failed with reason. *n: how many. */
        int (*requests_fail_target)(struct meta *m, int64_t user, const char *target,
                                    const char *reason, int64_t now, int64_t *n);

        /* --- several ferryd instances on one store (meta_pg.c; the
         *     SQLite store, which one process serves, grants every lock
         *     at once) --- */

        /* Takes the store-wide lock key (enum meta_lock_key), shared or
         * exclusive, for the calling thread until cluster_unlock() of the
         * same key on the same thread. try_only: 1 when taken, 0 when
         * another session holds it in a conflicting mode (does not wait).
         * Else waits and returns 1. Or -errno. */
        int (*cluster_lock)(struct meta *m, int64_t key, int shared, int try_only);
        void (*cluster_unlock)(struct meta *m, int64_t key, int shared);

        void (*close)(struct meta *m);
};

/* The store-wide locks of cluster_lock. */
enum meta_lock_key {
        /* The GC holds it exclusive while it deletes chunks; uploads hold
         * it shared from storing a chunk until its ownership row exists. */
        META_LOCK_GC = 0x66657272 /* "ferr" */
};

struct meta {
        const struct meta_ops *ops;
};

/* Opens (creating if needed) the SQLite store at path. Returns 0 or -errno. */
int meta_sqlite_open(const char *path, struct meta **out);
/* Opens the PostgreSQL store at conninfo (a libpq URI or key=value
 * string), bringing its schema up to date (schema.h). 0 or -errno with a
 * message. */
int meta_pg_open(const char *conninfo, struct meta **out);
/* Opens the store named by spec: "sqlite:PATH", or a "postgresql://" or
 * "postgres://" URI; NULL means "sqlite:DATA_DIR/meta.db". -EINVAL with a
 * message for anything else. */
int meta_open(const char *spec, const char *data_dir, struct meta **out);
/* Whether spec names a store several ferryd instances can share. */
int meta_is_shared(const char *spec);

static inline void meta_close(struct meta *m)
{
        if (m)
                m->ops->close(m);
}

#endif
