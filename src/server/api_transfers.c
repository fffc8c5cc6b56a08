/* api_transfers: transfer records, download records and device management
 * over HTTP (docs/api.md, "Transfer records" and "Devices"): announce,
 * progress, list and forget upload records; report downloads; set the
 * download policy, platform and LAN listener (api_requests.c keeps the
 * registry's rules); remove a device and read the device history.
 *
 * Handlers check the shape of a request whole (400 before anything
 * changes) and leave the rules to transfers.c. Everything is confined to
 * the authenticated device's account.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "err.h"
#include "manifest.h"
#include "path.h"
#include "server.h"
#include "transfers.h"

/* A non-negative integer member key of o: 1 (with *v), 0 when absent or
 * null, -1 (and a 400 reply) when it is something else. */
static int int_field(json_t *o, const char *key, const char *where, int64_t *v,
                     struct http_reply *rep)
{
        json_t *j = json_object_get(o, key);

        if (!j || json_is_null(j))
                return 0;
        if (!json_is_integer(j) || json_integer_value(j) < 0) {
                http_reply_error(rep, 400, "%s%s must be a non-negative integer", where, key);
                return -1;
        }
        *v = json_integer_value(j);
        return 1;
}

/* A valid path in member "path" of o, or NULL with a 400 reply. */
static const char *path_field(json_t *o, const char *where, struct http_reply *rep)
{
        json_t *j = json_object_get(o, "path");
        int r;

        if (!json_is_string(j)) {
                http_reply_error(rep, 400, "%spath must be a string", where);
                return NULL;
        }
        if ((r = path_validate(json_string_value(j))) < 0) {
                http_reply_error(rep, 400, "%spath: %s", where, err_msg(r));
                return NULL;
        }
        return json_string_value(j);
}

/* The array member key of body with min to API_MAX_ITEMS items into *out
 * (NULL when absent and optional). 0, or -1 with a 400 reply. */
static int array_field(json_t *body, const char *key, size_t min, int optional, json_t **out,
                       struct http_reply *rep)
{
        json_t *a = json_object_get(body, key);

        *out = NULL;
        if (!a && optional)
                return 0;
        if (!json_is_array(a) || json_array_size(a) < min || json_array_size(a) > API_MAX_ITEMS) {
                http_reply_error(rep, 400, "\"%s\" must be an array of %zu to %d items", key, min,
                                 API_MAX_ITEMS);
                return -1;
        }
        *out = a;
        return 0;
}

/* Replies for a failure of transfers.c: 404/409 for what the caller
 * named, 500 for the rest. */
static void reply_failure(struct http_reply *rep, const char *what, int r)
{
        if (r == -ENOENT)
                http_reply_error(rep, 404, "%s", err_msg(r));
        else if (r == -EEXIST)
                http_reply_error(rep, 409, "%s", err_msg(r));
        else
                api_internal(rep, what, r);
}

void api_transfers_announce(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct transfers_file *fs = NULL;
        int64_t *ids = NULL, batch = 0, size;
        json_t *body, *files, *o, *v, *out = NULL;
        char where[48];
        size_t i, n = 0;
        int r;

        if (!(body = api_body_object(req, rep)))
                return;
        if (array_field(body, "files", 1, 0, &files, rep) < 0)
                goto out;
        n = json_array_size(files);
        fs = calloc(n, sizeof(*fs));
        ids = calloc(n, sizeof(*ids));
        if (!fs || !ids) {
                http_reply_error(rep, 500, "out of memory");
                goto out;
        }
        json_array_foreach(files, i, o)
        {
                snprintf(where, sizeof(where), "files[%zu].", i);
                if (!json_is_object(o)) {
                        http_reply_error(rep, 400, "files[%zu] must be an object", i);
                        goto out;
                }
                if (!(fs[i].path = path_field(o, where, rep)))
                        goto out;
                v = json_object_get(o, "kind");
                if (!json_is_string(v) || strcmp(json_string_value(v), "file") != 0) {
                        http_reply_error(rep, 400, "%skind must be \"file\"", where);
                        goto out;
                }
                fs[i].kind = KIND_FILE;
                if ((r = int_field(o, "size", where, &size, rep)) <= 0) {
                        if (r == 0)
                                http_reply_error(rep, 400, "%ssize is required", where);
                        goto out;
                }
                fs[i].size = (uint64_t)size;
                /* no hash: a file the device announces before reading it */
                v = json_object_get(o, "hash");
                if (v && !json_is_null(v) &&
                    (!json_is_string(v) || hash_from_hex(json_string_value(v), &fs[i].hash) < 0)) {
                        http_reply_error(rep, 400, "%shash must be 64 hex digits", where);
                        goto out;
                }
                fs[i].has_hash = v && !json_is_null(v);
        }
        r = transfers_announce(s, &req->device, fs, n, &batch, ids);
        if (r < 0) {
                api_internal(rep, "announce", r);
                goto out;
        }
        out = json_array();
        for (i = 0; out && i < n; i++) {
                o = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)ids[i], "path", fs[i].path,
                              "status", "pending");
                if (!o || json_array_append_new(out, o) < 0) {
                        json_decref(out);
                        out = NULL;
                }
        }
        if (!out)
                http_reply_error(rep, 500, "out of memory");
        else
                http_reply_json(
                    rep, 200, json_pack("{s:I, s:o}", "batch", (json_int_t)batch, "records", out));
