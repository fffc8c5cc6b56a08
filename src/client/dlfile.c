/* dlfile: writing downloaded files (see dlfile.h).
 *
 * dlfile_write() hands the tasks out folder by folder (a run of tasks with
 * the same parent) from a shared counter: creating a file holds its
 * folder's lock in the kernel, so two threads in one folder mostly wait
 * for each other, and a thread slowed down by another program on the
 * machine takes fewer folders. Worker threads touch nothing but their
 * tasks: no error message, no log line; the calling thread reports the
 * first failure once all have stopped.
 */
#include "dlfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "path.h"

#define DLFILE_THREADS_MAX 4

/* Below this many tasks the threads are not worth starting. */
#define DLFILE_PARALLEL_MIN 8

enum step { STEP_OK, STEP_HASH, STEP_NAME, STEP_CREATE, STEP_WRITE };

struct pool {
        struct dlfile_task *tasks;
        size_t *starts; /* unit k is tasks [starts[k], starts[k + 1]) */
        size_t nunits;
        size_t next; /* the next unit to take (atomic) */
};

int dlfile_finish_fd(int fd, uint32_t mode, int64_t mtime_ns)
{
        struct timespec ts[2];

        ts[0].tv_sec = 0;
        ts[0].tv_nsec = UTIME_NOW;
        ts[1].tv_sec = (time_t)(mtime_ns / 1000000000);
        ts[1].tv_nsec = (long)(mtime_ns % 1000000000);
        if (ts[1].tv_nsec < 0) {
                ts[1].tv_sec -= 1;
                ts[1].tv_nsec += 1000000000;
        }
        if (fchmod(fd, (mode & 0777) ? (mode & 0777) : 0644) < 0 || futimens(fd, ts) < 0)
                return -errno;
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        return 0;
}

/* The temporary name beside final: "<dir>/.ferry-tmp-<random>". */
static char *temp_name(const char *final)
{
        const char *slash = strrchr(final, '/');
        char rnd[17], *tmp = NULL;

        if (!slash || fsutil_random_hex(rnd, 8) < 0 ||
            asprintf(&tmp, "%.*s/%s%s", (int)(slash - final), final, PATH_TEMP_PREFIX, rnd) < 0)
                return NULL;
        return tmp;
}

/* One task, on any thread: sets t->r and t->step on failure and leaves
 * no file behind then. */
static void write_one(struct dlfile_task *t)
{
        struct hash h;
        size_t off = 0;
        int ok = t->m->size == t->len;
        int r;

        t->fd = -1;
        for (size_t i = 0; ok && i < t->m->n; off += t->m->chunks[i].size, i++) {
                hash_buf(t->data + off, t->m->chunks[i].size, &h);
                ok = hash_equal(&h, &t->m->chunks[i].hash);
        }
        if (ok) {
                manifest_file_hash(t->m, &h);
                ok = hash_equal(&h, &t->m->file_hash);
        }
        if (!ok) {
                t->r = -EBADMSG;
                t->step = STEP_HASH;
                return;
        }
        t->final = path_join(t->root, t->path);
        t->tmp = t->final ? temp_name(t->final) : NULL;
        if (!t->tmp) {
                t->r = -ENOMEM;
                t->step = STEP_NAME;
                return;
        }
        t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (t->fd < 0) {
                t->r = -errno;
                t->step = STEP_CREATE;
                return;
        }
        r = fsutil_write_full(t->fd, t->data, t->len);
        if (r == 0)
                r = dlfile_finish_fd(t->fd, t->mode, t->mtime_ns);
        if (r == 0 && fstat(t->fd, &t->st) < 0)
                r = -errno;
        if (r < 0) {
                t->r = r;
                t->step = STEP_WRITE;
                close(t->fd);
                unlink(t->tmp);
                t->fd = -1;
        }
}

static void *pool_main(void *arg)
{
        struct pool *p = arg;

        for (;;) {
                size_t k = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);

                if (k >= p->nunits)
                        break;
                for (size_t i = p->starts[k]; i < p->starts[k + 1]; i++)
                        write_one(&p->tasks[i]);
        }
        return NULL;
}

static int same_parent(const char *a, const char *b)
{
        const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
        size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;

        return la == lb && !strncmp(a, b, la);
}

/* Cuts tasks[0..n) into runs of one parent folder each; without memory
 * for that, one run of all in fallback[2] (written by one thread). */
static void pool_units(struct pool *p, size_t n, size_t *fallback)
{
        p->starts = malloc((n + 1) * sizeof(*p->starts));
        if (!p->starts) {
                p->starts = fallback;
                p->starts[0] = 0;
                p->starts[1] = n;
                p->nunits = 1;
                return;
        }
        p->nunits = 0;
        for (size_t i = 0; i < n; i++)
                if (i == 0 || !same_parent(p->tasks[i - 1].path, p->tasks[i].path))
                        p->starts[p->nunits++] = i;
        p->starts[p->nunits] = n;
}

