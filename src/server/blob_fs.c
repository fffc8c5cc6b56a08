/* blob_fs: the default chunk store of ferryd, one file per chunk in a local
 * directory: DIR/ab/<64 hex>, where "ab" is the hash's first byte, so that
 * no directory grows past what file systems list quickly.
 *
 * File format: one byte, the frame encoding of what follows (0 raw, 1 zstd),
 * then the payload. An explicit byte rather than sniffing the zstd magic,
 * because a raw chunk of a .zst file starts with that magic too. A raw
 * chunk is compressed here (zstd level 1) when that saves at least an
 * eighth (judged first on a 4 KiB sample, see worth_compressing); a chunk
 * the client sent compressed is kept as sent.
 *
 * Durability, per batch (see blob.h): put() writes each new chunk to
 * DIR/.tmp/<random> without a flush (only starting its write-back);
 * flush() then fsyncs all of them back to back, which lets the disk and
 * the file system overlap and merge the writes, renames each into place and
 * fsyncs each touched fan-out directory once. A batch of many chunks uses
 * two syncfs() of the store's file system instead (one for the bytes, one
 * for the names): every fsync() ends in its own flush of the disk's write
 * cache, which for small chunks costs more than their writes, while
 * syncfs() writes everything dirty and flushes once. A chunk thus appears under
 * its name only once its bytes are on disk, and metadata points at it only
 * once its name is on disk too; a crash leaves at worst stray files in
 * DIR/.tmp, which blob_fs_open() sweeps once they are old enough that no
 * writer can still own them.
 *
 * Removal (the GC) unlinks the chunk's file without syncing its directory:
 * a crash may bring a removed chunk back, which wastes its space until it
 * is stored again (content-addressed: the same bytes) but never breaks a
 * reference. DIR/.lock carries a shared flock() for as long as the store
 * is open, which claim() turns into an exclusive one: `ferryd gc` on a
 * stopped server gets it, on a running one it does not.
 */
#include <dirent.h>
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
#include <zstd.h>

#include "blob.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"
#include "log.h"

#define COMPRESS_MIN 512 /* smaller chunks are not worth a try */
#define PROBE_LEN 4096   /* sample tried first on larger chunks */

/* 1 if compressing data[0..len) is worth a try. Clients already compress
 * what pays, so raw chunks are mostly incompressible: a 4 KiB sample tells
 * for a fraction of the cost of compressing the whole chunk. */
static int worth_compressing(const uint8_t *data, size_t len)
{
        uint8_t z[PROBE_LEN + PROBE_LEN / 8 + 512];
        size_t zlen;

        if (len < COMPRESS_MIN)
                return 0;
        if (len < 2 * PROBE_LEN)
                return 1;
        zlen = ZSTD_compress(z, sizeof(z), data, PROBE_LEN, 1);
        return !ZSTD_isError(zlen) && zlen <= PROBE_LEN - PROBE_LEN / 8;
}

#define TMP_SUBDIR ".tmp"
#define LOCK_FILE ".lock"
#define TMP_STALE_SEC 600 /* a temp file older than this has no writer left */

/* From this many new chunks in a batch on, flush() uses syncfs() (see the
 * top); below it, per-file fsync() spares a small batch from waiting for
 * unrelated dirty data on the same file system. */
#define SYNCFS_MIN 16

struct blob_fs {
        struct blob base; /* first: struct blob * is cast back */
        char *dir;
        int lock_fd; /* DIR/.lock, flock()ed shared (exclusive once claimed) */
};

/* A chunk written to a temp file, waiting for flush(). */
struct pending {
        struct hash h;
        char tmp[PATH_MAX];
};

struct blob_batch {
        struct pending *p;
        size_t n, cap;
        uint8_t dirs[256]; /* fan-out directories whose entries must be synced */
};

static struct blob_fs *bf_of(struct blob *b)
{
        return (struct blob_fs *)b;
}

static int chunk_path(struct blob_fs *bf, const struct hash *h, char *out, size_t cap)
{
        char hex[HASH_HEX_LEN + 1];
        int n;

        hash_to_hex(h, hex);
        n = snprintf(out, cap, "%s/%.2s/%s", bf->dir, hex, hex);
        if (n < 0 || (size_t)n >= cap)
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        return 0;
}

