/* http: ferryd's thin layer over libmicrohttpd. It owns the daemon (a pool
 * of worker threads on epoll), routes "METHOD /path" to handlers, collects
 * request bodies up to a per-route limit (413 past it, before reading the
 * body when Content-Length says so), checks bearer tokens through a hook
 * (401), and turns a handler's reply (JSON, or a streamed binary body) into
 * an HTTP response. Errors always carry the JSON body of docs/api.md:
 * {"error": "...", "code": "..."}.
 *
 * Handlers see only struct http_request and struct http_reply: no globals,
 * no libmicrohttpd types. The server context they need comes in as ctx.
 *
 * Long-lived streams (the event stream, Server-Sent Events) are replies
 * whose body never ends by itself. They do not hold a thread: when their
 * reader has nothing to send the connection is suspended (libmicrohttpd
 * takes it out of its epoll set, so an idle stream costs no CPU at all)
 * until http_live_wake() is called from any thread; a keep-alive text is
 * sent after an idle interval so that dead peers and proxies notice.
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meta.h"

struct MHD_Connection;
struct http;
struct http_live;

struct http_request {
        const char *method;
        const char *path; /* without the query string */
        const uint8_t *body;
        size_t body_len;
        char remote_addr[META_ADDRESS_MAX + 1];
        /* Filled by the authenticate hook for routes that need a token. */
        int authenticated;
        struct meta_device device;
        struct MHD_Connection *conn; /* for http_query() */
        struct http *http;
};

/* A streamed body: called with increasing pos; returns the bytes written
 * into buf (1 to max), HTTP_STREAM_END when done, or HTTP_STREAM_ERROR to
 * abort the response (the client sees a truncated body). */
#define HTTP_STREAM_END ((ssize_t)-1)
#define HTTP_STREAM_ERROR ((ssize_t)-2)
typedef ssize_t (*http_stream_fn)(void *cls, uint64_t pos, char *buf, size_t max);

struct http_reply {
        int status;
        json_t *json; /* owned; sent as application/json */
        /* Or a streamed binary body (when stream is set): */
        const char *content_type;
        http_stream_fn stream;
        void *stream_cls;
        void (*stream_free)(void *cls);
        /* Makes the streamed body long-lived (see http_live_new): stream
         * may then return 0 for "nothing to send now". */
        struct http_live *live;
};

typedef void (*http_handler)(void *ctx, struct http_request *req, struct http_reply *rep);

struct http_route {
        const char *method;
        const char *path;
        http_handler handler;
        size_t max_body; /* bytes; larger bodies get 413 */
        int auth;        /* needs "Authorization: Bearer <token>" */
};

struct http_config {
        const char *listen; /* "ADDR:PORT", "[V6ADDR]:PORT"; port 0 = any free port */
        const struct http_route *routes;
        size_t n_routes;
        unsigned threads;
        void *ctx; /* handed to handlers and hooks */
        /* Resolves the Authorization header (NULL when absent) into
         * req->device. 0, -EACCES or -ENOENT (401), or another negative
         * code (500). */
        int (*authenticate)(void *ctx, const char *authorization, struct http_request *req);
        /* Called after each handled authenticated request with its status. */
        void (*after)(void *ctx, const struct http_request *req, int status);
        /* Called when an authenticated request ended before its handler
         * ran: the connection was lost (or went silent past the idle
         * timeout) while its body was coming in. */
        void (*aborted)(void *ctx, const struct http_request *req);
        /* Called when a connection that carried authenticated requests of
         * device closed, with how many connections of that device are
         * still open (event streams included). Not while the daemon
         * stops. */
        void (*closed)(void *ctx, int64_t user, const char *device, unsigned remaining);
        /* Idle time after which a long-lived stream sends its keep-alive
         * text; 0 means HTTP_LIVE_KEEPALIVE_MS. */
        unsigned live_keepalive_ms;
};

#define HTTP_LIVE_KEEPALIVE_MS 25000

/* Starts listening. 0 or a negative code with a message. */
int http_start(const struct http_config *cfg, struct http **out);
/* The bound port (useful with port 0). */
uint16_t http_port(const struct http *h);
/* Stops the daemon (waits for the workers) and frees h. */
void http_stop(struct http *h);

/* When the last request (or piece of a request body) of device arrived, in
 * seconds since the epoch, and in *conns (when not NULL) how many
 * connections the device holds open now; 0 when the daemon has not heard
 * from the device since it started. */
int64_t http_device_activity(struct http *h, const char *device, unsigned *conns);

/* The value of query argument key (decoded), or NULL. */
const char *http_query(const struct http_request *req, const char *key);
/* The value of request header name, or NULL. */
const char *http_header(const struct http_request *req, const char *name);

/* A long-lived stream for req, to hand to rep->live together with
 * rep->stream: its reader is called whenever the connection can take more
 * and may return 0 when it has nothing to send, which parks the connection
 * until http_live_wake(). keepalive (a static string, or NULL) is sent when
 * the stream was idle for the configured interval. The reply also gets
 * "Cache-Control: no-cache". When the daemon stops, the reader is no longer
 * called and the stream ends. NULL when the daemon is stopping or out of
 * memory. Once set in a reply the daemon owns it: it calls the reply's
 * stream_free first, then frees the stream; before that, a handler that
 * gives up calls http_live_free(). */
struct http_live *http_live_new(struct http_request *req, const char *keepalive);
void http_live_free(struct http_live *lv);
/* Has the stream's reader called again soon (from any thread; lv is a
 * struct http_live, typed for use as a callback). Cheap; never blocks on
 * the network. */
void http_live_wake(void *lv);
/* The number of long-lived streams open now. */
size_t http_live_count(struct http *h);

/* Sets a JSON reply (takes the reference j). */
void http_reply_json(struct http_reply *rep, int status, json_t *j);
/* Sets an error reply {"error": <formatted>, "code": <word for status>}. */
void http_reply_error(struct http_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The machine word of docs/api.md for an HTTP status ("bad_request", ...). */
const char *http_error_code(int status);

#endif
