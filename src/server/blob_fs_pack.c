/* blob_fs_pack: the pack files of the folder chunk store (blob_fs.c has the
 * format): appending records to the packs this process owns, reading
 * records through a bounded cache of open pack files, and compaction.
 *
 * Ownership: a process appends only to packs it created, and holds an
 * exclusive flock() on each for as long as it may append to it (in a batch,
 * or idle in its free list). Nobody appends to a pack nobody holds, so the
 * lock is what tells compaction that a pack is closed.
 *
 * Compaction (bfs_compact, the GC's last step): a closed pack whose live
 * bytes (its index rows' records) are half its size or less has those
 * records copied to a new pack, which is made durable; then one durable
 * transaction points the rows at the copies and drops the pack's row, and
 * only then is the old file unlinked. A crash before the commit leaves dead
 * bytes in the new pack (a pack with no live bytes is the first thing the
 * next compaction drops); after it, an old file that no row names, which
 * the next compaction deletes too (pack files unknown to the index, old
 * enough and unlocked). A get() that looked a chunk up before the commit
 * reads the old file if it still has it open (the bytes do not change) or
 * finds the file gone and looks up again. The idle packs of this process
 * that have become candidates leave its free list first, so that a server
 * running for weeks does not keep its garbage in an open pack forever.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "blob_fs_int.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"

int bfs_pack_path(const struct blob_fs *bf, const char *name, char *out, size_t cap)
{
        int n = snprintf(out, cap, "%s/" BFS_PACK_DIR "/%s", bf->dir, name);

        if (n < 0 || (size_t)n >= cap)
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        return 0;
}

void bfs_pack_close(struct bfs_pack *p)
{
        if (!p)
                return;
        /* the blocks reserved past the end go back (see bfs_pack_append) */
        if (p->fd >= 0 && p->alloc > p->size)
                (void)ftruncate(p->fd, (off_t)p->size);
        if (p->fd >= 0)
                close(p->fd); /* drops the flock: the pack is closed for good */
        free(p);
}

static int write_all(int fd, struct iovec *v, int n, uint64_t off)
{
        int i = 0;

        while (i < n) {
                ssize_t w = pwritev(fd, &v[i], n - i, (off_t)off);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (uint64_t)w;
                while (i < n && (size_t)w >= v[i].iov_len) {
                        w -= (ssize_t)v[i].iov_len;
                        i++;
                }
                if (i < n) {
                        v[i].iov_base = (uint8_t *)v[i].iov_base + w;
                        v[i].iov_len -= (size_t)w;
                }
        }
        return 0;
}

/* A new pack: file created and locked first, durably named, then indexed,
 * so that no pack row ever names a file that is not there. */
static int pack_new(struct blob_fs *bf, struct bfs_pack **out)
{
        char path[PATH_MAX], rnd[17];
        struct bfs_pack *p;
        struct iovec v;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->fd = -1;
        r = fsutil_random_hex(rnd, 8);
        if (r < 0)
                goto out;
        snprintf(p->name, sizeof(p->name), "%s.pack", rnd);
        r = bfs_pack_path(bf, p->name, path, sizeof(path));
        if (r < 0)
                goto out;
        p->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (p->fd < 0) {
                r = err_set(-errno, "chunk store: %s: %m", path);
                goto out;
        }
        if (flock(p->fd, LOCK_EX | LOCK_NB) < 0) {
                r = err_set(-errno, "chunk store: locking %s: %m", path);
                goto out;
        }
        v.iov_base = (void *)BFS_PACK_MAGIC;
        v.iov_len = BFS_PACK_HDR;
        r = write_all(p->fd, &v, 1, 0);
        if (r == 0)
                r = fsutil_fsync_parent(path);
        if (r < 0) {
                err_set(r, "chunk store: creating %s: %s", path, strerror(-r));
                goto out;
        }
        p->size = BFS_PACK_HDR;
        r = bfs_index_pack_new(bf, p->name, &p->id);
out:
        if (r < 0) {
                if (p->fd >= 0)
                        unlink(path);
                bfs_pack_close(p);
                return r;
        }
        *out = p;
        return 0;
}

int bfs_pack_take(struct blob_fs *bf, uint64_t need, struct bfs_pack **out)
{
        struct bfs_pack **pp, *p = NULL;

        pthread_mutex_lock(&bf->mu);
        for (pp = &bf->free; *pp; pp = &(*pp)->next) {
                if ((*pp)->size + need <= bf->pack_max) {
                        p = *pp;
                        *pp = p->next;
                        p->next = NULL;
                        break;
                }
        }
        pthread_mutex_unlock(&bf->mu);
        if (p) {
                *out = p;
                return 0;
        }
        return pack_new(bf, out);
}

