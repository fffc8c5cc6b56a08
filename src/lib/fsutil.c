/* fsutil: the file-system moves both sides make so that nothing is ever
 * half-written: write to a temporary file in the same directory, fsync it,
 * rename it over the target, fsync the directory. Also the process's
 * source of randomness (getrandom) and of wall-clock time. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

int fsutil_mkdirs(const char *path, int private_)
{
        mode_t mode = private_ ? 0700 : 0755;
        struct stat st;
        char *p = strdup(path);
        int r = 0;

        if (!p)
                return -ENOMEM;
        if (!*p) {
                r = err_set(-EINVAL, "cannot create a directory with an empty name");
                goto out;
        }
        /* Create each prefix in turn; ones that already exist are fine as
         * long as they are directories. */
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char saved = *s;

                *s = '\0';
                if (mkdir(p, mode) < 0) {
                        if (errno != EEXIST || stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
                                r = errno == EEXIST ? -ENOTDIR : -errno;
                                err_set(r, "cannot create directory %s: %s", p, strerror(-r));
                                goto out;
                        }
                }
                *s = saved;
                if (saved == '\0')
                        break;
        }
out:
        free(p);
        return r;
}

int fsutil_fsync_parent(const char *path)
{
        const char *slash = strrchr(path, '/');
        char *dir;
        int fd, r = 0;

        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t)(slash - path));
        if (!dir)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                err_set(r, "cannot open directory %s: %s", dir, strerror(-r));
                goto out;
        }
        /* Some file systems refuse fsync on directories; nothing to do then. */
        if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS) {
                r = -errno;
                err_set(r, "cannot fsync directory %s: %s", dir, strerror(-r));
        }
        close(fd);
out:
        free(dir);
        return r;
}

int fsutil_write_full(int fd, const uint8_t *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int fsutil_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
        char rnd[17];
        char *tmp = NULL;
        int fd = -1;
        int r;

        r = fsutil_random_hex(rnd, 8);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s.%s.tmp", path, rnd) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0) {
                r = -errno;
                err_set(r, "cannot create %s: %s", tmp, strerror(-r));
                goto out;
        }
        /* The mode is what the caller asked for, whatever the umask. */
        if (fchmod(fd, mode) < 0 || fsutil_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
                r = -errno;
                err_set(r, "cannot write %s: %s", tmp, strerror(-r));
                goto out;
        }
        if (close(fd) < 0) {
                fd = -1;
                r = -errno;
                err_set(r, "cannot write %s: %s", tmp, strerror(-r));
                goto out;
        }
        fd = -1;
        if (rename(tmp, path) < 0) {
                r = -errno;
                err_set(r, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
                goto out;
        }
        free(tmp);
        tmp = NULL;
        r = fsutil_fsync_parent(path);
out:
        if (fd >= 0)
                close(fd);
        if (tmp) {
                unlink(tmp);
                free(tmp);
        }
        return r;
}

int fsutil_read_all(const char *path, size_t max, char **out, size_t *len)
{
        char *data = NULL;
        size_t used = 0, cap;
        struct stat st;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return err_set(r, "cannot open %s: %s", path, strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                err_set(r, "cannot stat %s: %s", path, strerror(-r));
                goto out;
        }
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
                r = err_set(-E2BIG, "%s is larger than %zu bytes", path, max);
                goto out;
        }
        cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
        for (;;) {
                ssize_t n;

                if (used + 1 >= cap || !data) {
                        size_t ncap = data ? cap * 2 : cap;
                        char *p;

                        if (ncap > max + 2)
                                ncap = max + 2;
                        p = realloc(data, ncap);
                        if (!p) {
                                r = -ENOMEM;
                                goto out;
                        }
                        data = p;
                        cap = ncap;
                }
                n = read(fd, data + used, cap - used - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        err_set(r, "cannot read %s: %s", path, strerror(-r));
                        goto out;
                }
                if (n == 0)
                        break;
                used += (size_t)n;
                /* The file may have grown since fstat. */
                if (used > max) {
                        r = err_set(-E2BIG, "%s is larger than %zu bytes", path, max);
                        goto out;
                }
        }
        data[used] = '\0';
        *out = data;
        data = NULL;
        if (len)
                *len = used;
out:
        free(data);
        close(fd);
        return r;
}

int fsutil_random(void *out, size_t n)
{
        uint8_t *p = out;

        while (n > 0) {
                ssize_t got = getrandom(p, n, 0);

                if (got < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_set(-errno, "getrandom failed: %s", strerror(errno));
                }
                p += got;
                n -= (size_t)got;
        }
        return 0;
}

int fsutil_random_hex(char *out, size_t nbytes)
{
        static const char digits[] = "0123456789abcdef";
        uint8_t b[64];
        size_t done = 0;

        /* In blocks so that any length works without a heap buffer. */
        while (done < nbytes) {
                size_t k = nbytes - done < sizeof(b) ? nbytes - done : sizeof(b);
                int r = fsutil_random(b, k);

                if (r < 0)
                        return r;
                for (size_t i = 0; i < k; i++) {
                        out[2 * (done + i)] = digits[b[i] >> 4];
                        out[2 * (done + i) + 1] = digits[b[i] & 0xf];
                }
                done += k;
        }
        out[2 * nbytes] = '\0';
        return 0;
}

int64_t fsutil_ts_ns(const struct timespec *t)
{
        return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int64_t fsutil_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return fsutil_ts_ns(&ts);
}

int64_t fsutil_mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return fsutil_ts_ns(&ts);
}
