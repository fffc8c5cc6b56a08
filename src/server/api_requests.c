/* api_requests: the device registry and upload requests (docs/api.md,
 * "Devices" and "Upload requests").
 *
 * The registry: each device's LAN listener (reported with POST
 * /api/v1/device) and the subnet derived from it, renames, and the
 * account's LAN key, the shared secret of the LAN peer protocol
 * (docs/lan.md), which any active device of the account may read and which
 * is replaced when a device is removed, so that a removed device's copy
 * stops opening doors. Every change of the control list bumps the user's
 * "devices version" and every change of a request its "requests version";
 * the event streams announce both (events.h), so clients refetch instead
 * of polling.
 *
 * An upload request asks another device of the same account to upload
 * now. It is recorded here whichever way it is delivered (the requester
 * over the LAN, or the target hearing of it through its event stream), so
 * that every device sees status and result the same way. Only the target
 * moves it on, and only forward: pending -> accepted -> running -> done |
 * failed. A pending request past its expiry reads as expired, and the
 * housekeeping tick makes that stick.
 *
 * Everything is confined to the authenticated device's account. The LAN
 * key is never logged.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "path.h"
#include "server.h"
#include "transfers.h"

#define REQ_MAX_PATHS 1000
#define REQ_REASON_MAX 1000
#define REQ_EXPIRES_DEFAULT 86400
#define REQ_EXPIRES_MIN 60
#define REQ_EXPIRES_MAX (7 * 86400)

static const char *const status_names[META_REQ_NSTATUS] = {
    [META_REQ_PENDING] = "pending", [META_REQ_ACCEPTED] = "accepted",
    [META_REQ_RUNNING] = "running", [META_REQ_DONE] = "done",
    [META_REQ_FAILED] = "failed",   [META_REQ_EXPIRED] = "expired",
};

static int status_of_name(const char *name)
{
        int i;

        for (i = 0; name && i < META_REQ_NSTATUS; i++)
                if (strcmp(name, status_names[i]) == 0)
                        return i;
        return -1;
}

/* A pending request past its expiry is expired even before the tick. */
static int effective_status(const struct meta_request *q, int64_t now)
{
        if (q->status == META_REQ_PENDING && q->expires <= now)
                return META_REQ_EXPIRED;
        return q->status;
}

void api_registry_changed(struct server *s, int64_t user, int counter)
{
        int64_t v = 0;
        int r;

        r = s->meta->ops->registry_version_bump(s->meta, user, counter, &v);
        if (r < 0) {
                log_warn("user %lld: cannot record a %s change: %s", (long long)user,
                         counter == META_COUNTER_DEVICES ? "devices" : "requests", err_msg(r));
                return;
        }
        events_publish_version(
            s->events, user, counter == META_COUNTER_DEVICES ? EVENTS_DEVICES : EVENTS_REQUESTS, v);
}

/* "NET/PREFIX" of addr under prefix (< 0: /24 for IPv4, /64 for IPv6; an
 * IPv4-mapped IPv6 address counts as IPv4). 0, or -1 when addr is not an
 * address literal. */
static int subnet_of(const char *addr, int prefix, char *out, size_t cap)
{
        char txt[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        unsigned char b[16];
        int af, len, i, bits;

        if (inet_pton(AF_INET, addr, b) == 1) {
                af = AF_INET;
                len = 4;
        } else if (inet_pton(AF_INET6, addr, &a6) == 1) {
                memcpy(b, &a6, 16);
                af = AF_INET6;
                len = 16;
                if (IN6_IS_ADDR_V4MAPPED(&a6)) {
                        memmove(b, b + 12, 4);
                        af = AF_INET;
                        len = 4;
                }
        } else {
                return -1;
        }
        if (prefix < 0 || prefix > len * 8)
                prefix = af == AF_INET ? 24 : 64;
        for (i = 0; i < len; i++) {
                bits = prefix - i * 8;
                if (bits < 8)
                        b[i] &= bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits));
        }
        if (!inet_ntop(af, b, txt, sizeof(txt)))
                return -1;
        snprintf(out, cap, "%s/%d", txt, prefix);
        return 0;
}

