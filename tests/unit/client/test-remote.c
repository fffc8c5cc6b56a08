/* Unit tests for remote, against a tiny HTTP/1.1 responder running in a
 * thread on 127.0.0.1 (an ephemeral port): JSON and binary requests and
 * answers, the Authorization and Content-Type headers, keep-alive (one
 * connection for many requests), the status-to-code mapping with the
 * server's error text, malformed answers, an unreachable server, URL
 * escaping, and the transfer counters (checked against the bytes the
 * responder really read and wrote), bandwidth limits (timed), the
 * progress callback, and a clone's requests counted and reported through
 * its parent. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "remote.h"

#define HEAD_MAX 16384
#define BIG_LEN (512 * 1024) /* the body of /api/v1/big */

struct responder {
        int lfd;
        int port;
        pthread_t thread;
        int connections;
        int cfd; /* the connection being served, or -1 */
        /* the last request, written by the responder before it answers */
        char method[16];
        char path[256];
        char auth[256];
        char ctype[128];
        struct buf body;
        /* raw bytes read from and written to connections (atomics: the
         * test thread reads them) */
        int64_t rx, tx;
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

static void header_value(const char *head, const char *name, char *out, size_t outsz)
{
        const char *p = head;
        size_t n = strlen(name);

        out[0] = '\0';
        while ((p = strstr(p, "\r\n")) != NULL) {
                p += 2;
                if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
                        const char *v = p + n + 1, *e = strstr(v, "\r\n");

                        while (*v == ' ')
                                v++;
                        snprintf(out, outsz, "%.*s", (int)(e - v), v);
                        return;
                }
        }
}

static void answer(struct responder *s, int fd, int status, const char *ctype, const void *body,
                   size_t len)
{
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                         ctype, len);

        /* counted before writing: the client may be done reading before
         * write() returns here */
        __atomic_fetch_add(&s->tx, (int64_t)n + (int64_t)len, __ATOMIC_SEQ_CST);
        write_all(fd, head, (size_t)n);
        write_all(fd, body, len);
}

/* Serves requests on one connection until the client closes it. */
static void serve(struct responder *s, int fd)
{
        char *head = malloc(HEAD_MAX + 1);
        size_t have = 0;

        for (;;) {
                char *end, clen[32];
                size_t hlen, blen;

                while ((end = (have ? strstr(head, "\r\n\r\n") : NULL)) == NULL) {
                        ssize_t n = read(fd, head + have, HEAD_MAX - have);

                        if (n <= 0)
                                goto out;
                        __atomic_fetch_add(&s->rx, (int64_t)n, __ATOMIC_SEQ_CST);
                        have += (size_t)n;
                        head[have] = '\0';
                }
                hlen = (size_t)(end - head) + 4;
                sscanf(head, "%15s %255s", s->method, s->path);
                header_value(head, "Authorization", s->auth, sizeof(s->auth));
                header_value(head, "Content-Type", s->ctype, sizeof(s->ctype));
                header_value(head, "Content-Length", clen, sizeof(clen));
                blen = (size_t)strtoul(clen, NULL, 10);
                buf_reset(&s->body);
                buf_append(&s->body, head + hlen, have - hlen < blen ? have - hlen : blen);
                while (s->body.len < blen) {
                        char tmp[65536];
                        size_t want = blen - s->body.len;
                        ssize_t n = read(fd, tmp, want < sizeof(tmp) ? want : sizeof(tmp));

                        if (n <= 0)
                                goto out;
                        __atomic_fetch_add(&s->rx, (int64_t)n, __ATOMIC_SEQ_CST);
                        buf_append(&s->body, tmp, (size_t)n);
                }
                /* keep whatever followed this request */
                if (have - hlen > blen) {
                        memmove(head, head + hlen + blen, have - hlen - blen);
                        have = have - hlen - blen;
                } else {
                        have = 0;
                }
                head[have] = '\0';

                char ep[256], text[256];
                snprintf(ep, sizeof(ep), "%s", s->path + strlen("/api/v1/"));
                ep[strcspn(ep, "?")] = '\0';
                const char *p = ep;
                int code;
                if (strcmp(p, "health") == 0) {
                        const char *b = "{\"ok\": true, \"version\": \"0.1.0\"}";
                        answer(s, fd, 200, "application/json", b, strlen(b));
                } else if (strcmp(p, "echo") == 0) {
                        snprintf(text, sizeof(text), "{\"len\": %zu}", s->body.len);
                        answer(s, fd, 200, "application/json", text, strlen(text));
                } else if (strcmp(p, "bin") == 0) {
                        answer(s, fd, 200, "application/x-ferry-chunks", "\x00\x01\x02\xff", 4);
                } else if (strcmp(p, "big") == 0) {
                        char *big = calloc(1, BIG_LEN);

                        answer(s, fd, 200, "application/x-ferry-chunks", big, big ? BIG_LEN : 0);
                        free(big);
                } else if (strcmp(p, "nojson") == 0) {
                        answer(s, fd, 200, "application/json", "{oops", 5);
                } else if (strcmp(p, "plain502") == 0) {
                        answer(s, fd, 502, "text/plain", "bad gateway", 11);
                } else if (sscanf(p, "e%d", &code) == 1) {
                        snprintf(text, sizeof(text), "{\"error\": \"failure %d\", \"code\": \"x\"}",
                                 code);
                        answer(s, fd, code, "application/json", text, strlen(text));
                } else {
                        const char *b =
                            "{\"error\": \"no such endpoint\", \"code\": \"not_found\"}";
                        answer(s, fd, 404, "application/json", b, strlen(b));
                }
        }
out:
        free(head);
}