/* Records the failure of t as this thread's error message. */
static int report(const struct dlfile_task *t)
{
        char hex[HASH_HEX_LEN + 1];

        switch (t->step) {
        case STEP_HASH:
                hash_to_hex(&t->m->file_hash, hex);
                return err_set(t->r, "downloaded %s does not match its hash %s", t->path, hex);
        case STEP_CREATE:
                return err_set(t->r, "cannot create %s: %s", t->tmp, strerror(-t->r));
        case STEP_WRITE:
                return err_set(t->r, "cannot write %s: %s", t->tmp, strerror(-t->r));
        default:
                return t->r;
        }
}

int dlfile_write(struct dlfile_task *tasks, size_t n, int nthreads)
{
        struct pool p = {.tasks = tasks, .next = 0};
        pthread_t th[DLFILE_THREADS_MAX - 1];
        size_t i, fallback[2];
        int started = 0, r = 0;

        for (i = 0; i < n; i++) {
                tasks[i].r = 0;
                tasks[i].step = STEP_OK;
                tasks[i].fd = -1;
                tasks[i].tmp = NULL;
                tasks[i].final = NULL;
        }
        if (nthreads > DLFILE_THREADS_MAX)
                nthreads = DLFILE_THREADS_MAX;
        pool_units(&p, n, fallback);
        if (n < DLFILE_PARALLEL_MIN)
                nthreads = 1;
        if (nthreads > 1 && (size_t)nthreads > p.nunits)
                nthreads = (int)p.nunits; /* one thread per folder at most */
        /* a thread that cannot be started leaves its share to the others */
        while (started < nthreads - 1 && pthread_create(&th[started], NULL, pool_main, &p) == 0)
                started++;
        pool_main(&p);
        while (started > 0)
                pthread_join(th[--started], NULL);
        if (p.starts != fallback)
                free(p.starts);
        for (i = 0; i < n && r == 0; i++)
                if (tasks[i].r < 0)
                        r = report(&tasks[i]);
        if (r == 0)
                return 0;
        for (i = 0; i < n; i++) {
                if (tasks[i].fd >= 0) {
                        close(tasks[i].fd);
                        unlink(tasks[i].tmp);
                }
                tasks[i].fd = -1;
                free(tasks[i].tmp);
                free(tasks[i].final);
                tasks[i].tmp = NULL;
                tasks[i].final = NULL;
        }
        return r;
}

int dlfile_open_resume(const char *tmp, uint64_t *size)
{
        struct stat st;

        for (int tries = 0; tries < 2; tries++) {
                int fd = open(tmp, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);

                if (fd < 0)
                        return -errno;
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) {
                        *size = (uint64_t)st.st_size;
                        return fd;
                }
                close(fd);
                if (unlink(tmp) < 0)
                        return -errno;
        }
        return -EEXIST;
}

int dlfile_dirs_add(struct dlfile_dirs *ds, const char *final)
{
        const char *slash = strrchr(final, '/');
        size_t len = slash ? (size_t)(slash - final) : 0;
        char *dir;

        /* newest first: files come folder by folder */
        for (size_t i = ds->n; i-- > 0;)
                if (strlen(ds->v[i]) == len && !strncmp(ds->v[i], final, len))
                        return 0;
        if (ds->n == ds->cap) {
                size_t ncap = ds->cap ? ds->cap * 2 : 16;
                char **p = realloc(ds->v, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                ds->v = p;
                ds->cap = ncap;
        }
        dir = strndup(final, len);
        if (!dir)
                return -ENOMEM;
        ds->v[ds->n++] = dir;
        return 0;
}

void dlfile_dirs_free(struct dlfile_dirs *ds)
{
        for (size_t i = 0; i < ds->n; i++)
                free(ds->v[i]);
        free(ds->v);
        memset(ds, 0, sizeof(*ds));
}

int dlfile_dirs_sync(const struct dlfile_dirs *ds)
{
        for (size_t i = 0; i < ds->n; i++) {
                int fd = open(ds->v[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (fd < 0)
                        return err_set(-errno, "cannot open %s: %s", ds->v[i], strerror(errno));
                if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS) {
                        int r = err_set(-errno, "cannot fsync %s: %s", ds->v[i], strerror(errno));

                        close(fd);
                        return r;
                }
                close(fd);
        }
        return 0;
}

int dlfile_threads(void)
{
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        if (n < 1)
                return 1;
        return n > DLFILE_THREADS_MAX ? DLFILE_THREADS_MAX : (int)n;
}
