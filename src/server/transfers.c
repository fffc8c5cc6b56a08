/* transfers: the rules of transfer records (see transfers.h for the table
 * of transitions): which rows change when a device announces, reports, or
 * commits, when the HTTP layer sees a request cut off or a device's last
 * connection close, when a device stays silent past the session timeout,
 * and when a device is removed.
 *
 * Every change runs in one transaction of the metadata store that also
 * bumps the user's transfers version; the new version is published to the
 * event hub once the transaction is over, like a commit's seq, so that
 * watching devices refresh their view.
 *
 * "Silent" is decided from two sources: the device's last_seen in the
 * store (written by the server after requests, at most every few seconds,
 * and the only source after a restart) and the HTTP layer's activity
 * record, which also counts a request still coming in. A device holding an
 * event stream is never silent: its stream ends within seconds of the
 * device going away (the HTTP layer watches parked streams), and then its
 * last connection closes.
 *
 * Several instances (a shared store): the device's stream, its uploads and
 * its last connection may be on different instances. events_device_streams
 * counts streams on every instance (events_pg.c), so "holds a stream" is
 * decided cluster-wide; last_seen is in the shared store. Only the HTTP
 * layer's activity record is per instance: it can only delay a failure,
 * never cause one. Every instance runs transfers_tick: failing records is
 * an update of those still open, so two instances doing it at once fail
 * them once (the second finds nothing to change and bumps nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "events.h"
#include "log.h"
#include "manifest.h"
#include "server.h"
#include "transfers.h"

static const char *const status_names[META_XFER_NSTATUS] = {"pending", "uploading", "complete",
                                                            "failed"};
static const char *const dl_status_names[META_DL_NSTATUS] = {"pending", "done", "failed"};

const char *transfers_status_name(int status)
{
        return status >= 0 && status < META_XFER_NSTATUS ? status_names[status] : "?";
}

const char *transfers_dl_status_name(int status)
{
        return status >= 0 && status < META_DL_NSTATUS ? dl_status_names[status] : "?";
}

void transfers_format_time(int64_t t, int with_date, char *out, size_t cap)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) ||
            !strftime(out, cap, with_date ? "%Y-%m-%d %H:%M:%S UTC" : "%H:%M:%S UTC", &tm))
                snprintf(out, cap, "%lld", (long long)t);
}

/* Ends the transaction of a change: bumps the version when something
 * changed, commits, and announces the version. r: the change's result so
 * far (the transaction is rolled back when negative). */
static int finish(struct server *s, int64_t user, int changed, int r)
{
        struct meta *m = s->meta;
        int64_t v = 0;

        if (r == 0 && changed)
                r = m->ops->xfer_version_bump(m, user, &v);
        if (r < 0) {
                m->ops->rollback(m);
                return r;
        }
        r = m->ops->commit(m);
        if (r == 0 && v > 0)
                events_publish_transfers(s->events, user, v);
        return r;
}

/* Fails device's records with a status in from, with reason. */
static void fail_device(struct server *s, int64_t user, const char *device, unsigned from,
                        const char *reason)
{
        struct meta *m = s->meta;
        int64_t n = 0;
        int r;

        r = m->ops->begin(m);
        if (r == 0) {
                r = m->ops->xfer_records_fail(m, user, device, from, reason, server_now(), &n);
                r = finish(s, user, n > 0, r);
        }
        if (r < 0)
                log_warn("transfer records of device %s: %s", device, err_msg(r));
        else if (n > 0)
                log_info("device %s: %lld transfer records failed: %s", device, (long long)n,
                         reason);
}

/* A listing callback that keeps the first record (strings dropped). */
static int first_record(const struct meta_record *r, void *userdata)
{
        struct meta_record *out = userdata;

        *out = *r;
        out->path = out->reason = out->device_name = NULL;
        return 1;
}

/* device's open record for path into out: 1, 0 if none, or a code. */
static int find_open(struct meta *m, int64_t user, const char *device, const char *path,
                     struct meta_record *out)
{
        struct meta_record_filter f = {0, device, path, META_XFER_OPEN};
        int r;