void bfs_pack_give(struct blob_fs *bf, struct bfs_pack *p, int broken)
{
        if (broken || p->full || p->size + BFS_REC_HDR >= bf->pack_max) {
                bfs_pack_close(p);
                return;
        }
        pthread_mutex_lock(&bf->mu);
        p->next = bf->free;
        bf->free = p;
        pthread_mutex_unlock(&bf->mu);
}

static void put_le32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int bfs_pack_append(struct blob_fs *bf, struct bfs_pack *p, const struct hash *h, uint8_t enc,
                    const uint8_t *payload, size_t len, uint64_t *off)
{
        uint8_t hdr[BFS_REC_HDR];
        struct iovec v[2];
        int r;

        if (len > UINT32_MAX)
                return err_set(-EFBIG, "chunk too large");
        /* Blocks reserved ahead, beyond EOF: an fdatasync() of a file that
         * grew into new blocks also writes the allocation bitmaps, one
         * synchronous write each (ext4 without a journal), where one into
         * reserved blocks writes the inode alone. Best effort: a file
         * system without fallocate() is tried once per BFS_PREALLOC. */
        if (p->size + sizeof(hdr) + len > p->alloc) {
                uint64_t want = p->size + sizeof(hdr) + len + BFS_PREALLOC;

                if (want > bf->pack_max)
                        want = bf->pack_max;
                if (want > p->alloc)
                        (void)fallocate(p->fd, FALLOC_FL_KEEP_SIZE, (off_t)p->alloc,
                                        (off_t)(want - p->alloc));
                p->alloc = want;
        }
        memcpy(hdr, h->b, HASH_LEN);
        put_le32(hdr + HASH_LEN, (uint32_t)len);
        hdr[HASH_LEN + 4] = enc;
        v[0].iov_base = hdr;
        v[0].iov_len = sizeof(hdr);
        v[1].iov_base = (void *)payload;
        v[1].iov_len = len;
        r = write_all(p->fd, v, 2, p->size);
        if (r < 0)
                return err_set(r, "chunk store: writing %s/" BFS_PACK_DIR "/%s: %s", bf->dir,
                               p->name, strerror(-r));
        *off = p->size;
        p->size += sizeof(hdr) + len;
        /* Start the write-back of every BFS_KICK bytes, so that flush()
         * mostly waits for I/O already under way; per record, small chunks
         * (records straddle pages) would have pages written twice and one
         * request each. An error here shows again at fdatasync. */
        if (p->size - p->kicked >= BFS_KICK) {
                (void)sync_file_range(p->fd, (off_t)p->kicked, (off_t)(p->size - p->kicked),
                                      SYNC_FILE_RANGE_WRITE);
                p->kicked = p->size;
        }
        if (p->size + BFS_REC_HDR >= bf->pack_max)
                p->full = 1;
        return 0;
}

/* The fd cache: up to BFS_FD_CACHE packs open for reading, least recently
 * used out first; an entry in use when evicted is closed by its last user
 * (an fd is never closed under a pread). */
static int fd_acquire(struct blob_fs *bf, const struct bfs_loc *loc, int *slot)
{
        struct bfs_fdent *e = NULL;
        char path[PATH_MAX];
        int i, fd, r;

        pthread_mutex_lock(&bf->mu);
        for (i = 0; i < BFS_FD_CACHE; i++) {
                if (bf->fds[i].pack == loc->pack && !bf->fds[i].dead) {
                        e = &bf->fds[i];
                        e->refs++;
                        e->used = ++bf->fd_clock;
                        *slot = i;
                        pthread_mutex_unlock(&bf->mu);
                        return e->fd;
                }
        }
        r = bfs_pack_path(bf, loc->name, path, sizeof(path));
        fd = r < 0 ? r : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = r < 0 ? r : errno == ENOENT ? -ESTALE : err_set(-errno, "%s: %m", path);
                pthread_mutex_unlock(&bf->mu);
                return r;
        }
        for (i = 0; i < BFS_FD_CACHE; i++) {
                struct bfs_fdent *c = &bf->fds[i];

                if (c->pack == 0 || (c->refs == 0 && (!e || c->used < e->used)))
                        e = c;
                if (c->pack == 0)
                        break;
        }
        if (!e || e->refs) {
                *slot = -1; /* all in use: this fd is the caller's to close */
        } else {
                if (e->pack)
                        close(e->fd);
                e->pack = loc->pack;
                e->fd = fd;
                e->refs = 1;
                e->dead = 0;
                e->used = ++bf->fd_clock;
                *slot = (int)(e - bf->fds);
        }
        pthread_mutex_unlock(&bf->mu);
        return fd;
}

