/* api_files: the space endpoints of API v1 — commit (through the journal's
 * compare-and-set rules), changes since a seq (with patch=1, large files
 * as patches against the version the device holds: delta.h), the file
 * tree, one entry
 * (or, for a file still being uploaded, a 409 "not_ready" that says where
 * its upload stands).
 *
 * A request whose shape is wrong (not JSON, wrong types, a path that breaks
 * the path rules) is refused whole with 400 before the journal is touched;
 * the journal then decides each well-formed change on its own. A commit
 * that moved the space's number is announced to its event streams
 * (events.h) once its transaction is over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "delta.h"
#include "err.h"
#include "events.h"
#include "journal.h"
#include "log.h"
#include "patch.h"
#include "path.h"
#include "server.h"
#include "transfers.h"

/* A page of changes stops early (with more: true) past this many chunks in
 * its entries, so that a page of huge files stays a few MiB of JSON. */
#define CHANGES_CHUNK_BUDGET 65536
#define MANIFEST_BLOB_ITEM 36 /* bytes per chunk in manifest_to_blob() */

static const char *const op_names[] = {"put", "delete", "rename"};
static const char *const status_names[] = {"ok", "conflict", "missing_chunks", "invalid"};

static void free_patch(struct journal_change *c)
{
        patch_free((struct patch_edit *)c->patch, c->n_patch);
        c->patch = NULL;
        c->n_patch = 0;
}

/* Parses a put's "patch" (patch.h; 400 when its shape is wrong; whether the
 * indices fit the base version is the journal's call, per change
 * "invalid"). 0, or -1 with a message in err. */
static int parse_patch(json_t *v, size_t i, struct journal_change *c, char *err, size_t cap)
{
        struct patch_edit *p = NULL;
        int r;

        if ((r = patch_from_json(v, &p, &c->n_patch)) < 0) {
                snprintf(err, cap, "changes[%zu].%s", i, err_msg(r));
                return -1;
        }
        c->patch = p;
        c->has_patch = 1;
        return 0;
}

/* Parses a put's "same_as": {"path": P, "seq": S}. 0, or -1 with a message
 * in err. */
static int parse_same(json_t *v, size_t i, struct journal_change *c, char *err, size_t cap)
{
        json_t *p = json_object_get(v, "path"), *q = json_object_get(v, "seq");

        if (!json_is_string(p) || path_validate(json_string_value(p)) < 0 || !json_is_integer(q) ||
            json_integer_value(q) <= 0) {
                snprintf(err, cap,
                         "changes[%zu].same_as must be {\"path\": a valid path, "
                         "\"seq\": an integer > 0}",
                         i);
                return -1;
        }
        c->same_path = json_string_value(p);
        c->same_seq = json_integer_value(q);
        return 0;
}