int api_device_registry_fields(json_t *o, const struct meta_device *d,
                               const struct http_request *self)
{
        const char *addr = d->address;
        char subnet[INET6_ADDRSTRLEN + 8];
        json_t *lan = json_null(), *sn = json_null();

        /* The caller's row is updated after the reply (server.c). */
        if (self && strcmp(self->device.id, d->id) == 0)
                addr = self->remote_addr;
        if (d->lan_addr[0]) {
                lan = json_pack("{s:s, s:i, s:i}", "addr", d->lan_addr, "port", d->lan_port,
                                "prefix", d->lan_prefix);
                if (subnet_of(d->lan_addr, d->lan_prefix, subnet, sizeof(subnet)) == 0)
                        sn = json_string(subnet);
        } else if (subnet_of(addr, -1, subnet, sizeof(subnet)) == 0) {
                sn = json_string(subnet);
        }
        if (!lan || !sn || json_object_set_new(o, "lan", lan) < 0 ||
            json_object_set_new(o, "subnet", sn) < 0 ||
            json_object_set_new(o, "first_seen", json_integer(d->created)) < 0)
                return -ENOMEM;
        return 0;
}

json_t *api_device_json(struct server *s, const struct meta_device *d,
                        const struct http_request *self, int64_t now)
{
        json_t *o = transfers_device_json(s, d, self, now);

        if (o && api_device_registry_fields(o, d, self) < 0) {
                json_decref(o);
                o = NULL;
        }
        return o;
}

int api_parse_lan(json_t *v, struct meta_device *d, struct http_reply *rep)
{
        const char *addr = json_string_value(json_object_get(v, "addr"));
        json_t *port = json_object_get(v, "port"), *prefix = json_object_get(v, "prefix");
        unsigned char b[16];
        int af, max;

        if (json_is_null(v)) {
                d->lan_addr[0] = '\0';
                d->lan_port = d->lan_prefix = 0;
                return 0;
        }
        if (!json_is_object(v) || !addr) {
                http_reply_error(rep, 400, "lan must be {\"addr\", \"port\", \"prefix\"} or null");
                return -1;
        }
        if (inet_pton(AF_INET, addr, b) == 1) {
                af = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, addr, b) == 1) {
                af = AF_INET6;
                max = 128;
        } else {
                http_reply_error(rep, 400, "lan.addr must be an IPv4 or IPv6 address");
                return -1;
        }
        if (!json_is_integer(port) || json_integer_value(port) < 1 ||
            json_integer_value(port) > 65535) {
                http_reply_error(rep, 400, "lan.port must be an integer from 1 to 65535");
                return -1;
        }
        if (!json_is_integer(prefix) || json_integer_value(prefix) < 0 ||
            json_integer_value(prefix) > max) {
                http_reply_error(rep, 400, "lan.prefix must be an integer from 0 to %d", max);
                return -1;
        }
        /* The canonical text, so that equal addresses compare equal. */
        if (!inet_ntop(af, b, d->lan_addr, sizeof(d->lan_addr))) {
                http_reply_error(rep, 400, "lan.addr must be an IPv4 or IPv6 address");
                return -1;
        }
        d->lan_port = (int)json_integer_value(port);
        d->lan_prefix = (int)json_integer_value(prefix);
        return 0;
}

int api_device_set_info(struct server *s, const struct meta_device *d)
{
        int changed = 0, r;

        r = s->meta->ops->device_set_info(s->meta, d, &changed);
        if (r == 0 && changed)
                api_registry_changed(s, d->user_id, META_COUNTER_DEVICES);
        return r;
}

/* A fresh LAN key as hex into key. 0 or a negative code. */
static int new_key(char key[META_LAN_KEY_HEX + 1])
{
        return fsutil_random_hex(key, META_LAN_KEY_HEX / 2);
}

