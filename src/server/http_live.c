/* http_live: long-lived streams of the HTTP layer (see http.h), held with
 * libmicrohttpd's suspend/resume instead of a thread each.
 *
 * The content reader of a live stream asks the handler's reader for data;
 * when there is none it suspends its own connection (allowed from a content
 * reader) and returns 0, and libmicrohttpd takes the socket out of its epoll
 * set until MHD_resume_connection(): an idle stream costs no CPU. A wake-up
 * from another thread (a commit's) resumes it. Both happen under live_lock
 * with a "suspended" flag, so resume is only ever called on a suspended
 * connection, and a wake-up that comes while the reader runs is not lost
 * (the "woken" flag makes the reader look again instead of suspending).
 *
 * One ticker thread per daemon wakes streams idle for the keep-alive
 * interval (their reader then sends the keep-alive text), ends parked
 * streams whose peer hung up (libmicrohttpd does not watch suspended
 * sockets), and hands memory back after mass disconnects. On stop, every
 * stream is marked closing and resumed before MHD_stop_daemon(), which must
 * never find a suspended connection.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "err.h"
#include "http_int.h"
#include "log.h"

/* The ticker returns freed memory to the system after this many streams
 * ended. */
#define TRIM_AFTER 1000u
/* Live stream replies are a few hundred bytes at a time. */
#define LIVE_BLOCK 512u

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct http_live *http_live_new(struct http_request *req, const char *keepalive)
{
        struct http *h = req->http;
        struct http_live *lv = calloc(1, sizeof(*lv));
        const union MHD_ConnectionInfo *ci;

        if (!lv)
                return NULL;
        lv->h = h;
        lv->conn = req->conn;
        ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        lv->fd = ci ? ci->connect_fd : -1;
        lv->keepalive = keepalive;
        lv->last_send_ms = mono_ms();
        pthread_mutex_lock(&h->live_lock);
        if (h->stopping) {
                pthread_mutex_unlock(&h->live_lock);
                free(lv);
                return NULL;
        }
        lv->next = h->lives;
        if (h->lives)
                h->lives->prev = lv;
        h->lives = lv;
        h->n_lives++;
        pthread_mutex_unlock(&h->live_lock);
        return lv;
}

void http_live_free(struct http_live *lv)
{
        struct http *h;

        if (!lv)
                return;
        h = lv->h;
        pthread_mutex_lock(&h->live_lock);
        if (lv->prev)
                lv->prev->next = lv->next;
        else
                h->lives = lv->next;
        if (lv->next)
                lv->next->prev = lv->prev;
        h->n_lives--;
        h->n_ended++;
        pthread_mutex_unlock(&h->live_lock);
        free(lv);
}

size_t http_live_count(struct http *h)
{
        size_t n;

        pthread_mutex_lock(&h->live_lock);
        n = h->n_lives;
        pthread_mutex_unlock(&h->live_lock);
        return n;
}

/* Under live_lock. */
static void live_resume_locked(struct http_live *lv)
{
        if (lv->suspended) {
                lv->suspended = 0;
                MHD_resume_connection(lv->conn);
        }
}

void http_live_wake(void *cls)
{
        struct http_live *lv = cls;

        pthread_mutex_lock(&lv->h->live_lock);
        lv->woken = 1;
        live_resume_locked(lv);
        pthread_mutex_unlock(&lv->h->live_lock);
}

/* The content reader of a live stream (see the file comment). */
static ssize_t live_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct http_live *lv = cls;
        pthread_mutex_t *lock = &lv->h->live_lock;
        ssize_t n;
        size_t klen;

        for (;;) {
                pthread_mutex_lock(lock);
                /* A hung-up peer: end the body, after which libmicrohttpd
                 * reads the peer's end of file and closes quietly. */
                if (lv->closing || lv->peer_gone) {
                        pthread_mutex_unlock(lock);
                        return MHD_CONTENT_READER_END_OF_STREAM;
                }
                lv->woken = 0;
                pthread_mutex_unlock(lock);

                n = lv->fn(lv->cls, pos, buf, max);

                pthread_mutex_lock(lock);
                if (n > 0) {
                        lv->last_send_ms = mono_ms();
                        lv->keepalive_due = 0;
                        pthread_mutex_unlock(lock);
                        return n;
                }
                if (n < 0 || lv->closing) {
                        pthread_mutex_unlock(lock);
                        return n < 0 ? n : MHD_CONTENT_READER_END_OF_STREAM;
                }
                if (lv->woken) {
                        /* Woken while the reader ran: look again rather
                         * than sleep through it. */
                        pthread_mutex_unlock(lock);
                        continue;
                }
                klen = lv->keepalive ? strlen(lv->keepalive) : 0;
                if (lv->keepalive_due && klen && klen <= max) {
                        lv->keepalive_due = 0;
                        lv->last_send_ms = mono_ms();
                        pthread_mutex_unlock(lock);
                        memcpy(buf, lv->keepalive, klen);
                        return (ssize_t)klen;
                }
                lv->suspended = 1;
                MHD_suspend_connection(lv->conn);
                pthread_mutex_unlock(lock);
                return 0;
        }
}

