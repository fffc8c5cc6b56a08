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

        /* --- transfer records, download records, device policy and
         *     history (meta_sqlite_transfers.c) --- */

        void (*close)(struct meta *m);
};

struct meta {
        const struct meta_ops *ops;
};

/* Opens (creating if needed) the SQLite store at path. Returns 0 or -errno. */
int meta_sqlite_open(const char *path, struct meta **out);

static inline void meta_close(struct meta *m)
{
        if (m)
                m->ops->close(m);
}

#endif
