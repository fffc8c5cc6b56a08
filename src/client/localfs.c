/* localfs: the local file-system moves of a sync round that must never lose
 * data: the folder lock, the temp-file sweep (which spares resumable partial
 * downloads), safe-parent checks, trash and conflict copies. See localfs.h.
 *
 * Nothing here follows a symlink inside the folder: walks use lstat and
 * O_NOFOLLOW, and a path from the network is written only when each of its
 * parents is a real directory, so a link planted in the folder (or sent by a
 * hostile server) can never redirect a write outside it.
 */
#include "localfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conflict.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "path.h"

int localfs_lock(const char *root, int *fd)
{
        struct buf p = BUF_INIT;
        int f = -1, r;

        r = buf_printf(&p, "%s/%s/%s", root, PATH_STATE_DIR, LOCALFS_LOCK_FILE);
        if (r < 0)
                goto out;
        f = open((const char *)p.data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f < 0) {
                r = -errno;
                err_set(r, "cannot open the lock %s: %s", (const char *)p.data, strerror(-r));
                goto out;
        }
        if (flock(f, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        r = err_set(-EBUSY,
                                    "another ferry is already working on %s (it holds %s); "
                                    "try again when it is done",
                                    root, (const char *)p.data);
                else
                        r = err_set(-errno, "cannot lock %s: %s", (const char *)p.data,
                                    strerror(errno));
                goto out;
        }
        *fd = f;
        f = -1;
out:
        if (f >= 0)
                close(f);
        buf_free(&p);
        return r;
}

void localfs_unlock(int fd)
{
        if (fd >= 0)
                close(fd); /* closing the last descriptor drops the flock */
}

#define RESUME_TAG 'r'

void localfs_resume_name(const char *path, char *out)
{
        char hex[HASH_HEX_LEN + 1];
        struct hash h;
        size_t plen = strlen(PATH_TEMP_PREFIX);

        hash_buf(path, strlen(path), &h);
        hash_to_hex(&h, hex);
        memcpy(out, PATH_TEMP_PREFIX, plen);
        out[plen] = RESUME_TAG;
        memcpy(out + plen + 1, hex, 16);
        out[plen + 17] = '\0';
}

int localfs_is_resume_name(const char *name)
{
        size_t plen = strlen(PATH_TEMP_PREFIX);

        if (strlen(name) != LOCALFS_RESUME_NAME_LEN || strncmp(name, PATH_TEMP_PREFIX, plen) != 0 ||
            name[plen] != RESUME_TAG)
                return 0;
        for (const char *c = name + plen + 1; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return 0;
        return 1;
}

/* A partial download that the next download of the same path may resume:
 * kept by the sweep unless it sat untouched for a day (its path was
 * probably deleted or renamed on the server meanwhile). The ctime moves on
 * every write, unlike the mtime, which a finished download sets to the
 * server's. */
static int resumable(const char *name, const struct stat *st, time_t now)
{
        return localfs_is_resume_name(name) && S_ISREG(st->st_mode) && st->st_nlink == 1 &&
               now - st->st_ctim.tv_sec < LOCALFS_RESUME_MAX_AGE;
}

struct sweep {
        time_t now;
        int keep_resumable;
        int64_t removed;
        int64_t kept;
};

/* One directory level of the sweep: removes temp files here, then recurses
 * into subdirectories after closing this one, so that a deep tree never
 * holds more than one directory open. */
static int sweep_dir(struct buf *path, int top, struct sweep *sw)
{
        char **subdirs = NULL;
        size_t nsub = 0, capsub = 0, len = path->len;
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = opendir((const char *)path->data);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                return err_set(-errno, "cannot read directory %s: %s", (const char *)path->data,
                               strerror(errno));
        }
        while ((de = readdir(d)) != NULL) {
                struct stat st;

                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (top && !strcmp(de->d_name, PATH_STATE_DIR))
                        continue;
                /* Most entries are plain files with ordinary names: no stat
                 * needed when readdir already says what they are. */
                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN &&
                    strncmp(de->d_name, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)) != 0)
                        continue;
                path->len = len;
                r = buf_printf(path, "/%s", de->d_name);
                if (r < 0)
                        goto out;
                if (lstat((const char *)path->data, &st) < 0)
                        continue; /* vanished meanwhile */
                if (S_ISDIR(st.st_mode)) {
                        if (nsub == capsub) {
                                size_t ncap = capsub ? capsub * 2 : 16;
                                char **p = realloc(subdirs, ncap * sizeof(*p));

                                if (!p) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                subdirs = p;
                                capsub = ncap;
                        }
                        subdirs[nsub] = strdup(de->d_name);
                        if (!subdirs[nsub]) {
                                r = -ENOMEM;
                                goto out;
                        }
                        nsub++;
                } else if (!strncmp(de->d_name, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX))) {
                        if (sw->keep_resumable && resumable(de->d_name, &st, sw->now)) {
                                log_debug("kept %s: a download may resume it",
                                          (const char *)path->data);
                                sw->kept++;
                                continue;
                        }
                        if (unlink((const char *)path->data) == 0) {
                                log_info("removed %s left by an interrupted run",
                                         (const char *)path->data);
                                sw->removed++;
                        }
                }
        }
        closedir(d);
        d = NULL;
        for (size_t i = 0; i < nsub; i++) {
                path->len = len;
                r = buf_printf(path, "/%s", subdirs[i]);
                if (r < 0)
                        goto out;
                r = sweep_dir(path, 0, sw);
                if (r < 0)
                        goto out;
        }