static int write_all(int fd, const struct iovec *iov, int n)
{
        struct iovec v[2];
        int i;

        memcpy(v, iov, (size_t)n * sizeof(*v));
        i = 0;
        while (i < n) {
                ssize_t w = writev(fd, &v[i], n - i);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
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

static int bf_exists(struct blob *b, const struct hash *h)
{
        char path[PATH_MAX];
        int r = chunk_path(bf_of(b), h, path, sizeof(path));

        if (r < 0)
                return r;
        if (access(path, F_OK) == 0)
                return 1;
        return errno == ENOENT ? 0 : err_set(-errno, "chunk store: %s: %m", path);
}

static int bf_batch_new(struct blob *b, struct blob_batch **out)
{
        (void)b;
        *out = calloc(1, sizeof(**out));
        return *out ? 0 : -ENOMEM;
}

static void batch_drop(struct blob_batch *bb)
{
        for (size_t i = 0; i < bb->n; i++)
                if (bb->p[i].tmp[0])
                        unlink(bb->p[i].tmp);
        bb->n = 0;
        memset(bb->dirs, 0, sizeof(bb->dirs));
}

static void bf_batch_free(struct blob *b, struct blob_batch *bb)
{
        (void)b;
        if (!bb)
                return;
        batch_drop(bb);
        free(bb->p);
        free(bb);
}

/* Writes enc + payload to a new temp file, named in *p. */
static int write_temp(struct blob_fs *bf, uint8_t enc, const uint8_t *payload, size_t len,
                      struct pending *p)
{
        char rnd[17];
        struct iovec iov[2];
        int fd, r;

        r = fsutil_random_hex(rnd, 8);
        if (r < 0)
                return r;
        if (snprintf(p->tmp, sizeof(p->tmp), "%s/" TMP_SUBDIR "/%s", bf->dir, rnd) >=
            (int)sizeof(p->tmp))
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return err_set(-errno, "chunk store: %s: %m", p->tmp);
        iov[0].iov_base = &enc;
        iov[0].iov_len = 1;
        iov[1].iov_base = (void *)payload;
        iov[1].iov_len = len;
        r = write_all(fd, iov, 2);
        /* Start the write-back now, so that flush() mostly waits for I/O
         * already under way; an error here shows again at fsync. */
        if (r == 0)
                (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0) {
                unlink(p->tmp);
                return err_set(r, "chunk store: writing %s: %s", p->tmp, strerror(-r));
        }
        return 0;
}

static int bf_put(struct blob *b, struct blob_batch *bb, const struct hash *h, uint8_t enc,
                  const uint8_t *payload, size_t len)
{
        struct blob_fs *bf = bf_of(b);
        uint8_t *z = NULL;
        int r;

        /* A hash put twice in one batch (clients do not, but may) is written
         * twice: the second rename replaces the first copy with the same
         * bytes, cheaper than looking it up in the batch every time. */
        /* Already stored: its bytes were synced before its rename, but its
         * name may not be yet (another batch between rename and directory
         * sync), so flush() syncs its directory too. */
        r = bf_exists(b, h);
        if (r != 0) {
                if (r > 0)
                        bb->dirs[h->b[0]] = 1;
                return r < 0 ? r : 0;
        }
        if (bb->n == bb->cap) {
                size_t ncap = bb->cap ? bb->cap * 2 : 64;
                struct pending *np = realloc(bb->p, ncap * sizeof(*np));

                if (!np)
                        return -ENOMEM;
                bb->p = np;
                bb->cap = ncap;
        }
        if (enc == FRAME_ENC_RAW && worth_compressing(payload, len)) {
                size_t zcap = ZSTD_compressBound(len), zlen;
                z = malloc(zcap);
                if (!z)
                        return -ENOMEM;
                zlen = ZSTD_compress(z, zcap, payload, len, 1);
                if (!ZSTD_isError(zlen) && zlen <= len - len / 8) {
                        enc = FRAME_ENC_ZSTD;
                        payload = z;
                        len = zlen;
                }
        }
        r = write_temp(bf, enc, payload, len, &bb->p[bb->n]);
        if (r == 0) {
                bb->p[bb->n].h = *h;
                bb->n++;
        }
        free(z);
        return r;
}

static int fsync_path(const char *path, int flags)
{
        int fd = open(path, flags | O_CLOEXEC), r = 0;

        if (fd < 0)
                return err_set(-errno, "chunk store: %s: %m", path);
        if (fsync(fd) < 0 && !((flags & O_DIRECTORY) && (errno == EINVAL || errno == EROFS)))
                r = err_set(-errno, "chunk store: fsync %s: %m", path);
        close(fd);
        return r;
}

/* Creates the directory holding the chunk file path, durably. */
static int make_fanout(const char *path)
{
        char dir[PATH_MAX];

        snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(path, '/') - path), path);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return err_set(-errno, "chunk store: mkdir %s: %m", dir);
        return fsutil_fsync_parent(dir);
}