        out->id = 0;
        r = m->ops->xfer_records(m, user, &f, first_record, out);
        out->path = path;
        return r < 0 ? r : out->id != 0;
}

void transfers_on_commits(struct server *s, int64_t user, const char *device,
                          const struct meta_committed *puts, size_t n)
{
        struct meta *m = s->meta;
        int64_t now = server_now(), k, changed = 0;
        size_t i;
        int r;

        if (n == 0)
                return;
        r = m->ops->begin(m);
        if (r < 0)
                goto out;
        /* Whatever they announced: what landed is the file. */
        r = m->ops->xfer_records_complete(m, user, device, puts, n, now, &changed);
        for (i = 0; i < n && r == 0; i++) {
                /* Devices waiting for this file may fetch it now; their
                 * record is done when they say they applied seq. */
                k = 0;
                r = m->ops->dl_ready(m, user, puts[i].path, puts[i].seq, "ready to download", now,
                                     &k);
                changed += k;
        }
        r = finish(s, user, changed > 0, r);
out:
        if (r < 0)
                log_warn("transfer records after a commit of device %s: %s", device, err_msg(r));
}

void transfers_on_commit(struct server *s, int64_t user, const char *device, const char *path,
                         const struct hash *hash, int64_t seq)
{
        struct meta_entry e = {0};
        struct meta_committed p = {path, 0, hash, seq};

        if (!hash)
                return;
        /* The committed size, which the record takes as bytes done. */
        if (s->meta->ops->entry_get(s->meta, user, path, &e) == 0 && e.seq == seq)
                p.size = e.size;
        meta_entry_clear(&e);
        transfers_on_commits(s, user, device, &p, 1);
}

void transfers_on_upload_rejected(struct server *s, int64_t user, const char *device,
                                  const char *reason)
{
        fail_device(s, user, device, META_XFER_ACTIVE, reason);
}

void transfers_on_connection_lost(struct server *s, int64_t user, const char *device)
{
        fail_device(s, user, device, META_XFER_ACTIVE, "connection lost");
}

void transfers_on_connection_closed(struct server *s, int64_t user, const char *device)
{
        if (events_device_streams(s->events, user, device) > 0)
                return;
        fail_device(s, user, device, META_XFER_ACTIVE, "connection closed");
}

struct active {
        int64_t user;
        char device[META_DEVICE_ID_LEN + 1];
        int64_t last_seen;
};

struct active_list {
        struct active *a;
        size_t n, cap;
};

static int active_cb(int64_t user, const char *device, int64_t last_seen, void *userdata)
{
        struct active_list *l = userdata;

        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                struct active *na = realloc(l->a, cap * sizeof(*na));
                if (!na)
                        return -ENOMEM;
                l->a = na;
                l->cap = cap;
        }
        l->a[l->n].user = user;
        snprintf(l->a[l->n].device, sizeof(l->a[l->n].device), "%s", device);
        l->a[l->n].last_seen = last_seen;
        l->n++;
        return 0;
}

void transfers_tick(struct server *s, int64_t now)
{
        struct active_list l = {NULL, 0, 0};
        char reason[80], when[40];
        int64_t last, heard, n = 0;
        size_t i;
        int r = 0;

        if (s->settings.session_timeout > 0)
                r = s->meta->ops->xfer_active_devices(s->meta, active_cb, &l);
        for (i = 0; r == 0 && i < l.n; i++) {
                struct active *a = &l.a[i];
                last = a->last_seen;
                heard = s->http ? http_device_activity(s->http, a->device, NULL) : 0;
                if (heard > last)
                        last = heard;
                if (now - last <= s->settings.session_timeout)
                        continue;
                /* Asked last: with several instances it may be a query. */
                if (events_device_streams(s->events, a->user, a->device) > 0)
                        continue;
                transfers_format_time(last, 0, when, sizeof(when));
                snprintf(reason, sizeof(reason), "device offline: no word since %s", when);
                fail_device(s, a->user, a->device, META_XFER_ACTIVE, reason);
        }
        free(l.a);
        if (r == 0)
                r = s->meta->ops->xfer_prune(s->meta, now - TRANSFERS_KEEP_COMPLETE, &n);
        if (r < 0)
                log_warn("transfer records: %s", err_msg(r));
        else if (n > 0)
                log_debug("transfer records: %lld complete batches dropped", (long long)n);
}