void api_registry_device_removed(struct server *s, const struct meta_device *victim)
{
        char key[META_LAN_KEY_HEX + 1];
        int64_t version = 0, n = 0;
        int r;

        r = new_key(key);
        if (r == 0)
                r = s->meta->ops->lan_key_rotate(s->meta, victim->user_id, key, &version);
        sodium_memzero(key, sizeof(key));
        if (r < 0)
                log_warn("user %lld: cannot replace the LAN key after removing device %s: %s",
                         (long long)victim->user_id, victim->id, err_msg(r));
        else if (version > 0)
                log_info("user %lld: LAN key replaced (version %lld): device %s removed",
                         (long long)victim->user_id, (long long)version, victim->id);
        r = s->meta->ops->requests_fail_target(s->meta, victim->user_id, victim->id,
                                               "device removed", server_now(), &n);
        if (r < 0)
                log_warn("device %s: cannot fail its upload requests: %s", victim->id, err_msg(r));
        if (n > 0)
                api_registry_changed(s, victim->user_id, META_COUNTER_REQUESTS);
        api_registry_changed(s, victim->user_id, META_COUNTER_DEVICES);
}

void api_requests_tick(struct server *s, int64_t now)
{
        int64_t *users = NULL;
        size_t n = 0, i;
        int r;

        r = s->meta->ops->requests_expire(s->meta, now, &users, &n);
        if (r < 0)
                log_warn("upload requests: expiry: %s", err_msg(r));
        for (i = 0; i < n; i++)
                api_registry_changed(s, users[i], META_COUNTER_REQUESTS);
        free(users);
}

void api_lan_key(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        char fresh[META_LAN_KEY_HEX + 1], key[META_LAN_KEY_HEX + 1];
        int64_t version = 0;
        int r;

        r = new_key(fresh);
        if (r == 0)
                r = s->meta->ops->lan_key_get(s->meta, req->device.user_id, fresh, key, &version);
        if (r < 0)
                api_internal(rep, "LAN key", r);
        else
                http_reply_json(
                    rep, 200, json_pack("{s:s, s:I}", "key", key, "version", (json_int_t)version));
        sodium_memzero(fresh, sizeof(fresh));
        sodium_memzero(key, sizeof(key));
}

/* Replies for a failed device lookup: 404 unknown, 409 ambiguous. */
static void reply_lookup(struct http_reply *rep, const char *what, int r)
{
        if (r == -ENOENT)
                http_reply_error(rep, 404, "%s", err_msg(r));
        else if (r == -EEXIST)
                http_reply_error(rep, 409, "%s", err_msg(r));
        else
                api_internal(rep, what, r);
}

void api_devices_rename(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct meta *m = s->meta;
        const char *dv, *name;
        struct meta_device d, other;
        json_t *body, *o;
        int r, tx = 0;

        if (!(body = api_body_object(req, rep)))
                return;
        dv = json_string_value(json_object_get(body, "device"));
        name = json_string_value(json_object_get(body, "name"));
        if (!dv || !*dv || !name) {
                http_reply_error(rep, 400, "give \"device\" (an id or name) and \"name\"");
                goto out;
        }
        if ((r = auth_check_device_name(name)) < 0) {
                http_reply_error(rep, 400, "%s", err_msg(r));
                goto out;
        }
        /* One transaction: no other rename takes the name in between. */
        if ((r = m->ops->begin(m)) < 0) {
                api_internal(rep, "rename", r);
                goto out;
        }
        tx = 1;
        r = m->ops->device_find(m, req->device.user_id, dv, 0, &d, NULL);
        if (r < 0) {
                reply_lookup(rep, "rename", r);
                goto out;
        }
        r = m->ops->device_find(m, req->device.user_id, name, 0, &other, NULL);
        if ((r == 0 && strcmp(other.id, d.id) != 0) || r == -EEXIST) {
                http_reply_error(rep, 409, "the name '%s' is taken by another device", name);
                goto out;
        }
        if (r < 0 && r != -ENOENT) {
                api_internal(rep, "rename", r);
                goto out;
        }
        r = strcmp(d.name, name) == 0 ? 0 : m->ops->device_rename(m, d.id, name);
        if (r == 0) {
                tx = 0;
                r = m->ops->commit(m);
        }
        if (r < 0) {
                api_internal(rep, "rename", r);
                goto out;
        }
        if (strcmp(d.name, name) != 0) {
                log_info("device %s renamed from '%s' to '%s'", d.id, d.name, name);
                snprintf(d.name, sizeof(d.name), "%s", name);
                api_registry_changed(s, req->device.user_id, META_COUNTER_DEVICES);
        }
        o = api_device_json(s, &d, req, server_now());
        if (o)
                http_reply_json(rep, 200, json_pack("{s:o}", "device", o));
        else
                http_reply_error(rep, 500, "out of memory");
out:
        if (tx)
                m->ops->rollback(m);
        json_decref(body);
}