static void *responder_main(void *ud)
{
        struct responder *s = ud;
        int fd;

        while ((fd = accept(s->lfd, NULL, NULL)) >= 0) {
                s->connections++;
                s->cfd = fd;
                serve(s, fd);
                s->cfd = -1;
                close(fd);
        }
        return NULL;
}

static int listen_any(int *port)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t alen = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
                return -1;
        *port = ntohs(a.sin_port);
        return fd;
}

static int setup(void **state)
{
        struct responder *s = calloc(1, sizeof(*s));

        if (s == NULL)
                return -1;
        s->cfd = -1;
        s->lfd = listen_any(&s->port);
        if (s->lfd < 0 || pthread_create(&s->thread, NULL, responder_main, s) != 0)
                return -1;
        *state = s;
        return 0;
}

static int teardown(void **state)
{
        struct responder *s = *state;

        shutdown(s->lfd, SHUT_RDWR);
        if (s->cfd >= 0) /* a failed test may have left its client connected */
                shutdown(s->cfd, SHUT_RDWR);
        pthread_join(s->thread, NULL);
        close(s->lfd);
        buf_free(&s->body);
        free(s);
        return 0;
}

static struct remote *connect_to(struct responder *s, const char *token)
{
        struct remote *r = NULL;
        char url[64];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port); /* trailing '/' is fine */
        assert_int_equal(remote_new(url, token, &r), 0);
        return r;
}

static void test_json_requests_keepalive(void **state)
{
        struct responder *s = *state;
        struct remote *r = connect_to(s, "feedbeef");
        json_t *out = NULL, *body;

        assert_int_equal(remote_get_json(r, "/api/v1/health", &out), 0);
        assert_true(json_is_true(json_object_get(out, "ok")));
        json_decref(out);
        assert_string_equal(s->method, "GET");
        assert_string_equal(s->path, "/api/v1/health");
        assert_string_equal(s->auth, "Bearer feedbeef");

        body = json_pack("{s:[s,s]}", "hashes", "aa", "bb");
        assert_int_equal(remote_post_json(r, "/api/v1/echo", body, &out), 0);
        assert_string_equal(s->method, "POST");
        assert_string_equal(s->ctype, "application/json");
        json_t *sent = json_loadb((const char *)s->body.data, s->body.len, 0, NULL);
        assert_true(json_equal(sent, body));
        json_decref(sent);
        assert_int_equal(json_integer_value(json_object_get(out, "len")), (json_int_t)s->body.len);
        json_decref(out);
        /* answer not wanted */
        assert_int_equal(remote_post_json(r, "/api/v1/echo", body, NULL), 0);

        /* a GET after POSTs is a GET again */
        assert_int_equal(remote_get_json(r, "/api/v1/health?x=1", &out), 0);
        json_decref(out);
        assert_string_equal(s->method, "GET");
        assert_string_equal(s->path, "/api/v1/health?x=1");

        /* no token: no Authorization header */
        assert_int_equal(remote_set_token(r, NULL), 0);
        assert_int_equal(remote_post_json(r, "/api/v1/echo", body, NULL), 0);
        assert_string_equal(s->auth, "");

        json_decref(body);
        remote_free(r);
        assert_int_equal(s->connections, 1); /* one kept-alive connection */
}

