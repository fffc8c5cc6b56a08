/* push: the upload half of a sync round (see push.h).
 *
 * The index is written only from the server's answer: an entry says "the
 * server holds this state as seq", so a crash between upload and commit, or
 * a refused commit, leaves the change to be found again by the next scan.
 * A conflict never overwrites anything: the local file is moved aside as a
 * conflict copy (uploaded by the next pass) and the server's version is
 * queued for the pull to write under the original name.
 *
 * A file put whose base version's chunk list is in the index is committed
 * as a patch against it when that is shorter (docs/api.md, "commit"), so a
 * one-chunk edit of a large file does not resend its whole chunk list; a
 * new file with the content of a file the index knows as synced (a copy)
 * names that file's version instead of sending any list ("same_as").
 *
 * Transfer records (xferlog.c): the file puts are announced before the
 * first byte goes, each chunk body reports how far its files got, and the
 * changes are uploaded and committed in groups of about PUSH_GROUP_SECONDS
 * of transfer each, so that a long upload lands file by file: a device
 * that dies half-way leaves the files it finished complete for everyone,
 * and the others announced (failed or pending, never half-written).
 */
#include "push.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "localfs.h"
#include "log.h"
#include "manifest.h"
#include "patch.h"
#include "path.h"
#include "scan.h"
#include "transfer.h"
#include "xferlog.h"

/* Files of fewer chunks go with their list even when they are copies: the
 * list is a few hundred bytes and needs no lookups. */
#define PUSH_SAME_AS_MIN_CHUNKS 16

int push_mass_delete_tripped(int64_t deletes, int64_t indexed, int64_t count, int percent)
{
        if (deletes <= count)
                return 0;
        /* deletes / indexed > percent / 100, without dividing */
        return deletes * 100 > (int64_t)percent * indexed;
}

/* A change to retry after the first commit: the same change after its
 * missing chunks were sent, or one half of a rename the server refused. */
struct retry {
        struct local_change c; /* shallow: points into the scan result */
        int owns_manifest;
};

struct batch {
        struct retry *items;
        size_t n, cap;
};