/* Listing: the requests as JSON, filtered by effective status. */
struct listing {
        json_t *arr;
        int status; /* -1: any */
        int64_t now;
};

static int list_cb(const struct meta_request *q, void *userdata)
{
        struct listing *l = userdata;
        int st = effective_status(q, l->now);
        json_t *paths, *o;

        if (l->status >= 0 && st != l->status)
                return 0;
        /* Stored by request_add from a validated array. */
        paths = json_loads(q->paths, 0, NULL);
        if (!json_is_array(paths)) {
                json_decref(paths);
                paths = json_array();
        }
        o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:I, s:s, s:I, s:I, s:I}",
                      "id", (json_int_t)q->id, "requester", q->requester, "requester_name",
                      q->requester_name ? q->requester_name : "", "target", q->target,
                      "target_name", q->target_name ? q->target_name : "", "paths", paths, "all",
                      q->all, "via", q->via, "status", status_names[st], "files",
                      (json_int_t)q->files, "reason", q->reason ? q->reason : "", "created",
                      (json_int_t)q->created, "updated", (json_int_t)q->updated, "expires",
                      (json_int_t)q->expires);
        if (!o || json_array_append_new(l->arr, o) < 0)
                return -ENOMEM;
        return 0;
}

/* The JSON of request id (borrowed from a fresh listing), or NULL. */
static json_t *request_by_id(struct server *s, int64_t user, int64_t id, json_t **list)
{
        struct meta_request_filter f = {id, NULL};
        struct listing l = {json_array(), -1, server_now()};

        *list = l.arr;
        if (!l.arr || s->meta->ops->requests_list(s->meta, user, &f, list_cb, &l) < 0)
                return NULL;
        return json_array_get(l.arr, 0);
}

/* Reads paths/all of body into q (paths as compact JSON in *text). 0, or
 * -1 with a 400 reply. */
static int parse_what(json_t *body, struct meta_request *q, char **text, struct http_reply *rep)
{
        json_t *all = json_object_get(body, "all"), *paths = json_object_get(body, "paths"), *p;
        json_t *none = NULL;
        size_t i;
        int r;

        if (all && !json_is_boolean(all)) {
                http_reply_error(rep, 400, "\"all\" must be true or false");
                return -1;
        }
        q->all = json_is_true(all);
        if (q->all) {
                paths = none = json_array(); /* everything: paths are ignored */
        } else if (!json_is_array(paths) || json_array_size(paths) == 0 ||
                   json_array_size(paths) > REQ_MAX_PATHS) {
                http_reply_error(rep, 400, "give \"paths\" (1 to %d paths) or \"all\": true",
                                 REQ_MAX_PATHS);
                return -1;
        }
        json_array_foreach(paths, i, p)
        {
                if (!json_is_string(p)) {
                        http_reply_error(rep, 400, "paths[%zu] must be a string", i);
                        return -1;
                }
                if ((r = path_validate(json_string_value(p))) < 0) {
                        http_reply_error(rep, 400, "paths[%zu]: %s", i, err_msg(r));
                        return -1;
                }
        }
        *text = paths ? json_dumps(paths, JSON_COMPACT) : NULL;
        json_decref(none);
        if (!*text) {
                http_reply_error(rep, 500, "out of memory");
                return -1;
        }
        return 0;
}