/* The user's devices of policy wait other than except, copied out of the
 * listing. */
struct waiters {
        const char *except;
        struct meta_device *d;
        size_t n, cap;
};

static int waiter_cb(const struct meta_device *d, void *userdata)
{
        struct waiters *w = userdata;

        if (d->download_incomplete != META_POLICY_WAIT || strcmp(d->id, w->except) == 0)
                return 0;
        if (w->n == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 4;
                struct meta_device *nd = realloc(w->d, cap * sizeof(*nd));
                if (!nd)
                        return -ENOMEM;
                w->d = nd;
                w->cap = cap;
        }
        w->d[w->n++] = *d;
        return 0;
}

int transfers_announce(struct server *s, const struct meta_device *d,
                       const struct transfers_file *files, size_t n, int64_t *batch, int64_t *ids)
{
        struct meta *m = s->meta;
        struct waiters w = {d->id, NULL, 0, 0};
        struct meta_record rec;
        struct meta_download dl;
        char reason[META_DEVICE_NAME_MAX + 64];
        int64_t now = server_now();
        size_t i, k;
        int r;

        r = m->ops->device_list(m, d->user_id, waiter_cb, &w);
        if (r < 0)
                goto out;
        r = m->ops->begin(m);
        if (r < 0)
                goto out;
        r = m->ops->xfer_batch_add(m, d->user_id, d->id, now, batch);
        for (i = 0; i < n && r == 0; i++) {
                const struct transfers_file *f = &files[i];
                r = find_open(m, d->user_id, d->id, f->path, &rec);
                if (r < 0)
                        break;
                if (r == 0) {
                        memset(&rec, 0, sizeof(rec));
                        snprintf(rec.device, sizeof(rec.device), "%s", d->id);
                        rec.path = f->path;
                        rec.started = now;
                } else if (!f->has_hash || !rec.has_hash || !hash_equal(&f->hash, &rec.hash) ||
                           rec.bytes_done > f->size) {
                        rec.bytes_done = 0; /* other content: start over */
                }
                rec.batch = *batch;
                rec.ord = (int64_t)i;
                rec.kind = f->kind;
                rec.size = f->size;
                rec.has_hash = f->has_hash;
                rec.hash = f->hash;
                rec.status = META_XFER_PENDING;
                rec.reason = "";
                rec.seq = 0;
                rec.updated = now;
                r = m->ops->xfer_record_put(m, d->user_id, &rec);
                ids[i] = rec.id;
        }
        for (k = 0; k < w.n && r == 0; k++) {
                snprintf(reason, sizeof(reason), "waiting for the upload from %s", d->name);
                for (i = 0; i < n && r == 0; i++) {
                        dl = (struct meta_download){.path = files[i].path,
                                                    .status = META_DL_PENDING,
                                                    .reason = reason,
                                                    .updated = now};
                        snprintf(dl.device, sizeof(dl.device), "%s", w.d[k].id);
                        r = m->ops->dl_put(m, d->user_id, &dl);
                }
        }
        r = finish(s, d->user_id, 1, r);
out:
        free(w.d);
        return r;
}