/* Fills c from change i. 0, or -1 with a message in err. */
static int parse_change(json_t *o, size_t i, struct journal_change *c, char *err, size_t cap)
{
        json_t *v, *ed, *sa;
        const char *op;
        size_t k;
        int r;

        memset(c, 0, sizeof(*c));
        if (!json_is_object(o))
                goto bad_type;
        v = json_object_get(o, "op");
        if (!json_is_string(v)) {
                snprintf(err, cap, "changes[%zu].op must be a string", i);
                return -1;
        }
        op = json_string_value(v);
        c->op = -1; /* unknown: the journal answers "invalid" for this change */
        for (k = 0; k < sizeof(op_names) / sizeof(op_names[0]); k++)
                if (strcmp(op, op_names[k]) == 0)
                        c->op = (int)k;
        v = json_object_get(o, "path");
        if (!json_is_string(v)) {
                snprintf(err, cap, "changes[%zu].path must be a string", i);
                return -1;
        }
        c->path = json_string_value(v);
        if ((r = path_validate(c->path)) < 0) {
                snprintf(err, cap, "changes[%zu].path: %s", i, err_msg(r));
                return -1;
        }
        v = json_object_get(o, "base");
        if (v && !json_is_null(v)) {
                if (!json_is_integer(v) || json_integer_value(v) < 0) {
                        snprintf(err, cap, "changes[%zu].base must be a non-negative integer", i);
                        return -1;
                }
                c->base = json_integer_value(v);
        }
        if (c->op == JOURNAL_RENAME) {
                v = json_object_get(o, "from");
                if (!json_is_string(v)) {
                        snprintf(err, cap, "changes[%zu].from must be a string", i);
                        return -1;
                }
                c->from = json_string_value(v);
                if ((r = path_validate(c->from)) < 0) {
                        snprintf(err, cap, "changes[%zu].from: %s", i, err_msg(r));
                        return -1;
                }
        }
        if (c->op != JOURNAL_PUT)
                return 0;

        v = json_object_get(o, "kind");
        if (!json_is_string(v)) {
                snprintf(err, cap, "changes[%zu].kind must be a string", i);
                return -1;
        }
        c->kind = kind_parse(json_string_value(v)); /* unknown: "invalid" */
        v = json_object_get(o, "mtime_ns");
        if (v && !json_is_null(v)) {
                if (!json_is_integer(v))
                        goto bad_type;
                c->mtime_ns = json_integer_value(v);
        }
        v = json_object_get(o, "mode");
        if (v && !json_is_null(v)) {
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        goto bad_type;
                c->mode = (uint32_t)(json_integer_value(v) & 07777);
        } else if (c->kind == KIND_FILE) {
                c->mode = 0644;
        }
        if (c->kind == KIND_SYMLINK) {
                v = json_object_get(o, "target");
                if (!json_is_string(v)) {
                        snprintf(err, cap, "changes[%zu].target must be a string", i);
                        return -1;
                }
                c->target = json_string_value(v);
        }
        if (c->kind != KIND_FILE)
                return 0;
        v = json_object_get(o, "size");
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                snprintf(err, cap, "changes[%zu].size must be a non-negative integer", i);
                return -1;
        }
        c->size = (uint64_t)json_integer_value(v);
        v = json_object_get(o, "hash");
        if (!json_is_string(v) || hash_from_hex(json_string_value(v), &c->hash) < 0) {
                snprintf(err, cap, "changes[%zu].hash must be 64 hex digits", i);
                return -1;
        }
        c->has_hash = 1;
        v = json_object_get(o, "chunks");
        if (v && !json_is_null(v) && (r = manifest_from_json(v, &c->manifest)) < 0) {
                snprintf(err, cap, "changes[%zu].chunks: %s", i, err_msg(r));
                return -1;
        }
        ed = json_object_get(o, "patch");
        sa = json_object_get(o, "same_as");
        if ((v && !json_is_null(v)) + (ed && !json_is_null(ed)) + (sa && !json_is_null(sa)) > 1) {
                snprintf(err, cap, "changes[%zu] has more than one of chunks, patch, same_as", i);
                return -1;
        }
        if (ed && !json_is_null(ed))
                return parse_patch(ed, i, c, err, cap);
        if (sa && !json_is_null(sa))
                return parse_same(sa, i, c, err, cap);
        return 0;
bad_type:
        snprintf(err, cap, "changes[%zu] has a field of the wrong type", i);
        return -1;
}

static json_t *result_json(const struct journal_change *c, const struct journal_result *res)
{
        char hex[HASH_HEX_LEN + 1];
        json_t *o, *arr;
        size_t k;

        o = json_pack("{s:s, s:s}", "path", c->path, "status", status_names[res->status]);
        if (!o)
                return NULL;
        if (c->op == JOURNAL_RENAME && json_object_set_new(o, "from", json_string(c->from)) < 0)
                goto fail;
        switch (res->status) {
        case JOURNAL_OK:
                if (json_object_set_new(o, "seq", json_integer(res->seq)) < 0)
                        goto fail;
                break;
        case JOURNAL_CONFLICT:
                if (json_object_set_new(o, "current",
                                        res->has_current ? api_entry_json(&res->current, 1)
                                                         : json_null()) < 0)
                        goto fail;
                break;
        case JOURNAL_MISSING_CHUNKS:
                arr = json_array();
                if (json_object_set_new(o, "missing", arr) < 0)
                        goto fail;
                for (k = 0; k < res->n_missing; k++) {
                        hash_to_hex(&res->missing[k], hex);
                        if (json_array_append_new(arr, json_string(hex)) < 0)
                                goto fail;
                }
                break;
        default:
                if (json_object_set_new(o, "error", json_string(res->error)) < 0)
                        goto fail;
                break;
        }
        return o;
fail:
        json_decref(o);
        return NULL;
}

/* The files the commit put complete the device's transfer records (and
 * make the downloads waiting for them ready). */
static void commit_records(struct server *s, const struct http_request *req,
                           const struct journal_change *cs, const struct journal_result *rs,
                           size_t n)
{
        struct meta_committed *puts;
        size_t i, k = 0;

        puts = calloc(n ? n : 1, sizeof(*puts));
        if (!puts) {
                log_warn("transfer records after a commit: out of memory");
                return;
        }
        for (i = 0; i < n; i++) {
                if (cs[i].op != JOURNAL_PUT || cs[i].kind != KIND_FILE ||
                    rs[i].status != JOURNAL_OK || rs[i].seq <= 0)
                        continue;
                puts[k++] = (struct meta_committed){cs[i].path, cs[i].size, &cs[i].hash, rs[i].seq};
        }
        transfers_on_commits(s, req->device.user_id, req->device.id, puts, k);
        free(puts);
}