/* syncfs() of the file system holding the store. */
static int syncfs_store(struct blob_fs *bf)
{
        int fd = open(bf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return err_set(-errno, "chunk store: %s: %m", bf->dir);
        if (syncfs(fd) < 0)
                r = err_set(-errno, "chunk store: syncfs %s: %m", bf->dir);
        close(fd);
        return r;
}

static int bf_flush(struct blob *b, struct blob_batch *bb)
{
        struct blob_fs *bf = bf_of(b);
        char path[PATH_MAX];
        int many = bb->n >= SYNCFS_MIN;
        size_t i;
        int r = 0;

        /* 1. the bytes of every new chunk */
        if (many)
                r = syncfs_store(bf);
        for (i = 0; !many && i < bb->n && r == 0; i++)
                r = fsync_path(bb->p[i].tmp, O_RDONLY);
        if (r < 0)
                goto out;
        /* 2. their names: in place only now that the bytes are on disk */
        for (i = 0; i < bb->n; i++) {
                r = chunk_path(bf, &bb->p[i].h, path, sizeof(path));
                if (r < 0)
                        goto out;
                if (rename(bb->p[i].tmp, path) < 0) {
                        if (errno != ENOENT) {
                                r = err_set(-errno, "chunk store: rename to %s: %m", path);
                                goto out;
                        }
                        /* the fan-out directory: created on first use */
                        r = make_fanout(path);
                        if (r < 0)
                                goto out;
                        if (rename(bb->p[i].tmp, path) < 0) {
                                r = err_set(-errno, "chunk store: rename to %s: %m", path);
                                goto out;
                        }
                }
                bb->p[i].tmp[0] = 0;
                bb->dirs[bb->p[i].h.b[0]] = 1;
        }
        /* 3. the directories holding those names */
        if (many) {
                r = syncfs_store(bf);
                goto out;
        }
        for (i = 0; i < 256; i++) {
                if (!bb->dirs[i])
                        continue;
                if (snprintf(path, sizeof(path), "%s/%02x", bf->dir, (unsigned)i) >=
                    (int)sizeof(path)) {
                        r = err_set(-ENAMETOOLONG, "chunk store path too long");
                        goto out;
                }
                r = fsync_path(path, O_RDONLY | O_DIRECTORY);
                if (r < 0)
                        goto out;
        }
out:
        for (i = 0; i < bb->n; i++)
                if (bb->p[i].tmp[0])
                        unlink(bb->p[i].tmp);
        bb->n = 0;
        memset(bb->dirs, 0, sizeof(bb->dirs));
        return r;
}

static int bf_get(struct blob *b, const struct hash *h, struct buf *out, uint8_t *enc)
{
        char path[PATH_MAX];
        struct stat st;
        uint8_t e;
        size_t want;
        int fd, r;

        r = chunk_path(bf_of(b), h, path, sizeof(path));
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

static int bf_remove(struct blob *b, const struct hash *h)
{
        char path[PATH_MAX];
        int r = chunk_path(bf_of(b), h, path, sizeof(path));

        if (r < 0)
                return r;
        if (unlink(path) == 0)
                return 0;
        return errno == ENOENT ? -ENOENT : err_set(-errno, "chunk store: removing %s: %m", path);
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
};

/* Removes the temp files a crashed writer left in tmpdir. Only old ones:
 * a young one may belong to a writer still running (another process on the
 * same data directory). */
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
                    st.st_mtime < now - TMP_STALE_SEC && unlink(path) == 0)
                        n++;
        }
        closedir(d);
        if (n)
                log_info("chunk store: removed %d stale temporary files from %s", n, tmpdir);
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

int blob_fs_open(const char *dir, struct blob **out)
{
        char tmpdir[PATH_MAX];
        struct blob_fs *bf;
        int r, fd;

        if (snprintf(tmpdir, sizeof(tmpdir), "%s/" TMP_SUBDIR, dir) >= (int)sizeof(tmpdir))
                return err_set(-ENAMETOOLONG, "chunk store path too long");
        r = fsutil_mkdirs(tmpdir, 1);
        if (r < 0)
                return err_set(r, "chunk store: cannot create %s: %s", tmpdir, strerror(-r));
        fd = lock_shared(dir);
        if (fd < 0)
                return fd;
        sweep_temps(tmpdir);
        bf = calloc(1, sizeof(*bf));
        if (!bf) {
                close(fd);
                return -ENOMEM;
        }
        bf->base.ops = &fs_ops;
        bf->lock_fd = fd;
        bf->dir = strdup(dir);
        if (!bf->dir) {
                bf_close(&bf->base);
                return -ENOMEM;
        }
        *out = &bf->base;
        return 0;
}
