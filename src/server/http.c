/* http: the libmicrohttpd wrapper of ferryd (see http.h).
 *
 * libmicrohttpd calls the access handler several times per request: once
 * when the headers are in (we route, authenticate and check Content-Length
 * there, and may answer at once, so a 16 MiB upload with a bad token or a
 * too large Content-Length is refused before its body is read), then once
 * per piece of body (we append it to a bounded buffer), then a last time
 * with no data (we run the handler and queue its reply). The per-request
 * state lives in *con_cls and is freed in the completion callback.
 *
 * Each connection has a small context (libmicrohttpd's socket context)
 * naming the device whose token its last request carried. Through it the
 * layer keeps, per device, how many connections are open and when the
 * device was last heard from, and tells the server when a device's
 * connection closed and when a request of it was cut off before its handler
 * ran (the hooks of struct http_config): the transfer records' "connection
 * lost" and "connection closed" come from there.
 *
 * Long-lived streams (suspend/resume, keep-alives) live in http_live.c.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "http_int.h"
#include "log.h"

/* A body sent without Content-Length (chunked) that outgrows its limit is
 * drained up to this much more, so that the client can read our 413; past
 * it the connection is dropped. */
#define DRAIN_MAX (64u * 1024u * 1024u)

_Static_assert(HTTP_STREAM_END == MHD_CONTENT_READER_END_OF_STREAM, "stream end");
_Static_assert(HTTP_STREAM_ERROR == MHD_CONTENT_READER_END_WITH_ERROR, "stream error");

/* Connections and the accept backlog, sized for thousands of idle event
 * streams (each holds one socket and a few KiB). */
#define CONNECTION_LIMIT 20000u
#define LISTEN_BACKLOG 4096u

/* Drop the activity record of a device without connections once it has
 * been silent this long (seconds). */
#define DEV_FORGET_AFTER (24 * 3600)

struct req_state {
        const struct http_route *route;
        struct buf body;
        size_t received;
        int too_large;
        int answered; /* a reply was queued when the headers came in */
        int handled;  /* the handler ran */
        struct http_dev *dev;
        struct http_request req;
};

/* The socket context of a connection. */
struct conn_state {
        struct http_dev *dev; /* holds one of dev->conns, or NULL */
};

static unsigned dev_bucket(const char *id)
{
        unsigned h = 5381;

        while (*id)
                h = h * 33 + (unsigned char)*id++;
        return h % HTTP_DEV_BUCKETS;
}

static void dev_touch(struct http_dev *d)
{
        if (d)
                __atomic_store_n(&d->active, (int64_t)time(NULL), __ATOMIC_RELAXED);
}

/* The record of device, made if needed, under dev_lock. Drops records of
 * long-gone devices of the same bucket on the way. */
static struct http_dev *dev_get(struct http *h, const struct meta_device *device)
{
        struct http_dev **pp = &h->devs[dev_bucket(device->id)], *d;
        int64_t old = (int64_t)time(NULL) - DEV_FORGET_AFTER;

        while ((d = *pp)) {
                if (strcmp(d->id, device->id) == 0)
                        return d;
                if (d->conns == 0 && __atomic_load_n(&d->active, __ATOMIC_RELAXED) < old) {
                        *pp = d->next;
                        free(d);
                        continue;
                }
                pp = &d->next;
        }
        d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        snprintf(d->id, sizeof(d->id), "%s", device->id);
        d->user = device->user_id;
        d->next = h->devs[dev_bucket(device->id)];
        h->devs[dev_bucket(device->id)] = d;
        return d;
}

/* Binds conn to the device of an authenticated request. */
static struct http_dev *conn_bind(struct http *h, struct MHD_Connection *conn,
                                  const struct meta_device *device)
{
        const union MHD_ConnectionInfo *ci;
        struct conn_state *cs;
        struct http_dev *d = NULL;

        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        cs = ci ? ci->socket_context : NULL;
        if (!cs)
                return NULL; /* out of memory at accept: not tracked */
        pthread_mutex_lock(&h->dev_lock);
        if (cs->dev && strcmp(cs->dev->id, device->id) == 0) {
                d = cs->dev;
        } else if ((d = dev_get(h, device))) {
                if (cs->dev)
                        cs->dev->conns--;
                cs->dev = d;
                d->conns++;
        }
        pthread_mutex_unlock(&h->dev_lock);
        dev_touch(d);
        return d;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
        struct http *h = cls;
        struct conn_state *cs = *socket_context;
        char id[META_DEVICE_ID_LEN + 1];
        unsigned remaining;
        int64_t user;

        (void)conn;
        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                *socket_context = calloc(1, sizeof(struct conn_state));
                return;
        }
        if (!cs)
                return;
        *socket_context = NULL;
        if (!cs->dev) {
                free(cs);
                return;
        }
        pthread_mutex_lock(&h->dev_lock);
        remaining = --cs->dev->conns;
        user = cs->dev->user;
        memcpy(id, cs->dev->id, sizeof(id));
        pthread_mutex_unlock(&h->dev_lock);
        free(cs);
        if (h->cfg.closed && !__atomic_load_n(&h->closing, __ATOMIC_ACQUIRE))
                h->cfg.closed(h->cfg.ctx, user, id, remaining);
}

