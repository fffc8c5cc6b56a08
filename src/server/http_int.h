/* http_int: what http.c and http_live.c share inside the HTTP layer — the
 * daemon's state, a live stream's and a device's activity record — and
 * nothing else includes. */
#ifndef FERRY_HTTP_INT_H
#define FERRY_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>

#include "http.h"

#define HTTP_DEV_BUCKETS 1024

/* What the daemon knows of a device that made requests: its connections
 * open now, and when it was last heard from (for the session timeout,
 * which must not count a long upload in progress as silence). */
struct http_dev {
        char id[META_DEVICE_ID_LEN + 1];
        int64_t user;
        unsigned conns; /* under dev_lock */
        int64_t active; /* seconds since the epoch; atomic */
        struct http_dev *next;
};

struct http {
        struct MHD_Daemon *d;
        struct http_config cfg;
        uint16_t port;
        /* Device activity records, by device id. */
        pthread_mutex_t dev_lock;
        struct http_dev *devs[HTTP_DEV_BUCKETS];
        int closing; /* the daemon stops: no closed hooks; atomic */
        /* Live streams: the list, their flags, the ticker. */
        pthread_mutex_t live_lock;
        pthread_cond_t live_cond;
        struct http_live *lives;
        size_t n_lives;
        size_t n_ended; /* streams ended since the last malloc_trim() */
        int stopping;
        int ticker_started;
        pthread_t ticker;
};

struct http_live {
        struct http *h;
        struct MHD_Connection *conn;
        int fd; /* the connection's socket, or -1 */
        const char *keepalive;
        http_stream_fn fn;
        void *cls;
        void (*free)(void *cls);
        /* Under h->live_lock: */
        int suspended, woken, closing, keepalive_due, peer_gone;
        int64_t last_send_ms;
        struct http_live *prev, *next;
};

/* Sets up the live-stream state of h and starts its ticker thread. 0 or a
 * negative code with a message; on failure nothing is left to undo. */
int http_live_start(struct http *h);
/* Ends every live stream (marked closing and resumed, so that
 * MHD_stop_daemon() finds none suspended) and stops the ticker. Before
 * MHD_stop_daemon(). */
void http_live_stop(struct http *h);
/* Frees the live-stream state, after MHD_stop_daemon(). */
void http_live_fini(struct http *h);
/* The response for a reply with rep->live set (takes what rep owns), or
 * NULL after freeing it. */
struct MHD_Response *http_live_response(struct http_reply *rep);

#endif