out:
        free(fs);
        free(ids);
        json_decref(body);
}

void api_transfers_progress(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct transfers_progress *ps = NULL;
        json_t *body, *items, *o, *v;
        char where[48];
        const char *st;
        size_t i, n, updated = 0;
        int64_t x;
        int r;

        if (!(body = api_body_object(req, rep)))
                return;
        if (array_field(body, "records", 0, 0, &items, rep) < 0)
                goto out;
        n = json_array_size(items);
        if (!(ps = calloc(n ? n : 1, sizeof(*ps)))) {
                http_reply_error(rep, 500, "out of memory");
                goto out;
        }
        json_array_foreach(items, i, o)
        {
                snprintf(where, sizeof(where), "records[%zu].", i);
                if (!json_is_object(o) || int_field(o, "id", where, &ps[i].id, rep) <= 0) {
                        if (!rep->status)
                                http_reply_error(rep, 400, "%sid is required", where);
                        goto out;
                }
                v = json_object_get(o, "status");
                st = json_string_value(v);
                if (!v || json_is_null(v)) {
                        if ((r = int_field(o, "bytes_done", where, &x, rep)) <= 0) {
                                if (r == 0)
                                        http_reply_error(
                                            rep, 400, "%sbytes_done or status is required", where);
                                goto out;
                        }
                        ps[i].report = TRANSFERS_BYTES;
                        ps[i].bytes_done = (uint64_t)x;
                } else if (st && strcmp(st, "cancelled") == 0) {
                        ps[i].report = TRANSFERS_CANCELLED;
                } else if (st && strcmp(st, "failed") == 0) {
                        ps[i].report = TRANSFERS_FAILED;
                        ps[i].reason = json_string_value(json_object_get(o, "reason"));
                        if (!ps[i].reason || !*ps[i].reason || strlen(ps[i].reason) > 1000) {
                                http_reply_error(rep, 400,
                                                 "%sreason must be a string of 1 to "
                                                 "1000 bytes",
                                                 where);
                                goto out;
                        }
                } else {
                        http_reply_error(rep, 400, "%sstatus must be \"failed\" or \"cancelled\"",
                                         where);
                        goto out;
                }
        }
        r = transfers_progress(s, &req->device, ps, n, &updated);
        if (r < 0)
                reply_failure(rep, "progress", r);
        else
                http_reply_json(rep, 200, json_pack("{s:I}", "updated", (json_int_t)updated));
out:
        free(ps);
        json_decref(body);
}

