/* blob_fs_int: what the three files of the folder chunk store share
 * (blob_fs.c: the blob_ops and legacy per-file chunks; blob_fs_pack.c: pack
 * files, reads through a bounded fd cache, compaction; blob_fs_index.c: the
 * SQLite index DIR/index.db). Not a public API: see blob.h, and the top of
 * blob_fs.c for the on-disk format.
 */
#ifndef FERRY_BLOB_FS_INT_H
#define FERRY_BLOB_FS_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "buf.h"
#include "hash.h"

#define BFS_PACK_DIR "packs"
#define BFS_PACK_MAGIC "FERRYPK1" /* the first 8 bytes of every pack */
#define BFS_PACK_HDR 8
#define BFS_REC_HDR (HASH_LEN + 4 + 1) /* hash, payload length (LE), enc */
#define BFS_PACK_MAX_DEFAULT (64ull << 20)
#define BFS_NAME_LEN 22 /* 16 hex + ".pack" + NUL */
#define BFS_FD_CACHE 64
#define BFS_STALE_SEC 600 /* a file older than this has no writer left */
#define BFS_PREALLOC (8ull << 20)
/* Appends start their write-back in spans of this much (bfs_pack_append). */
#define BFS_KICK (1ull << 20)

/* A pack this process appends to: in a batch, or idle in the free list. */
struct bfs_pack {
        int64_t id;
        char name[BFS_NAME_LEN];
        int fd;        /* O_RDWR, flock()ed exclusive while we may append */
        uint64_t size; /* where the next record goes */
        uint64_t synced;
        uint64_t kicked; /* write-back started up to here */
        uint64_t alloc;  /* preallocated up to here (past size: beyond EOF) */
        int full;        /* closed for appends: closed for good when given back */
        struct bfs_pack *next;
};

/* Where a chunk's record is. */
struct bfs_loc {
        int64_t pack;
        char name[BFS_NAME_LEN];
        uint64_t off; /* of the record (its header) */
        uint32_t len; /* of the payload */
        uint8_t enc;
};

/* One row of the index, written at flush() or moved by compaction. */
struct bfs_row {
        struct hash h;
        int64_t pack;
        uint64_t off;
        uint32_t len;
        uint8_t enc;
};

/* One pack as the index knows it. */
struct bfs_packrow {
        int64_t id;
        char name[BFS_NAME_LEN];
        uint64_t live; /* bytes of its records that rows point at */
};

struct bfs_fdent {
        int64_t pack; /* 0: free slot */
        int fd;
        int refs;
        int dead; /* evicted while in use: closed by the last release */
        uint64_t used;
};

#define BFS_READERS 4

/* A connection for lookups: a get() takes any that is free, so that
 * parallel fetches do not queue behind one connection. */
struct bfs_reader {
        sqlite3 *db;
        pthread_mutex_t mu;
        sqlite3_stmt *lookup, *live;
};

struct bfs_index {
        struct bfs_reader rd[BFS_READERS];
        unsigned next_rd; /* where the search for a free reader starts */
        sqlite3 *wr;      /* writes: reads never wait for a commit's fsync */
        pthread_mutex_t wr_mu;
        sqlite3_stmt *insert, *add_live, *del, *pack_new, *move, *pack_del, *pack_left;
        sqlite3_stmt *full, *normal, *begin, *commit, *rollback;
};

struct blob_fs {
        struct blob base; /* first: struct blob * is cast back */
        char *dir;
        int lock_fd; /* DIR/.lock, flock()ed shared (exclusive once claimed) */
        int legacy;  /* DIR/ab/<hex> chunk files may exist */
        uint64_t pack_max;
        pthread_mutex_t mu; /* the free list and the fd cache */
        struct bfs_pack *free;
        struct bfs_fdent fds[BFS_FD_CACHE];
        uint64_t fd_clock;
        struct bfs_index ix;
};

/* blob_fs_index.c */
int bfs_index_open(struct blob_fs *bf);
void bfs_index_close(struct blob_fs *bf);
/* 1 and *loc when h is indexed, 0 when not, or -errno. */
int bfs_index_lookup(struct blob_fs *bf, const struct hash *h, struct bfs_loc *loc);
int bfs_index_pack_new(struct blob_fs *bf, const char *name, int64_t *id);
/* Inserts rows[0..n) in one durable transaction (hashes already indexed
 * are left as they are). 0 or -errno. */
int bfs_index_commit(struct blob_fs *bf, const struct bfs_row *rows, size_t n);
/* Deletes h's row (not durably: see blob_fs.c). 0, -ENOENT or -errno. */
int bfs_index_remove(struct blob_fs *bf, const struct hash *h);
int bfs_index_pack_live(struct blob_fs *bf, int64_t id, uint64_t *live);
int bfs_index_packs(struct blob_fs *bf, struct bfs_packrow **out, size_t *n);
int bfs_index_pack_rows(struct blob_fs *bf, int64_t id, struct bfs_row **out, size_t *n);
/* Points the rows still in pack old at their copies rows[0..n) (rows gone
 * meanwhile stay gone) and drops pack old, in one durable transaction.
 * 0, -EAGAIN when rows not in rows[] still point at old, or -errno. */
int bfs_index_move(struct blob_fs *bf, int64_t old, const struct bfs_row *rows, size_t n);
/* 1 if a pack of that file name is indexed, 0 if not, or -errno. */
int bfs_index_has_pack(struct blob_fs *bf, const char *name);

/* blob_fs_pack.c */
/* A pack to append need bytes to: an idle one of this process, or new. */
int bfs_pack_take(struct blob_fs *bf, uint64_t need, struct bfs_pack **out);
/* Back to the free list, or closed when full or broken. */
void bfs_pack_give(struct blob_fs *bf, struct bfs_pack *p, int broken);
void bfs_pack_close(struct bfs_pack *p);
/* Appends a record; *off is where it starts. 0 or -errno. */
int bfs_pack_append(struct blob_fs *bf, struct bfs_pack *p, const struct hash *h, uint8_t enc,
                    const uint8_t *payload, size_t len, uint64_t *off);
/* Reads the payload loc points at into out, checking the record's header.
 * -ESTALE when the pack is gone or no longer holds that record (compacted
 * meanwhile: look up again), or -errno. */
int bfs_pack_read(struct blob_fs *bf, const struct hash *h, const struct bfs_loc *loc,
                  struct buf *out);
void bfs_fd_cache_clear(struct blob_fs *bf);
int bfs_compact(struct blob_fs *bf, uint64_t *freed);
int bfs_pack_path(const struct blob_fs *bf, const char *name, char *out, size_t cap);

#endif
