/* api_history: the version history of a space over HTTP — the kept versions
 * of a path, the trash (deleted paths that still have a kept version),
 * restoring a version as a new commit, and the space as of an earlier
 * point, page by page (docs/api.md, "History and trash").
 * The rules live in journal.c (restore) and the rows behind meta.h; this
 * file checks requests and renders answers. A restore that took a number
 * is announced to the event streams like any commit.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "err.h"
#include "events.h"
#include "journal.h"
#include "path.h"
#include "server.h"

#define HISTORY_DEFAULT 100
#define HISTORY_MAX 10000

/* A snapshot page ends early once its entries hold this many chunks (as a
 * page of changes does), with at least one entry. */
#define SNAPSHOT_CHUNK_BUDGET 65536
#define SNAPSHOT_CHUNK_ITEM 36 /* manifest_to_blob(): hash (32) + size (4) */

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

/* A positive decimal integer; -1 otherwise. */
static int64_t parse_positive(const char *s)
{
        int64_t v = parse_count(s);

        return v > 0 ? v : -1;
}

/* An entry without chunks, plus the name of the device that made it. */
static json_t *version_json(const struct meta_entry *e, const char *device_name)
{
        json_t *o = api_entry_json(e, 0);

        if (o && json_object_set_new(o, "device_name", json_string(device_name)) < 0) {
                json_decref(o);
                o = NULL;
        }
        return o;
}

static int history_cb(const struct meta_entry *e, const char *device_name, void *userdata)
{
        json_t *o = version_json(e, device_name);

        if (!o || json_array_append_new(userdata, o) < 0)
                return -ENOMEM;
        return 0;
}

void api_history(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *path = http_query(req, "path"), *lv = http_query(req, "limit");
        int64_t limit = HISTORY_DEFAULT, current = 0;
        struct meta_entry cur = {0};
        json_t *arr = NULL;
        int r;

        if (!path) {
                http_reply_error(rep, 400, "path is required");
                return;
        }
        if ((r = path_validate(path)) < 0) {
                http_reply_error(rep, 400, "path: %s", err_msg(r));
                return;
        }
        if (lv && (limit = parse_positive(lv)) < 0) {
                http_reply_error(rep, 400, "limit must be a positive integer");
                return;
        }
        if (limit > HISTORY_MAX)
                limit = HISTORY_MAX;
        r = s->meta->ops->entry_get(s->meta, req->device.user_id, path, &cur);
        if (r < 0 && r != -ENOENT)
                goto fail;
        current = r == 0 ? cur.seq : 0;
        meta_entry_clear(&cur);
        arr = json_array();
        if (!arr) {
                r = -ENOMEM;
                goto fail;
        }
        r = s->meta->ops->version_list(s->meta, req->device.user_id, path, limit, history_cb, arr);
        if (r < 0)
                goto fail;
        if (json_array_size(arr) == 0) {
                json_decref(arr);
                http_reply_error(rep, 404, "no version of %s is kept", path);
                return;
        }
        http_reply_json(rep, 200,
                        json_pack("{s:s, s:I, s:o}", "path", path, "current", (json_int_t)current,
                                  "versions", arr));
        return;
fail:
        json_decref(arr);
        api_internal(rep, "history", r);
}

static int trash_cb(const struct meta_entry *tomb, const char *device_name,
                    const struct meta_entry *last, void *userdata)
{
        json_t *o, *lj = api_entry_json(last, 0);

        if (!lj)
                return -ENOMEM;
        o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:o}", "path", tomb->path, "deleted_seq",
                      (json_int_t)tomb->seq, "deleted_time", (json_int_t)tomb->time, "device",
                      tomb->device, "device_name", device_name, "last", lj);
        if (!o || json_array_append_new(userdata, o) < 0)
                return -ENOMEM;
        return 0;
}

