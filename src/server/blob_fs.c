/* blob_fs: the default chunk store of ferryd, in a local directory DIR.
 * Chunks are appended to pack files, found through an SQLite index, so that
 * storing a chunk costs a write into an open file rather than a new inode
 * (which, per 64 KiB chunk, cost more than the bytes themselves):
 *
 *   DIR/packs/<16 hex>.pack  the chunks (blob_fs_pack.c)
 *   DIR/index.db             hash -> (pack, offset, length, enc) (blob_fs_index.c)
 *   DIR/ab/<64 hex>          chunks stored by earlier versions, one file each
 *   DIR/.lock                the shared/claimed lock, see claim() below
 *
 * Pack format: the 8 bytes "FERRYPK1", then records, each a 37-byte header
 * (the chunk's 32-byte hash, the payload length as 4 bytes little-endian,
 * the frame encoding: 0 raw, 1 zstd) and the payload. The header makes a
 * pack readable without the index (to check it, or to rebuild the index),
 * and lets a read check that the record is the one it asked for. The
 * encoding is explicit rather than sniffed from the zstd magic, because a
 * raw chunk of a .zst file starts with that magic too. A raw chunk is
 * compressed here (zstd level 1) when that saves at least an eighth (judged
 * first on a 4 KiB sample, see worth_compressing); a chunk the client sent
 * compressed is kept as sent. A pack takes no more records once it reaches
 * 64 MiB (FERRY_BLOB_PACK_MAX bytes, for tests), so compaction copies
 * little at a time.
 *
 * Writes, per batch (see blob.h): put() appends each new chunk to a pack
 * the batch holds (taken from this process's free list of open, not-full
 * packs, or new; threads never share one) and starts its write-back. flush()
 * fdatasyncs the batch's packs, then inserts all of the batch's index rows
 * in one durable transaction: only then can a get() find them. A crash
 * before that commit leaves only dead bytes in a pack; a batch freed
 * without flush() likewise. A chunk already indexed is not written again.
 *
 * Removal (the GC) deletes the chunk's index row, without waiting for the
 * disk: a crash may bring a removed chunk back, which wastes its space until
 * it is removed again but never breaks a reference. The space comes back
 * by compaction, which the GC runs after its pass (blob_ops.compact): see
 * blob_fs_pack.c.
 *
 * Stores written before packs: chunk files DIR/ab/<hex> stay where they are
 * and readable (get, exists and remove look there when the index does not
 * have the chunk); new chunks go to packs. No migration step is needed, and
 * the GC empties the old layout as its chunks fall out of use. Stray files
 * in DIR/.tmp that the old layout's writers left are still swept at open.
 *
 * DIR/.lock carries a shared flock() for as long as the store is open,
 * which claim() turns into an exclusive one: `ferryd gc` on a stopped
 * server gets it, on a running one it does not.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "blob_fs_int.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"
#include "log.h"

#define COMPRESS_MIN 512 /* smaller chunks are not worth a try */
#define PROBE_LEN 4096   /* sample tried first on larger chunks */
#define TMP_SUBDIR ".tmp"
#define LOCK_FILE ".lock"
#define READ_TRIES 4 /* lookups of a chunk compaction keeps moving */

/* 1 if compressing data[0..len) is worth a try. Clients already compress
 * what pays, so raw chunks are mostly incompressible: a 4 KiB sample tells
 * for a fraction of the cost of compressing the whole chunk, and a quarter
 * of a smaller chunk (at least 512 bytes) for half the cost of trying it
 * whole (a folder of small files sends thousands of them). */
static int worth_compressing(ZSTD_CCtx *cc, const uint8_t *data, size_t len)
{
        uint8_t z[PROBE_LEN + PROBE_LEN / 8 + 512];
        size_t zlen, probe = len >= 2 * PROBE_LEN ? PROBE_LEN : len / 4;

        if (len < COMPRESS_MIN)
                return 0;
        if (probe < COMPRESS_MIN)
                return 1;
        zlen = ZSTD_compressCCtx(cc, z, sizeof(z), data, probe, 1);
        return !ZSTD_isError(zlen) && zlen <= probe - probe / 8;
}

struct blob_batch {
        struct bfs_row *rows; /* of the chunks appended, in pack order */
        size_t n, cap;
        struct bfs_pack **packs; /* taken; the last one is appended to */
        size_t np, pcap;
        ZSTD_CCtx *cc; /* reused: a fresh context per chunk costs more than the probe */
};

static struct blob_fs *bf_of(struct blob *b)
{
        return (struct blob_fs *)b;
}