int transfers_progress(struct server *s, const struct meta_device *d,
                       const struct transfers_progress *items, size_t n, size_t *updated)
{
        struct meta *m = s->meta;
        struct meta_record rec;
        int64_t now = server_now();
        size_t i;
        int r;

        *updated = 0;
        r = m->ops->begin(m);
        if (r < 0)
                return r;
        for (i = 0; i < n && r == 0; i++) {
                struct meta_record_filter f = {items[i].id, d->id, NULL, 0};
                rec.id = 0;
                r = m->ops->xfer_records(m, d->user_id, &f, first_record, &rec);
                if (r == 0 && rec.id == 0)
                        r = err_set(-ENOENT, "no transfer record %lld of this device",
                                    (long long)items[i].id);
                /* A complete record stays complete: a late report of an
                 * upload that landed changes nothing. */
                if (r < 0 || rec.status == META_XFER_COMPLETE)
                        continue;
                if (items[i].report == TRANSFERS_CANCELLED) {
                        r = m->ops->xfer_record_delete(m, d->user_id, rec.id);
                } else {
                        rec.reason = "";
                        if (items[i].report == TRANSFERS_FAILED) {
                                rec.status = META_XFER_FAILED;
                                rec.reason = items[i].reason;
                        } else {
                                rec.status = META_XFER_UPLOADING;
                                rec.bytes_done =
                                    items[i].bytes_done < rec.size ? items[i].bytes_done : rec.size;
                        }
                        rec.updated = now;
                        r = m->ops->xfer_record_put(m, d->user_id, &rec);
                }
                if (r == 0)
                        (*updated)++;
        }
        if (r < 0)
                *updated = 0;
        return finish(s, d->user_id, *updated > 0, r);
}

/* Ids and paths collected from a listing, to act on after it. */
struct picks {
        int64_t *ids;
        char **paths;
        size_t n, cap;
        int64_t skipped;
};

static int pick(struct picks *p, int64_t id, const char *path)
{
        int64_t *ni;
        char **np;
        size_t cap;

        if (p->n == p->cap) {
                cap = p->cap ? p->cap * 2 : 16;
                if (!(ni = realloc(p->ids, cap * sizeof(*ni))))
                        return -ENOMEM;
                p->ids = ni;
                if (!(np = realloc(p->paths, cap * sizeof(*np))))
                        return -ENOMEM;
                p->paths = np;
                p->cap = cap;
        }
        if (!(p->paths[p->n] = strdup(path)))
                return -ENOMEM;
        p->ids[p->n++] = id;
        return 0;
}

/* Failed records are picked; open ones counted as skipped. */
static int forget_cb(const struct meta_record *r, void *userdata)
{
        struct picks *p = userdata;

        if (r->status == META_XFER_FAILED)
                return pick(p, r->id, r->path);
        if (r->status != META_XFER_COMPLETE)
                p->skipped++;
        return 0;
}

/* Like forget_cb for a record asked for by id: complete ones skipped too. */
static int forget_id_cb(const struct meta_record *r, void *userdata)
{
        struct picks *p = userdata;

        if (r->status == META_XFER_FAILED)
                return pick(p, r->id, r->path);
        p->skipped++;
        return 0;
}

int transfers_forget(struct server *s, const struct meta_device *d,
                     const struct transfers_forget *f, int64_t *forgotten, int64_t *skipped)
{
        struct meta *m = s->meta;
        struct picks p = {NULL, NULL, 0, 0, 0};
        int64_t k;
        size_t i;
        int r;

        *forgotten = *skipped = 0;
        r = m->ops->begin(m);
        if (r < 0)
                return r;
        for (i = 0; i < f->n_ids && r == 0; i++) {
                struct meta_record_filter flt = {f->ids[i], NULL, NULL, 0};
                r = m->ops->xfer_records(m, d->user_id, &flt, forget_id_cb, &p);
        }
        if (r == 0 && (f->all_failed || f->path)) {
                struct meta_record_filter flt = {0, NULL, f->path,
                                                 f->all_failed ? 1u << META_XFER_FAILED : 0};
                r = m->ops->xfer_records(m, d->user_id, &flt, forget_cb, &p);
        }
        for (i = 0; i < p.n && r == 0; i++) {
                r = m->ops->xfer_record_delete(m, d->user_id, p.ids[i]);
                if (r == -ENOENT)
                        r = 0; /* named twice */
                else if (r == 0)
                        (*forgotten)++;
        }
        /* And this device's failed downloads of those paths. */
        for (i = 0; i < p.n && r == 0 && !f->all_failed; i++) {
                r = m->ops->dl_delete(m, d->id, p.paths[i], 1u << META_DL_FAILED, &k);
                *forgotten += k;
        }
        if (r == 0 && (f->all_failed || f->path)) {
                r = m->ops->dl_delete(m, d->id, f->path, 1u << META_DL_FAILED, &k);
                *forgotten += k;
        }
        *skipped = p.skipped;
        r = finish(s, d->user_id, r == 0 && *forgotten > 0, r);
        for (i = 0; i < p.n; i++)
                free(p.paths[i]);
        free(p.paths);
        free(p.ids);
        return r;
}