static void test_binary(void **state)
{
        struct responder *s = *state;
        struct remote *r = connect_to(s, NULL);
        struct buf frames = BUF_INIT, out = BUF_INIT;
        json_t *ans = NULL, *body = json_pack("{s:[]}", "hashes");
        size_t i;

        /* a body with NULs, large enough to need several writes */
        for (i = 0; i < 300000; i++)
                buf_append(&frames, (const char[]){(char)(i % 7)}, 1);
        assert_int_equal(remote_post_frames(r, "/api/v1/echo", &frames, &ans), 0);
        assert_string_equal(s->ctype, "application/x-ferry-chunks");
        assert_int_equal(s->body.len, frames.len);
        assert_memory_equal(s->body.data, frames.data, frames.len);
        assert_int_equal(json_integer_value(json_object_get(ans, "len")), 300000);
        json_decref(ans);

        buf_append_str(&out, "old contents replaced");
        assert_int_equal(remote_post_json_binary(r, "/api/v1/bin", body, &out), 0);
        assert_int_equal(out.len, 4);
        assert_memory_equal(out.data, "\x00\x01\x02\xff", 4);
        assert_string_equal(s->ctype, "application/json");

        json_decref(body);
        buf_free(&frames);
        buf_free(&out);
        remote_free(r);
}

static void expect_status(struct remote *r, const char *path, int code, const char *text)
{
        json_t *out = NULL;
        int rc = remote_get_json(r, path, &out);

        assert_int_equal(rc, code);
        assert_null(out);
        if (strstr(err_msg(rc), text) == NULL)
                fail_msg("message \"%s\" lacks \"%s\"", err_msg(rc), text);
        assert_non_null(strstr(err_msg(rc), "server: "));
}

static void test_errors(void **state)
{
        struct responder *s = *state;
        struct remote *r = connect_to(s, "t");
        json_t *out = NULL;
        struct buf bin = BUF_INIT;
        json_t *body = json_object();

        expect_status(r, "/api/v1/e400", -EINVAL, "failure 400 (HTTP 400)");
        expect_status(r, "/api/v1/e401", -EACCES, "failure 401");
        expect_status(r, "/api/v1/e403", -EPERM, "failure 403");
        expect_status(r, "/api/v1/e404", -ENOENT, "failure 404");
        expect_status(r, "/api/v1/e409", -EEXIST, "failure 409");
        expect_status(r, "/api/v1/e413", -E2BIG, "failure 413");
        expect_status(r, "/api/v1/e415", -EPROTO, "failure 415");
        expect_status(r, "/api/v1/e500", -EIO, "failure 500 (HTTP 500)");
        expect_status(r, "/api/v1/plain502", -EIO, "HTTP 502");
        expect_status(r, "/api/v1/nojson", -EPROTO, "malformed JSON");

        /* a binary request that fails leaves out alone */
        buf_append_str(&bin, "keep");
        assert_int_equal(remote_post_json_binary(r, "/api/v1/e404", body, &bin), -ENOENT);
        assert_int_equal(bin.len, 4);
        /* still usable after errors */
        assert_int_equal(remote_get_json(r, "/api/v1/health", &out), 0);
        json_decref(out);
        json_decref(body);
        buf_free(&bin);
        remote_free(r);
}

