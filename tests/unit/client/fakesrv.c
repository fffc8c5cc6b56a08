/* fakesrv: a scripted HTTP server for unit tests (see fakesrv.h). Just
 * enough HTTP/1.1 for libcurl: Content-Length bodies both ways, keep-alive,
 * no chunked encoding (the client never sends it). */
#include "fakesrv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define FAKESRV_CONNS 4 /* connections served at once; more are closed */

struct fakesrv;

struct conn {
        struct fakesrv *s;
        int fd; /* -1 once closed */
        pthread_t th;
        int live; /* th is to be joined */
};

struct fakesrv {
        int lfd, port;
        struct conn conns[FAKESRV_CONNS];
        int nconns;
        char url[64];
        pthread_t thread;
        fakesrv_handler handler;
        void *ud;
        pthread_mutex_t mu;
        struct fakesrv_request reqs[FAKESRV_MAX_REQUESTS];
        size_t n;
};

static int write_all(int fd, const void *p, size_t n)
{
        const char *c = p;

        while (n > 0) {
                ssize_t w = write(fd, c, n);

                if (w <= 0)
                        return -1;
                c += w;
                n -= (size_t)w;
        }
        return 0;
}

static size_t content_length(const char *head)
{
        const char *p = head;

        while ((p = strstr(p, "\r\n")) != NULL) {
                p += 2;
                if (strncasecmp(p, "Content-Length:", 15) == 0)
                        return (size_t)strtoul(p + 15, NULL, 10);
        }
        return 0;
}

static void record(struct fakesrv *s, const struct fakesrv_request *r)
{
        pthread_mutex_lock(&s->mu);
        if (s->n < FAKESRV_MAX_REQUESTS) {
                s->reqs[s->n] = *r;
                s->reqs[s->n].body = strdup(r->body);
                s->n++;
        }
        pthread_mutex_unlock(&s->mu);
}

static void serve(struct fakesrv *s, int fd)
{
        char *head = malloc(HEAD_MAX + 1);
        struct buf body = BUF_INIT, out = BUF_INIT;
        size_t have = 0;

        for (;;) {
                struct fakesrv_request rq = {0};
                char *end, hdr[160];
                size_t hlen, blen;
                int status, n;

                while ((end = (have ? strstr(head, "\r\n\r\n") : NULL)) == NULL) {
                        ssize_t k = read(fd, head + have, HEAD_MAX - have);

                        if (k <= 0)
                                goto out;
                        have += (size_t)k;
                        head[have] = '\0';
                }
                hlen = (size_t)(end - head) + 4;
                sscanf(head, "%7s %511s", rq.method, rq.path);
                blen = content_length(head);
                buf_reset(&body);
                buf_append(&body, head + hlen, have - hlen < blen ? have - hlen : blen);
                while (body.len < blen) {
                        char tmp[65536];
                        size_t want = blen - body.len;
                        ssize_t k = read(fd, tmp, want < sizeof(tmp) ? want : sizeof(tmp));

                        if (k <= 0)
                                goto out;
                        buf_append(&body, tmp, (size_t)k);
                }
                if (have - hlen > blen) {
                        memmove(head, head + hlen + blen, have - hlen - blen);
                        have = have - hlen - blen;
                } else {
                        have = 0;
                }
                head[have] = '\0';
                buf_append(&body, "", 1); /* NUL */
                rq.body = (char *)body.data;
                rq.len = body.len - 1;
                record(s, &rq);
                buf_reset(&out);
                status = s->handler(s->ud, &rq, &out);
                n = snprintf(hdr, sizeof(hdr),
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n",
                             status, out.len);
                if (write_all(fd, hdr, (size_t)n) < 0 ||
                    (out.len && write_all(fd, out.data, out.len) < 0))
                        goto out;
        }
out:
        buf_free(&body);
        buf_free(&out);
        free(head);
}

