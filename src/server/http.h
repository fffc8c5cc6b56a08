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
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meta.h"

struct MHD_Connection;

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
};

struct http;

/* Starts listening. 0 or a negative code with a message. */
int http_start(const struct http_config *cfg, struct http **out);
/* The bound port (useful with port 0). */
uint16_t http_port(const struct http *h);
/* Stops the daemon (waits for the workers) and frees h. */
void http_stop(struct http *h);

/* The value of query argument key (decoded), or NULL. */
const char *http_query(const struct http_request *req, const char *key);

/* Sets a JSON reply (takes the reference j). */
void http_reply_json(struct http_reply *rep, int status, json_t *j);
/* Sets an error reply {"error": <formatted>, "code": <word for status>}. */
void http_reply_error(struct http_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The machine word of docs/api.md for an HTTP status ("bad_request", ...). */
const char *http_error_code(int status);

#endif