void api_commit(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct journal_change *cs = NULL;
        struct journal_result *rs = NULL;
        json_t *body, *changes, *results = NULL, *o;
        char err[512];
        size_t i, n = 0;
        int64_t seq = 0;
        int r;

        body = api_body_object(req, rep);
        if (!body)
                return;
        changes = json_object_get(body, "changes");
        if (!json_is_array(changes)) {
                http_reply_error(rep, 400, "\"changes\" must be an array");
                goto out;
        }
        n = json_array_size(changes);
        if (n > API_MAX_ITEMS) {
                http_reply_error(rep, 413, "at most %d changes per commit", API_MAX_ITEMS);
                n = 0;
                goto out;
        }
        cs = calloc(n ? n : 1, sizeof(*cs));
        rs = calloc(n ? n : 1, sizeof(*rs));
        if (!cs || !rs) {
                http_reply_error(rep, 500, "out of memory");
                goto out;
        }
        for (i = 0; i < n; i++) {
                if (parse_change(json_array_get(changes, i), i, &cs[i], err, sizeof(err)) < 0) {
                        http_reply_error(rep, 400, "%s", err);
                        goto out;
                }
        }
        r = journal_commit(s->meta, req->device.user_id, req->device.id, cs, n, rs, &seq);
        if (r < 0) {
                api_internal(rep, "commit", r);
                goto out;
        }
        /* The transaction is over: the space's other devices may pull now.
         * Only a change that took a number moves the space. */
        for (i = 0; i < n; i++) {
                if (rs[i].status == JOURNAL_OK && rs[i].seq > 0) {
                        events_publish(s->events, req->device.user_id, seq, req->device.id);
                        break;
                }
        }
        commit_records(s, req, cs, rs, n);
        results = json_array();
        for (i = 0; results && i < n; i++) {
                o = result_json(&cs[i], &rs[i]);
                if (!o || json_array_append_new(results, o) < 0) {
                        json_decref(results);
                        results = NULL;
                }
        }
        if (!results) {
                /* Committed, but we cannot say so: the client retries and
                 * its retry is a no-op. */
                http_reply_error(rep, 500, "out of memory");
                goto out;
        }
        http_reply_json(rep, 200,
                        json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "results", results));
out:
        for (i = 0; cs && i < n; i++) {
                manifest_free(&cs[i].manifest);
                free_patch(&cs[i]);
        }
        for (i = 0; rs && i < n; i++)
                journal_result_clear(&rs[i]);
        free(cs);
        free(rs);
        json_decref(body);
}

/* A non-negative decimal integer (no sign, no spaces); -1 otherwise. */
static int64_t parse_count(const char *s)
{
        int64_t v = 0;

        if (!s || !*s || strlen(s) > 18)
                return -1;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -1;
                v = v * 10 + (*s - '0');
        }
        return v;
}

struct list_ctx {
        json_t *arr;
        int with_chunks;
        size_t chunks;      /* chunks in the page so far */
        const char *device; /* changes: the asking device, whose own lists are left out */
        /* changes with patch=1: the entries delta_page may patch */
        int patch;
        size_t *cand, ncand, capcand;
};