void api_requests_create(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct meta_request q = {0};
        struct meta_device t;
        const char *tv;
        json_t *body, *v, *list = NULL, *o;
        int64_t expires_in = REQ_EXPIRES_DEFAULT, now = server_now();
        char *paths = NULL;
        int r;

        if (!(body = api_body_object(req, rep)))
                return;
        tv = json_string_value(json_object_get(body, "target"));
        if (!tv || !*tv) {
                http_reply_error(rep, 400, "\"target\" must be a device id or name");
                goto out;
        }
        if (parse_what(body, &q, &paths, rep) < 0)
                goto out;
        v = json_object_get(body, "via");
        q.via = v ? json_string_value(v) : "relay";
        if (!q.via || (strcmp(q.via, "lan") != 0 && strcmp(q.via, "relay") != 0)) {
                http_reply_error(rep, 400, "\"via\" must be \"lan\" or \"relay\"");
                goto out;
        }
        v = json_object_get(body, "expires_in");
        if (v && !json_is_null(v)) {
                if (!json_is_integer(v) || json_integer_value(v) < REQ_EXPIRES_MIN ||
                    json_integer_value(v) > REQ_EXPIRES_MAX) {
                        http_reply_error(rep, 400, "expires_in must be %d to %d seconds",
                                         REQ_EXPIRES_MIN, REQ_EXPIRES_MAX);
                        goto out;
                }
                expires_in = json_integer_value(v);
        }
        r = s->meta->ops->device_find(s->meta, req->device.user_id, tv, 0, &t, NULL);
        if (r < 0) {
                reply_lookup(rep, "request", r);
                goto out;
        }
        if (strcmp(t.id, req->device.id) == 0) {
                http_reply_error(rep, 409, "a device cannot send an upload request to itself");
                goto out;
        }
        snprintf(q.requester, sizeof(q.requester), "%s", req->device.id);
        snprintf(q.target, sizeof(q.target), "%s", t.id);
        q.paths = paths;
        q.status = META_REQ_PENDING;
        q.reason = "";
        q.created = q.updated = now;
        q.expires = now + expires_in;
        r = s->meta->ops->request_add(s->meta, req->device.user_id, &q);
        if (r < 0) {
                api_internal(rep, "request", r);
                goto out;
        }
        log_info("device %s asked device %s to upload (request %lld, %s, via %s)", req->device.id,
                 t.id, (long long)q.id, q.all ? "all" : "paths", q.via);
        api_registry_changed(s, req->device.user_id, META_COUNTER_REQUESTS);
        o = request_by_id(s, req->device.user_id, q.id, &list);
        if (o)
                http_reply_json(rep, 201, json_pack("{s:O}", "request", o));
        else
                http_reply_error(rep, 500, "cannot read the request back");
out:
        json_decref(list);
        free(paths);
        json_decref(body);
}

/* A positive decimal integer (no sign, no spaces); -1 otherwise. */
static int64_t parse_id(const char *v)
{
        int64_t n = 0;

        if (!v || !*v || strlen(v) > 18)
                return -1;
        for (; *v; v++) {
                if (*v < '0' || *v > '9')
                        return -1;
                n = n * 10 + (*v - '0');
        }
        return n > 0 ? n : -1;
}

void api_requests_list(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *iv = http_query(req, "id"), *tv = http_query(req, "target"),
                   *sv = http_query(req, "status");
        struct listing l = {json_array(), -1, server_now()};
        struct meta_request_filter f = {0, NULL};
        struct meta_device t;
        int r;

        if (iv && (f.id = parse_id(iv)) < 0) {
                http_reply_error(rep, 400, "id must be a request id");
                goto out;
        }
        if (sv && (l.status = status_of_name(sv)) < 0) {
                http_reply_error(rep, 400,
                                 "status must be pending, accepted, running, done, failed or "
                                 "expired");
                goto out;
        }
        if (tv && strcmp(tv, "me") == 0) {
                f.target = req->device.id;
        } else if (tv && *tv) {
                /* Removed devices too: their requests stay listed. */
                r = s->meta->ops->device_find(s->meta, req->device.user_id, tv, 1, &t, NULL);
                if (r < 0) {
                        reply_lookup(rep, "requests", r);
                        goto out;
                }
                f.target = t.id;
        }
        r = l.arr ? s->meta->ops->requests_list(s->meta, req->device.user_id, &f, list_cb, &l)
                  : -ENOMEM;
        if (r < 0)
                api_internal(rep, "requests", r);
        else
                http_reply_json(rep, 200, json_pack("{s:O}", "requests", l.arr));
out:
        json_decref(l.arr);
}