void api_transfers_forget(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct transfers_forget f = {0};
        int64_t *ids = NULL, forgotten = 0, skipped = 0;
        json_t *body, *v;
        size_t i;
        int r, keys;

        if (!(body = api_body_object(req, rep)))
                return;
        keys = !!json_object_get(body, "ids") + !!json_object_get(body, "failed") +
               !!json_object_get(body, "path");
        if (keys != 1) {
                http_reply_error(rep, 400, "give one of \"ids\", \"failed\" or \"path\"");
                goto out;
        }
        if (json_object_get(body, "ids")) {
                if (array_field(body, "ids", 0, 0, &v, rep) < 0)
                        goto out;
                if (!(ids = calloc(json_array_size(v) + 1, sizeof(*ids)))) {
                        http_reply_error(rep, 500, "out of memory");
                        goto out;
                }
                for (i = 0; i < json_array_size(v); i++) {
                        json_t *id = json_array_get(v, i);
                        if (!json_is_integer(id) || json_integer_value(id) <= 0) {
                                http_reply_error(rep, 400, "ids[%zu] must be a record id", i);
                                goto out;
                        }
                        ids[i] = json_integer_value(id);
                }
                f.ids = ids;
                f.n_ids = json_array_size(v);
        } else if (json_object_get(body, "failed")) {
                if (!json_is_true(json_object_get(body, "failed"))) {
                        http_reply_error(rep, 400, "\"failed\" must be true");
                        goto out;
                }
                f.all_failed = 1;
        } else if (!(f.path = path_field(body, "", rep))) {
                goto out;
        }
        r = transfers_forget(s, &req->device, &f, &forgotten, &skipped);
        if (r < 0)
                api_internal(rep, "forget", r);
        else
                http_reply_json(rep, 200,
                                json_pack("{s:I, s:I}", "forgotten", (json_int_t)forgotten,
                                          "skipped", (json_int_t)skipped));
out:
        free(ids);
        json_decref(body);
}

/* Parses the items of a download report list (key "failed" or "done") into
 * out from *n on. 0, or -1 with a 400 reply. */
static int parse_downloads(json_t *body, const char *key, int status,
                           struct transfers_download *out, size_t *n, struct http_reply *rep)
{
        json_t *arr, *o, *v;
        char where[48];
        size_t i;

        if (array_field(body, key, 0, 1, &arr, rep) < 0)
                return -1;
        json_array_foreach(arr, i, o)
        {
                struct transfers_download *d = &out[(*n)++];
                snprintf(where, sizeof(where), "%s[%zu].", key, i);
                if (!json_is_object(o)) {
                        http_reply_error(rep, 400, "%s[%zu] must be an object", key, i);
                        return -1;
                }
                if (!(d->path = path_field(o, where, rep)) ||
                    int_field(o, "seq", where, &d->seq, rep) < 0)
                        return -1;
                d->status = status;
                v = json_object_get(o, "reason");
                if (v && !json_is_null(v) && !json_is_string(v)) {
                        http_reply_error(rep, 400, "%sreason must be a string", where);
                        return -1;
                }
                d->reason = json_string_value(v);
                if (status == META_DL_FAILED && (!d->reason || !*d->reason))
                        d->reason = "download failed";
        }
        return 0;
}

void api_downloads_report(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct transfers_download *ds = NULL;
        int64_t applied = -1;
        size_t n = 0, cap;
        json_t *body;
        int r;

        if (!(body = api_body_object(req, rep)))
                return;
        if (int_field(body, "applied_seq", "", &applied, rep) < 0)
                goto out;
        cap = json_array_size(json_object_get(body, "failed")) +
              json_array_size(json_object_get(body, "done")) + 1;
        if (!(ds = calloc(cap, sizeof(*ds)))) {
                http_reply_error(rep, 500, "out of memory");
                goto out;
        }
        if (parse_downloads(body, "failed", META_DL_FAILED, ds, &n, rep) < 0 ||
            parse_downloads(body, "done", META_DL_DONE, ds, &n, rep) < 0)
                goto out;
        r = transfers_downloads(s, &req->device, applied, ds, n);
        if (r < 0)
                api_internal(rep, "downloads", r);
        else
                http_reply_json(rep, 200, json_pack("{s:b}", "ok", 1));
out:
        free(ds);
        json_decref(body);
}

