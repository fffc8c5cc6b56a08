/* dlcopy: the local sources of a download (see dlcopy.h).
 *
 * One source is open at a time, as before this module: a download takes
 * most of a file's chunks from one old file (its previous version), in
 * order. For a trusted source the index's chunk list of that file is
 * loaded once, so that the next chunk wanted is usually recognised as the
 * next chunk of the source without a query per chunk, and so that runs of
 * chunks at consecutive offsets can be handed to the kernel in one call.
 */
#include "dlcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunker.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "localfs.h"
#include "log.h"
#include "path.h"
#include "transfer.h"

void dlcopy_init(struct dlcopy *dc, const char *root, struct index *idx,
                 int (*open_moved)(void *ud, const char *path), void *ud)
{
        const char *env = getenv("FERRY_DL_NO_COPY_RANGE");

        memset(dc, 0, sizeof(*dc));
        dc->root = root;
        dc->idx = idx;
        dc->open_moved = open_moved;
        dc->ud = ud;
        dc->fd = -1;
        dc->no_copy_range = env && *env && strcmp(env, "0") != 0;
}

void dlcopy_forget(struct dlcopy *dc)
{
        if (dc->fd >= 0)
                close(dc->fd);
        dc->fd = -1;
        free(dc->path);
        dc->path = NULL;
        manifest_free(&dc->m);
        free(dc->offs);
        dc->offs = NULL;
        dc->trusted = 0;
        dc->trust_checked = 0;
        dc->last = 0;
}

/* Decides whether the source just opened at path is trusted: its stat is
 * the index's for path, and the index's chunk list for it is loaded. */
static void src_trust(struct dlcopy *dc)
{
        struct index_entry e = {0};
        struct stat st;
        uint64_t off = 0;

        if (fstat(dc->fd, &st) < 0 || !S_ISREG(st.st_mode) || index_get(dc->idx, dc->path, &e) < 0)
                return;
        if (!localfs_entry_trusted(&e, &st))
                goto out;
        if (index_get_manifest(dc->idx, dc->path, &dc->m) < 0)
                goto out;
        dc->offs = malloc(dc->m.n * sizeof(*dc->offs));
        if (!dc->offs)
                goto out;
        for (size_t k = 0; k < dc->m.n; k++) {
                dc->offs[k] = off;
                off += dc->m.chunks[k].size;
        }
        if (off > (uint64_t)st.st_size)
                goto out;
        dc->st = st;
        dc->trusted = 1;
        log_debug("chunks of %s are taken unhashed: its stat is the one indexed", dc->path);
out:
        if (!dc->trusted) {
                manifest_free(&dc->m);
                free(dc->offs);
                dc->offs = NULL;
        }
        index_entry_free(&e);
}

/* Makes path (taken) the current source. */
static void src_open(struct dlcopy *dc, char *path)
{
        char *full = path_join(dc->root, path);

        dlcopy_forget(dc);
        dc->fd = full ? open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
        free(full);
        dc->path = path;
        if (dc->fd >= 0)
                return;
        /* moved to the trash this round: its ctime moved too, never trusted */
        dc->trust_checked = 1;
        if (dc->open_moved)
                dc->fd = dc->open_moved(dc->ud, path);
        if (dc->fd < 0)
                dc->fd = -1;
}

/* 1 when chunk k of the trusted source is ref. */
static int src_has(const struct dlcopy *dc, size_t k, const struct chunk_ref *ref)
{
        return k < dc->m.n && dc->m.chunks[k].size == ref->size &&
               hash_equal(&dc->m.chunks[k].hash, &ref->hash);
}

int dlcopy_next(struct dlcopy *dc, const struct chunk_ref *ref)
{
        if (!dc->trusted || !src_has(dc, dc->last + 1, ref))
                return 0;
        dc->last++;
        return 1;
}

int dlcopy_find(struct dlcopy *dc, const struct chunk_ref *ref, int want_trust, uint64_t *off)
{
        char *path = NULL;
        size_t lo, hi;
        uint64_t o;
        int found = DLCOPY_NONE;

        if (dc->trusted && (dlcopy_next(dc, ref) || src_has(dc, dc->last, ref))) {
                *off = dc->offs[dc->last];
                return DLCOPY_TRUSTED;
        }
        if (!dc->idx || index_find_chunk(dc->idx, &ref->hash, &path, &o) < 0)
                return DLCOPY_NONE;
        if (path_validate(path) < 0)
                goto out;
        if (!dc->path || strcmp(dc->path, path) != 0) {
                src_open(dc, path);
                path = NULL;
        }
        if (dc->fd < 0)
                goto out;
        *off = o;
        found = DLCOPY_VERIFY;
        if (want_trust && !dc->trust_checked) {
                dc->trust_checked = 1;
                src_trust(dc);
        }
        if (!dc->trusted)
                goto out;
        /* where the index put it in the chunk list loaded at open */
        lo = 0;
        hi = dc->m.n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (dc->offs[mid] < o)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < dc->m.n && dc->offs[lo] == o && src_has(dc, lo, ref)) {
                dc->last = lo;
                found = DLCOPY_TRUSTED;
        }