static void test_unreachable(void **state)
{
        struct remote *r = NULL;
        json_t *out = NULL;
        char url[64];
        int port, fd, rc;

        (void)state;
        fd = listen_any(&port);
        assert_true(fd >= 0);
        close(fd); /* nobody listens there now */
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
        assert_int_equal(remote_new(url, "t", &r), 0);
        rc = remote_get_json(r, "/api/v1/health", &out);
        assert_int_equal(rc, -ECONNREFUSED);
        assert_null(out);
        assert_non_null(strstr(err_msg(rc), "cannot reach the server at"));
        assert_non_null(strstr(err_msg(rc), url));
        remote_free(r);
}

static void test_escape(void **state)
{
        char *e;

        (void)state;
        e = remote_escape("dir/a b&c=ü.txt");
        assert_non_null(e);
        assert_string_equal(e, "dir%2Fa%20b%26c%3D%C3%BC.txt");
        free(e);
        e = remote_escape("");
        assert_non_null(e);
        assert_string_equal(e, "");
        free(e);
}

static void expect_wire(struct responder *s, struct remote *r, int64_t requests)
{
        struct remote_stats st;

        remote_stats(r, &st);
        assert_int_equal(st.requests, requests);
        assert_int_equal(st.bytes_up, __atomic_load_n(&s->rx, __ATOMIC_SEQ_CST));
        assert_int_equal(st.bytes_down, __atomic_load_n(&s->tx, __ATOMIC_SEQ_CST));
}

/* The counters match, to the byte, what the responder read and wrote:
 * headers and bodies, small bodies (sent with the headers) and large ones,
 * error answers. */