/* What an update needs of the stored request. */
struct current {
        int found;
        char target[META_DEVICE_ID_LEN + 1];
        int status; /* effective */
        int64_t files;
        char reason[REQ_REASON_MAX + 1];
        int64_t now;
};

static int current_cb(const struct meta_request *q, void *userdata)
{
        struct current *c = userdata;

        c->found = 1;
        snprintf(c->target, sizeof(c->target), "%s", q->target);
        c->status = effective_status(q, c->now);
        c->files = q->files;
        snprintf(c->reason, sizeof(c->reason), "%s", q->reason ? q->reason : "");
        return 1;
}

/* Forward only: pending -> accepted -> running -> done | failed; done,
 * failed and expired are final. */
static int forward(int from, int to)
{
        if (from == META_REQ_DONE || from == META_REQ_FAILED || from == META_REQ_EXPIRED)
                return 0;
        return to > from;
}

void api_requests_update(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct meta *m = s->meta;
        struct current c = {0};
        struct meta_request q = {0};
        struct meta_request_filter f = {0, NULL};
        json_t *body, *v, *list = NULL, *o;
        const char *reason = NULL;
        int r, tx = 0, to;

        if (!(body = api_body_object(req, rep)))
                return;
        v = json_object_get(body, "id");
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                http_reply_error(rep, 400, "\"id\" must be a request id");
                goto out;
        }
        f.id = q.id = json_integer_value(v);
        to = status_of_name(json_string_value(json_object_get(body, "status")));
        if (to != META_REQ_ACCEPTED && to != META_REQ_RUNNING && to != META_REQ_DONE &&
            to != META_REQ_FAILED) {
                http_reply_error(rep, 400,
                                 "status must be \"accepted\", \"running\", \"done\" or "
                                 "\"failed\"");
                goto out;
        }
        v = json_object_get(body, "files");
        if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 0)) {
                http_reply_error(rep, 400, "\"files\" must be a non-negative integer");
                goto out;
        }
        q.files = json_is_integer(v) ? json_integer_value(v) : -1;
        v = json_object_get(body, "reason");
        if (v && !json_is_null(v) &&
            (!(reason = json_string_value(v)) || strlen(reason) > REQ_REASON_MAX)) {
                http_reply_error(rep, 400, "\"reason\" must be a string of at most %d bytes",
                                 REQ_REASON_MAX);
                goto out;
        }
        /* Read, check and write in one transaction: two updates racing
         * (done and failed) cannot both pass the check. */
        if ((r = m->ops->begin(m)) < 0) {
                api_internal(rep, "request update", r);
                goto out;
        }
        tx = 1;
        c.now = server_now();
        r = m->ops->requests_list(m, req->device.user_id, &f, current_cb, &c);
        if (r < 0) {
                api_internal(rep, "request update", r);
                goto out;
        }
        if (!c.found) {
                http_reply_error(rep, 404, "no request %lld", (long long)q.id);
                goto out;
        }
        if (strcmp(c.target, req->device.id) != 0) {
                http_reply_error(rep, 403, "only the request's target device may update it");
                goto out;
        }
        if (!forward(c.status, to)) {
                http_reply_error(rep, 409, "request %lld is %s: it cannot become %s",
                                 (long long)q.id, status_names[c.status], status_names[to]);
                goto out;
        }
        q.status = to;
        if (q.files < 0)
                q.files = c.files;
        q.reason = reason ? reason : c.reason;
        if (to == META_REQ_FAILED && !*q.reason)
                q.reason = "failed (no reason given)";
        q.updated = c.now;
        r = m->ops->request_set(m, req->device.user_id, &q);
        if (r == 0) {
                tx = 0;
                r = m->ops->commit(m);
        }
        if (r < 0) {
                api_internal(rep, "request update", r);
                goto out;
        }
        api_registry_changed(s, req->device.user_id, META_COUNTER_REQUESTS);
        o = request_by_id(s, req->device.user_id, q.id, &list);
        if (o)
                http_reply_json(rep, 200, json_pack("{s:O}", "request", o));
        else
                http_reply_error(rep, 500, "cannot read the request back");
out:
        if (tx)
                m->ops->rollback(m);
        json_decref(list);
        json_decref(body);
}