static void fd_release(struct blob_fs *bf, int fd, int slot, int evict)
{
        struct bfs_fdent *e;

        if (slot < 0) {
                close(fd);
                return;
        }
        pthread_mutex_lock(&bf->mu);
        e = &bf->fds[slot];
        e->refs--;
        if (evict)
                e->dead = 1;
        if (e->dead && e->refs == 0) {
                close(e->fd);
                memset(e, 0, sizeof(*e));
        }
        pthread_mutex_unlock(&bf->mu);
}

/* Drops pack from the cache (its file is about to go). */
static void fd_evict(struct blob_fs *bf, int64_t pack)
{
        pthread_mutex_lock(&bf->mu);
        for (int i = 0; i < BFS_FD_CACHE; i++) {
                struct bfs_fdent *e = &bf->fds[i];

                if (e->pack != pack || e->dead)
                        continue;
                e->dead = 1;
                if (e->refs == 0) {
                        close(e->fd);
                        memset(e, 0, sizeof(*e));
                }
        }
        pthread_mutex_unlock(&bf->mu);
}

void bfs_fd_cache_clear(struct blob_fs *bf)
{
        for (int i = 0; i < BFS_FD_CACHE; i++)
                if (bf->fds[i].pack)
                        close(bf->fds[i].fd);
        memset(bf->fds, 0, sizeof(bf->fds));
}

/* Reads the record at loc from fd into hdr + out. */
static int read_record(int fd, const struct bfs_loc *loc, uint8_t *hdr, struct buf *out)
{
        struct iovec v[2];
        uint64_t off = loc->off;
        size_t got = 0, want = BFS_REC_HDR + (size_t)loc->len;
        int r;

        buf_reset(out);
        r = buf_reserve(out, loc->len);
        if (r < 0)
                return r;
        while (got < want) {
                ssize_t n;

                v[0].iov_base = hdr + (got < BFS_REC_HDR ? got : BFS_REC_HDR);
                v[0].iov_len = got < BFS_REC_HDR ? BFS_REC_HDR - got : 0;
                v[1].iov_base = out->data + (got > BFS_REC_HDR ? got - BFS_REC_HDR : 0);
                v[1].iov_len = loc->len - (got > BFS_REC_HDR ? got - BFS_REC_HDR : 0);
                n = preadv(fd, v, 2, (off_t)(off + got));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ESTALE; /* shorter than the index says */
                got += (size_t)n;
        }
        out->len = loc->len;
        return 0;
}

int bfs_pack_read(struct blob_fs *bf, const struct hash *h, const struct bfs_loc *loc,
                  struct buf *out)
{
        uint8_t hdr[BFS_REC_HDR];
        int fd, slot, r;

        fd = fd_acquire(bf, loc, &slot);
        if (fd < 0)
                return fd;
        r = read_record(fd, loc, hdr, out);
        /* The header must name the chunk: anything else is a pack id
         * reused for another file under a stale cached fd, or damage. */
        if (r == 0 && (memcmp(hdr, h->b, HASH_LEN) || get_le32(hdr + HASH_LEN) != loc->len ||
                       hdr[HASH_LEN + 4] != loc->enc))
                r = -ESTALE;
        fd_release(bf, fd, slot, r == -ESTALE);
        if (r < 0 && r != -ESTALE)
                r = err_set(r, "chunk store: reading %s: %s", loc->name, strerror(-r));
        return r;
}

/* Copies pack old's live records (rows[0..n)) to dest packs, then moves
 * the rows. Returns the bytes copied, or -errno. */
static int64_t compact_one(struct blob_fs *bf, int oldfd, const struct bfs_packrow *old,
                           struct bfs_row *rows, size_t n, struct bfs_pack **dest)
{
        struct buf data = BUF_INIT;
        uint8_t hdr[BFS_REC_HDR];
        struct bfs_loc loc;
        int64_t copied = 0;
        size_t i;
        int r = 0;

        for (i = 0; i < n && r == 0; i++) {
                loc.pack = old->id;
                loc.off = rows[i].off;
                loc.len = rows[i].len;
                loc.enc = rows[i].enc;
                r = read_record(oldfd, &loc, hdr, &data);
                if (r == 0 && memcmp(hdr, rows[i].h.b, HASH_LEN))
                        r = -EBADMSG;
                if (r < 0) {
                        r = err_set(r, "chunk store: compacting %s: record at %llu: %s", old->name,
                                    (unsigned long long)rows[i].off, strerror(-r));
                        break;
                }
                if (*dest && (*dest)->size + BFS_REC_HDR + data.len > bf->pack_max &&
                    (*dest)->size > BFS_PACK_HDR) {
                        /* full: durable now, closed for good */
                        if (fdatasync((*dest)->fd) < 0)
                                r = err_set(-errno, "chunk store: fdatasync: %m");
                        bfs_pack_close(*dest);
                        *dest = NULL;
                        if (r < 0)
                                break;
                }
                if (!*dest) {
                        r = pack_new(bf, dest);
                        if (r == 0)
                                copied += BFS_PACK_HDR;
                }
                if (r == 0)
                        r = bfs_pack_append(bf, *dest, &rows[i].h, rows[i].enc, data.data, data.len,
                                            &rows[i].off);
                if (r == 0) {
                        rows[i].pack = (*dest)->id;
                        copied += BFS_REC_HDR + (int64_t)data.len;
                }
        }
        buf_free(&data);
        if (r == 0 && *dest && fdatasync((*dest)->fd) < 0)
                r = err_set(-errno, "chunk store: fdatasync: %m");
        if (r == 0)
                r = bfs_index_move(bf, old->id, rows, n);
        return r < 0 ? r : copied;
}

