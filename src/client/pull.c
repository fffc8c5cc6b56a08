/* pull: the download half of a sync round (see pull.h).
 *
 * Each entry goes through pull_apply_entry() (pull_apply.c: the checks,
 * the download rules, conflict copies, the trash); this file pages through
 * the server's changes and downloads the queued files.
 *
 * Files are downloaded in batches (transfer_download), so thousands of small
 * files cost a few requests, not one each; a page's last_seq is recorded in
 * the same index transaction as its entries, after the files are on disk.
 * Entries the download rules hold back advance last_seq like any other:
 * they are remembered in the held store, and fetched again (GET
 * /api/v1/file) when an override or a change of the rules lets them down
 * (pull_rules_release).
 *
 * What could not be applied is noted for the round's download report
 * (s->dl_failed, sync.c): an entry refused for an unsafe path, and the
 * files of a download batch that failed for a reason of this device's (a
 * full disk, a file in the way), not for a lost connection.
 */
#include "pull.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "localfs.h"
#include "log.h"
#include "path.h"
#include "pull_apply.h"
#include "pull_rules.h"
#include "rules.h"
#include "thread.h"

#define PULL_JOBS_MAX 1024

/* ---- downloads ---- */

static int open_moved(void *ud, const char *path)
{
        struct sync_ctx *s = ud;

        for (size_t i = s->nmoved; i-- > 0;)
                if (!strcmp(s->moved_from[i], path))
                        return open(s->moved_to[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        return -ENOENT;
}

/* A local change made while the file was downloading is moved aside, not
 * overwritten. */
static int before_rename(void *ud, struct dl_job *j)
{
        struct sync_ctx *s = ud;
        char *full = path_join(s->cfg->root, j->path);
        struct stat st;
        int r = 0;

        if (!full)
                return -ENOMEM;
        if (lstat(full, &st) == 0 &&
            (!j->have_prev || st.st_ino != j->prev.st_ino || st.st_size != j->prev.st_size ||
             st.st_mtim.tv_sec != j->prev.st_mtim.tv_sec ||
             st.st_mtim.tv_nsec != j->prev.st_mtim.tv_nsec ||
             st.st_ctim.tv_sec != j->prev.st_ctim.tv_sec ||
             st.st_ctim.tv_nsec != j->prev.st_ctim.tv_nsec)) {
                r = localfs_conflict_move(s->cfg->root, j->path, s->cfg->device_name, time(NULL),
                                          NULL);
                if (r == 0) {
                        s->stats.conflicts++;
                        s->again = 1;
                }
        }
        free(full);
        return r;
}

static int download_done(void *ud, struct dl_job *j, const struct stat *st)
{
        struct sync_ctx *s = ud;
        struct index_entry ie = {0};
        int r;

        localfs_entry_stat(&ie, st);
        ie.path = j->path;
        ie.hash = j->m.file_hash;
        ie.seq = j->seq;
        ie.recorded_ns = fsutil_now_ns();
        s->stats.downloaded++;
        r = index_put(s->idx, &ie, &j->m);
        return r < 0 ? r : index_held_remove(s->idx, RULES_DOWN, j->path);
}

/* A download batch failed with r: the files of it not in place (the index
 * does not have their seq) failed for that reason. r's message is kept. */
static void note_unfinished(struct sync_ctx *s, struct dl_job *jobs, size_t n, int r)
{
        char why[512];

        snprintf(why, sizeof(why), "%s", err_msg(r));
        for (size_t i = 0; i < n; i++) {
                struct index_entry ie = {0};
                int have = index_get(s->idx, jobs[i].path, &ie) == 0;

                if (!have || ie.seq != jobs[i].seq)
                        pull_apply_note_failed(s, jobs[i].path, jobs[i].seq, why);
                if (have)
                        index_entry_free(&ie);
        }
        err_set(r, "%s", why);
}

static int flush_jobs(struct sync_ctx *s, struct dl_job *jobs, size_t *njobs)
{
        struct dl_hooks hooks = {.before_rename = before_rename, .done = download_done, .ud = s};
        int r;

        if (*njobs == 0)
                return 0;
        if (s->opts->progress) {
                int64_t bytes = 0;

                for (size_t i = 0; i < *njobs; i++)
                        bytes += (int64_t)jobs[i].m.size;
                s->opts->progress(s->opts->ud, SYNC_DOWNLOADING, (int64_t)*njobs, bytes);
        }
        r = transfer_download(&s->xfer, jobs, *njobs, &hooks);
        if (r < 0 && r != -ECONNREFUSED && r != -EINTR && r != -ENOMEM)
                note_unfinished(s, jobs, *njobs, r);
        for (size_t i = 0; i < *njobs; i++)
                dl_job_free(&jobs[i]);
        *njobs = 0;
        return r;
}

/* Applies a list of entries in one index transaction; with seq_key set,
 * records the last entry's seq under it once everything is on disk. */
static int apply_page(struct sync_ctx *s, const json_t *entries, int record_seq)
{
        struct dl_job *jobs = NULL;
        size_t njobs = 0, capjobs = 0, i;
        int64_t last = -1;
        json_t *e;
        int r, r2;

        r = index_begin(s->idx);
        if (r < 0)
                return r;
        json_array_foreach(entries, i, e)
        {
                r = pull_apply_entry(s, e, &jobs, &njobs, &capjobs);
                if (r == 0 && njobs >= PULL_JOBS_MAX)
                        r = flush_jobs(s, jobs, &njobs);
                if (r < 0)
                        break;
                last = json_integer_value(json_object_get(e, "seq"));
        }
        if (r == 0)
                r = flush_jobs(s, jobs, &njobs);
        for (i = 0; i < njobs; i++)
                dl_job_free(&jobs[i]);
        free(jobs);
        /* the trashed files' entries go now (they are gone in any case) */
        for (i = 0; i < s->nmoved; i++) {
                r2 = index_delete(s->idx, s->moved_from[i]);
                if (r == 0)
                        r = r2;
                free(s->moved_from[i]);
                free(s->moved_to[i]);
        }
        s->nmoved = 0;
        if (r == 0 && record_seq && last >= 0)
                r = index_state_set(s->idx, "last_seq", last);
        r2 = index_commit(s->idx);
        return r < 0 ? r : r2;
}

/* Queues the server's entry of each refetch path in s->pending, so that
 * the pull applies it whatever the index says; a path the server cannot
 * give (deleted for good, not uploaded yet) is logged and left. */
static int queue_refetch(struct sync_ctx *s, json_t *got)
{
        int r = 0;

        for (size_t i = 0; i < s->opts->nrefetch && r == 0; i++) {
                json_t *e = NULL;

                r = pull_apply_get_file(s, s->opts->refetch[i], &e);
                if (r == 0 &&
                    (json_array_append(s->pending, e) < 0 || json_array_append(got, e) < 0))
                        r = -ENOMEM;
                if (r == -ENOENT || r == -EEXIST) {
                        log_warn("cannot download %s again: %s", s->opts->refetch[i], err_msg(r));
                        err_clear();
                        r = 0;
                }
                json_decref(e);
        }
        return r;
}

/* The refetched entries that are now in place: downloads done again. */
static void note_refetched(struct sync_ctx *s, const json_t *entries)
{
        const json_t *e;
        size_t i;

        json_array_foreach(entries, i, e)
        {
                const char *path = json_string_value(json_object_get(e, "path"));
                int64_t seq = json_integer_value(json_object_get(e, "seq"));
                struct index_entry ie = {0};
                int have = path && index_get(s->idx, path, &ie) == 0;

                if (have && ie.seq == seq && s->dl_done)
                        json_array_append_new(s->dl_done, json_pack("{s:s, s:I}", "path", path,
                                                                    "seq", (json_int_t)seq));
                if (have)
                        index_entry_free(&ie);
        }
        err_clear();
}

static int cmp_seq(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

/* ---- paging ---- */

static void changes_query(char *q, size_t cap, int64_t since)
{
        /* patch=1: large files edited since come as patches against the
         * version the index holds (pull_apply.c) */
        snprintf(q, cap, "/api/v1/changes?since=%lld&limit=%d&patch=1", (long long)since,
                 PULL_PAGE);
}

/* The next page of changes, asked for on a connection and a thread of its
 * own while this thread applies the current page, so that ferryd lists it
 * while the files of this one download and are written (10,000 small files
 * come in ten pages). Not with a bandwidth limit (a clone would get the
 * limit again), and not when the clone or the thread cannot be had: then
 * the next page is asked for afterwards, as before. */
struct page_ahead {
        struct remote *rem; /* a clone of the round's remote, for the whole pull */
        pthread_t th;
        int running;
        char q[128];
        json_t *resp;
        int r;
        char msg[256]; /* err_set is per thread */
};

static void *ahead_main(void *arg)
{
        struct page_ahead *a = arg;

        a->r = remote_get_json(a->rem, a->q, &a->resp);
        if (a->r < 0)
                snprintf(a->msg, sizeof(a->msg), "%s", err_msg(a->r));
        return NULL;
}

static void ahead_start(struct sync_ctx *s, struct page_ahead *a, int64_t since)
{
        if (remote_limited(s->remote))
                return;
        if (!a->rem && remote_clone(s->remote, &a->rem) < 0) {
                err_clear();
                return;
        }
        changes_query(a->q, sizeof(a->q), since);
        a->resp = NULL;
        a->r = 0;
        if (thread_start(&a->th, ahead_main, a) == 0)
                a->running = 1;
}

static int ahead_wait(struct page_ahead *a, json_t **resp)
{
        pthread_join(a->th, NULL);
        a->running = 0;
        *resp = a->resp;
        a->resp = NULL;
        return a->r < 0 ? err_set(a->r, "%s", a->msg) : 0;
}

static void ahead_free(struct page_ahead *a)
{
        json_t *resp = NULL;

        if (a->running && ahead_wait(a, &resp) < 0)
                err_clear();
        json_decref(resp);
        remote_free(a->rem);
        a->rem = NULL;
}

/* 1 when every seq in (since, s->own_top] is one of this pass's own
 * commits (s->own_seqs), which push recorded in the index as it got them:
 * the changes feed would only give them back. Seqs are gap-free per space,
 * so counting the distinct own ones in that range tells. */
static int own_commits_cover(struct sync_ctx *s, int64_t since)
{
        int64_t want = s->own_top - since, have = 0;

        if (s->n_own == 0 || want <= 0 || (uint64_t)want > s->n_own)
                return 0;
        qsort(s->own_seqs, s->n_own, sizeof(*s->own_seqs), cmp_seq);
        for (size_t i = 0; i < s->n_own; i++)
                if (s->own_seqs[i] > since && s->own_seqs[i] <= s->own_top &&
                    (i == 0 || s->own_seqs[i] != s->own_seqs[i - 1]))
                        have++;
        return have == want;
}

int pull_run(struct sync_ctx *s)
{
        struct page_ahead ahead = {0};
        json_t *resp = NULL, *entries, *again = NULL;
        int64_t since = 0;
        char q[96];
        int r;

        s->xfer.open_moved = open_moved;
        s->xfer.ud = s;
        if (s->pass == 0 && s->opts->nrefetch > 0) {
                again = json_array();
                r = again ? queue_refetch(s, again) : -ENOMEM;
                if (r < 0) {
                        json_decref(again);
                        return r;
                }
        }
        r = pull_rules_release(s);
        if (r < 0) {
                json_decref(again);
                return r;
        }
        if (json_array_size(s->pending) > 0) {
                r = apply_page(s, s->pending, 0);
                json_array_clear(s->pending);
                if (r == 0 && again)
                        note_refetched(s, again);
                if (r < 0) {
                        json_decref(again);
                        return r;
                }
        }
        json_decref(again);
        r = index_state_get(s->idx, "last_seq", &since);
        if (r == -ENOENT)
                since = 0;
        else if (r < 0)
                return r;
        if (own_commits_cover(s, since)) {
                /* A device that just uploaded 10,000 files would otherwise
                 * read its own 10,000 entries back (4.5 MB). Anything
                 * another device committed since comes from own_top on. */
                log_debug("pull: seqs %lld..%lld are this device's own commits, already applied",
                          (long long)since + 1, (long long)s->own_top);
                r = index_state_set(s->idx, "last_seq", s->own_top);
                if (r < 0)
                        return r;
                since = s->own_top;
        }
        s->n_own = 0;
        s->own_top = 0;
        for (;;) {
                int more;

                if (ahead.running) {
                        r = ahead_wait(&ahead, &resp);
                } else {
                        changes_query(q, sizeof(q), since);
                        r = remote_get_json(s->remote, q, &resp);
                }
                if (r < 0)
                        break;
                entries = json_object_get(resp, "entries");
                if (!json_is_array(entries)) {
                        r = err_set(-EPROTO, "the server's changes answer has no entries");
                        break;
                }
                more = json_is_true(json_object_get(resp, "more")) && json_array_size(entries) > 0;
                if (more) {
                        since = json_integer_value(json_object_get(
                            json_array_get(entries, json_array_size(entries) - 1), "seq"));
                        ahead_start(s, &ahead, since);
                }
                r = apply_page(s, entries, 1);
                if (r < 0 || !more)
                        break;
                json_decref(resp);
                resp = NULL;
                if ((r = sync_check_cancel(s->opts)) < 0)
                        break;
        }
        ahead_free(&ahead);
        json_decref(resp);
        return r;
}