void api_device_update(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct meta_device d, info = req->device;
        json_t *body, *o, *pv, *lv, *iv;
        const char *p = NULL;
        int r = 0, policy = 0;

        if (!(body = api_body_object(req, rep)))
                return;
        pv = json_object_get(body, "download_incomplete");
        lv = json_object_get(body, "lan");
        iv = json_object_get(body, "platform");
        if (!pv && !lv && !iv) {
                http_reply_error(rep, 400, "give download_incomplete, lan or platform");
                goto out;
        }
        p = json_string_value(pv);
        if (pv && (!p || (strcmp(p, "skip") != 0 && strcmp(p, "wait") != 0))) {
                http_reply_error(rep, 400, "download_incomplete must be \"skip\" or \"wait\"");
                goto out;
        }
        if (iv && !json_is_string(iv)) {
                http_reply_error(rep, 400, "platform must be a string");
                goto out;
        }
        if (iv && (r = auth_check_platform(json_string_value(iv))) < 0) {
                http_reply_error(rep, 400, "%s", err_msg(r));
                goto out;
        }
        if (iv)
                snprintf(info.platform, sizeof(info.platform), "%s", json_string_value(iv));
        if (lv && api_parse_lan(lv, &info, rep) < 0)
                goto out;
        if (p) {
                policy = strcmp(p, "wait") == 0 ? META_POLICY_WAIT : META_POLICY_SKIP;
                r = transfers_set_policy(s, &req->device, policy);
        }
        if (r == 0 && (lv || iv))
                r = api_device_set_info(s, &info);
        if (r == 0)
                r = s->meta->ops->device_find(s->meta, req->device.user_id, req->device.id, 0, &d,
                                              NULL);
        if (r < 0) {
                api_internal(rep, "device", r);
                goto out;
        }
        o = api_device_json(s, &d, req, server_now());
        if (o)
                http_reply_json(rep, 200, o);
        else
                http_reply_error(rep, 500, "out of memory");
out:
        json_decref(body);
}

void api_devices_remove(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct meta_device d;
        const char *name;
        json_t *body, *o = NULL;
        int r;

        if (!(body = api_body_object(req, rep)))
                return;
        name = json_string_value(json_object_get(body, "device"));
        if (!name || !*name) {
                http_reply_error(rep, 400, "\"device\" must be a device id or name");
                goto out;
        }
        r = s->meta->ops->device_find(s->meta, req->device.user_id, name, 0, &d, NULL);
        if (r == 0 && strcmp(d.id, req->device.id) == 0) {
                http_reply_error(rep, 409,
                                 "a device cannot remove itself: remove it from another "
                                 "device of the account");
                goto out;
        }
        if (r == 0 && !(o = api_device_json(s, &d, req, server_now())))
                r = -ENOMEM;
        if (r == 0)
                r = transfers_device_remove(s, &d, NULL);
        if (r < 0) {
                json_decref(o);
                reply_failure(rep, "device removal", r);
                goto out;
        }
        /* A new LAN key (the removed device knew the old one), its upload
         * requests failed, the control list moved. */
        api_registry_device_removed(s, &d);
        http_reply_json(rep, 200, json_pack("{s:o}", "removed", o));
out:
        json_decref(body);
}

/* GET /api/v1/transfers: the records (by batch), downloads and devices. */
struct listing {
        struct server *s;
        const struct http_request *req;
        json_t *by_batch; /* "batch id" -> records */
        json_t *batches, *downloads, *devices;
        struct meta_device *devs;
        size_t n_devs, cap_devs;
};

static int list_record(const struct meta_record *r, void *userdata)
{
        struct listing *l = userdata;
        char key[24];
        json_t *arr, *o;

        snprintf(key, sizeof(key), "%lld", (long long)r->batch);
        arr = json_object_get(l->by_batch, key);
        if (!arr && (!(arr = json_array()) || json_object_set_new(l->by_batch, key, arr) < 0))
                return -ENOMEM;
        o = transfers_record_json(r, 0);
        if (!o || json_array_append_new(arr, o) < 0)
                return -ENOMEM;
        return 0;
}

