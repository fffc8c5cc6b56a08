/* backup_upload: the sending half of `ferry backup` (see backup.h): for
 * each source, in groups of about BACKUP_GROUP_BYTES, the chunks the
 * server lacks go up (transfer_upload) and the group's changes are
 * committed under .ferry-backup/NAME/ (POST /api/v1/commit); the set's
 * index is written from the server's answers only, so a backup killed at
 * any point finds what is left next time, and chunks already sent are not
 * sent again (the server answers them present).
 *
 * The commit's answers, per change:
 *   ok              the index takes the new state
 *   conflict        another device changed that path of the set: this
 *                   device's files are what the set backs up, so the put
 *                   goes again on the server's current version; a delete
 *                   of what is already gone is done; a refused rename is
 *                   sent as a delete and a put
 *   missing_chunks  those chunks go up and the change is sent again
 *   invalid         logged, counted as failed
 * Each change is sent at most BK_TRIES times.
 *
 * No transfer records are announced: they tell other devices what is on
 * its way to them, and a backup set never goes to another device (a device
 * under the policy "wait" would list its files as waiting for ever).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "backup_int.h"
#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "localfs.h"
#include "log.h"
#include "path.h"
#include "push.h"
#include "remote.h"
#include "rules.h"
#include "transfer.h"

#define BK_TRIES 3

/* A change on its way: the scan's change (shallow) or half of a split
 * rename, which then owns its manifest. */
struct todo {
        struct local_change c;
        int owns_manifest;
};

struct todos {
        struct todo *v;
        size_t n, cap;
};

/* What one group's commits share. */
struct up {
        struct bk_session *s;
        struct bk_source *src;
        struct remote *rem;
        struct transfer t;
        struct backup_report *rep;
        char prefix[sizeof(RULES_BACKUP_PREFIX) + BACKUP_NAME_MAX + 2];
        int64_t seq; /* the space's seq after the last commit */
};

static int todos_add(struct todos *l, const struct local_change *c)
{
        if (l->n == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 64;
                struct todo *p = realloc(l->v, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                l->v = p;
                l->cap = ncap;
        }
        memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
        l->v[l->n].c = *c;
        l->n++;
        return 0;
}

static void todos_free(struct todos *l)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i].owns_manifest)
                        manifest_free(&l->v[i].c.manifest);
        free(l->v);
        memset(l, 0, sizeof(*l));
}

/* The path of the set's entry on the server, into b. */
static int server_path(const struct up *u, const char *rel, struct buf *b)
{
        buf_reset(b);
        return buf_printf(b, "%s%s", u->prefix, rel);
}

static json_t *change_json(const struct up *u, const struct local_change *c)
{
        struct buf p = BUF_INIT, f = BUF_INIT;
        char hex[HASH_HEX_LEN + 1];
        json_t *j = json_object();
        int r = j ? server_path(u, c->path, &p) : -ENOMEM;

        if (r == 0 && c->from)
                r = server_path(u, c->from, &f);
        if (r < 0)
                goto fail;
        json_object_set_new(j, "path", json_string((const char *)p.data));
        json_object_set_new(j, "base", json_integer(c->base));
        if (c->op == CHANGE_DELETE) {
                json_object_set_new(j, "op", json_string("delete"));
        } else if (c->op == CHANGE_RENAME) {
                json_object_set_new(j, "op", json_string("rename"));
                json_object_set_new(j, "from", json_string((const char *)f.data));
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
                        json_object_set_new(j, "chunks", manifest_to_json(&c->manifest));
                } else if (c->kind == KIND_SYMLINK) {
                        json_object_set_new(j, "target", json_string(c->target));
                }
        }
        buf_free(&p);
        buf_free(&f);
        return j;
fail:
        json_decref(j);
        buf_free(&p);
        buf_free(&f);
        return NULL;
}