out:
        path->len = len;
        if (path->data)
                path->data[len] = '\0';
        if (d)
                closedir(d);
        for (size_t i = 0; i < nsub; i++)
                free(subdirs[i]);
        free(subdirs);
        return r;
}

int localfs_sweep_temp(const char *root, int keep_resumable, int64_t *removed, int64_t *kept)
{
        struct sweep sw = {.now = time(NULL), .keep_resumable = keep_resumable};
        struct buf path = BUF_INIT;
        int r;

        r = buf_append_str(&path, root);
        if (r == 0)
                r = sweep_dir(&path, 1, &sw);
        buf_free(&path);
        if (removed)
                *removed = sw.removed;
        if (kept)
                *kept = sw.kept;
        return r;
}

int localfs_safe_parents(const char *root, const char *path, int create)
{
        struct buf full = BUF_INIT;
        const char *p = path, *slash;
        struct stat st;
        int r;

        r = buf_append_str(&full, root);
        if (r < 0)
                goto out;
        while ((slash = strchr(p, '/')) != NULL) {
                r = buf_append(&full, "/", 1);
                if (r == 0)
                        r = buf_append(&full, p, (size_t)(slash - p));
                if (r < 0)
                        goto out;
                p = slash + 1;
                if (lstat((const char *)full.data, &st) < 0) {
                        if (errno != ENOENT || !create) {
                                r = err_set(-errno, "cannot use %s: %s", (const char *)full.data,
                                            strerror(errno));
                                goto out;
                        }
                        if (mkdir((const char *)full.data, 0755) < 0 && errno != EEXIST) {
                                r = err_set(-errno, "cannot create directory %s: %s",
                                            (const char *)full.data, strerror(errno));
                                goto out;
                        }
                        /* Check again what is there now (a racing writer). */
                        if (lstat((const char *)full.data, &st) < 0) {
                                r = err_set(-errno, "cannot use %s: %s", (const char *)full.data,
                                            strerror(errno));
                                goto out;
                        }
                }
                if (S_ISLNK(st.st_mode)) {
                        r = err_set(-ELOOP, "refusing to write %s: its parent %s is a symlink",
                                    path, (const char *)full.data);
                        goto out;
                }
                if (!S_ISDIR(st.st_mode)) {
                        r = err_set(-ENOTDIR,
                                    "refusing to write %s: its parent %s is not a directory", path,
                                    (const char *)full.data);
                        goto out;
                }
        }
        r = 0;
out:
        buf_free(&full);
        return r;
}

void localfs_trash_stamp(time_t when, char out[16])
{
        struct tm tm;

        localtime_r(&when, &tm);
        if (strftime(out, 16, "%Y%m%d-%H%M%S", &tm) == 0)
                snprintf(out, 16, "%lld", (long long)when);
}