static int legacy_path(struct blob_fs *bf, const struct hash *h, char *out, size_t cap)
{
        char hex[HASH_HEX_LEN + 1];
        int n;

        hash_to_hex(h, hex);
        n = snprintf(out, cap, "%s/%.2s/%s", bf->dir, hex, hex);
        if (n < 0 || (size_t)n >= cap)
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        return 0;
}

static int legacy_exists(struct blob_fs *bf, const struct hash *h)
{
        char path[PATH_MAX];
        int r;

        if (!bf->legacy)
                return 0;
        r = legacy_path(bf, h, path, sizeof(path));
        if (r < 0)
                return r;
        if (access(path, F_OK) == 0)
                return 1;
        return errno == ENOENT ? 0 : err_set(-errno, "chunk store: %s: %m", path);
}

static int bf_exists(struct blob *b, const struct hash *h)
{
        struct blob_fs *bf = bf_of(b);
        struct bfs_loc loc;
        int r = bfs_index_lookup(bf, h, &loc);

        return r != 0 ? r : legacy_exists(bf, h);
}

static int bf_batch_new(struct blob *b, struct blob_batch **out)
{
        (void)b;
        *out = calloc(1, sizeof(**out));
        return *out ? 0 : -ENOMEM;
}

/* Gives the batch's packs back and forgets its rows. */
static void batch_reset(struct blob_fs *bf, struct blob_batch *bb, int broken)
{
        for (size_t i = 0; i < bb->np; i++)
                bfs_pack_give(bf, bb->packs[i], broken);
        bb->np = 0;
        bb->n = 0;
}

static void bf_batch_free(struct blob *b, struct blob_batch *bb)
{
        if (!bb)
                return;
        /* what was appended and not flushed stays as dead bytes */
        batch_reset(bf_of(b), bb, 0);
        free(bb->rows);
        free(bb->packs);
        ZSTD_freeCCtx(bb->cc);
        free(bb);
}

/* The pack the batch appends rec bytes to, taking one when needed. */
static int batch_pack(struct blob_fs *bf, struct blob_batch *bb, uint64_t rec,
                      struct bfs_pack **out)
{
        struct bfs_pack *cur = bb->np ? bb->packs[bb->np - 1] : NULL;
        int r;

        if (cur && !cur->full && (cur->size + rec <= bf->pack_max || cur->size == BFS_PACK_HDR)) {
                *out = cur;
                return 0;
        }
        if (cur)
                cur->full = 1; /* closed once flushed */
        r = buf_grow_array(&bb->packs, &bb->pcap, bb->np + 1, sizeof(*bb->packs));
        if (r < 0)
                return r;
        r = bfs_pack_take(bf, rec, &bb->packs[bb->np]);
        if (r < 0)
                return r;
        *out = bb->packs[bb->np++];
        return 0;
}

static int bf_put(struct blob *b, struct blob_batch *bb, const struct hash *h, uint8_t enc,
                  const uint8_t *payload, size_t len)
{
        struct blob_fs *bf = bf_of(b);
        struct bfs_pack *p;
        struct bfs_row *row;
        uint8_t *z = NULL;
        int r;

        /* A hash put twice in one batch (clients do not, but may) is
         * appended twice: the second row is ignored at flush(), cheaper
         * than looking it up in the batch every time. Already stored: its
         * row was committed durably, or its legacy file synced. */
        r = bf_exists(b, h);
        if (r != 0)
                return r < 0 ? r : 0;
        r = buf_grow_array(&bb->rows, &bb->cap, bb->n + 1, sizeof(*bb->rows));
        if (r < 0)
                return r;
        if (enc == FRAME_ENC_RAW && len >= COMPRESS_MIN && !bb->cc && !(bb->cc = ZSTD_createCCtx()))
                return -ENOMEM;
        if (enc == FRAME_ENC_RAW && worth_compressing(bb->cc, payload, len)) {
                size_t zcap = ZSTD_compressBound(len), zlen;
                z = malloc(zcap);
                if (!z)
                        return -ENOMEM;
                zlen = ZSTD_compressCCtx(bb->cc, z, zcap, payload, len, 1);
                if (!ZSTD_isError(zlen) && zlen <= len - len / 8) {
                        enc = FRAME_ENC_ZSTD;
                        payload = z;
                        len = zlen;
                }
        }
        r = batch_pack(bf, bb, BFS_REC_HDR + (uint64_t)len, &p);
        row = &bb->rows[bb->n];
        if (r == 0)
                r = bfs_pack_append(bf, p, h, enc, payload, len, &row->off);
        if (r == 0) {
                row->h = *h;
                row->pack = p->id;
                row->len = (uint32_t)len;
                row->enc = enc;
                bb->n++;
        }
        free(z);
        return r;
}