int transfers_downloads(struct server *s, const struct meta_device *d, int64_t applied_seq,
                        const struct transfers_download *items, size_t n)
{
        struct meta *m = s->meta;
        struct meta_download dl;
        int64_t now = server_now(), k = 0, changed = 0;
        size_t i;
        int r;

        r = m->ops->begin(m);
        if (r < 0)
                return r;
        if (applied_seq >= 0) {
                r = m->ops->device_set_applied(m, d->id, applied_seq);
                if (r == 0)
                        r = m->ops->dl_applied(
                            m, d->id, applied_seq > d->applied_seq ? applied_seq : d->applied_seq,
                            now, &k);
                changed += k;
        }
        for (i = 0; i < n && r == 0; i++) {
                dl = (struct meta_download){.path = items[i].path,
                                            .seq = items[i].seq,
                                            .status = items[i].status,
                                            .reason = items[i].reason ? items[i].reason : "",
                                            .updated = now};
                snprintf(dl.device, sizeof(dl.device), "%s", d->id);
                r = m->ops->dl_put(m, d->user_id, &dl);
                changed++;
        }
        return finish(s, d->user_id, changed > 0, r);
}

int transfers_set_policy(struct server *s, const struct meta_device *d, int policy)
{
        struct meta *m = s->meta;
        int r;

        r = m->ops->begin(m);
        if (r < 0)
                return r;
        r = m->ops->device_set_policy(m, d->id, policy);
        return finish(s, d->user_id, policy != d->download_incomplete, r);
}

int transfers_device_remove(struct server *s, const struct meta_device *victim, int64_t *files)
{
        struct meta *m = s->meta;
        int64_t now = server_now(), n;
        int r;

        r = m->ops->begin(m);
        if (r < 0)
                return r;
        r = m->ops->device_event_add(m, victim->user_id, victim, "removed", now, files);
        if (r == 0)
                r = m->ops->device_remove(m, victim->id, now);
        if (r == 0)
                r = m->ops->xfer_records_fail(m, victim->user_id, victim->id, META_XFER_OPEN,
                                              "device removed", now, &n);
        /* It will download nothing any more. */
        if (r == 0)
                r = m->ops->dl_delete(m, victim->id, NULL, 0, &n);
        r = finish(s, victim->user_id, 1, r);
        if (r == 0) {
                events_revoke(s->events, victim->user_id, victim->id);
                log_info("device %s (%s) removed", victim->id, victim->name);
        }
        return r;
}

int transfers_device_online(struct server *s, const struct meta_device *d, int64_t now)
{
        return now - d->last_seen <= SERVER_ONLINE_WINDOW ||
               events_device_streams(s->events, d->user_id, d->id) > 0;
}

json_t *transfers_device_json(struct server *s, const struct meta_device *d,
                              const struct http_request *self, int64_t now)
{
        int is_self = self && strcmp(d->id, self->device.id) == 0;
        /* The caller is being seen right now; its row is updated after the
         * reply (see server.c), so show what it is about to say. */
        struct meta_device shown = *d;
        int64_t uploading = 0;

        if (is_self) {
                shown.last_seen = now;
                snprintf(shown.address, sizeof(shown.address), "%s", self->remote_addr);
        }
        if (s->meta->ops->device_open_records(s->meta, d->id, &uploading) < 0)
                return NULL;
        return json_pack(
            "{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:s, s:I, s:I}", "id", d->id, "name", d->name,
            "platform", d->platform, "address", shown.address, "created", (json_int_t)d->created,
            "last_seen", (json_int_t)shown.last_seen, "online",
            transfers_device_online(s, &shown, now), "this", is_self, "download_incomplete",
            d->download_incomplete == META_POLICY_WAIT ? "wait" : "skip", "applied_seq",
            (json_int_t)d->applied_seq, "uploading", (json_int_t)uploading);
}

