/* transfer_dl: file downloads (see transfer.h): windows of chunks taken
 * from local files or fetched, written in manifest order into temporary
 * files, verified, made durable in groups and renamed into place.
 *
 * Memory stays bounded whatever the file sizes: a download holds two
 * windows of chunks (~4 MiB each), the fetched frames for them and one
 * decoded chunk.
 *
 * Prefetch (dlwin.h): the loop below builds window k+1 (local chunks, the
 * LAN peer) and sends its request before it receives, verifies and writes
 * window k, so the server's reading and sending of k+1 (on a fetcher
 * thread and a second connection) overlaps this thread's hashing and
 * writing of k. What must happen in order with the writes (finishing an
 * empty file, opening a resume file, a kernel copy into the current file)
 * ends the window being built while an earlier one is still unwritten; the
 * loop writes that one first and then carries on. The writes themselves,
 * the pending list and resuming are as without prefetch, and an error in
 * either window abandons both: the one not written yet is dropped.
 *
 * Resuming: a file of at least RESUME_MIN_BYTES assembles into a temporary
 * file named after its path (localfs_resume_name) instead of a random one,
 * and an interrupted download (an error return, or the process killed)
 * leaves it there; the sweep at the start of a round spares it. The next
 * download of that path reads it back chunk by chunk against the manifest
 * it is now downloading, keeps the longest prefix whose chunks all verify,
 * cuts off the rest and fetches only from there on.
 *
 * Verifying: every chunk is checked against its SHA-256 as it enters the
 * window (frame_decode() for fetched ones, dlcopy_read() for local ones),
 * and a finished file's chunk list against its file hash (manifest.h), so
 * no pass over a whole file is needed before the rename. Chunks of a
 * trusted local file (its stat unchanged since indexed, dlcopy.h) are not
 * hashed: runs of them are copied by the kernel into the current file,
 * and the file is read back and verified should such a source have changed
 * before the file is complete.
 *
 * Files whose chunks all lie in one window (the many small files of a
 * large download) are written by dlfile_write() on several threads, in
 * groups that fit the pending list; the others one at a time as the
 * current file. Either way they join the same pending list, in job order,
 * so renames and index updates keep the order of the jobs.
 */
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "chunker.h"
#include "dlcopy.h"
#include "dlfile.h"
#include "dlwin.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"
#include "hash.h"
#include "localfs.h"
#include "log.h"
#include "path.h"

/* Files smaller than one request body gain little from resuming, and
 * starting a resumable file ends the current window early (the prefix must
 * be checked before the window's chunks are chosen), so only files of at
 * least one body are resumable: many small files still share requests. */
#define RESUME_MIN_BYTES ((uint64_t)TRANSFER_BODY_BYTES)

/* A run of chunks copied from a trusted local file in one go, and how
 * much of the current file is written before its write-back is started
 * (so that the fsync before the rename waits for less). */
#define COPY_RUN_BYTES (32u * 1024u * 1024u)
#define SYNC_STEP_BYTES (32u * 1024u * 1024u)

/* The file being written: only one at a time, since slots are written in
 * manifest order. */
struct cur {
        ssize_t job;
        int fd;
        char *tmp;
        char *final;
        uint64_t written;
        uint64_t synced; /* write-back started up to here */
        int resumable;   /* tmp has the path's resume name: keep it when interrupted */
};

/* A downloaded file, verified and complete, not yet durable or in place. */
struct done_file {
        size_t job;
        int fd;
        struct stat st; /* taken once written, before the rename */
        char *tmp;
        char *final;
        int resumable;
};

/* Files made durable together: enough to let the disk merge the writes of
 * many small files and to make one syncfs() (see below) worth its flush of
 * the whole file system. Only the first SYNCFS_MIN files of a group keep
 * their descriptors open (and one per other file system), so the group
 * stays far below the descriptor limit. */
#define PENDING_MAX 1024

/* From this many pending files on, one syncfs() per file system replaces
 * one fsync() per file: every fsync() ends in its own flush of the disk's
 * write cache, which costs more than writing a small file's data, while
 * syncfs() writes every dirty file of the file system and flushes once.
 * Below it fsync() is kept, so a few files do not wait for unrelated dirty
 * data of other programs. */
#define SYNCFS_MIN 16