/* Takes this process's idle packs that became candidates out of its free
 * list, closing them, so that compaction can take them. */
static void retire_idle(struct blob_fs *bf)
{
        struct bfs_pack **pp, *p;
        uint64_t live;

        pthread_mutex_lock(&bf->mu);
        for (pp = &bf->free; (p = *pp);) {
                if (bfs_index_pack_live(bf, p->id, &live) == 0 && live * 2 <= p->size) {
                        *pp = p->next;
                        bfs_pack_close(p);
                } else {
                        pp = &p->next;
                }
        }
        pthread_mutex_unlock(&bf->mu);
}

/* Deletes pack files the index does not know: left by a crash after a
 * compaction's commit or before a new pack's row. Only old, unlocked ones:
 * a young one may be a pack another process is creating. */
static void sweep_orphans(struct blob_fs *bf, uint64_t *freed)
{
        char path[PATH_MAX], dir[PATH_MAX];
        time_t now = time(NULL);
        struct dirent *de;
        struct stat st;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/" BFS_PACK_DIR, bf->dir);
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                int fd;

                if (de->d_name[0] == '.' || l + 1 != BFS_NAME_LEN ||
                    strcmp(de->d_name + l - 5, ".pack") || bfs_index_has_pack(bf, de->d_name))
                        continue;
                if (bfs_pack_path(bf, de->d_name, path, sizeof(path)) < 0)
                        continue;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (fstat(fd, &st) == 0 && st.st_mtime < now - BFS_STALE_SEC &&
                    flock(fd, LOCK_EX | LOCK_NB) == 0 && bfs_index_has_pack(bf, de->d_name) == 0 &&
                    unlink(path) == 0) {
                        log_info("chunk store: removed unindexed pack %s", path);
                        *freed += (uint64_t)st.st_size;
                }
                close(fd);
        }
        closedir(d);
}

int bfs_compact(struct blob_fs *bf, uint64_t *freed)
{
        struct bfs_packrow *packs = NULL;
        struct bfs_pack *dest = NULL;
        char path[PATH_MAX];
        size_t n = 0, i;
        int r;

        *freed = 0;
        retire_idle(bf);
        r = bfs_index_packs(bf, &packs, &n);
        for (i = 0; r == 0 && i < n; i++) {
                struct bfs_row *rows = NULL;
                size_t nrows = 0;
                struct stat st;
                int64_t copied;
                int fd;

                if (bfs_pack_path(bf, packs[i].name, path, sizeof(path)) < 0)
                        continue;
                if (dest && dest->id == packs[i].id)
                        continue;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        log_warn("chunk store: pack %s: %s", path, strerror(errno));
                        continue;
                }
                /* locked: a writer may still append to it */
                if (fstat(fd, &st) < 0 || packs[i].live * 2 > (uint64_t)st.st_size ||
                    flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        close(fd);
                        continue;
                }
                r = bfs_index_pack_rows(bf, packs[i].id, &rows, &nrows);
                copied = r < 0 ? r : compact_one(bf, fd, &packs[i], rows, nrows, &dest);
                free(rows);
                if (copied == -EAGAIN) {
                        r = 0; /* rows appeared meanwhile: not closed after all */
                } else if (copied < 0) {
                        r = (int)copied;
                } else {
                        fd_evict(bf, packs[i].id);
                        if (unlink(path) < 0)
                                log_warn("chunk store: removing %s: %s", path, strerror(errno));
                        else if ((uint64_t)st.st_size > (uint64_t)copied)
                                *freed += (uint64_t)st.st_size - (uint64_t)copied;
                }
                close(fd);
        }
        bfs_pack_close(dest);
        free(packs);
        if (r == 0)
                sweep_orphans(bf, freed);
        if (*freed)
                log_info("chunk store: compaction freed %llu bytes", (unsigned long long)*freed);
        return r;
}