/* The response's free callback: the owner's state goes first (it stops
 * the wake-ups), then the stream. */
static void live_destroy(void *cls)
{
        struct http_live *lv = cls;

        if (lv->free)
                lv->free(lv->cls);
        http_live_free(lv);
}

/* Whether the peer of a parked stream hung up. libmicrohttpd does not watch
 * a suspended socket, so without this a device that went away would hold
 * its stream until the next keep-alive write fails (which can take two
 * rounds: the first write after the peer closed still succeeds). A peek
 * costs one system call and never takes data. Under live_lock: a suspended
 * connection is not closed meanwhile. */
static int peer_left(struct http_live *lv)
{
        char c;
        ssize_t n;

        if (!lv->suspended || lv->fd < 0)
                return 0;
        n = recv(lv->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0)
                return 1;
        return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* One thread per daemon: marks streams idle for the keep-alive interval
 * and resumes them, so that their reader sends the keep-alive text. */
static void *live_ticker(void *arg)
{
        struct http *h = arg;
        unsigned ka = h->cfg.live_keepalive_ms;
        int64_t period = ka / 5 ? ka / 5 : 1, now;
        struct http_live *lv;
        struct timespec ts;

        pthread_mutex_lock(&h->live_lock);
        while (!h->stopping) {
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += (time_t)(period / 1000);
                ts.tv_nsec += (long)(period % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&h->live_cond, &h->live_lock, &ts);
                if (h->stopping)
                        break;
                now = mono_ms();
                for (lv = h->lives; lv; lv = lv->next) {
                        if (lv->closing)
                                continue;
                        if (peer_left(lv)) {
                                lv->peer_gone = 1;
                                live_resume_locked(lv);
                        } else if (lv->keepalive && now - lv->last_send_ms >= ka) {
                                lv->keepalive_due = 1;
                                live_resume_locked(lv);
                        }
                }
                if (h->n_ended >= TRIM_AFTER) {
                        /* Thousands of devices leaving at once (a network
                         * outage) free their buffers all over malloc's
                         * per-thread arenas, which keep them: hand the
                         * free pages back. */
                        h->n_ended = 0;
                        pthread_mutex_unlock(&h->live_lock);
                        malloc_trim(0);
                        pthread_mutex_lock(&h->live_lock);
                }
        }
        pthread_mutex_unlock(&h->live_lock);
        return NULL;
}

struct MHD_Response *http_live_response(struct http_reply *rep)
{
        struct http_live *lv = rep->live;
        struct MHD_Response *resp;

        lv->fn = rep->stream;
        lv->cls = rep->stream_cls;
        lv->free = rep->stream_free;
        rep->stream = NULL;
        rep->live = NULL;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LIVE_BLOCK, live_read, lv,
                                                 live_destroy);
        if (!resp) {
                live_destroy(lv);
                return NULL;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        return resp;
}

int http_live_start(struct http *h)
{
        pthread_condattr_t ca;
        int r;

        pthread_mutex_init(&h->live_lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&h->live_cond, &ca);
        pthread_condattr_destroy(&ca);
        r = pthread_create(&h->ticker, NULL, live_ticker, h);
        if (r != 0) {
                http_live_fini(h);
                return err_set(-r, "cannot start a thread: %s", strerror(r));
        }
        h->ticker_started = 1;
        return 0;
}

void http_live_stop(struct http *h)
{
        struct http_live *lv;
        size_t n = 0;

        pthread_mutex_lock(&h->live_lock);
        h->stopping = 1;
        for (lv = h->lives; lv; lv = lv->next) {
                lv->closing = 1;
                live_resume_locked(lv);
                n++;
        }
        pthread_cond_broadcast(&h->live_cond);
        pthread_mutex_unlock(&h->live_lock);
        if (n)
                log_info("closing %zu event streams", n);
        if (h->ticker_started)
                pthread_join(h->ticker, NULL);
        h->ticker_started = 0;
}

void http_live_fini(struct http *h)
{
        pthread_cond_destroy(&h->live_cond);
        pthread_mutex_destroy(&h->live_lock);
}