int localfs_trash(const char *root, const char *stamp, const char *path, char **dest)
{
        struct buf src = BUF_INIT, dst = BUF_INIT;
        char *dir = NULL;
        struct stat st;
        size_t base;
        int r;

        r = buf_printf(&src, "%s/%s", root, path);
        if (r == 0)
                r = buf_printf(&dst, "%s/%s/%s/%s/%s", root, PATH_STATE_DIR, LOCALFS_TRASH_DIR,
                               stamp, path);
        if (r < 0)
                goto out;
        dir = strdup((const char *)dst.data);
        if (!dir) {
                r = -ENOMEM;
                goto out;
        }
        *strrchr(dir, '/') = '\0';
        r = fsutil_mkdirs(dir, 1);
        if (r < 0)
                goto out;
        base = dst.len;
        for (int i = 1; lstat((const char *)dst.data, &st) == 0; i++) {
                dst.len = base;
                r = buf_printf(&dst, ".%d", i);
                if (r < 0)
                        goto out;
        }
        if (rename((const char *)src.data, (const char *)dst.data) < 0) {
                r = err_set(-errno, "cannot move %s to the trash: %s", (const char *)src.data,
                            strerror(errno));
                goto out;
        }
        log_info("moved %s to %s", path, (const char *)dst.data);
        if (dest) {
                *dest = (char *)buf_steal(&dst, NULL);
        }
        r = 0;
out:
        free(dir);
        buf_free(&src);
        buf_free(&dst);
        return r;
}

int localfs_conflict_move(const char *root, const char *path, const char *device, time_t when,
                          char **newpath)
{
        char *name = NULL, *src = NULL, *dst = NULL;
        struct stat st;
        int r;

        src = path_join(root, path);
        if (!src) {
                r = -ENOMEM;
                goto out;
        }
        /* A second conflict on the same file within the same second would
         * get the same name: take the next free second instead of
         * overwriting the first copy. */
        for (int i = 0; i < 1000; i++) {
                free(name);
                free(dst);
                dst = NULL;
                name = conflict_name(path, device, when + i);
                if (!name) {
                        r = -ENOMEM;
                        goto out;
                }
                dst = path_join(root, name);
                if (!dst) {
                        r = -ENOMEM;
                        goto out;
                }
                if (lstat(dst, &st) < 0 && errno == ENOENT)
                        break;
        }
        if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) < 0 &&
            (errno != EINVAL || rename(src, dst) < 0)) {
                r = err_set(-errno, "cannot move %s aside as %s: %s", src, dst, strerror(errno));
                goto out;
        }
        log_warn("conflict: kept the local version of %s as %s", path, name);
        if (newpath) {
                *newpath = name;
                name = NULL;
        }
        r = 0;
out:
        free(name);
        free(src);
        free(dst);
        return r;
}

uint32_t localfs_wire_mode(int kind, uint32_t st_mode)
{
        if (kind != KIND_FILE)
                return 0;
        return (st_mode & 0111) ? 0755 : 0644;
}

int localfs_kind(const struct stat *st)
{
        if (S_ISREG(st->st_mode))
                return KIND_FILE;
        if (S_ISDIR(st->st_mode))
                return KIND_DIR;
        if (S_ISLNK(st->st_mode))
                return KIND_SYMLINK;
        return -1;
}

void localfs_entry_stat(struct index_entry *e, const struct stat *st)
{
        e->kind = localfs_kind(st);
        e->size = e->kind == KIND_FILE ? (uint64_t)st->st_size : 0;
        e->mtime_ns = fsutil_ts_ns(&st->st_mtim);
        e->ctime_ns = fsutil_ts_ns(&st->st_ctim);
        e->ino = (uint64_t)st->st_ino;
        e->mode = localfs_wire_mode(e->kind, (uint32_t)st->st_mode);
}

int localfs_stat_matches(const struct index_entry *e, const struct stat *st)
{
        struct index_entry now = {0};

        localfs_entry_stat(&now, st);
        if (now.kind != e->kind)
                return 0;
        if (now.kind == KIND_DIR)
                return 1;
        return now.size == e->size && now.mtime_ns == e->mtime_ns && now.ctime_ns == e->ctime_ns &&
               now.ino == e->ino;
}

int localfs_entry_trusted(const struct index_entry *e, const struct stat *st)
{
        return e->kind == KIND_FILE && localfs_stat_matches(e, st) &&
               e->mtime_ns < e->recorded_ns - LOCALFS_RACY_NS;
}

int localfs_same_stat(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int localfs_hash_file(const char *root, const char *path, struct hash *out)
{
        struct manifest m = MANIFEST_INIT;
        char *full = NULL;
        int fd = -1, r = 0;

        full = path_join(root, path);
        if (!full) {
                r = -ENOMEM;
                goto out;
        }
        fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = err_set(-errno, "cannot open %s: %s", full, strerror(errno));
                goto out;
        }
        /* the file hash is that of the chunk list (manifest.h) */
        r = manifest_from_fd(fd, &m, NULL, NULL);
        if (r == 0)
                *out = m.file_hash;
out:
        if (fd >= 0)
                close(fd);
        manifest_free(&m);
        free(full);
        return r;
}