json_t *transfers_record_json(const struct meta_record *r, int with_device)
{
        char hex[HASH_HEX_LEN + 1];
        json_t *o;

        if (r->has_hash)
                hash_to_hex(&r->hash, hex);
        o = json_pack("{s:I, s:s, s:s, s:I, s:o, s:s, s:I, s:I, s:I, s:s, s:I}", "id",
                      (json_int_t)r->id, "path", r->path, "kind", kind_name(r->kind), "size",
                      (json_int_t)r->size, "hash", r->has_hash ? json_string(hex) : json_null(),
                      "status", transfers_status_name(r->status), "bytes_done",
                      (json_int_t)r->bytes_done, "started", (json_int_t)r->started, "updated",
                      (json_int_t)r->updated, "reason", r->reason ? r->reason : "", "seq",
                      (json_int_t)r->seq);
        if (o && with_device &&
            (json_object_set_new(o, "device", json_string(r->device)) < 0 ||
             json_object_set_new(o, "device_name",
                                 json_string(r->device_name ? r->device_name : "")) < 0)) {
                json_decref(o);
                o = NULL;
        }
        return o;
}

/* The most recently updated open record of a path, as JSON, with the
 * sentence that describes it. */
struct newest {
        json_t *rec;
        int64_t updated;
        struct meta_record r; /* strings dropped */
        int failed;           /* out of memory */
};

static int newest_cb(const struct meta_record *r, void *userdata)
{
        struct newest *nw = userdata;
        json_t *o;

        if (nw->rec && r->updated < nw->updated)
                return 0;
        o = transfers_record_json(r, 1);
        if (!o) {
                nw->failed = 1;
                return -ENOMEM;
        }
        json_decref(nw->rec);
        nw->rec = o;
        nw->updated = r->updated;
        nw->r = *r;
        nw->r.path = nw->r.reason = nw->r.device_name = NULL;
        return 0;
}

int transfers_not_ready(struct server *s, int64_t user, const char *path, json_t **out)
{
        struct meta_record_filter f = {0, NULL, path, META_XFER_OPEN};
        struct newest nw = {NULL, 0, {0}, 0};
        struct meta_device dev;
        char msg[5000], status[400], when[48], where[96];
        const char *name, *reason;
        int64_t now = server_now();
        int r;

        r = s->meta->ops->xfer_records(s->meta, user, &f, newest_cb, &nw);
        if (r < 0 || !nw.rec) {
                json_decref(nw.rec);
                return r;
        }
        name = json_string_value(json_object_get(nw.rec, "device_name"));
        reason = json_string_value(json_object_get(nw.rec, "reason"));
        snprintf(where, sizeof(where), "%s", "offline");
        if (s->meta->ops->device_find(s->meta, user, nw.r.device, 1, &dev, NULL) == 0) {
                transfers_format_time(dev.last_seen, 1, when, sizeof(when));
                if (transfers_device_online(s, &dev, now))
                        snprintf(where, sizeof(where), "%s", "online");
                else
                        snprintf(where, sizeof(where), "offline since %s", when);
        }
        if (nw.r.status == META_XFER_FAILED && reason && *reason)
                snprintf(status, sizeof(status), "failed: %s", reason);
        else
                snprintf(status, sizeof(status), "%s", transfers_status_name(nw.r.status));
        snprintf(msg, sizeof(msg),
                 "not yet uploaded: %s is %s (%llu of %llu bytes) from %s (%s); it downloads when "
                 "the upload completes",
                 path, status, (unsigned long long)nw.r.bytes_done, (unsigned long long)nw.r.size,
                 name && *name ? name : nw.r.device, where);
        *out = json_pack("{s:s, s:s, s:o}", "error", msg, "code", "not_ready", "transfer", nw.rec);
        return *out ? 1 : -ENOMEM;
}