static int batch_add(struct batch *b, const struct local_change *c)
{
        if (b->n == b->cap) {
                size_t ncap = b->cap ? b->cap * 2 : 16;
                struct retry *p = realloc(b->items, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                b->items = p;
                b->cap = ncap;
        }
        memset(&b->items[b->n], 0, sizeof(b->items[b->n]));
        b->items[b->n].c = *c;
        b->n++;
        return 0;
}

static void batch_free(struct batch *b)
{
        for (size_t i = 0; i < b->n; i++)
                if (b->items[i].owns_manifest)
                        manifest_free(&b->items[i].c.manifest);
        free(b->items);
        memset(b, 0, sizeof(*b));
}

/* A put's chunk list as a patch against its base version (the index's
 * manifest of the path, which the server holds as the entry at base), when
 * that is shorter than the whole list: [[start, delete_count, chunks]].
 * NULL when a full list is sent instead (no base, nothing to gain, or the
 * base cannot be read; the full list is always correct). */
static json_t *patch_json(struct sync_ctx *s, const struct local_change *c)
{
        struct manifest base = MANIFEST_INIT;
        struct patch_region d;
        json_t *p = NULL;

        if (c->base <= 0 || c->manifest.n < 4 || index_get_manifest(s->idx, c->path, &base) < 0)
                goto out;
        patch_diff(&base, &c->manifest, &d);
        if (patch_worth(&c->manifest, &d))
                p = patch_to_json(&c->manifest, &d);
out:
        manifest_free(&base);
        return p;
}

/* The synced file (not c's own path) that holds the chunk h, when it has
 * c's content: 1 with *seq (its version) and *path (malloc'd), else 0. */
static int synced_copy(struct sync_ctx *s, const struct local_change *c, const struct hash *h,
                       char **path, int64_t *seq)
{
        struct index_entry ie = {0};
        uint64_t off;
        int r, found = 0;

        if (index_find_chunk(s->idx, h, path, &off) < 0)
                return 0;
        r = index_get(s->idx, *path, &ie);
        if (r == 0) {
                found = strcmp(*path, c->path) != 0 && ie.kind == KIND_FILE && ie.seq > 0 &&
                        ie.size == c->size && hash_equal(&ie.hash, &c->manifest.file_hash);
                *seq = ie.seq;
                index_entry_free(&ie);
        }
        if (!found) {
                free(*path);
                *path = NULL;
        }
        return found;
}

/* A put of content another synced file has (a copy): {"path", "seq"} of
 * that file's version, so that no chunk list goes (docs/api.md, "commit",
 * same_as). The index finds candidates by the first and the last chunk.
 * NULL when there is none, or the file is small enough to send whole. */
static json_t *same_as_json(struct sync_ctx *s, const struct local_change *c)
{
        char *path = NULL;
        int64_t seq = 0;
        json_t *j;

        if (c->manifest.n < PUSH_SAME_AS_MIN_CHUNKS)
                return NULL;
        if (!synced_copy(s, c, &c->manifest.chunks[0].hash, &path, &seq) &&
            !synced_copy(s, c, &c->manifest.chunks[c->manifest.n - 1].hash, &path, &seq))
                return NULL;
        j = json_pack("{s:s, s:I}", "path", path, "seq", (json_int_t)seq);
        free(path);
        return j;
}

/* allow_patch is off on a retry: a put sent as a patch against a version
 * deleted meanwhile goes again with its whole chunk list, which the server
 * accepts on the tombstone (an edit wins over a delete); so does a
 * same_as whose version the server no longer has. */
static json_t *change_json(struct sync_ctx *s, const struct local_change *c, int allow_patch)
{
        char hex[HASH_HEX_LEN + 1];
        json_t *j = json_object();

        if (!j)
                return NULL;
        if (c->op == CHANGE_DELETE) {
                json_object_set_new(j, "op", json_string("delete"));
        } else if (c->op == CHANGE_RENAME) {
                json_object_set_new(j, "op", json_string("rename"));
                json_object_set_new(j, "from", json_string(c->from));
        } else {
                json_object_set_new(j, "op", json_string("put"));
                json_object_set_new(j, "kind", json_string(kind_name(c->kind)));
                if (c->kind == KIND_FILE) {
                        hash_to_hex(&c->manifest.file_hash, hex);
                        json_object_set_new(j, "size", json_integer((json_int_t)c->size));
                        json_object_set_new(j, "mtime_ns", json_integer(c->mtime_ns));
                        json_object_set_new(j, "mode",
                                            json_integer(localfs_wire_mode(KIND_FILE, c->mode)));
                        json_object_set_new(j, "hash", json_string(hex));
                        json_t *sa = allow_patch ? same_as_json(s, c) : NULL;
                        json_t *p = allow_patch && !sa ? patch_json(s, c) : NULL;

                        if (sa)
                                json_object_set_new(j, "same_as", sa);
                        else if (p)
                                json_object_set_new(j, "patch", p);
                        else
                                json_object_set_new(j, "chunks", manifest_to_json(&c->manifest));
                } else if (c->kind == KIND_SYMLINK) {
                        json_object_set_new(j, "target", json_string(c->target));
                }
        }
        json_object_set_new(j, "path", json_string(c->path));
        json_object_set_new(j, "base", json_integer(c->base));
        return j;
}

/* Records an accepted change in the index. */
/* Keeps seq, which a commit of this device got, for pull_run (sync.h). */
static int note_own_seq(struct sync_ctx *s, int64_t seq)
{
        int r = buf_grow_array(&s->own_seqs, &s->cap_own, s->n_own + 1, sizeof(*s->own_seqs));

        if (r == 0)
                s->own_seqs[s->n_own++] = seq;
        return r;
}

static int apply_ok(struct sync_ctx *s, const struct local_change *c, int64_t seq)
{
        struct manifest m = MANIFEST_INIT;
        const struct manifest *mp = &c->manifest;
        struct index_entry e = {0};
        int r;

        r = push_rules_moved(s->idx, c);
        if (r < 0)
                return r;
        if (c->op == CHANGE_DELETE) {
                s->stats.deleted++;
                return index_delete(s->idx, c->path);
        }
        if (c->op == CHANGE_RENAME && c->kind == KIND_FILE && c->manifest.n == 0 && c->size > 0) {
                /* keep the chunk records for local reuse */
                if (index_get_manifest(s->idx, c->from, &m) == 0)
                        mp = &m;
        }
        e.path = c->path;
        e.kind = c->kind;
        e.size = c->size;
        e.mtime_ns = c->mtime_ns;
        e.ctime_ns = c->ctime_ns;
        e.ino = c->ino;
        e.mode = localfs_wire_mode(c->kind, c->mode);
        if (c->kind == KIND_FILE)
                e.hash = c->manifest.file_hash;
        e.target = c->target;
        e.seq = seq;
        e.recorded_ns = s->scan_ns;
        if (c->op == CHANGE_RENAME) {
                r = index_delete(s->idx, c->from);
                if (r < 0)
                        goto out;
        }
        r = index_put(s->idx, &e, c->kind == KIND_FILE ? mp : NULL);
        if (c->op == CHANGE_PUT)
                xferlog_committed(s->xl, c->path);
        s->stats.uploaded++;
out:
        manifest_free(&m);
        return r;
}

/* The server's version moved on: keep ours as a conflict copy and let the
 * pull write theirs. */
static int apply_conflict(struct sync_ctx *s, const struct local_change *c, json_t *current)
{
        char *full = path_join(s->cfg->root, c->path);
        struct stat st;
        int r = 0;

        if (!full)
                return -ENOMEM;
        /* ours goes up again as the conflict copy, under its own name */
        if (c->op == CHANGE_PUT)
                xferlog_drop(s->xl, c->path, NULL);
        if (c->op != CHANGE_DELETE && lstat(full, &st) == 0) {
                r = localfs_conflict_move(s->cfg->root, c->path, s->cfg->device_name, time(NULL),
                                          NULL);
                if (r < 0)
                        goto out;
                s->stats.conflicts++;
        } else if (c->op == CHANGE_DELETE) {
                log_warn("%s was deleted here but changed on another device; keeping the "
                         "other device's version",
                         c->path);
        }
        r = index_delete(s->idx, c->path);
        if (r < 0)
                goto out;
        if (json_is_object(current) && json_array_append(s->pending, current) < 0)
                r = -ENOMEM;
        s->again = 1;
out:
        free(full);
        return r;
}

/* A refused rename becomes a delete of the old path and a put of the new
 * one, so each half meets its own conflict handling. */
static int split_rename(struct sync_ctx *s, const struct local_change *c, struct batch *retry)
{
        struct local_change del = {0}, put = *c;
        int r;

        del.op = CHANGE_DELETE;
        del.path = c->from;
        del.kind = c->kind;
        del.base = c->base;
        r = batch_add(retry, &del);
        if (r < 0)
                return r;
        put.op = CHANGE_PUT;
        put.from = NULL;
        put.base = 0;
        r = batch_add(retry, &put);
        if (r < 0)
                return r;
        if (put.kind == KIND_FILE && put.manifest.n == 0 && put.size > 0) {
                struct retry *it = &retry->items[retry->n - 1];

                memset(&it->c.manifest, 0, sizeof(it->c.manifest));
                r = index_get_manifest(s->idx, c->from, &it->c.manifest);
                if (r < 0)
                        return r;
                it->c.manifest.file_hash = c->manifest.file_hash;
                it->owns_manifest = 1;
        }
        return 0;
}

static int commit_batch(struct sync_ctx *s, const struct local_change *const *changes, size_t n,
                        int may_retry)
{
        json_t *req = json_object(), *arr = json_array(), *resp = NULL, *results;
        struct batch retry = {0};
        int r, intx = 0;

        if (!req || !arr) {
                json_decref(arr);
                r = -ENOMEM;
                goto out;
        }
        json_object_set_new(req, "changes", arr);
        for (size_t i = 0; i < n; i++) {
                json_t *j = change_json(s, changes[i], may_retry);

                if (!j || json_array_append_new(arr, j) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = remote_post_json(s->remote, "/api/v1/commit", req, &resp);
        if (r < 0)
                goto out;
        if (json_integer_value(json_object_get(resp, "seq")) > s->own_top)
                s->own_top = json_integer_value(json_object_get(resp, "seq"));
        results = json_object_get(resp, "results");
        if (!json_is_array(results) || json_array_size(results) != n) {
                r = err_set(-EPROTO, "the server's commit answer does not have one result per "
                                     "change");
                goto out;
        }
        r = index_begin(s->idx);
        if (r < 0)
                goto out;
        intx = 1;
        for (size_t i = 0; i < n; i++) {
                const struct local_change *c = changes[i];
                json_t *res = json_array_get(results, i);
                const char *st = json_string_value(json_object_get(res, "status"));

                if (!st) {
                        r = err_set(-EPROTO, "the server's commit result for %s has no status",
                                    c->path);
                        goto out;
                }
                if (!strcmp(st, "ok")) {
                        json_t *seq = json_object_get(res, "seq");

                        if (!json_is_integer(seq)) {
                                r = err_set(-EPROTO,
                                            "the server's commit result for %s has no "
                                            "seq",
                                            c->path);
                                goto out;
                        }
                        r = apply_ok(s, c, json_integer_value(seq));
                        if (r == 0)
                                r = note_own_seq(s, json_integer_value(seq));
                } else if (!strcmp(st, "conflict")) {
                        json_t *cur = json_object_get(res, "current");

                        if (c->op == CHANGE_RENAME && may_retry)
                                r = split_rename(s, c, &retry);
                        else if (c->op == CHANGE_PUT && may_retry &&
                                 (!json_is_object(cur) ||
                                  json_is_true(json_object_get(cur, "deleted"))))
                                r = batch_add(&retry, c); /* a patch on a deleted base */
                        else
                                r = apply_conflict(s, c, json_object_get(res, "current"));
                } else if (!strcmp(st, "missing_chunks") && may_retry) {
                        int skip = 0;

                        /* an empty list: the server could not use a same_as
                         * and wants the chunk list itself (the retry sends
                         * it) */
                        r = transfer_upload_missing(&s->xfer, c, json_object_get(res, "missing"),
                                                    &skip);
                        if (r == 0 && !skip)
                                r = batch_add(&retry, c);
                        else if (r == 0)
                                xferlog_drop(s->xl, c->path, NULL);
                } else {
                        const char *why = json_string_value(json_object_get(res, "error"));
                        char reason[600];

                        if (!why)
                                why = !strcmp(st, "missing_chunks")
                                          ? "chunks still missing after an upload"
                                          : st;
                        log_error("the server refused %s %s: %s",
                                  c->op == CHANGE_DELETE ? "the delete of" : "the change to",
                                  c->path, why);
                        snprintf(reason, sizeof(reason), "refused by the server: %s", why);
                        if (c->op == CHANGE_PUT)
                                xferlog_drop(s->xl, c->path, reason);
                        s->stats.invalid++;
                }
                if (r < 0)
                        goto out;
        }
        r = index_commit(s->idx);
        intx = 0;
        if (r < 0 || retry.n == 0)
                goto out;
        {
                const struct local_change **again = malloc(retry.n * sizeof(*again));

                if (!again) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < retry.n; i++)
                        again[i] = &retry.items[i].c;
                r = commit_batch(s, again, retry.n, 0);
                free(again);
        }
out:
        if (intx) {
                if (r < 0)
                        index_rollback(s->idx);
                else
                        index_commit(s->idx);
        }
        batch_free(&retry);
        json_decref(req);
        json_decref(resp);
        return r;
}

/* The poster thread's report after each chunk body (transfer.body_sent). */
static void on_body_sent(void *ud, struct remote *rem, const struct transfer_mark *marks, size_t n)
{
        struct sync_ctx *s = ud;

        if (s->xl)
                xferlog_progress(s->xl, rem, marks, n);
}

size_t push_group_end(struct local_change *const *changes, size_t n, size_t from, uint64_t target)
{
        uint64_t bytes = 0;
        size_t i = from;

        while (i < n && i - from < PUSH_COMMIT_BATCH && (i == from || bytes < target)) {
                if (changes[i]->op == CHANGE_PUT && changes[i]->kind == KIND_FILE)
                        bytes += changes[i]->size;
                i++;
        }
        return i;
}

uint64_t push_group_target(uint64_t bytes, int64_t elapsed_ns)
{
        double t;

        if (elapsed_ns <= 0)
                return PUSH_GROUP_MAX;
        t = (double)bytes * PUSH_GROUP_SECONDS * 1e9 / (double)elapsed_ns;
        if (t < PUSH_GROUP_MIN)
                return PUSH_GROUP_MIN;
        if (t > PUSH_GROUP_MAX)
                return PUSH_GROUP_MAX;
        return (uint64_t)t;
}

/* Uploads and commits changes[from..to); a file that vanished or changed
 * since the scan waits for the next pass. */
static int push_group(struct sync_ctx *s, struct local_change **changes, size_t from, size_t to,
                      int *skip, const struct local_change **todo)
{
        size_t ntodo = 0;
        int r;

        for (size_t i = from; i < to; i++) {
                if (!changes[i]->stream || skip[i])
                        continue;
                if ((r = sync_check_cancel(s->opts)) < 0)
                        return r;
                r = transfer_stream(&s->xfer, changes[i], &skip[i]);
                if (r < 0)
                        return r;
        }
        r = transfer_upload(&s->xfer, changes + from, to - from, skip + from);
        if (r < 0)
                return r;
        for (size_t i = from; i < to; i++) {
                if (!skip[i]) {
                        todo[ntodo++] = changes[i];
                        continue;
                }
                s->again = 1;
                if (changes[i]->op == CHANGE_PUT)
                        xferlog_drop(s->xl, changes[i]->path, NULL);
        }
        for (size_t k = 0; k < ntodo; k += PUSH_COMMIT_BATCH) {
                size_t m = ntodo - k < PUSH_COMMIT_BATCH ? ntodo - k : PUSH_COMMIT_BATCH;

                if ((r = sync_check_cancel(s->opts)) < 0)
                        return r;
                r = commit_batch(s, todo + k, m, 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The round stopped half-way: the records it announced and did not commit
 * fail with the reason, unless the server is gone (it fails them itself
 * when the connection drops). The round's own error message is kept. */
static void fail_open_records(struct sync_ctx *s, int r)
{
        char msg[512];

        if (!s->xl || r == -ECONNREFUSED)
                return;
        snprintf(msg, sizeof(msg), "%s", err_msg(r));
        if (xferlog_finish(s->xl, s->remote,
                           r == -EINTR ? "interrupted before the upload finished; it resumes on "
                                         "the next sync"
                                       : msg) < 0)
                log_debug("could not report the files not uploaded");
        err_set(r, "%s", msg);
}

int push_run(struct sync_ctx *s)
{
        struct scan_result sr = {0};
        struct local_change **ptrs = NULL;
        const struct local_change **todo = NULL;
        int64_t indexed = 0, files = 0, bytes = 0;
        uint64_t target = PUSH_GROUP_FIRST;
        int targeted = s->opts->targeted && s->pass == 0;
        int64_t invalid = s->stats.invalid;
        int *skip = NULL;
        int r;

        r = push_scan(s->idx, s->cfg->root, s->rules, s->ignore, targeted, s->opts->paths,
                      s->opts->npaths, &sr);
        if (r == 0)
                r = push_rules_apply(s->idx, &sr, !targeted, s->opts->paths, s->opts->npaths);
        if (r < 0)
                goto out;
        s->scan_ns = sr.started_ns;
        /* counting the index costs a table walk: only when the guard may trip */
        if (sr.deletes > s->cfg->mass_delete_count && (r = index_count(s->idx, &indexed)) < 0)
                goto out;
        if (!s->opts->allow_mass_delete &&
            push_mass_delete_tripped(sr.deletes, indexed, s->cfg->mass_delete_count,
                                     s->cfg->mass_delete_percent)) {
                r = err_set(-ECANCELED,
                            "this round would delete %lld of the %lld synced entries (more than "
                            "%lld and %d%%); nothing was changed. If that is intended, run "
                            "'ferry sync --allow-mass-delete'",
                            (long long)sr.deletes, (long long)indexed,
                            (long long)s->cfg->mass_delete_count, s->cfg->mass_delete_percent);
                goto out;
        }
        if (sr.n == 0)
                goto done;
        log_debug("scan: %zu local changes (%lld deletes)", sr.n, (long long)sr.deletes);
        ptrs = malloc(sr.n * sizeof(*ptrs));
        todo = malloc(sr.n * sizeof(*todo));
        skip = calloc(sr.n, sizeof(*skip));
        if (!ptrs || !todo || !skip) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < sr.n; i++) {
                ptrs[i] = &sr.changes[i];
                if (sr.changes[i].op == CHANGE_PUT && sr.changes[i].kind == KIND_FILE) {
                        files++;
                        bytes += (int64_t)sr.changes[i].size;
                }
        }
        if (s->opts->progress)
                s->opts->progress(s->opts->ud, SYNC_UPLOADING, files ? files : (int64_t)sr.n,
                                  bytes);
        if (files > 0) {
                r = xferlog_new(&s->xl);
                if (r == 0)
                        r = xferlog_announce(s->xl, s->remote, ptrs, sr.n, NULL);
                if (r < 0)
                        goto out;
                s->xfer.body_sent = on_body_sent;
        }
        /* bodies in flight on several connections: ferryd verifies and
         * stores one per core, and one's fsync overlaps another's hashing */
        s->xfer.connections = PUSH_CONNECTIONS;
        for (size_t from = 0, to; from < sr.n; from = to) {
                int64_t t0 = fsutil_mono_ns();
                uint64_t gbytes = 0;

                if ((r = sync_check_cancel(s->opts)) < 0)
                        goto out;
                to = push_group_end(ptrs, sr.n, from, target);
                for (size_t i = from; i < to; i++)
                        if (ptrs[i]->op == CHANGE_PUT && ptrs[i]->kind == KIND_FILE)
                                gbytes += ptrs[i]->size;
                r = push_group(s, ptrs, from, to, skip, todo);
                if (r < 0)
                        goto out;
                if (gbytes > 0)
                        target = push_group_target(gbytes, fsutil_mono_ns() - t0);
        }
        r = xferlog_finish(s->xl, s->remote, NULL);
        if (r < 0)
                goto out;
done:
        /* everything the scan found went up (what changed meanwhile has a
         * later time): since-last-sync starts there next time. Not after a
         * targeted scan, which did not look at everything, nor when the
         * server refused a change, which must be tried again. */
        if (!targeted && s->stats.invalid == invalid)
                r = index_state_set(s->idx, PUSH_LAST_UPLOAD_KEY, sr.started_ns);
out:
        if (r < 0)
                fail_open_records(s, r);
        s->xfer.body_sent = NULL;
        s->xfer.connections = 0;
        xferlog_free(s->xl);
        s->xl = NULL;
        free(ptrs);
        free(todo);
        free(skip);
        scan_result_free(&sr);
        return r;
}