static void *conn_main(void *ud)
{
        struct conn *c = ud;

        serve(c->s, c->fd);
        pthread_mutex_lock(&c->s->mu);
        close(c->fd);
        c->fd = -1;
        pthread_mutex_unlock(&c->s->mu);
        return NULL;
}

static void *main_loop(void *ud)
{
        struct fakesrv *s = ud;
        int fd;

        while ((fd = accept(s->lfd, NULL, NULL)) >= 0) {
                struct conn *c;

                pthread_mutex_lock(&s->mu);
                /* a slot whose connection closed is taken again (its
                 * thread is over or about to be: join it), else a new one */
                c = NULL;
                for (int i = 0; i < s->nconns && !c; i++)
                        if (s->conns[i].fd < 0)
                                c = &s->conns[i];
                if (!c && s->nconns < FAKESRV_CONNS)
                        c = &s->conns[s->nconns++];
                if (c) {
                        if (c->live)
                                pthread_join(c->th, NULL);
                        *c = (struct conn){.s = s, .fd = fd};
                        c->live = pthread_create(&c->th, NULL, conn_main, c) == 0;
                        if (!c->live) {
                                c->fd = -1;
                                c = NULL;
                        }
                }
                pthread_mutex_unlock(&s->mu);
                if (!c)
                        close(fd);
        }
        return NULL;
}

int fakesrv_start(fakesrv_handler h, void *ud, struct fakesrv **out)
{
        struct fakesrv *s = calloc(1, sizeof(*s));
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t alen = sizeof(a);

        if (!s)
                return -1;
        s->handler = h;
        s->ud = ud;
        pthread_mutex_init(&s->mu, NULL);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(s->lfd, 8) < 0 || getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0)
                goto fail;
        s->port = ntohs(a.sin_port);
        snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
        if (pthread_create(&s->thread, NULL, main_loop, s) != 0)
                goto fail;
        *out = s;
        return 0;
fail:
        if (s->lfd >= 0)
                close(s->lfd);
        free(s);
        return -1;
}

void fakesrv_clear(struct fakesrv *s)
{
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n; i++)
                free(s->reqs[i].body);
        s->n = 0;
        pthread_mutex_unlock(&s->mu);
}

void fakesrv_stop(struct fakesrv *s)
{
        if (!s)
                return;
        shutdown(s->lfd, SHUT_RDWR);
        pthread_join(s->thread, NULL);
        /* a failed test may have left its client connected */
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->nconns; i++)
                if (s->conns[i].fd >= 0)
                        shutdown(s->conns[i].fd, SHUT_RDWR);
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < s->nconns; i++)
                if (s->conns[i].live)
                        pthread_join(s->conns[i].th, NULL);
        close(s->lfd);
        fakesrv_clear(s);
        pthread_mutex_destroy(&s->mu);
        free(s);
}

const char *fakesrv_url(const struct fakesrv *s)
{
        return s->url;
}

size_t fakesrv_count(struct fakesrv *s)
{
        size_t n;

        pthread_mutex_lock(&s->mu);
        n = s->n;
        pthread_mutex_unlock(&s->mu);
        return n;
}

int fakesrv_get(struct fakesrv *s, size_t i, struct fakesrv_request *out)
{
        int r = -1;

        pthread_mutex_lock(&s->mu);
        if (i < s->n) {
                *out = s->reqs[i];
                out->body = strdup(s->reqs[i].body);
                r = 0;
        }
        pthread_mutex_unlock(&s->mu);
        return r;
}

size_t fakesrv_count_of(struct fakesrv *s, const char *method, const char *path)
{
        size_t n = 0, len = strlen(path);

        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n; i++)
                if (!strcmp(s->reqs[i].method, method) && !strncmp(s->reqs[i].path, path, len) &&
                    (s->reqs[i].path[len] == '\0' || s->reqs[i].path[len] == '?'))
                        n++;
        pthread_mutex_unlock(&s->mu);
        return n;
}