void api_trash(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *prefix = http_query(req, "prefix");
        json_t *arr;
        int r;

        if (prefix && !*prefix)
                prefix = NULL; /* "?prefix=" means everywhere */
        if (prefix && (r = path_validate(prefix)) < 0) {
                http_reply_error(rep, 400, "prefix: %s", err_msg(r));
                return;
        }
        arr = json_array();
        if (!arr) {
                http_reply_error(rep, 500, "out of memory");
                return;
        }
        r = s->meta->ops->trash_list(s->meta, req->device.user_id, prefix, trash_cb, arr);
        if (r < 0) {
                json_decref(arr);
                api_internal(rep, "trash", r);
                return;
        }
        http_reply_json(rep, 200, json_pack("{s:o}", "files", arr));
}

/* Reads the restore request: 0, or -1 with a 400 reply. */
static int parse_restore(json_t *body, const char **path, int64_t *seq, const char **to,
                         struct http_reply *rep)
{
        json_t *v;
        int r;

        v = json_object_get(body, "path");
        if (!json_is_string(v)) {
                http_reply_error(rep, 400, "\"path\" must be a string");
                return -1;
        }
        *path = json_string_value(v);
        if ((r = path_validate(*path)) < 0) {
                http_reply_error(rep, 400, "path: %s", err_msg(r));
                return -1;
        }
        v = json_object_get(body, "seq");
        *seq = 0;
        if (v && !json_is_null(v)) {
                if (!json_is_integer(v) || json_integer_value(v) < 1) {
                        http_reply_error(rep, 400, "\"seq\" must be a positive integer");
                        return -1;
                }
                *seq = json_integer_value(v);
        }
        v = json_object_get(body, "to");
        *to = NULL;
        if (v && !json_is_null(v)) {
                if (!json_is_string(v)) {
                        http_reply_error(rep, 400, "\"to\" must be a string");
                        return -1;
                }
                *to = json_string_value(v);
                if ((r = path_validate(*to)) < 0) {
                        http_reply_error(rep, 400, "to: %s", err_msg(r));
                        return -1;
                }
        }
        return 0;
}

/* The answer of a restore that found its version (restored or not). */
static void restore_reply(const struct journal_restore *res, struct http_reply *rep)
{
        json_t *e = api_entry_json(&res->entry, 1), *o;

        if (!e) {
                http_reply_error(rep, 500, "out of memory");
                return;
        }
        o = json_pack("{s:o, s:I}", "entry", e, "restored_from", (json_int_t)res->from);
        if (o && res->status == JOURNAL_RESTORE_UNCHANGED &&
            json_object_set_new(o, "unchanged", json_true()) < 0) {
                json_decref(o);
                o = NULL;
        }
        if (!o) {
                http_reply_error(rep, 500, "out of memory");
                return;
        }
        http_reply_json(rep, 200, o);
}

void api_restore(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct journal_restore res;
        const char *path, *to;
        int64_t seq;
        json_t *body;
        int r;

        body = api_body_object(req, rep);
        if (!body)
                return;
        if (parse_restore(body, &path, &seq, &to, rep) < 0)
                goto out;
        r = journal_restore(s->meta, req->device.user_id, req->device.id, path, seq, to,
                            server_now(), &res);
        if (r == -EINVAL) {
                http_reply_error(rep, 400, "%s", err_msg(r));
                goto out;
        }
        if (r < 0) {
                api_internal(rep, "restore", r);
                goto out;
        }
        switch (res.status) {
        case JOURNAL_RESTORED:
                /* The transaction is over: the other devices may pull. */
                events_publish(s->events, req->device.user_id, res.entry.seq, req->device.id);
                restore_reply(&res, rep);
                break;
        case JOURNAL_RESTORE_UNCHANGED:
                restore_reply(&res, rep);
                break;
        case JOURNAL_RESTORE_TOMBSTONE:
                http_reply_error(rep, 400, "version %lld of %s is a delete: nothing to restore",
                                 (long long)res.from, path);
                break;
        case JOURNAL_RESTORE_TARGET_LIVE:
                http_reply_error(rep, 409, "%s exists: restore to a free path, or delete it first",
                                 to);
                break;
        default:
                if (seq)
                        http_reply_error(rep, 404, "version %lld of %s is not kept", (long long)seq,
                                         path);
                else
                        http_reply_error(rep, 404, "%s has no kept version to restore", path);
                break;
        }
        journal_restore_clear(&res);
out:
        json_decref(body);
}