/* Frees the activity records (the daemon is stopped or never started). */
static void dev_fini(struct http *h)
{
        struct http_dev *d;
        size_t i;

        for (i = 0; i < HTTP_DEV_BUCKETS; i++) {
                while ((d = h->devs[i])) {
                        h->devs[i] = d->next;
                        free(d);
                }
        }
        pthread_mutex_destroy(&h->dev_lock);
}

int64_t http_device_activity(struct http *h, const char *device, unsigned *conns)
{
        struct http_dev *d;
        int64_t t = 0;

        if (conns)
                *conns = 0;
        pthread_mutex_lock(&h->dev_lock);
        for (d = h->devs[dev_bucket(device)]; d; d = d->next) {
                if (strcmp(d->id, device) == 0) {
                        t = __atomic_load_n(&d->active, __ATOMIC_RELAXED);
                        if (conns)
                                *conns = d->conns;
                        break;
                }
        }
        pthread_mutex_unlock(&h->dev_lock);
        return t;
}

const char *http_error_code(int status)
{
        switch (status) {
        case 400:
                return "bad_request";
        case 401:
                return "unauthorized";
        case 403:
                return "forbidden";
        case 404:
                return "not_found";
        case 405:
                return "method_not_allowed";
        case 409:
                return "conflict";
        case 413:
                return "too_large";
        case 415:
                return "unsupported_media_type";
        case 503:
                return "unavailable";
        default:
                return status >= 500 ? "internal" : "bad_request";
        }
}

void http_reply_json(struct http_reply *rep, int status, json_t *j)
{
        if (rep->json)
                json_decref(rep->json);
        rep->status = status;
        rep->json = j;
}

void http_reply_error(struct http_reply *rep, int status, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        http_reply_json(rep, status,
                        json_pack("{s:s, s:s}", "error", msg, "code", http_error_code(status)));
}

const char *http_query(const struct http_request *req, const char *key)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* Queues rep on conn and releases what rep owns. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, struct http_reply *rep)
{
        struct MHD_Response *resp = NULL;
        enum MHD_Result ret;
        const char *ctype = "application/json";

        if (rep->stream && rep->live) {
                resp = http_live_response(rep);
                ctype = rep->content_type ? rep->content_type : "application/octet-stream";
        } else if (rep->stream) {
                resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, rep->stream,
                                                         rep->stream_cls, rep->stream_free);
                if (!resp && rep->stream_free)
                        rep->stream_free(rep->stream_cls);
                rep->stream = NULL;
                ctype = rep->content_type ? rep->content_type : "application/octet-stream";
        } else {
                char *text = NULL;
                if (!rep->json) {
                        rep->status = 500;
                        rep->json =
                            json_pack("{s:s, s:s}", "error", "out of memory", "code", "internal");
                }
                if (rep->json)
                        text = json_dumps(rep->json, JSON_COMPACT);
                if (text)
                        resp = MHD_create_response_from_buffer(strlen(text), text,
                                                               MHD_RESPMEM_MUST_FREE);
                if (!resp)
                        free(text);
        }
        if (rep->json) {
                json_decref(rep->json);
                rep->json = NULL;
        }
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        ret = MHD_queue_response(conn, (unsigned)rep->status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *msg)
{
        struct http_reply rep = {0};

        http_reply_error(&rep, status, "%s", msg);
        return send_reply(conn, &rep);
}

static void remote_address(struct MHD_Connection *conn, char *out, size_t cap)
{
        const union MHD_ConnectionInfo *ci;
        const struct sockaddr *sa;

        snprintf(out, cap, "%s", "");
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr)
                return;
        sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                          (socklen_t)cap);
        else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                          out, (socklen_t)cap);
}

