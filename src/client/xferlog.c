/* xferlog: the client's reports on transfer records (see xferlog.h).
 *
 * The records of one pass sit in an array sorted by path, so that the
 * poster thread can find a file's record id for its progress report with a
 * binary search and no lock: the main thread changes the array only before
 * the upload starts (announce) and after it ended (commit, drop, finish).
 *
 * Progress is reported after a chunk body, but at most every
 * XFERLOG_PROGRESS_MIN_MS: the server writes (and syncs) each report, and
 * on a fast link bodies go by the hundred a second, while a person reading
 * `ferry transfers` gains nothing from more than a few updates a second.
 * On a slow link, where a body takes longer than that, every body reports.
 */
#include "xferlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "fsutil.h"
#include "hash.h"
#include "log.h"

enum fate { FATE_OPEN, FATE_COMMITTED, FATE_CANCEL, FATE_FAIL };

struct rec {
        char *path;
        int64_t id;
        uint64_t reported; /* bytes_done last reported */
        uint64_t seen;     /* bytes_done known (reported at the next report) */
        uint64_t size;     /* the file's, as announced */
        enum fate fate;
        char *reason; /* FATE_FAIL */
        int closed;   /* its fate was reported (or it was committed) */
};

struct xferlog {
        struct rec *recs; /* sorted by path once announced */
        size_t n, cap;
        int warned;         /* one warning per pass for refused reports */
        int64_t last_ns;    /* the last progress report (monotonic), 0 before */
        int64_t min_gap_ns; /* between two reports */
};

int xferlog_new(struct xferlog **out)
{
        *out = calloc(1, sizeof(**out));
        if (!*out)
                return -ENOMEM;
        (*out)->min_gap_ns = XFERLOG_PROGRESS_MIN_MS * 1000000LL;
        return 0;
}

void xferlog_set_progress_gap(struct xferlog *xl, int64_t ms)
{
        xl->min_gap_ns = ms * 1000000LL;
}

void xferlog_free(struct xferlog *xl)
{
        if (!xl)
                return;
        for (size_t i = 0; i < xl->n; i++) {
                free(xl->recs[i].path);
                free(xl->recs[i].reason);
        }
        free(xl->recs);
        free(xl);
}

size_t xferlog_count(const struct xferlog *xl)
{
        return xl ? xl->n : 0;
}

static int rec_cmp(const void *a, const void *b)
{
        return strcmp(((const struct rec *)a)->path, ((const struct rec *)b)->path);
}

static struct rec *find(const struct xferlog *xl, const char *path)
{
        struct rec key = {.path = (char *)path};

        if (!xl || xl->n == 0)
                return NULL;
        return bsearch(&key, xl->recs, xl->n, sizeof(*xl->recs), rec_cmp);
}

int64_t xferlog_id(const struct xferlog *xl, const char *path)
{
        const struct rec *r = find(xl, path);

        return r ? r->id : 0;
}

/* A report the server refused: worth a warning once, since it costs the
 * user only the accuracy of what other devices see. -ECONNREFUSED (the
 * server is gone) is returned for the caller to fail on. */
static int refused(struct xferlog *xl, const char *what, int r)
{
        if (r == -ECONNREFUSED || r == -ENOMEM)
                return r;
        if (xl && xl->warned)
                log_debug("transfer records: %s: %s", what, err_msg(r));
        else
                log_warn("transfer records: the server refused %s: %s; syncing goes on", what,
                         err_msg(r));
        if (xl)
                xl->warned = 1;
        err_clear();
        return 0;
}