struct dl {
        struct transfer *t;
        struct dl_job *jobs;
        size_t n;
        const struct dl_hooks *hooks;
        struct dlwin_pipe pipe; /* the two windows and their fetching */
        struct dlwin *w;        /* the window being built */
        struct cur cur;
        struct dlcopy dc;        /* local files chunks are taken from */
        struct dlfile_dirs dirs; /* to fsync before returning */
        /* verified files waiting to be made durable and renamed together */
        struct done_file *pend;
        size_t npend;
        /* whole files of the current window for dlfile_write() */
        struct dlfile_task *tasks;
        size_t ntasks;
        int nthreads;
        /* chunks and bytes found already written by an interrupted run */
        uint64_t chunks_resumed, bytes_resumed;
};

/* Closes the current file. Its temporary file is removed unless keep is set
 * and it is resumable (an interruption: the next round picks it up). */
static void cur_abandon(struct cur *c, int keep)
{
        if (c->fd >= 0)
                close(c->fd);
        if (c->tmp && !(keep && c->resumable))
                unlink(c->tmp);
        free(c->tmp);
        free(c->final);
        c->fd = -1;
        c->tmp = NULL;
        c->final = NULL;
        c->job = -1;
        c->written = 0;
        c->synced = 0;
        c->resumable = 0;
}

static int resumable_job(const struct dl_job *j)
{
        return j->m.n > 0 && j->m.size >= RESUME_MIN_BYTES;
}

/* Reads back what an interrupted run wrote into the current (resume) file:
 * the longest prefix of the manifest's chunks that all verify is kept, the
 * rest is cut off. *first gets the index of
 * the first chunk still to write. Uses the buffer of the window being
 * built, which is empty when a resumable file starts (and no other window
 * is waiting to be written). */
static int cur_resume(struct dl *d, uint64_t have, size_t *first)
{
        struct cur *c = &d->cur;
        const struct manifest *m = &d->jobs[c->job].m;
        uint64_t off = 0;
        size_t k = 0;
        struct hash h;

        while (k < m->n && off + m->chunks[k].size <= have) {
                if (transfer_pread_full(c->fd, d->w->win, m->chunks[k].size, off) < 0)
                        break;
                hash_buf(d->w->win, m->chunks[k].size, &h);
                if (!hash_equal(&h, &m->chunks[k].hash))
                        break;
                off += m->chunks[k].size;
                k++;
        }
        if ((off != have && ftruncate(c->fd, (off_t)off) < 0) ||
            lseek(c->fd, (off_t)off, SEEK_SET) < 0)
                return err_set(-errno, "cannot write %s: %s", c->tmp, strerror(errno));
        if (off > 0)
                log_info("resuming the download of %s: %llu of %llu bytes already here",
                         d->jobs[c->job].path, (unsigned long long)off,
                         (unsigned long long)m->size);
        c->written = off;
        c->synced = off;
        d->chunks_resumed += k;
        d->bytes_resumed += off;
        *first = k;
        return 0;
}

/* The resume file for job, as an absolute path into *tmp; NULL when a
 * file waiting to be renamed holds that name (the same path twice in one
 * batch), so that it is never written through twice. */
static int resume_path(struct dl *d, size_t job, const char *dir, char **tmp)
{
        char name[LOCALFS_RESUME_NAME_LEN + 1];
        struct buf b = BUF_INIT;
        int r;

        *tmp = NULL;
        localfs_resume_name(d->jobs[job].path, name);
        r = buf_printf(&b, "%s%s%s/%s", d->t->root, *dir ? "/" : "", dir, name);
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        for (size_t i = 0; i < d->npend; i++)
                if (!strcmp(d->pend[i].tmp, (const char *)b.data)) {
                        buf_free(&b);
                        return 0;
                }
        *tmp = (char *)buf_steal(&b, NULL);
        return 0;
}

/* Opens the temporary file for job as the current file. For a resumable
 * job, *first (may be NULL otherwise) gets the first chunk still missing
 * from it. */