/* Routes, authenticates and sizes up a request whose headers just arrived.
 * Returns 0 to go on reading the body, or an HTTP status to answer now with
 * msg. */
static int on_headers(struct http *h, struct MHD_Connection *conn, struct req_state *st,
                      const char *url, const char *method, const char **msg)
{
        const char *cl, *authz;
        int path_known = 0, r;
        size_t i;

        for (i = 0; i < h->cfg.n_routes; i++) {
                const struct http_route *rt = &h->cfg.routes[i];
                if (strcmp(rt->path, url) != 0)
                        continue;
                path_known = 1;
                if (strcmp(rt->method, method) == 0) {
                        st->route = rt;
                        break;
                }
        }
        if (!st->route) {
                *msg = path_known ? "method not allowed" : "no such endpoint";
                return path_known ? 405 : 404;
        }
        st->req.method = st->route->method;
        st->req.path = st->route->path;
        st->req.conn = conn;
        st->req.http = h;
        remote_address(conn, st->req.remote_addr, sizeof(st->req.remote_addr));

        if (st->route->auth) {
                authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
                r = h->cfg.authenticate(h->cfg.ctx, authz, &st->req);
                if (r == -EACCES || r == -ENOENT) {
                        *msg = "missing, malformed or unknown token";
                        return 401;
                }
                if (r < 0) {
                        log_error("authentication: %s", err_msg(r));
                        *msg = "internal error";
                        return 500;
                }
                st->req.authenticated = 1;
                st->dev = conn_bind(h, conn, &st->req.device);
        }

        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
                char *end;
                unsigned long long n;
                errno = 0;
                n = strtoull(cl, &end, 10);
                if (errno || end == cl || *end) {
                        *msg = "bad Content-Length";
                        return 400;
                }
                if (n > st->route->max_body) {
                        *msg = "request body too large";
                        return 413;
                }
                if (n > 0 && buf_reserve(&st->body, (size_t)n) < 0) {
                        *msg = "out of memory";
                        return 500;
                }
        }
        return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct http *h = cls;
        struct req_state *st = *con_cls;
        struct http_reply rep = {0};
        const char *msg = NULL;
        int status;

        (void)version;
        if (!st) {
                st = calloc(1, sizeof(*st));
                if (!st)
                        return MHD_NO;
                *con_cls = st;
                status = on_headers(h, conn, st, url, method, &msg);
                if (status) {
                        log_debug("%s %s -> %d (%s)", method, url, status, msg);
                        st->answered = 1;
                        return send_error(conn, status, msg);
                }
                return MHD_YES;
        }
        if (st->answered) {
                /* Never run a handler for a request already refused (for
                 * example unauthenticated), whatever libmicrohttpd does with
                 * the rest of its body. */
                *upload_data_size = 0;
                return MHD_NO;
        }
        if (*upload_data_size) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                st->received += n;
                dev_touch(st->dev);
                if (!st->too_large && st->body.len + n > st->route->max_body) {
                        st->too_large = 1;
                        buf_free(&st->body);
                }
                if (st->too_large)
                        return st->received > st->route->max_body + DRAIN_MAX ? MHD_NO : MHD_YES;
                if (buf_append(&st->body, upload_data, n) < 0)
                        return MHD_NO;
                return MHD_YES;
        }
        if (st->too_large) {
                log_debug("%s %s -> 413", method, url);
                return send_error(conn, 413, "request body too large");
        }
        st->req.body = st->body.data;
        st->req.body_len = st->body.len;
        err_clear();
        st->handled = 1;
        st->route->handler(h->cfg.ctx, &st->req, &rep);
        dev_touch(st->dev);
        if (!rep.status)
                rep.status = 500;
        status = rep.status;
        log_debug("%s %s -> %d", method, url, status);
        if (st->req.authenticated && h->cfg.after)
                h->cfg.after(h->cfg.ctx, &st->req, status);
        /* The body is not needed while the reply is sent. */
        buf_free(&st->body);
        st->req.body = NULL;
        return send_reply(conn, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct http *h = cls;
        struct req_state *st = *con_cls;

        (void)conn;
        if (!st)
                return;
        /* Cut off before its handler ran: the device did not get to say
         * what it was sending. A refused request (answered, 413) is not. */
        if (st->req.authenticated && !st->handled && !st->answered && !st->too_large &&
            toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
            toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN && h->cfg.aborted &&
            !__atomic_load_n(&h->closing, __ATOMIC_ACQUIRE))
                h->cfg.aborted(h->cfg.ctx, &st->req);
        buf_free(&st->body);
        free(st);
        *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[512];
        size_t n;

        (void)cls;
        vsnprintf(line, sizeof(line), fmt, ap);
        n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
        /* A device that went away is routine with thousands of event
         * streams, and so is an upload cut off (its records say so); keep
         * them out of the warnings. */
        if (strstr(line, "no longer available") || strstr(line, "reset by peer") ||
            strstr(line, "incomplete request"))
                log_debug("http: %s", line);
        else
                log_warn("http: %s", line);
}