static int list_batch(const struct meta_batch *b, void *userdata)
{
        struct listing *l = userdata;
        char key[24];
        json_t *recs, *o;

        snprintf(key, sizeof(key), "%lld", (long long)b->id);
        if (!(recs = json_object_get(l->by_batch, key)))
                return 0; /* none matched the filters */
        o = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "id",
                      (json_int_t)b->id, "device", b->device, "device_name", b->device_name,
                      "created", (json_int_t)b->created, "updated", (json_int_t)b->updated, "files",
                      (json_int_t)b->files, "pending", (json_int_t)b->count[META_XFER_PENDING],
                      "uploading", (json_int_t)b->count[META_XFER_UPLOADING], "complete",
                      (json_int_t)b->count[META_XFER_COMPLETE], "failed",
                      (json_int_t)b->count[META_XFER_FAILED], "bytes_total",
                      (json_int_t)b->bytes_total, "bytes_done", (json_int_t)b->bytes_done,
                      "records", recs);
        if (!o || json_array_append_new(l->batches, o) < 0)
                return -ENOMEM;
        return 0;
}

static int list_download(const struct meta_download *d, void *userdata)
{
        struct listing *l = userdata;
        json_t *o;

        o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I}", "device", d->device, "device_name",
                      d->device_name, "path", d->path, "seq", (json_int_t)d->seq, "status",
                      transfers_dl_status_name(d->status), "reason", d->reason, "updated",
                      (json_int_t)d->updated);
        if (!o || json_array_append_new(l->downloads, o) < 0)
                return -ENOMEM;
        return 0;
}

static int list_device(const struct meta_device *d, void *userdata)
{
        struct listing *l = userdata;

        if (l->n_devs == l->cap_devs) {
                size_t cap = l->cap_devs ? l->cap_devs * 2 : 8;
                struct meta_device *nd = realloc(l->devs, cap * sizeof(*nd));
                if (!nd)
                        return -ENOMEM;
                l->devs = nd;
                l->cap_devs = cap;
        }
        l->devs[l->n_devs++] = *d;
        return 0;
}

/* The devices part: online, last seen, policy and applied seq of each. */
static int list_devices(struct listing *l)
{
        int64_t now = server_now();
        size_t i;
        int r;

        r = l->s->meta->ops->device_list(l->s->meta, l->req->device.user_id, list_device, l);
        for (i = 0; r == 0 && i < l->n_devs; i++) {
                struct meta_device *d = &l->devs[i];
                json_t *o;
                if (strcmp(d->id, l->req->device.id) == 0)
                        d->last_seen = now; /* being seen right now */
                o = json_pack("{s:s, s:s, s:b, s:I, s:s, s:I}", "id", d->id, "name", d->name,
                              "online", transfers_device_online(l->s, d, now), "last_seen",
                              (json_int_t)d->last_seen, "download_incomplete",
                              d->download_incomplete == META_POLICY_WAIT ? "wait" : "skip",
                              "applied_seq", (json_int_t)d->applied_seq);
                if (!o || json_array_append_new(l->devices, o) < 0)
                        r = -ENOMEM;
        }
        return r;
}

/* The status filter: upload statuses into *up, download ones into *down;
 * -1 when st is not a status name. */
static int parse_status(const char *st, unsigned *up, unsigned *down)
{
        int i;

        *up = *down = 0;
        if (!st)
                return 0;
        if (strcmp(st, "incomplete") == 0) {
                *up = META_XFER_OPEN;
                *down = (1u << META_DL_PENDING) | (1u << META_DL_FAILED);
                return 0;
        }
        for (i = 0; i < META_XFER_NSTATUS; i++)
                if (strcmp(st, transfers_status_name(i)) == 0)
                        *up = 1u << i;
        if (!*up)
                return -1;
        /* Downloads are pending, done or failed: "complete" means done, and
         * none is "uploading" (a mask of no status selects nothing). */
        if (*up == 1u << META_XFER_PENDING)
                *down = 1u << META_DL_PENDING;
        else if (*up == 1u << META_XFER_COMPLETE)
                *down = 1u << META_DL_DONE;
        else if (*up == 1u << META_XFER_FAILED)
                *down = 1u << META_DL_FAILED;
        else
                *down = 1u << META_DL_NSTATUS;
        return 0;
}