static int bf_flush(struct blob *b, struct blob_batch *bb)
{
        struct blob_fs *bf = bf_of(b);
        int r = 0;

        /* 1. the bytes: a batch holds one pack, two when it filled one, so
         * an fdatasync each beats a syncfs() of the whole file system */
        for (size_t i = 0; i < bb->np && r == 0; i++) {
                struct bfs_pack *p = bb->packs[i];

                if (p->size == p->synced)
                        continue;
                if (fdatasync(p->fd) < 0)
                        r = err_set(-errno, "chunk store: fdatasync %s: %m", p->name);
                else
                        p->synced = p->size;
        }
        /* 2. the rows, in one durable transaction: visible from now on */
        if (r == 0)
                r = bfs_index_commit(bf, bb->rows, bb->n);
        batch_reset(bf, bb, r < 0);
        return r;
}

static int legacy_get(struct blob_fs *bf, const struct hash *h, struct buf *out, uint8_t *enc)
{
        char path[PATH_MAX];
        struct stat st;
        uint8_t e;
        size_t want;
        int fd, r;

        if (!bf->legacy)
                return -ENOENT;
        r = legacy_path(bf, h, path, sizeof(path));
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENOENT : err_set(-errno, "chunk store: %s: %m", path);
        if (fstat(fd, &st) < 0) {
                r = err_set(-errno, "chunk store: %s: %m", path);
                goto out;
        }
        if (st.st_size < 1 || (uint64_t)st.st_size > 1 + (uint64_t)FRAME_MAX_PAYLOAD) {
                r = err_set(-EBADMSG, "chunk store: %s: bad size", path);
                goto out;
        }
        want = (size_t)st.st_size - 1;
        buf_reset(out);
        r = buf_reserve(out, want);
        if (r < 0)
                goto out;
        if (read(fd, &e, 1) != 1 || e > FRAME_ENC_ZSTD) {
                r = err_set(-EBADMSG, "chunk store: %s: bad header", path);
                goto out;
        }
        while (out->len < want) {
                ssize_t n = read(fd, out->data + out->len, want - out->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = err_set(n < 0 ? -errno : -EIO, "chunk store: reading %s", path);
                        goto out;
                }
                out->len += (size_t)n;
        }
        *enc = e;
        r = 0;
out:
        close(fd);
        return r;
}

static int bf_get(struct blob *b, const struct hash *h, struct buf *out, uint8_t *enc)
{
        struct blob_fs *bf = bf_of(b);
        struct bfs_loc loc;
        char hex[HASH_HEX_LEN + 1];
        int r, i;

        /* Compaction may move the chunk between the lookup and the read:
         * the read then finds the old pack gone, and a new lookup the copy. */
        for (i = 0; i < READ_TRIES; i++) {
                r = bfs_index_lookup(bf, h, &loc);
                if (r < 0)
                        return r;
                if (r == 0)
                        return legacy_get(bf, h, out, enc);
                if (loc.enc > FRAME_ENC_ZSTD || loc.len > FRAME_MAX_PAYLOAD)
                        break;
                r = bfs_pack_read(bf, h, &loc, out);
                if (r == 0) {
                        *enc = loc.enc;
                        return 0;
                }
                if (r != -ESTALE)
                        return r;
        }
        hash_to_hex(h, hex);
        return err_set(-EIO, "chunk store: the record of %s in %s does not match the index", hex,
                       loc.name);
}

static int bf_remove(struct blob *b, const struct hash *h)
{
        struct blob_fs *bf = bf_of(b);
        char path[PATH_MAX];
        int r, found;

        r = bfs_index_remove(bf, h);
        if (r < 0 && r != -ENOENT)
                return r;
        found = r == 0;
        if (bf->legacy) {
                r = legacy_path(bf, h, path, sizeof(path));
                if (r < 0)
                        return r;
                if (unlink(path) == 0)
                        found = 1;
                else if (errno != ENOENT)
                        return err_set(-errno, "chunk store: removing %s: %m", path);
        }
        return found ? 0 : -ENOENT;
}

static int bf_compact(struct blob *b, uint64_t *freed)
{
        return bfs_compact(bf_of(b), freed);
}

static int bf_claim(struct blob *b)
{
        struct blob_fs *bf = bf_of(b);

        if (flock(bf->lock_fd, LOCK_EX | LOCK_NB) == 0)
                return 0;
        if (errno == EWOULDBLOCK)
                return err_set(-EBUSY,
                               "the chunk store %s is in use by another ferryd process (a "
                               "running server?)",
                               bf->dir);
        return err_set(-errno, "chunk store: locking %s/" LOCK_FILE ": %m", bf->dir);
}