out:
        free(path);
        return found;
}

int dlcopy_read(struct dlcopy *dc, const struct chunk_ref *ref, uint64_t off, int trust,
                uint8_t *dst)
{
        struct hash h;

        if (dc->fd < 0 || transfer_pread_full(dc->fd, dst, ref->size, off) < 0)
                return 0;
        if (trust && dc->trusted)
                return 1;
        hash_buf(dst, ref->size, &h);
        return hash_equal(&h, &ref->hash);
}

void dlcopy_note(struct dlcopy *dc)
{
        struct dlcopy_use *u;

        if (!dc->trusted)
                return;
        for (size_t i = 0; i < dc->nused; i++)
                if (dc->used[i].st.st_dev == dc->st.st_dev &&
                    dc->used[i].st.st_ino == dc->st.st_ino)
                        return;
        if (dc->nused == DLCOPY_USES_MAX) {
                dc->overflow = 1;
                return;
        }
        u = &dc->used[dc->nused];
        u->fd = fcntl(dc->fd, F_DUPFD_CLOEXEC, 0);
        if (u->fd < 0) {
                dc->overflow = 1;
                return;
        }
        u->st = dc->st;
        dc->nused++;
}

static int need_buf(struct dlcopy *dc)
{
        if (!dc->buf)
                dc->buf = malloc(CHUNK_MAX);
        return dc->buf ? 0 : -ENOMEM;
}

int dlcopy_copy(struct dlcopy *dc, uint64_t off, uint64_t len, int out, const char *out_name)
{
        loff_t in = (loff_t)off;
        int r = 0;

        while (len > 0 && !dc->no_copy_range) {
                ssize_t n = copy_file_range(dc->fd, &in, out, NULL, (size_t)len, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0) {
                        r = err_set(-EIO, "%s got shorter while it was copied from", dc->path);
                        goto out;
                }
                if (n < 0) {
                        /* not across these files: the same bytes through
                         * this process, now and for the rest */
                        log_debug("copy_file_range from %s: %s; copying through memory", dc->path,
                                  strerror(errno));
                        dc->no_copy_range = 1;
                        break;
                }
                len -= (uint64_t)n;
                dc->bytes_copied += (uint64_t)n;
        }
        if (len > 0 && (r = need_buf(dc)) < 0)
                goto out;
        while (len > 0) {
                size_t step = len < CHUNK_MAX ? (size_t)len : CHUNK_MAX;

                r = transfer_pread_full(dc->fd, dc->buf, step, (uint64_t)in);
                if (r < 0) {
                        r = err_set(r, "cannot read %s: %s", dc->path,
                                    r == -EIO ? "it got shorter" : strerror(-r));
                        goto out;
                }
                r = fsutil_write_full(out, dc->buf, step);
                if (r < 0) {
                        r = err_set(r, "cannot write %s: %s", out_name, strerror(-r));
                        goto out;
                }
                in += (loff_t)step;
                len -= step;
        }
out:
        return r;
}

int dlcopy_settle(struct dlcopy *dc)
{
        int ok = !dc->overflow;

        for (size_t i = 0; i < dc->nused; i++) {
                struct stat st;

                if (fstat(dc->used[i].fd, &st) < 0 || !localfs_same_stat(&st, &dc->used[i].st))
                        ok = 0;
                close(dc->used[i].fd);
        }
        dc->nused = 0;
        dc->overflow = 0;
        return ok;
}

int dlcopy_verify_fd(struct dlcopy *dc, int fd, const struct manifest *m)
{
        uint64_t off = 0;
        struct hash h;
        int r;

        r = need_buf(dc);
        if (r < 0)
                return r;
        for (size_t k = 0; k < m->n; k++) {
                if (m->chunks[k].size > CHUNK_MAX)
                        return -EBADMSG;
                r = transfer_pread_full(fd, dc->buf, m->chunks[k].size, off);
                if (r < 0)
                        return r;
                hash_buf(dc->buf, m->chunks[k].size, &h);
                if (!hash_equal(&h, &m->chunks[k].hash))
                        return -EBADMSG;
                off += m->chunks[k].size;
        }
        return 0;
}

void dlcopy_free(struct dlcopy *dc)
{
        dlcopy_forget(dc);
        (void)dlcopy_settle(dc);
        free(dc->buf);
        dc->buf = NULL;
}