static int add_rec(struct xferlog *xl, const char *path, uint64_t size)
{
        if (xl->n == xl->cap) {
                size_t ncap = xl->cap ? xl->cap * 2 : 64;
                struct rec *p = realloc(xl->recs, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                xl->recs = p;
                xl->cap = ncap;
        }
        memset(&xl->recs[xl->n], 0, sizeof(xl->recs[xl->n]));
        xl->recs[xl->n].path = strdup(path);
        if (!xl->recs[xl->n].path)
                return -ENOMEM;
        xl->recs[xl->n].size = size;
        xl->n++;
        return 0;
}

/* A file the upload is yet to read (local_change.stream) is announced
 * without a hash: its commit gives the record one. */
static json_t *file_json(const struct local_change *c)
{
        char hex[HASH_HEX_LEN + 1];
        json_t *f = json_pack("{s:s, s:s, s:I}", "path", c->path, "kind", "file", "size",
                              (json_int_t)c->size);

        if (f && !c->stream) {
                hash_to_hex(&c->manifest.file_hash, hex);
                if (json_object_set_new(f, "hash", json_string(hex)) < 0) {
                        json_decref(f);
                        return NULL;
                }
        }
        return f;
}

/* Posts one announce of recs[first..xl->n) and takes their ids from the
 * answer (records in request order). */
static int announce_batch(struct xferlog *xl, struct remote *rem, json_t *files, size_t first)
{
        json_t *req = json_pack("{s:O}", "files", files), *resp = NULL, *recs;
        int r;

        if (!req)
                return -ENOMEM;
        r = remote_post_json(rem, "/api/v1/transfers", req, &resp);
        if (r < 0)
                goto out;
        recs = json_object_get(resp, "records");
        if (!json_is_array(recs) || json_array_size(recs) != xl->n - first) {
                r = err_set(-EPROTO, "the server's answer to an announce has not one record per "
                                     "file");
                goto out;
        }
        for (size_t i = first; i < xl->n; i++) {
                json_t *id = json_object_get(json_array_get(recs, i - first), "id");

                if (!json_is_integer(id)) {
                        r = err_set(-EPROTO, "the server's announce answer has a record "
                                             "without an id");
                        goto out;
                }
                xl->recs[i].id = json_integer_value(id);
        }
out:
        json_decref(req);
        json_decref(resp);
        return r;
}

static int is_file_put(const struct local_change *c)
{
        return c->op == CHANGE_PUT && c->kind == KIND_FILE;
}

int xferlog_announce(struct xferlog *xl, struct remote *rem, struct local_change *const *changes,
                     size_t n, const int *skip)
{
        json_t *files = NULL;
        size_t first = xl->n, i = 0;
        int r = 0;

        while (i < n) {
                json_decref(files);
                files = json_array();
                if (!files) {
                        r = -ENOMEM;
                        goto out;
                }
                first = xl->n;
                for (; i < n && json_array_size(files) < XFERLOG_ANNOUNCE_BATCH; i++) {
                        json_t *f;

                        if (!is_file_put(changes[i]) || (skip && skip[i]))
                                continue;
                        f = file_json(changes[i]);
                        if (!f || json_array_append_new(files, f) < 0 ||
                            (r = add_rec(xl, changes[i]->path, changes[i]->size)) < 0) {
                                r = r < 0 ? r : -ENOMEM;
                                goto out;
                        }
                }
                if (json_array_size(files) == 0)
                        break;
                r = announce_batch(xl, rem, files, first);
                if (r < 0) {
                        /* the records of this batch do not exist */
                        for (size_t k = first; k < xl->n; k++)
                                free(xl->recs[k].path);
                        xl->n = first;
                        r = refused(xl, "the announce of the files to upload", r);
                        goto out;
                }
        }
out:
        json_decref(files);
        if (xl->n > 1)
                qsort(xl->recs, xl->n, sizeof(*xl->recs), rec_cmp);
        if (r == 0 && xl->n > 0)
                log_debug("announced %zu files to upload", xl->n);
        return r;
}

/* Posts {"records": items} to /api/v1/transfers/progress. */
static int post_progress(struct remote *rem, json_t *items)
{
        json_t *req = json_pack("{s:O}", "records", items);
        int r;

        if (!req)
                return -ENOMEM;
        r = remote_post_json(rem, "/api/v1/transfers/progress", req, NULL);
        json_decref(req);
        return r;
}

/* All of the file's bytes went up: its commit, which follows them, says
 * complete. A report of "uploading, 100%" just before would cost ferryd a
 * row update per file for a state nobody sees for more than an instant
 * (10,000 small files: ~0.1 s on the critical path, just before the
 * commit). */
static int sent_whole(const struct rec *rc)
{
        return rc->size > 0 && rc->seen >= rc->size;
}

void xferlog_progress(struct xferlog *xl, struct remote *rem, const struct transfer_mark *marks,
                      size_t n)
{
        json_t *items = NULL;
        int64_t now = fsutil_mono_ns();
        size_t i = 0;
        int r = 0, news = 0;

        for (size_t k = 0; k < n; k++) {
                struct rec *rc = find(xl, marks[k].path);

                if (rc && !rc->closed && marks[k].done > rc->seen) {
                        rc->seen = marks[k].done;
                        news |= !sent_whole(rc);
                }
        }
        if (!news || (xl->last_ns && now - xl->last_ns < xl->min_gap_ns))
                return;
        xl->last_ns = now;
        while (r == 0 && i < xl->n) {
                json_decref(items);
                items = json_array();
                if (!items)
                        return;
                for (; i < xl->n && json_array_size(items) < XFERLOG_PROGRESS_BATCH; i++) {
                        struct rec *rc = &xl->recs[i];
                        json_t *it;

                        if (rc->closed || rc->seen <= rc->reported || sent_whole(rc))
                                continue;
                        it = json_pack("{s:I, s:I}", "id", (json_int_t)rc->id, "bytes_done",
                                       (json_int_t)rc->seen);
                        if (!it || json_array_append_new(items, it) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        rc->reported = rc->seen;
                }
                if (r == 0 && json_array_size(items) > 0)
                        r = post_progress(rem, items);
        }
        if (r < 0 && r != -ENOMEM)
                refused(xl, "a progress report", r);
        err_clear();
        json_decref(items);
}

void xferlog_committed(struct xferlog *xl, const char *path)
{
        struct rec *rc = find(xl, path);

        if (rc) {
                rc->fate = FATE_COMMITTED;
                rc->closed = 1;
        }
}

void xferlog_drop(struct xferlog *xl, const char *path, const char *reason)
{
        struct rec *rc = find(xl, path);

        if (!rc || rc->closed)
                return;
        free(rc->reason);
        rc->reason = reason ? strdup(reason) : NULL;
        rc->fate = reason ? FATE_FAIL : FATE_CANCEL;
}

int xferlog_finish(struct xferlog *xl, struct remote *rem, const char *open_reason)
{
        json_t *items = NULL;
        size_t i = 0, from;
        int r = 0;

        while (xl && i < xl->n) {
                json_decref(items);
                items = json_array();
                if (!items)
                        return -ENOMEM;
                from = i;
                for (; i < xl->n && json_array_size(items) < XFERLOG_PROGRESS_BATCH; i++) {
                        struct rec *rc = &xl->recs[i];
                        const char *why = rc->fate == FATE_FAIL ? rc->reason : NULL;
                        json_t *it;

                        if (rc->closed)
                                continue;
                        if (rc->fate == FATE_OPEN)
                                why = open_reason;
                        it = why ? json_pack("{s:I, s:s, s:s}", "id", (json_int_t)rc->id, "status",
                                             "failed", "reason", why)
                                 : json_pack("{s:I, s:s}", "id", (json_int_t)rc->id, "status",
                                             "cancelled");
                        if (!it || json_array_append_new(items, it) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
                if (json_array_size(items) == 0)
                        break;
                r = post_progress(rem, items);
                if (r < 0) {
                        r = refused(xl, "the report of files not uploaded", r);
                        goto out;
                }
                for (size_t k = from; k < i; k++)
                        xl->recs[k].closed = 1;
        }
out:
        json_decref(items);
        return r;
}

int xferlog_report_downloads(struct remote *rem, int64_t applied_seq, const json_t *failed,
                             const json_t *done)
{
        json_t *req = json_object();
        int r = -ENOMEM;

        if (!req)
                return -ENOMEM;
        if (applied_seq >= 0 &&
            json_object_set_new(req, "applied_seq", json_integer(applied_seq)) < 0)
                goto out;
        if (json_array_size(failed) > 0 &&
            json_object_set_new(req, "failed", json_deep_copy(failed)) < 0)
                goto out;
        if (json_array_size(done) > 0 && json_object_set_new(req, "done", json_deep_copy(done)) < 0)
                goto out;
        r = remote_post_json(rem, "/api/v1/downloads", req, NULL);
out:
        json_decref(req);
        return r;
}

int xferlog_send_policy(struct remote *rem, int policy)
{
        json_t *req = json_pack("{s:s}", "download_incomplete", config_dl_policy_name(policy)),
               *resp = NULL;
        int r;

        if (!req)
                return -ENOMEM;
        r = remote_post_json(rem, "/api/v1/device", req, &resp);
        json_decref(req);
        json_decref(resp);
        return r;
}