static void bf_close(struct blob *b)
{
        struct blob_fs *bf = bf_of(b);
        struct bfs_pack *p;

        while ((p = bf->free)) {
                bf->free = p->next;
                bfs_pack_close(p);
        }
        bfs_fd_cache_clear(bf);
        bfs_index_close(bf);
        pthread_mutex_destroy(&bf->mu);
        if (bf->lock_fd >= 0)
                close(bf->lock_fd);
        free(bf->dir);
        free(bf);
}

static const struct blob_ops fs_ops = {
    .batch_new = bf_batch_new,
    .put = bf_put,
    .flush = bf_flush,
    .batch_free = bf_batch_free,
    .get = bf_get,
    .exists = bf_exists,
    .remove = bf_remove,
    .claim = bf_claim,
    .close = bf_close,
    .compact = bf_compact,
};

/* Removes the temp files a crashed writer of the per-file layout left in
 * tmpdir. Only old ones: a young one may belong to a writer still running
 * (an older ferryd on the same data directory). */
static void sweep_temps(const char *tmpdir)
{
        char path[PATH_MAX];
        struct dirent *de;
        struct stat st;
        time_t now = time(NULL);
        int n = 0;
        DIR *d;

        d = opendir(tmpdir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name) >= (int)sizeof(path))
                        continue;
                if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                    st.st_mtime < now - BFS_STALE_SEC && unlink(path) == 0)
                        n++;
        }
        closedir(d);
        if (n)
                log_info("chunk store: removed %d stale temporary files from %s", n, tmpdir);
}

/* 1 if dir has a fan-out directory of the per-file layout. */
static int has_legacy(const char *dir)
{
        struct dirent *de;
        DIR *d = opendir(dir);
        int found = 0;

        if (!d)
                return 0;
        while (!found && (de = readdir(d)))
                found = strlen(de->d_name) == 2 && strspn(de->d_name, "0123456789abcdef") == 2;
        closedir(d);
        return found;
}

/* Opens DIR/.lock and takes its shared lock: -EBUSY while a process holds
 * the store claimed. The fd or a negative code. */
static int lock_shared(const char *dir)
{
        char path[PATH_MAX];
        int fd, e;

        if (snprintf(path, sizeof(path), "%s/" LOCK_FILE, dir) >= (int)sizeof(path))
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return err_set(-errno, "chunk store: %s: %m", path);
        if (flock(fd, LOCK_SH | LOCK_NB) == 0)
                return fd;
        e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
                return err_set(-EBUSY,
                               "the chunk store %s is claimed by another process (`ferryd gc`?); "
                               "try again when it is done",
                               dir);
        return err_set(-e, "chunk store: locking %s: %s", path, strerror(e));
}

/* The pack size limit: 64 MiB, or FERRY_BLOB_PACK_MAX bytes (tests). */
static uint64_t pack_max(void)
{
        const char *s = getenv("FERRY_BLOB_PACK_MAX");
        unsigned long long v;
        char *end;

        if (!s || !*s)
                return BFS_PACK_MAX_DEFAULT;
        v = strtoull(s, &end, 10);
        if (*end || v < BFS_PACK_HDR + BFS_REC_HDR + 1)
                return BFS_PACK_MAX_DEFAULT;
        return v;
}

int blob_fs_open(const char *dir, struct blob **out)
{
        char path[PATH_MAX];
        struct blob_fs *bf;
        int r, fd;

        if (snprintf(path, sizeof(path), "%s/" BFS_PACK_DIR, dir) >= (int)sizeof(path))
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        r = fsutil_mkdirs(path, 1);
        if (r < 0)
                return err_set(r, "chunk store: cannot create %s: %s", path, strerror(-r));
        fd = lock_shared(dir);
        if (fd < 0)
                return fd;
        snprintf(path, sizeof(path), "%s/" TMP_SUBDIR, dir);
        sweep_temps(path);
        bf = calloc(1, sizeof(*bf));
        if (!bf) {
                close(fd);
                return -ENOMEM;
        }
        bf->base.ops = &fs_ops;
        bf->lock_fd = fd;
        bf->legacy = has_legacy(dir);
        bf->pack_max = pack_max();
        pthread_mutex_init(&bf->mu, NULL);
        bf->dir = strdup(dir);
        r = bf->dir ? bfs_index_open(bf) : -ENOMEM;
        if (r < 0) {
                bf_close(&bf->base);
                return r;
        }
        *out = &bf->base;
        return 0;
}