struct snap_ctx {
        json_t *arr;
        int64_t limit;
        size_t chunks; /* in the page so far */
        int more;
};

static int snapshot_cb(const struct meta_entry *e, void *userdata)
{
        struct snap_ctx *sc = userdata;
        size_t n = e->chunks_len / SNAPSHOT_CHUNK_ITEM;
        json_t *o;

        /* one row past the limit, or a page full of chunks: there is more */
        if ((int64_t)json_array_size(sc->arr) >= sc->limit ||
            (json_array_size(sc->arr) > 0 && sc->chunks + n > SNAPSHOT_CHUNK_BUDGET)) {
                sc->more = 1;
                return 1;
        }
        o = api_entry_json(e, 1);
        if (!o || json_array_append_new(sc->arr, o) < 0)
                return -ENOMEM;
        sc->chunks += n;
        return 0;
}

/* A query parameter that must be a valid path when present (empty: absent).
 * 0, or -1 with a 400 reply. */
static int path_param(struct http_request *req, const char *key, const char **out,
                      struct http_reply *rep)
{
        const char *v = http_query(req, key);
        int r;

        *out = v && *v ? v : NULL;
        if (*out && (r = path_validate(*out)) < 0) {
                http_reply_error(rep, 400, "%s: %s", key, err_msg(r));
                return -1;
        }
        return 0;
}

void api_snapshot(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *av = http_query(req, "at"), *tv = http_query(req, "time");
        const char *lv = http_query(req, "limit");
        struct meta_snapshot q = {.at = INT64_MAX, .time = -1, .limit = API_CHANGES_DEFAULT};
        struct snap_ctx sc = {0};
        json_t *o;
        int r;

        if (av && tv) {
                http_reply_error(rep, 400, "give at or time, not both");
                return;
        }
        if (av && (q.at = parse_count(av)) < 0) {
                http_reply_error(rep, 400, "at must be a non-negative integer (a seq)");
                return;
        }
        if (tv && (q.time = parse_count(tv)) < 0) {
                http_reply_error(rep, 400, "time must be a non-negative integer (seconds)");
                return;
        }
        if (lv && (q.limit = parse_positive(lv)) < 0) {
                http_reply_error(rep, 400, "limit must be a positive integer");
                return;
        }
        if (q.limit > API_CHANGES_MAX)
                q.limit = API_CHANGES_MAX;
        if (path_param(req, "prefix", &q.prefix, rep) < 0 ||
            path_param(req, "after", &q.after, rep) < 0)
                return;
        sc.limit = q.limit;
        q.limit++; /* one row past the limit tells whether there is more */
        sc.arr = json_array();
        if (!sc.arr) {
                r = -ENOMEM;
                goto fail;
        }
        r = s->meta->ops->snapshot_list(s->meta, req->device.user_id, &q, snapshot_cb, &sc);
        if (r == -ESTALE) {
                json_decref(sc.arr);
                http_reply_error(rep, 404, "%s", err_msg(r));
                return;
        }
        if (r < 0)
                goto fail;
        o = json_pack("{s:I, s:I, s:o, s:b}", "seq", (json_int_t)q.at, "current",
                      (json_int_t)q.current, "entries", sc.arr, "more", sc.more);
        if (o && tv && json_object_set_new(o, "time", json_integer(q.time)) < 0) {
                json_decref(o);
                o = NULL;
        }
        if (!o) {
                http_reply_error(rep, 500, "out of memory");
                return;
        }
        http_reply_json(rep, 200, o);
        return;
fail:
        json_decref(sc.arr);
        api_internal(rep, "snapshot", r);
}