static int cur_open(struct dl *d, size_t job, size_t *first)
{
        struct cur *c = &d->cur;
        struct buf tmp = BUF_INIT;
        uint64_t have = 0;
        char rnd[17];
        char *dir = NULL;
        int r;

        if (first)
                *first = 0;
        c->final = path_join(d->t->root, d->jobs[job].path);
        dir = path_dirname(d->jobs[job].path);
        if (!c->final || !dir) {
                r = -ENOMEM;
                goto out;
        }
        c->job = (ssize_t)job;
        c->written = 0;
        c->synced = 0;
        if (first && resumable_job(&d->jobs[job])) {
                r = resume_path(d, job, dir, &c->tmp);
                if (r < 0)
                        goto out;
                if (c->tmp) {
                        c->fd = dlfile_open_resume(c->tmp, &have);
                        if (c->fd >= 0) {
                                c->resumable = 1;
                                r = cur_resume(d, have, first);
                                goto out;
                        }
                        /* something unusable sits there: fall back to a
                         * random name (the sweep removes it later) */
                        free(c->tmp);
                        c->tmp = NULL;
                }
        }
        r = fsutil_random_hex(rnd, 8);
        if (r < 0)
                goto out;
        r = buf_printf(&tmp, "%s%s%s/%s%s", d->t->root, *dir ? "/" : "", dir, PATH_TEMP_PREFIX,
                       rnd);
        if (r < 0)
                goto out;
        c->tmp = (char *)buf_steal(&tmp, NULL);
        c->fd = open(c->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (c->fd < 0) {
                r = err_set(-errno, "cannot create %s: %s", c->tmp, strerror(errno));
                free(c->tmp);
                c->tmp = NULL;
                goto out;
        }
out:
        buf_free(&tmp);
        free(dir);
        return r;
}

/* Forgets the pending files; those not renamed yet are removed, except
 * resumable ones when keep is set (an interruption: they are complete, the
 * next round verifies them and only renames). */
static void pending_abandon(struct dl *d, int keep)
{
        for (size_t i = 0; i < d->npend; i++) {
                if (d->pend[i].fd >= 0)
                        close(d->pend[i].fd);
                if (d->pend[i].tmp[0] && !(keep && d->pend[i].resumable)) /* emptied once renamed */
                        unlink(d->pend[i].tmp);
                free(d->pend[i].tmp);
                free(d->pend[i].final);
        }
        d->npend = 0;
}

/* Queues a written file for pending_flush(). From SYNCFS_MIN files on,
 * the group is made durable by syncfs(), which needs one descriptor per
 * file system: the others are closed now. */
static void pending_push(struct dl *d, const struct done_file *f)
{
        struct done_file *p = &d->pend[d->npend++];
        size_t k;

        *p = *f;
        if (d->npend <= SYNCFS_MIN)
                return;
        for (k = 0; k + 1 < d->npend; k++)
                if (d->pend[k].fd >= 0 && d->pend[k].st.st_dev == p->st.st_dev)
                        break;
        if (k + 1 < d->npend) {
                close(p->fd);
                p->fd = -1;
        }
}

/* Renames one durable file into place and reports it. */
static int pending_place(struct dl *d, struct done_file *p)
{
        struct dl_job *j = &d->jobs[p->job];
        struct stat st = p->st, st2;
        int r;

        if (d->hooks && d->hooks->before_rename) {
                r = d->hooks->before_rename(d->hooks->ud, j);
                if (r < 0)
                        return r;
        }
        if (rename(p->tmp, p->final) < 0)
                return err_set(-errno, "cannot rename %s to %s: %s", p->tmp, p->final,
                               strerror(errno));
        p->tmp[0] = 0;
        r = dlfile_dirs_add(&d->dirs, p->final);
        if (r < 0)
                return r;
        /* rename() may change the ctime; take the stat after it unless the
         * file was written meanwhile (then the pre-rename stat makes the
         * next scan look at it). Should the name already point to another
         * file, the inode number recorded is not that file's either. A
         * file whose descriptor was closed is looked up by name: the same
         * inode is the same file. */
        if ((p->fd >= 0 ? fstat(p->fd, &st2) : lstat(p->final, &st2)) == 0 &&
            st2.st_ino == st.st_ino && st2.st_dev == st.st_dev && st2.st_size == st.st_size &&
            st2.st_mtim.tv_sec == st.st_mtim.tv_sec && st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec)
                st = st2;
        if (d->hooks && d->hooks->done)
                return d->hooks->done(d->hooks->ud, j, &st);
        return 0;
}

/* Makes every pending file durable: one syncfs() per file system for many
 * files (see SYNCFS_MIN), else one fsync() each (their write-back was
 * started when each was finished, so these mostly wait for I/O already
 * under way). */
static int pending_sync(struct dl *d)
{
        size_t i, k;

        for (i = 0; i < d->npend; i++) {
                if (d->npend >= SYNCFS_MIN) {
                        /* once per file system (a subfolder may be a mount);
                         * pending_push() kept a descriptor on each */
                        for (k = 0; k < i && d->pend[k].st.st_dev != d->pend[i].st.st_dev; k++)
                                ;
                        if (k < i)
                                continue;
                        if (syncfs(d->pend[i].fd) == 0)
                                continue;
                } else if (fsync(d->pend[i].fd) == 0) {
                        continue;
                }
                return err_set(-errno, "cannot write %s: %s", d->pend[i].tmp, strerror(errno));
        }
        return 0;
}

/* Makes every pending file durable, then renames each into place: a file
 * gets its name only once its content is verified and on disk. */
static int pending_flush(struct dl *d)
{
        size_t i;
        int r;

        r = pending_sync(d);
        if (r < 0)
                return r;
        for (i = 0; i < d->npend; i++) {
                r = pending_place(d, &d->pend[i]);
                if (r < 0)
                        return r;
        }
        pending_abandon(d, 0); /* closes; every temp file is renamed */
        /* the renames changed files the index names: look sources up anew */
        dlcopy_forget(&d->dc);
        return 0;
}

/* Verifies the current file, sets its mode and mtime and queues it for
 * pending_flush(). */
static int cur_finish(struct dl *d)
{
        struct cur *c = &d->cur;
        struct dl_job *j = &d->jobs[c->job];
        struct stat st;
        struct hash h;
        char hex[HASH_HEX_LEN + 1];
        int r;

        /* every chunk was checked against its hash as it came in (fetched,
         * local or resumed) or came from a trusted local file: if one of
         * those changed meanwhile, the file is read back and verified;
         * what is left is the chunk list itself */
        if (!dlcopy_settle(&d->dc)) {
                log_info("%s: a local file it was copied from changed meanwhile; verifying it",
                         j->path);
                r = dlcopy_verify_fd(&d->dc, c->fd, &j->m);
                if (r < 0) {
                        r = err_set(-EBADMSG,
                                    "downloaded %s does not match its chunks: a local file it "
                                    "was copied from changed meanwhile; it will be synced again",
                                    j->path);
                        goto out;
                }
        }
        manifest_file_hash(&j->m, &h);
        if (c->written != j->m.size || !hash_equal(&h, &j->m.file_hash)) {
                hash_to_hex(&j->m.file_hash, hex);
                r = err_set(-EBADMSG, "downloaded %s does not match its hash %s", j->path, hex);
                goto out;
        }
        /* the write-back starts now; pending_flush() waits for it */
        r = dlfile_finish_fd(c->fd, j->mode, j->mtime_ns);
        if (r == 0 && fstat(c->fd, &st) < 0)
                r = -errno;
        if (r < 0) {
                r = err_set(r, "cannot write %s: %s", c->tmp, strerror(-r));
                goto out;
        }
        pending_push(d, &(struct done_file){.job = (size_t)c->job,
                                            .fd = c->fd,
                                            .st = st,
                                            .tmp = c->tmp,
                                            .final = c->final,
                                            .resumable = c->resumable});
        c->fd = -1;
        c->tmp = NULL;
        c->final = NULL;
        r = d->npend == PENDING_MAX ? pending_flush(d) : 0;
out:
        cur_abandon(c, 0); /* a file failing its hash is never kept */
        return r;
}

/* Accounts len bytes just written to the current file: starts the
 * write-back of every SYNC_STEP_BYTES, finishes the file when complete. */
static int cur_wrote(struct dl *d, uint64_t len)
{
        struct cur *c = &d->cur;

        c->written += len;
        if (c->written - c->synced >= SYNC_STEP_BYTES) {
                (void)sync_file_range(c->fd, (off_t)c->synced, (off_t)(c->written - c->synced),
                                      SYNC_FILE_RANGE_WRITE);
                c->synced = c->written;
        }
        if (d->jobs[c->job].m.n > 0 && c->written == d->jobs[c->job].m.size)
                return cur_finish(d);
        return 0;
}

static int cur_write(struct dl *d, size_t job, const uint8_t *p, size_t len)
{
        struct cur *c = &d->cur;
        int r;

        if (c->job != (ssize_t)job) {
                r = cur_open(d, job, NULL);
                if (r < 0)
                        return r;
        }
        r = fsutil_write_full(c->fd, p, len);
        if (r < 0)
                return err_set(r, "cannot write %s: %s", c->tmp, strerror(-r));
        return cur_wrote(d, len);
}

/* Copies chunk *chunk of the current file's job, which dlcopy_find() found
 * at off in a trusted source, with the chunks after it that follow it
 * there (up to COPY_RUN_BYTES), straight into the current file. *chunk
 * gets the first chunk not copied. Only when the window is empty: the
 * writes stay in manifest order. */
static int copy_run(struct dl *d, size_t *chunk, uint64_t off)
{
        const struct manifest *m = &d->jobs[d->cur.job].m;
        uint64_t len = m->chunks[*chunk].size;
        size_t k = *chunk + 1;
        int r;

        while (k < m->n && len < COPY_RUN_BYTES && dlcopy_next(&d->dc, &m->chunks[k]))
                len += m->chunks[k++].size;
        dlcopy_note(&d->dc);
        d->t->chunks_local += k - *chunk;
        *chunk = k;
        r = dlcopy_copy(&d->dc, off, len, d->cur.fd, d->cur.tmp);
        return r < 0 ? r : cur_wrote(d, len);
}

/* Writes the whole files queued in d->tasks (dlfile_write) and adds them
 * to the pending list, in order. */
static int tasks_flush(struct dl *d)
{
        int r;

        if (d->ntasks == 0)
                return 0;
        r = dlfile_write(d->tasks, d->ntasks, d->nthreads);
        if (r < 0) {
                d->ntasks = 0;
                return r;
        }
        for (size_t i = 0; i < d->ntasks; i++)
                pending_push(d, &(struct done_file){.job = d->tasks[i].tag,
                                                    .fd = d->tasks[i].fd,
                                                    .st = d->tasks[i].st,
                                                    .tmp = d->tasks[i].tmp,
                                                    .final = d->tasks[i].final});
        d->ntasks = 0;
        return d->npend == PENDING_MAX ? pending_flush(d) : 0;
}

/* Writes w's slots in order: a file whose chunks are all in the window
 * (and that is not resumable) is queued for dlfile_write(), any other goes
 * through the current file. */
static int write_window(struct dl *d, const struct dlwin *w)
{
        size_t i = 0, e, k, ns = w->ns;
        int r = 0;

        while (i < ns && r == 0) {
                const struct dlwin_slot *s = &w->slots[i];
                const struct dl_job *j = &d->jobs[s->job];

                for (e = i + 1; e < ns && w->slots[e].job == s->job; e++)
                        ;
                if (s->chunk == 0 && e - i == j->m.n && !resumable_job(j)) {
                        d->tasks[d->ntasks++] = (struct dlfile_task){.root = d->t->root,
                                                                     .path = j->path,
                                                                     .data = w->win + s->off,
                                                                     .len = j->m.size,
                                                                     .m = &j->m,
                                                                     .mode = j->mode,
                                                                     .mtime_ns = j->mtime_ns,
                                                                     .tag = s->job};
                        if (d->npend + d->ntasks == PENDING_MAX)
                                r = tasks_flush(d);
                } else {
                        r = tasks_flush(d);
                        for (k = i; k < e && r == 0; k++)
                                r = cur_write(d, s->job, w->win + w->slots[k].off,
                                              j->m.chunks[w->slots[k].chunk].size);
                }
                i = e;
        }
        return r < 0 ? r : tasks_flush(d);
}

/* An empty file has no chunk to trigger its write: create and finish it. */
static int finish_empty(struct dl *d, size_t job)
{
        int r = cur_open(d, job, NULL);

        if (r < 0)
                return r;
        return cur_finish(d);
}

int transfer_download(struct transfer *t, struct dl_job *jobs, size_t n,
                      const struct dl_hooks *hooks)
{
        struct dl d = {.t = t, .jobs = jobs, .n = n, .hooks = hooks};
        struct dlwin *prev = NULL; /* sent, not yet received and written */
        size_t job = 0, chunk = 0;
        int r;

        d.cur.fd = -1;
        d.cur.job = -1;
        dlcopy_init(&d.dc, t->root, t->idx, t->open_moved, t->ud);
        r = dlwin_pipe_init(&d.pipe, t, jobs);
        d.pend = calloc(PENDING_MAX, sizeof(*d.pend));
        d.tasks = calloc(PENDING_MAX, sizeof(*d.tasks));
        d.nthreads = dlfile_threads();
        if (r < 0 || !d.pend || !d.tasks) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                struct dlwin *w = &d.pipe.w[prev == &d.pipe.w[0]];
                size_t ns = 0, bytes = 0;

                /* Build the next window: consecutive chunks across files.
                 * What must follow the writes of earlier slots waits
                 * while prev is not written either. */
                d.w = w;
                while (job < n && ns < TRANSFER_FETCH_BATCH && bytes < TRANSFER_BODY_BYTES) {
                        const struct chunk_ref *ref;
                        uint64_t off = 0;
                        int found, trust;

                        if (jobs[job].m.n == 0) {
                                /* Finish earlier slots first so the single
                                 * open file stays the one being written. */
                                if (ns > 0 || prev)
                                        break;
                                r = finish_empty(&d, job);
                                if (r < 0)
                                        goto out;
                                job++;
                                continue;
                        }
                        if (chunk == 0 && resumable_job(&jobs[job])) {
                                /* The earlier slots first: the resume file
                                 * becomes the current file now. */
                                if (ns > 0 || prev)
                                        break;
                                r = cur_open(&d, job, &chunk);
                                if (r < 0)
                                        goto out;
                                if (chunk == jobs[job].m.n) { /* all there */
                                        r = cur_finish(&d);
                                        if (r < 0)
                                                goto out;
                                        job++;
                                        chunk = 0;
                                        continue;
                                }
                        }
                        /* a trusted local chunk of the current file is
                         * copied by the kernel when nothing is waiting in
                         * a window, else read unhashed (dlcopy.h) */
                        ref = &jobs[job].m.chunks[chunk];
                        trust = d.cur.job == (ssize_t)job;
                        found = dlcopy_find(&d.dc, ref, trust, &off);
                        trust = trust && found == DLCOPY_TRUSTED;
                        if (trust && ns == 0) {
                                if (prev)
                                        break;
                                r = copy_run(&d, &chunk, off);
                                if (r < 0)
                                        goto out;
                                if (chunk == jobs[job].m.n) {
                                        job++;
                                        chunk = 0;
                                }
                                continue;
                        }
                        w->slots[ns] =
                            (struct dlwin_slot){.job = job, .chunk = chunk, .off = bytes};
                        w->slots[ns].have = found != DLCOPY_NONE &&
                                            dlcopy_read(&d.dc, ref, off, trust, w->win + bytes);
                        if (w->slots[ns].have)
                                t->chunks_local++;
                        if (w->slots[ns].have && trust)
                                dlcopy_note(&d.dc);
                        bytes += ref->size;
                        ns++;
                        if (++chunk == jobs[job].m.n) {
                                job++;
                                chunk = 0;
                        }
                }
                w->ns = ns;
                if (ns > 0) {
                        /* the LAN peer here, the rest to the fetcher */
                        r = dlwin_peer(&d.pipe, w);
                        if (r == 0)
                                r = dlwin_send(&d.pipe, w, job < n);
                        if (r < 0)
                                goto out;
                }
                if (prev) {
                        r = dlwin_recv(&d.pipe, prev);
                        if (r == 0)
                                r = write_window(&d, prev);
                        if (r < 0)
                                goto out;
                }
                if (ns == 0 && !prev)
                        break;
                prev = ns > 0 ? w : NULL;
        }
        r = pending_flush(&d);
        if (r < 0)
                goto out;
        /* The renames are durable only once their directories are synced;
         * the caller records the new seq after this returns. */
        r = dlfile_dirs_sync(&d.dirs);
        if (r < 0)
                goto out;
        log_debug("download: %zu files, %llu chunks fetched (%llu bytes), %llu from the LAN "
                  "(%llu bytes), %llu reused locally (%llu bytes copied in place), %llu (%llu "
                  "bytes) resumed",
                  n, (unsigned long long)t->chunks_fetched, (unsigned long long)t->bytes_fetched,
                  (unsigned long long)t->chunks_lan, (unsigned long long)t->bytes_lan,
                  (unsigned long long)t->chunks_local,
                  (unsigned long long)(t->bytes_copied + d.dc.bytes_copied),
                  (unsigned long long)d.chunks_resumed, (unsigned long long)d.bytes_resumed);
out:
        /* a window still in flight is waited for and dropped */
        dlwin_pipe_free(&d.pipe);
        /* on an error: an unfinished resumable file stays for the next
         * round; other unfinished files are removed */
        cur_abandon(&d.cur, 1);
        if (d.pend) {
                /* on an error: the verified files not yet in place are
                 * dropped, as if never downloaded (resumable ones stay, to
                 * be verified again and renamed by the next round) */
                pending_abandon(&d, 1);
                free(d.pend);
        }
        free(d.tasks);
        t->bytes_copied += d.dc.bytes_copied;
        dlcopy_free(&d.dc);
        dlfile_dirs_free(&d.dirs);
        return r;
}

void dl_job_free(struct dl_job *j)
{
        free(j->path);
        manifest_free(&j->m);
        memset(j, 0, sizeof(*j));
}