/* Notes the last entry of lc->arr as one delta_page may patch. */
static int note_candidate(struct list_ctx *lc)
{
        if (lc->ncand == lc->capcand) {
                size_t cap = lc->capcand ? 2 * lc->capcand : 64;
                size_t *p = realloc(lc->cand, cap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                lc->cand = p;
                lc->capcand = cap;
        }
        lc->cand[lc->ncand++] = json_array_size(lc->arr) - 1;
        return 0;
}

static int list_cb(const struct meta_entry *e, void *userdata)
{
        struct list_ctx *lc = userdata;
        size_t nch = e->chunks_len / MANIFEST_BLOB_ITEM;
        /* the device that made this version has its chunk list: do not echo
         * it back (it is the bulk of a large file's entry) */
        int omit = lc->with_chunks && lc->device && nch > 0 && !strcmp(e->device, lc->device);
        json_t *o;

        if (omit)
                nch = 0;
        if (lc->with_chunks && json_array_size(lc->arr) > 0 &&
            lc->chunks + nch > CHANGES_CHUNK_BUDGET)
                return 1; /* page full: the client asks again */
        lc->chunks += nch;
        o = api_entry_json(e, lc->with_chunks && !omit);
        if (o && omit && json_object_set_new(o, "chunks_omitted", json_true()) < 0) {
                json_decref(o);
                o = NULL;
        }
        if (!o || json_array_append_new(lc->arr, o) < 0)
                return -ENOMEM;
        if (lc->patch && !omit && !e->deleted && e->kind == KIND_FILE && nch >= DELTA_MIN_CHUNKS)
                return note_candidate(lc);
        return 0;
}

void api_changes(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *sv = http_query(req, "since"), *lv = http_query(req, "limit");
        const char *pv = http_query(req, "patch");
        struct list_ctx lc = {NULL, 1, 0, req->device.id, 0, NULL, 0, 0};
        int64_t since = 0, limit = API_CHANGES_DEFAULT, seq;
        int more = 0, r;

        if (sv && (since = parse_count(sv)) < 0) {
                http_reply_error(rep, 400, "since must be a non-negative integer");
                return;
        }
        if (lv && (limit = parse_count(lv)) < 0) {
                http_reply_error(rep, 400, "limit must be a non-negative integer");
                return;
        }
        if (limit > API_CHANGES_MAX)
                limit = API_CHANGES_MAX;
        /* nothing to patch against before the first change */
        lc.patch = pv && !strcmp(pv, "1") && since > 0;
        /* The space's number is read before the entries: a commit landing in
         * between then shows up again next time instead of being skipped. */
        r = s->meta->ops->seq_current(s->meta, req->device.user_id, &seq);
        if (r < 0)
                goto fail;
        lc.arr = json_array();
        if (!lc.arr) {
                r = -ENOMEM;
                goto fail;
        }
        r = journal_changes_since(s->meta, req->device.user_id, since, limit, list_cb, &lc, &more);
        if (r == 0 && lc.ncand > 0)
                r = delta_page(s->meta, req->device.user_id, since, lc.arr, lc.cand, lc.ncand);
        if (r < 0)
                goto fail;
        free(lc.cand);
        http_reply_json(
            rep, 200,
            json_pack("{s:I, s:o, s:b}", "seq", (json_int_t)seq, "entries", lc.arr, "more", more));
        return;
fail:
        free(lc.cand);
        json_decref(lc.arr);
        api_internal(rep, "changes", r);
}

void api_files(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *prefix = http_query(req, "prefix"), *dv = http_query(req, "deleted");
        struct list_ctx lc = {NULL, 0, 0, NULL, 0, NULL, 0, 0};
        int with_deleted = dv && (strcmp(dv, "1") == 0 || strcmp(dv, "true") == 0);
        int64_t seq;
        int r;

        if (prefix && !*prefix)
                prefix = NULL; /* "?prefix=" means the whole tree */
        if (prefix && (r = path_validate(prefix)) < 0) {
                http_reply_error(rep, 400, "prefix: %s", err_msg(r));
                return;
        }
        r = s->meta->ops->seq_current(s->meta, req->device.user_id, &seq);
        if (r < 0)
                goto fail;
        lc.arr = json_array();
        if (!lc.arr) {
                r = -ENOMEM;
                goto fail;
        }
        r = journal_list(s->meta, req->device.user_id, prefix, with_deleted, list_cb, &lc);
        if (r < 0)
                goto fail;
        http_reply_json(rep, 200, json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "files", lc.arr));
        return;
fail:
        json_decref(lc.arr);
        api_internal(rep, "files", r);
}

void api_file(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *path = http_query(req, "path");
        struct meta_entry e = {0};
        json_t *o;
        int r;

        if (!path) {
                http_reply_error(rep, 400, "path is required");
                return;
        }
        if ((r = path_validate(path)) < 0) {
                http_reply_error(rep, 400, "path: %s", err_msg(r));
                return;
        }
        r = journal_get(s->meta, req->device.user_id, path, &e);
        /* No live entry, but an upload on its way: say so, and from where. */
        if ((r == -ENOENT || (r == 0 && e.deleted)) &&
            transfers_not_ready(s, req->device.user_id, path, &o) == 1) {
                meta_entry_clear(&e);
                http_reply_json(rep, 409, o);
                return;
        }
        if (r == -ENOENT) {
                http_reply_error(rep, 404, "no such path");
                return;
        }
        if (r < 0) {
                api_internal(rep, "file", r);
                return;
        }
        o = api_entry_json(&e, 1);
        meta_entry_clear(&e);
        if (!o) {
                http_reply_error(rep, 500, "out of memory");
                return;
        }
        http_reply_json(rep, 200, o);
}