/* The index takes an accepted change (as push.c does for a sync). */
static int apply_ok(struct up *u, const struct local_change *c, int64_t seq)
{
        struct manifest m = MANIFEST_INIT;
        const struct manifest *mp = &c->manifest;
        struct index_entry e = {0};
        struct index *idx = u->s->idx;
        int r;

        if (c->op == CHANGE_DELETE) {
                r = index_delete(idx, c->path);
                goto out;
        }
        if (c->op == CHANGE_RENAME && c->kind == KIND_FILE && c->manifest.n == 0 && c->size > 0 &&
            index_get_manifest(idx, c->from, &m) == 0)
                mp = &m; /* keep the chunk records: later uploads skip them */
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
        e.recorded_ns = u->src->sr.started_ns;
        if (c->op == CHANGE_RENAME && (r = index_delete(idx, c->from)) < 0)
                goto out;
        r = index_put(idx, &e, c->kind == KIND_FILE ? mp : NULL);
out:
        if (r == 0)
                r = bk_report_add(u->rep, c);
        manifest_free(&m);
        return r;
}

/* A refused rename goes again as a delete of the old path and a put of the
 * new one (with the old path's chunk list when the scan had none). */
static int split_rename(struct up *u, const struct local_change *c, struct todos *next)
{
        struct local_change del = {0}, put = *c;
        struct todo *t;
        int r;

        del.op = CHANGE_DELETE;
        del.path = c->from;
        del.kind = c->kind;
        del.base = c->base;
        put.op = CHANGE_PUT;
        put.from = NULL;
        put.base = 0;
        if ((r = todos_add(next, &del)) < 0 || (r = todos_add(next, &put)) < 0)
                return r;
        t = &next->v[next->n - 1];
        if (put.kind == KIND_FILE && put.manifest.n == 0 && put.size > 0) {
                memset(&t->c.manifest, 0, sizeof(t->c.manifest));
                r = index_get_manifest(u->s->idx, c->from, &t->c.manifest);
                if (r < 0)
                        return r;
                t->c.manifest.file_hash = c->manifest.file_hash;
                t->owns_manifest = 1;
        }
        return 0;
}

/* The next try of c after a conflict with the server's current entry cur
 * (NULL or a tombstone: no live entry), or 0 when there is nothing left to
 * do (a delete of what is already gone, which the index then forgets). */
static int on_conflict(struct up *u, const struct local_change *c, const json_t *cur,
                       struct todos *next)
{
        int live = json_is_object(cur) && !json_is_true(json_object_get(cur, "deleted"));
        int64_t seq = json_integer_value(json_object_get(cur, "seq"));
        struct local_change again = *c;

        if (c->op == CHANGE_RENAME)
                return split_rename(u, c, next);
        if (c->op == CHANGE_DELETE && !live)
                return apply_ok(u, c, 0);
        log_info("%s%s was changed by another device; this device's version replaces it", u->prefix,
                 c->path);
        again.base = live ? seq : 0;
        return todos_add(next, &again);
}

static void refused(struct up *u, const struct local_change *c, const char *why)
{
        log_error("the server refused %s %s%s: %s",
                  c->op == CHANGE_DELETE ? "the delete of" : "the backup of", u->prefix, c->path,
                  why);
        u->rep->failed++;
}

/* One POST /api/v1/commit of v[0..n); what must go again is added to
 * next, with tries_left 0 counting it failed instead. */
