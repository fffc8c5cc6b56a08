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
 * Durability: a chunk is written to DIR/ab/.tmp-<random>, fsynced, renamed
 * into place and the directory fsynced, so a crash leaves either nothing or
 * the whole chunk under its name (at worst a stray .tmp- file).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zstd.h>

#include "blob.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"

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

struct blob_fs {
        struct blob base; /* first: struct blob * is cast back */
        char *dir;
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

static int bf_put(struct blob *b, const struct hash *h, uint8_t enc, const uint8_t *payload,
                  size_t len)
{
        struct blob_fs *bf = bf_of(b);
        char path[PATH_MAX], tmp[PATH_MAX], rnd[17];
        uint8_t *z = NULL;
        struct iovec iov[2];
        int fd = -1, r;

        r = bf_exists(b, h);
        if (r != 0)
                return r < 0 ? r : 0;
        r = chunk_path(bf, h, path, sizeof(path));
        if (r < 0)
                return r;
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
        /* The fan-out directory: created on first use. */
        snprintf(tmp, sizeof(tmp), "%.*s", (int)(strrchr(path, '/') - path), path);
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
                r = err_set(-errno, "chunk store: mkdir %s: %m", tmp);
                goto out;
        }
        r = fsutil_random_hex(rnd, 8);
        if (r < 0)
                goto out;
        snprintf(tmp + strlen(tmp), sizeof(tmp) - strlen(tmp), "/.tmp-%s", rnd);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = err_set(-errno, "chunk store: %s: %m", tmp);
                goto out;
        }
        iov[0].iov_base = &enc;
        iov[0].iov_len = 1;
        iov[1].iov_base = (void *)payload;
        iov[1].iov_len = len;
        r = write_all(fd, iov, 2);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        fd = -1;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                r = err_set(r, "chunk store: writing %s: %s", path, strerror(-r));
                goto out;
        }
        r = fsutil_fsync_parent(path);
out:
        if (fd >= 0)
                close(fd);
        free(z);
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

static void bf_close(struct blob *b)
{
        struct blob_fs *bf = bf_of(b);

        free(bf->dir);
        free(bf);
}

static const struct blob_ops fs_ops = {
    .put = bf_put,
    .get = bf_get,
    .exists = bf_exists,
    .close = bf_close,
};

int blob_fs_open(const char *dir, struct blob **out)
{
        struct blob_fs *bf;
        int r;

        r = fsutil_mkdirs(dir, 1);
        if (r < 0)
                return err_set(r, "chunk store: cannot create %s: %s", dir, strerror(-r));
        bf = calloc(1, sizeof(*bf));
        if (!bf)
                return -ENOMEM;
        bf->base.ops = &fs_ops;
        bf->dir = strdup(dir);
        if (!bf->dir) {
                free(bf);
                return -ENOMEM;
        }
        *out = &bf->base;
        return 0;
}