static void test_stats_exact(void **state)
{
        struct responder *s = *state;
        struct remote *r = connect_to(s, "feedbeef");
        struct buf frames = BUF_INIT, out = BUF_INIT;
        json_t *ans = NULL, *body = json_pack("{s:[s]}", "hashes", "aa");
        struct remote_stats st;

        remote_stats(r, &st);
        assert_int_equal(st.bytes_up + st.bytes_down + st.requests, 0);
        assert_int_equal(remote_get_json(r, "/api/v1/health", &ans), 0);
        json_decref(ans);
        expect_wire(s, r, 1);
        assert_true(s->tx > 30 && s->rx > 30);
        assert_int_equal(remote_post_json(r, "/api/v1/echo", body, NULL), 0);
        expect_wire(s, r, 2);
        for (size_t i = 0; i < 700000; i++)
                buf_append(&frames, (const char[]){(char)(i % 13)}, 1);
        assert_int_equal(remote_post_frames(r, "/api/v1/echo", &frames, NULL), 0);
        expect_wire(s, r, 3);
        assert_true(s->rx > 700000);
        assert_int_equal(remote_post_json_binary(r, "/api/v1/big", body, &out), 0);
        assert_int_equal(out.len, BIG_LEN);
        expect_wire(s, r, 4);
        assert_true(s->tx > BIG_LEN);
        assert_int_equal(remote_get_json(r, "/api/v1/e404", &ans), -ENOENT);
        expect_wire(s, r, 5);
        json_decref(body);
        buf_free(&frames);
        buf_free(&out);
        remote_free(r);
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A limit really slows a transfer down, and 0 lifts it. Kept short: one
 * second and a half at most per direction. */
static void test_limits(void **state)
{
        struct responder *s = *state;
        struct remote *r = connect_to(s, NULL);
        struct buf frames = BUF_INIT, out = BUF_INIT;
        json_t *body = json_object();
        double t0, dt;

        /* download: 512 KiB at 384 KiB/s needs 1.33 s */
        remote_set_limits(r, 0, 384 * 1024);
        t0 = now_s();
        assert_int_equal(remote_post_json_binary(r, "/api/v1/big", body, &out), 0);
        dt = now_s() - t0;
        assert_int_equal(out.len, BIG_LEN);
        if (dt < 1.0 || dt > 2.5)
                fail_msg("512 KiB at 384 KiB/s took %.2f s", dt);

        /* upload: 384 KiB at 384 KiB/s needs 1 s */
        for (size_t i = 0; i < 384 * 1024; i++)
                buf_append(&frames, "x", 1);
        remote_set_limits(r, 384 * 1024, 0);
        t0 = now_s();
        assert_int_equal(remote_post_frames(r, "/api/v1/echo", &frames, NULL), 0);
        dt = now_s() - t0;
        assert_int_equal(s->body.len, frames.len);
        if (dt < 0.85 || dt > 2.0)
                fail_msg("384 KiB at 384 KiB/s took %.2f s", dt);

        /* lifted: both at loopback speed */
        remote_set_limits(r, 0, 0);
        t0 = now_s();
        assert_int_equal(remote_post_frames(r, "/api/v1/echo", &frames, NULL), 0);
        assert_int_equal(remote_post_json_binary(r, "/api/v1/big", body, &out), 0);
        dt = now_s() - t0;
        if (dt > 0.5)
                fail_msg("unlimited transfers took %.2f s", dt);
        expect_wire(s, r, 4);
        json_decref(body);
        buf_free(&frames);
        buf_free(&out);
        remote_free(r);
}

struct seen {
        int calls;
        int64_t last_down;
        int monotonic;
};

static void on_progress(void *ud, const struct remote_stats *now)
{
        struct seen *v = ud;

        if (now->bytes_down < v->last_down)
                v->monotonic = 0;
        v->last_down = now->bytes_down;
        v->calls++;
}

/* The progress callback sees the counters grow during a transfer, and is
 * quiet once removed. */
static void test_progress(void **state)
{
        struct responder *s = *state;
        struct remote *r = connect_to(s, NULL);
        struct buf out = BUF_INIT;
        json_t *body = json_object();
        struct seen v = {.monotonic = 1};
        struct remote_stats st;

        remote_set_progress(r, on_progress, &v);
        /* slowed down so that the transfer spans several callbacks */
        remote_set_limits(r, 0, 2 * 1024 * 1024);
        assert_int_equal(remote_post_json_binary(r, "/api/v1/big", body, &out), 0);
        remote_stats(r, &st);
        assert_true(v.calls >= 2);
        assert_true(v.monotonic);
        assert_true(v.last_down > 0 && v.last_down <= st.bytes_down);
        remote_set_progress(r, NULL, NULL);
        v.calls = 0;
        assert_int_equal(remote_post_json_binary(r, "/api/v1/big", body, &out), 0);
        assert_int_equal(v.calls, 0);
        json_decref(body);
        buf_free(&out);
        remote_free(r);
}

/* A clone carries the parent's token and limits, counts in the parent's
 * counters and reports through the parent's progress function. The
 * responder serves one connection at a time: only the clone connects. */
static void test_clone(void **state)
{
        struct responder *s = *state;
        struct remote *r = connect_to(s, "feedbeef"), *c = NULL;
        struct buf out = BUF_INIT;
        json_t *body = json_object();
        struct seen v = {.monotonic = 1};
        double t0, dt;

        assert_false(remote_limited(r));
        remote_set_limits(r, 0, 2 * 1024 * 1024);
        assert_true(remote_limited(r));
        assert_int_equal(remote_clone(r, &c), 0);
        remote_set_progress(r, on_progress, &v); /* set after the clone: still seen */
        t0 = now_s();
        assert_int_equal(remote_post_json_binary(c, "/api/v1/big", body, &out), 0);
        dt = now_s() - t0;
        assert_int_equal(out.len, BIG_LEN);
        assert_string_equal(s->auth, "Bearer feedbeef");
        if (dt < 0.15) /* 512 KiB at 2 MiB/s: the limit came along */
                fail_msg("512 KiB at 2 MiB/s took %.2f s", dt);
        expect_wire(s, r, 1);
        assert_true(v.calls >= 2);
        assert_true(v.monotonic);
        remote_free(c);
        remote_set_limits(r, 0, 0);
        assert_false(remote_limited(r));
        json_decref(body);
        buf_free(&out);
        remote_free(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_json_requests_keepalive, setup, teardown),
            cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
            cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
            cmocka_unit_test(test_unreachable),
            cmocka_unit_test(test_escape),
            cmocka_unit_test_setup_teardown(test_stats_exact, setup, teardown),
            cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
            cmocka_unit_test_setup_teardown(test_progress, setup, teardown),
            cmocka_unit_test_setup_teardown(test_clone, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