static int commit_once(struct up *u, const struct todo *v, size_t n, struct todos *next,
                       int tries_left)
{
        json_t *req = json_pack("{s:[]}", "changes"), *resp = NULL, *results, *arr;
        int r = 0;

        if (!req)
                return -ENOMEM;
        arr = json_object_get(req, "changes");
        for (size_t i = 0; i < n && r == 0; i++) {
                json_t *j = change_json(u, &v[i].c);

                if (!j || json_array_append_new(arr, j) < 0)
                        r = -ENOMEM;
        }
        if (r == 0)
                r = remote_post_json(u->rem, "/api/v1/commit", req, &resp);
        if (r < 0)
                goto out;
        results = json_object_get(resp, "results");
        if (!json_is_array(results) || json_array_size(results) != n) {
                r = err_set(-EPROTO, "the server's commit answer does not have one result per "
                                     "change");
                goto out;
        }
        if (json_is_integer(json_object_get(resp, "seq")))
                u->seq = json_integer_value(json_object_get(resp, "seq"));
        if ((r = index_begin(u->s->idx)) < 0)
                goto out;
        for (size_t i = 0; i < n && r == 0; i++) {
                const struct local_change *c = &v[i].c;
                json_t *res = json_array_get(results, i);
                const char *st = json_string_value(json_object_get(res, "status"));
                const char *why = json_string_value(json_object_get(res, "error"));
                int skip = 0;

                if (!st) {
                        r = err_set(-EPROTO, "the server's commit result for %s has no status",
                                    c->path);
                } else if (!strcmp(st, "ok")) {
                        r = apply_ok(u, c, json_integer_value(json_object_get(res, "seq")));
                } else if (!tries_left) {
                        refused(u, c, why ? why : st);
                } else if (!strcmp(st, "conflict")) {
                        r = on_conflict(u, c, json_object_get(res, "current"), next);
                } else if (!strcmp(st, "missing_chunks")) {
                        r = transfer_upload_missing(&u->t, c, json_object_get(res, "missing"),
                                                    &skip);
                        if (r == 0 && !skip)
                                r = todos_add(next, c);
                } else {
                        refused(u, c, why ? why : st);
                }
        }
        /* on a failure the server has what it accepted; the index does not,
         * and the next backup finds those changes again (the server takes
         * a put of what it already holds as a no-op) */
        if (r == 0)
                r = index_commit(u->s->idx);
        else
                index_rollback(u->s->idx);
out:
        json_decref(req);
        json_decref(resp);
        return r;
}

/* Commits l's changes in requests of at most PUSH_COMMIT_BATCH, sending
 * again what needs it, at most BK_TRIES times. A todo that owns its
 * manifest (half of a split rename) hands it on to its next try. */
static int commit_all(struct up *u, struct todos *l)
{
        struct todos cur = *l, next = {0};
        int r = 0;

        memset(l, 0, sizeof(*l));
        for (int t = BK_TRIES - 1; cur.n > 0 && r == 0; t--) {
                for (size_t k = 0; k < cur.n && r == 0; k += PUSH_COMMIT_BATCH)
                        r = commit_once(u, cur.v + k,
                                        cur.n - k < PUSH_COMMIT_BATCH ? cur.n - k
                                                                      : PUSH_COMMIT_BATCH,
                                        &next, t);
                for (size_t i = 0; i < next.n; i++)
                        for (size_t k = 0; k < cur.n; k++)
                                if (cur.v[k].owns_manifest &&
                                    next.v[i].c.manifest.chunks == cur.v[k].c.manifest.chunks) {
                                        next.v[i].owns_manifest = 1;
                                        cur.v[k].owns_manifest = 0;
                                }
                todos_free(&cur);
                cur = next;
                memset(&next, 0, sizeof(next));
        }
        todos_free(&cur);
        return r;
}

/* A server path must pass the path rules (length above all): a change
 * whose path does not is refused here, before anything is sent. */
static int path_ok(struct up *u, const struct local_change *c)
{
        struct buf p = BUF_INIT;
        int r = server_path(u, c->path, &p);

        if (r == 0 && path_validate((const char *)p.data) < 0) {
                refused(u, c, err_msg(-EINVAL));
                err_clear();
                r = 1;
        }
        buf_free(&p);
        return r;
}