/* Splits "ADDR:PORT" / "[ADDR]:PORT" and resolves it to a socket address. */
static int resolve_listen(const char *listen, struct sockaddr_storage *ss, int *v6)
{
        char host[256];
        const char *colon, *port, *hs;
        size_t hlen;
        struct addrinfo hints, *ai = NULL;
        int rc;

        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');
                if (!close || close[1] != ':')
                        return err_set(-EINVAL, "bad listen address '%s'", listen);
                hs = listen + 1;
                hlen = (size_t)(close - hs);
                port = close + 2;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        return err_set(-EINVAL, "listen address '%s' is not ADDR:PORT", listen);
                hs = listen;
                hlen = (size_t)(colon - listen);
                port = colon + 1;
        }
        if (hlen == 0 || hlen >= sizeof(host) || !*port)
                return err_set(-EINVAL, "bad listen address '%s'", listen);
        memcpy(host, hs, hlen);
        host[hlen] = '\0';
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        rc = getaddrinfo(host, port, &hints, &ai);
        if (rc != 0)
                return err_set(-EINVAL, "listen address '%s': %s", listen, gai_strerror(rc));
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        *v6 = ai->ai_family == AF_INET6;
        freeaddrinfo(ai);
        return 0;
}

int http_start(const struct http_config *cfg, struct http **out)
{
        struct sockaddr_storage ss;
        const union MHD_DaemonInfo *di;
        unsigned int flags;
        struct http *h;
        int v6 = 0, r;

        r = resolve_listen(cfg->listen, &ss, &v6);
        if (r < 0)
                return r;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->cfg = *cfg;
        pthread_mutex_init(&h->dev_lock, NULL);
        if (!h->cfg.live_keepalive_ms)
                h->cfg.live_keepalive_ms = HTTP_LIVE_KEEPALIVE_MS;
        /* Ready before the first request can open a stream. */
        r = http_live_start(h);
        if (r < 0) {
                dev_fini(h);
                free(h);
                return r;
        }
        /* MHD sets SO_REUSEADDR by itself (a restarted ferryd can bind at
         * once) but not SO_REUSEPORT, so a second ferryd on the same port
         * fails instead of sharing it. MHD_ALLOW_SUSPEND_RESUME also turns
         * on the inter-thread channel that makes a resume take effect at
         * once. */
        flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                MHD_ALLOW_SUSPEND_RESUME;
        if (v6)
                flags |= MHD_USE_IPv6;
        /* Idle live streams are suspended (no timeout) or send keep-alives
         * well within the 300 s idle timeout. */
        h->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
            (unsigned int)(cfg->threads ? cfg->threads : 4), MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)300, MHD_OPTION_CONNECTION_LIMIT,
            CONNECTION_LIMIT, MHD_OPTION_LISTEN_BACKLOG_SIZE, LISTEN_BACKLOG, MHD_OPTION_END);
        if (!h->d) {
                http_live_stop(h);
                http_live_fini(h);
                dev_fini(h);
                free(h);
                return err_set(-EADDRINUSE, "cannot listen on %s", cfg->listen);
        }
        di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
        h->port = di ? di->port : 0;
        *out = h;
        return 0;
}

uint16_t http_port(const struct http *h)
{
        return h->port;
}

void http_stop(struct http *h)
{
        if (!h)
                return;
        /* The connections closing now are the server's doing, not the
         * devices'. */
        __atomic_store_n(&h->closing, 1, __ATOMIC_RELEASE);
        /* Every live stream ends (and http_live_new refuses new ones from
         * now on), then the daemon stops. No MHD_quiesce_daemon() first:
         * on an epoll daemon with worker threads it races the workers'
         * own removal of the listen socket from their epoll sets, and
         * libmicrohttpd 0.9.75 aborts the process when it loses
         * (daemon.c "Failed to remove listen FD from epoll set"). */
        http_live_stop(h);
        MHD_stop_daemon(h->d);
        http_live_fini(h);
        dev_fini(h);
        free(h);
}