void api_transfers_list(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *dv = http_query(req, "device"), *st = http_query(req, "status"),
                   *path = http_query(req, "path");
        struct listing l = {s, req, json_object(), json_array(), json_array(), json_array(), NULL,
                            0, 0};
        struct meta_record_filter f = {0};
        struct meta_device d;
        unsigned down;
        int r;

        if (parse_status(st, &f.statuses, &down) < 0) {
                http_reply_error(rep, 400,
                                 "status must be pending, uploading, complete, failed or "
                                 "incomplete");
                goto out;
        }
        if (path && (r = path_validate(path)) < 0) {
                http_reply_error(rep, 400, "path: %s", err_msg(r));
                goto out;
        }
        f.path = path;
        if (dv && *dv) {
                r = s->meta->ops->device_find(s->meta, req->device.user_id, dv, 1, &d, NULL);
                if (r < 0) {
                        reply_failure(rep, "transfers", r);
                        goto out;
                }
                f.device = d.id;
        }
        r = l.by_batch && l.batches && l.downloads && l.devices ? 0 : -ENOMEM;
        if (r == 0)
                r = s->meta->ops->xfer_records(s->meta, req->device.user_id, &f, list_record, &l);
        if (r == 0)
                r = s->meta->ops->xfer_batches(s->meta, req->device.user_id, list_batch, &l);
        if (r == 0)
                r = s->meta->ops->dl_list(s->meta, req->device.user_id, f.device, path, down,
                                          list_download, &l);
        if (r == 0)
                r = list_devices(&l);
        if (r < 0) {
                api_internal(rep, "transfers", r);
                goto out;
        }
        http_reply_json(rep, 200,
                        json_pack("{s:O, s:O, s:O}", "devices", l.devices, "batches", l.batches,
                                  "downloads", l.downloads));
out:
        json_decref(l.by_batch);
        json_decref(l.batches);
        json_decref(l.downloads);
        json_decref(l.devices);
        free(l.devs);
}

/* GET /api/v1/devices/history: events as JSON, their ids beside. */
struct history {
        json_t *events;
        int64_t *ids;
        size_t n, cap;
};

static int history_event(const struct meta_device_event *ev, void *userdata)
{
        struct history *h = userdata;
        json_t *o;

        if (h->n == h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 16;
                int64_t *ni = realloc(h->ids, cap * sizeof(*ni));
                if (!ni)
                        return -ENOMEM;
                h->ids = ni;
                h->cap = cap;
        }
        o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "device", ev->device, "name", ev->name,
                      "event", ev->event, "time", (json_int_t)ev->time, "applied_seq",
                      (json_int_t)ev->applied_seq, "files", (json_int_t)ev->files);
        if (!o || json_array_append_new(h->events, o) < 0)
                return -ENOMEM;
        h->ids[h->n++] = ev->id;
        return 0;
}

static int history_file(const char *path, uint64_t size, int64_t seq, void *userdata)
{
        json_t *o = json_pack("{s:s, s:I, s:I}", "path", path, "size", (json_int_t)size, "seq",
                              (json_int_t)seq);

        if (!o || json_array_append_new(userdata, o) < 0)
                return -ENOMEM;
        return 0;
}

void api_devices_history(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *dv = http_query(req, "device"), *fv = http_query(req, "files");
        struct history h = {json_array(), NULL, 0, 0};
        int with_files = fv && (strcmp(fv, "1") == 0 || strcmp(fv, "true") == 0);
        json_t *list;
        size_t i;
        int r;

        if (dv && !*dv)
                dv = NULL;
        r = h.events
                ? s->meta->ops->device_events(s->meta, req->device.user_id, dv, history_event, &h)
                : -ENOMEM;
        for (i = 0; r == 0 && with_files && i < h.n; i++) {
                list = json_array();
                if (!list ||
                    json_object_set_new(json_array_get(h.events, i), "file_list", list) < 0)
                        r = -ENOMEM;
                else
                        r = s->meta->ops->device_event_files(s->meta, h.ids[i], history_file, list);
        }
        if (r < 0)
                api_internal(rep, "device history", r);
        else if (dv && h.n == 0)
                http_reply_error(rep, 404, "no device '%s' in the history", dv);
        else
                http_reply_json(rep, 200, json_pack("{s:O}", "events", h.events));
        json_decref(h.events);
        free(h.ids);
}