static int upload_source(struct up *u, struct bk_source *src)
{
        struct local_change **ptrs = NULL;
        struct todos l = {0};
        int *skip = NULL, r = 0;
        size_t n = src->sr.n;

        u->src = src;
        u->t = (struct transfer){.remote = u->rem, .root = src->parent, .idx = u->s->idx};
        ptrs = malloc(n * sizeof(*ptrs));
        skip = calloc(n, sizeof(*skip));
        if (!ptrs || !skip) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                ptrs[i] = &src->sr.changes[i];
        for (size_t from = 0, to; from < n && r == 0; from = to) {
                to = push_group_end(ptrs, n, from, BACKUP_GROUP_BYTES);
                r = transfer_upload(&u->t, ptrs + from, to - from, skip + from);
                for (size_t i = from; i < to && r == 0; i++) {
                        if (skip[i]) /* changed while read: the next backup takes it */
                                continue;
                        r = path_ok(u, ptrs[i]);
                        if (r == 0)
                                r = todos_add(&l, ptrs[i]);
                        else if (r > 0)
                                r = 0;
                }
                if (r == 0)
                        r = commit_all(u, &l);
                todos_free(&l);
        }
out:
        todos_free(&l);
        free(ptrs);
        free(skip);
        return r;
}

int bk_upload(struct bk_session *s, struct backup_report *rep)
{
        struct up u = {.s = s, .rep = rep, .seq = -1};
        struct remote_stats rs;
        int r;

        snprintf(u.prefix, sizeof(u.prefix), "%s/%s/", RULES_BACKUP_PREFIX, s->set->name);
        r = remote_new(s->cfg->server, s->cfg->token, &u.rem);
        if (r < 0)
                return r;
        remote_set_limits(u.rem, s->cfg->limit_up, s->cfg->limit_down);
        for (size_t i = 0; i < s->nsrc && r == 0; i++)
                if (s->src[i].selected && !s->src[i].missing && s->src[i].sr.n > 0)
                        r = upload_source(&u, &s->src[i]);
        remote_stats(u.rem, &rs);
        rep->bytes_up = rs.bytes_up;
        remote_free(u.rem);
        if (r == 0 && u.seq >= 0)
                rep->last_seq = u.seq;
        return r;
}

int backup_run(const struct config *cfg, const struct backup_set *set,
               const struct backup_options *o, struct backup_report *rep)
{
        int64_t deletes = 0, indexed = 0;
        struct bk_session s;
        int r;

        r = bk_open(cfg, set, &s);
        if (r == 0)
                r = bk_scan(&s, o->only, o->nonly, rep);
        bk_report_reset(rep); /* from here: what was committed */
        if (r < 0)
                goto out;
        for (size_t i = 0; i < s.nsrc; i++)
                deletes += s.src[i].sr.deletes;
        if (deletes > cfg->mass_delete_count && (r = index_count(s.idx, &indexed)) < 0)
                goto out;
        if (!o->allow_mass_delete &&
            push_mass_delete_tripped(deletes, indexed, cfg->mass_delete_count,
                                     cfg->mass_delete_percent)) {
                r = err_set(-ECANCELED,
                            "this backup would delete %lld of the %lld entries of the set %s "
                            "(more than %lld and %d%%); nothing was sent. If that is intended, "
                            "run 'ferry backup --to %s --allow-mass-delete'",
                            (long long)deletes, (long long)indexed, set->name,
                            (long long)cfg->mass_delete_count, cfg->mass_delete_percent, set->name);
                goto out;
        }
        r = bk_upload(&s, rep);
        if (r < 0)
                goto out;
        if (rep->failed) {
                r = err_set(-EIO, "%lld changes of the set %s were refused (see the log above)",
                            (long long)rep->failed, set->name);
                goto out;
        }
        r = index_state_set(s.idx, BK_STATE_LAST_NS, fsutil_now_ns());
        if (r == 0)
                r = index_state_set(s.idx, BK_STATE_LAST_SEQ, rep->last_seq);
        if (r == 0 && rep->nmissing)
                r = err_set(-ENOENT,
                            "%s is missing: nothing of it was changed in the set %s (the "
                            "other sources were backed up)",
                            rep->missing[0], set->name);
out:
        bk_close(&s);
        return r;
}
