/* api_account: the account endpoints of API v1 — health, register, login
 * (which creates a device and its token, and records it in the device
 * history) and the device list. A device is listed online when it made a
 * request lately or holds an event stream; the list also shows each
 * device's download policy, applied seq and open upload records, and its
 * LAN listener and subnet (api_requests.c). */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "server.h"
#include "transfers.h"

void api_health(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx;
        (void)req;
        http_reply_json(rep, 200, json_pack("{s:b, s:s}", "ok", 1, "version", FERRY_VERSION));
}

/* The string member key of o, or NULL (and a 400 reply) when it is absent
 * or not a string. */
static const char *string_field(json_t *o, const char *key, size_t *len, struct http_reply *rep)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_string(v)) {
                http_reply_error(rep, 400, "\"%s\" must be a string", key);
                return NULL;
        }
        if (len)
                *len = json_string_length(v);
        return json_string_value(v);
}

void api_register(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *user, *email, *password;
        size_t pwlen;
        json_t *body;
        int r;

        body = api_body_object(req, rep);
        if (!body)
                return;
        if (!(user = string_field(body, "user", NULL, rep)) ||
            !(email = string_field(body, "email", NULL, rep)) ||
            !(password = string_field(body, "password", &pwlen, rep)))
                goto out;
        if (!s->registration_open) {
                http_reply_error(rep, 403, "registration is closed on this server");
                goto out;
        }
        r = server_user_add(s, user, email, password, pwlen);
        if (r == -EINVAL)
                http_reply_error(rep, 400, "%s", err_msg(r));
        else if (r == -EEXIST)
                http_reply_error(rep, 409, "user name '%s' is taken", user);
        else if (r < 0)
                api_internal(rep, "register", r);
        else {
                log_info("registered user %s", user);
                http_reply_json(rep, 201, json_pack("{s:s}", "user", user));
        }
out:
        json_decref(body);
}

void api_login(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        const char *user, *password, *dname, *platform = "";
        char token[AUTH_TOKEN_HEX_LEN + 1];
        struct meta_device d;
        struct meta_user u;
        struct hash th;
        size_t pwlen;
        json_t *body, *pv;
        int r;

        body = api_body_object(req, rep);
        if (!body)
                return;
        if (!(user = string_field(body, "user", NULL, rep)) ||
            !(password = string_field(body, "password", &pwlen, rep)) ||
            !(dname = string_field(body, "device_name", NULL, rep)))
                goto out;
        pv = json_object_get(body, "platform");
        if (pv && !json_is_null(pv) && !(platform = string_field(body, "platform", NULL, rep)))
                goto out;
        r = auth_check_user_name(user);
        if (r == 0)
                r = auth_check_password(password, pwlen);
        if (r == 0)
                r = auth_check_device_name(dname);
        if (r == 0)
                r = auth_check_platform(platform);
        if (r < 0) {
                http_reply_error(rep, 400, "%s", err_msg(r));
                goto out;
        }
        r = server_check_password(s, user, password, pwlen, &u);
        if (r == -EACCES) {
                http_reply_error(rep, 401, "unknown user or wrong password");
                goto out;
        }
        if (r < 0) {
                api_internal(rep, "login", r);
                goto out;
        }
        memset(&d, 0, sizeof(d));
        r = fsutil_random_hex(d.id, META_DEVICE_ID_LEN / 2);
        if (r == 0)
                r = auth_token_new(token);
        if (r == 0)
                r = auth_token_hash(token, &th);
        if (r < 0) {
                api_internal(rep, "login", r);
                goto out;
        }
        d.user_id = u.id;
        snprintf(d.name, sizeof(d.name), "%s", dname);
        snprintf(d.platform, sizeof(d.platform), "%s", platform);
        snprintf(d.address, sizeof(d.address), "%s", req->remote_addr);
        d.created = d.last_seen = server_now();
        /* The device and its "added" event of the device history. */
        r = s->meta->ops->begin(s->meta);
        if (r == 0) {
                r = s->meta->ops->device_add(s->meta, &d, &th);
                if (r == 0)
                        r = s->meta->ops->device_event_add(s->meta, u.id, &d, "added", d.created,
                                                           NULL);
                if (r < 0)
                        s->meta->ops->rollback(s->meta);
                else
                        r = s->meta->ops->commit(s->meta);
        }
        if (r < 0) {
                api_internal(rep, "login", r);
                goto out;
        }
        log_info("user %s logged in a new device %s (%s)", user, d.id, d.name);
        api_registry_changed(s, u.id, META_COUNTER_DEVICES);
        http_reply_json(
            rep, 200,
            json_pack("{s:s, s:s, s:s}", "token", token, "device_id", d.id, "user", u.name));
out:
        json_decref(body);
}

/* The devices, copied out of the listing (whose callback may not ask the
 * store for the transfer counts). */
struct devices_ctx {
        struct meta_device *d;
        size_t n, cap;
};

static int device_cb(const struct meta_device *d, void *userdata)
{
        struct devices_ctx *dc = userdata;

        if (dc->n == dc->cap) {
                size_t cap = dc->cap ? dc->cap * 2 : 8;
                struct meta_device *nd = realloc(dc->d, cap * sizeof(*nd));
                if (!nd)
                        return -ENOMEM;
                dc->d = nd;
                dc->cap = cap;
        }
        dc->d[dc->n++] = *d;
        return 0;
}

void api_devices(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct devices_ctx dc = {NULL, 0, 0};
        int64_t now = server_now();
        json_t *arr = json_array(), *o;
        size_t i;
        int r;

        r = arr ? s->meta->ops->device_list(s->meta, req->device.user_id, device_cb, &dc) : -ENOMEM;
        for (i = 0; r == 0 && i < dc.n; i++) {
                o = api_device_json(s, &dc.d[i], req, now);
                if (!o || json_array_append_new(arr, o) < 0)
                        r = -ENOMEM;
        }
        free(dc.d);
        if (r < 0) {
                json_decref(arr);
                api_internal(rep, "devices", r);
                return;
        }
        http_reply_json(rep, 200, json_pack("{s:o}", "devices", arr));
}
