/* Unit tests for the event stream: the SSE parser (events split at every
 * possible chunk boundary, comments, id/event/data fields, multi-line data,
 * CRLF and CR line ends, bounds), the seq parsing, the reconnect backoff
 * (doubling, capped, jitter within +/-25 %), and the stream thread against
 * a tiny SSE server on loopback (hello, seq, transfers, devices and requests events, the
 * since= it resumes from, the token it sends, reconnecting after the server
 * closes). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evstream.h"
#include "remote.h"
#include "sse.h"

struct got {
        char log[4096];
        int n;
};

static int collect(void *ud, const char *event, const char *data, const char *id)
{
        struct got *g = ud;
        size_t len = strlen(g->log);

        snprintf(g->log + len, sizeof(g->log) - len, "[%s|%s|%s]", event, data, id);
        g->n++;
        return 0;
}

static const char stream[] = ": keepalive\r\n"
                             "event: hello\r\n"
                             "data: {\"seq\":3}\r\n"
                             "\r\n"
                             "id: 4\n"
                             "event: seq\n"
                             "data: {\"seq\":4,\n"
                             "data:\"device\":\"x\"}\n"
                             "\n"
                             ": keepalive\r"
                             "data:no space\r"
                             "retry: 10\r"
                             "unknown: field\r"
                             "\r"
                             "event: nodata\n"
                             "\n";

static const char expected[] = "[hello|{\"seq\":3}|][seq|{\"seq\":4,\n\"device\":\"x\"}|4]"
                               "[message|no space|4]";

static void test_parser_whole(void **state)
{
        struct sse_parser p;
        struct got g = {0};

        (void)state;
        sse_init(&p);
        assert_int_equal(sse_feed(&p, stream, strlen(stream), collect, &g), 0);
        assert_string_equal(g.log, expected);
        assert_int_equal(p.comments, 2);
        sse_free(&p);
}

/* Every split of the stream into two and into single bytes gives the same
 * events: in particular a CRLF cut between CR and LF is one line end. */
static void test_parser_split_everywhere(void **state)
{
        size_t len = strlen(stream);

        (void)state;
        for (size_t cut = 0; cut <= len; cut++) {
                struct sse_parser p;
                struct got g = {0};

                sse_init(&p);
                assert_int_equal(sse_feed(&p, stream, cut, collect, &g), 0);
                assert_int_equal(sse_feed(&p, stream + cut, len - cut, collect, &g), 0);
                assert_string_equal(g.log, expected);
                sse_free(&p);
        }
        {
                struct sse_parser p;
                struct got g = {0};

                sse_init(&p);
                for (size_t i = 0; i < len; i++)
                        assert_int_equal(sse_feed(&p, stream + i, 1, collect, &g), 0);
                assert_string_equal(g.log, expected);
                sse_free(&p);
        }
}

static void test_parser_incomplete_and_bounds(void **state)
{
        struct sse_parser p;
        struct got g = {0};
        char *big;

        (void)state;
        sse_init(&p);
        /* no blank line yet: nothing is dispatched */
        assert_int_equal(sse_feed(&p, "event: seq\ndata: {}\n", 20, collect, &g), 0);
        assert_int_equal(g.n, 0);
        assert_int_equal(sse_feed(&p, "\n", 1, collect, &g), 0);
        assert_int_equal(g.n, 1);
        sse_free(&p);

        big = malloc(SSE_MAX_LINE + 10);
        assert_non_null(big);
        memset(big, 'a', SSE_MAX_LINE + 10);
        sse_init(&p);
        assert_int_equal(sse_feed(&p, big, SSE_MAX_LINE / 2, collect, &g), 0);
        assert_int_equal(sse_feed(&p, big, SSE_MAX_LINE, collect, &g), -E2BIG);
        sse_free(&p);
        free(big);
}

static void test_parse_seq(void **state)
{
        int64_t s = 0;

        (void)state;
        assert_int_equal(evstream_parse_seq("{\"seq\":42,\"device\":\"d\"}", &s), 0);
        assert_int_equal(s, 42);
        assert_int_equal(evstream_parse_seq("{\"device\":\"d\"}", &s), -EPROTO);
        assert_int_equal(evstream_parse_seq("{\"seq\":-1}", &s), -EPROTO);
        assert_int_equal(evstream_parse_seq("not json", &s), -EPROTO);
        assert_int_equal(evstream_parse_version("{\"version\":7}", &s), 0);
        assert_int_equal(s, 7);
        assert_int_equal(evstream_parse_version("{\"seq\":7}", &s), -EPROTO);
}

static void test_backoff(void **state)
{
        (void)state;
        assert_int_equal(evstream_backoff_ms(0, 0.5), 200);
        assert_int_equal(evstream_backoff_ms(1, 0.5), 400);
        assert_int_equal(evstream_backoff_ms(3, 0.5), 1600);
        /* jitter: within +/- 25 % */
        assert_int_equal(evstream_backoff_ms(0, 0.0), 150);
        assert_true(evstream_backoff_ms(0, 0.999999) <= 250 &&
                    evstream_backoff_ms(0, 0.999999) >= 249);
        /* capped, whatever the attempt and the jitter */
        for (unsigned a = 0; a < 40; a++) {
                for (double r = 0; r < 1; r += 0.125) {
                        int64_t ms = evstream_backoff_ms(a, r);

                        assert_true(ms >= 150);
                        assert_true(ms <= EVSTREAM_BACKOFF_MAX_MS);
                }
        }
        assert_true(evstream_backoff_ms(30, 0.0) >= EVSTREAM_BACKOFF_MAX_MS * 3 / 4);
}

/* A one-shot SSE server: for each of `conns` connections, checks the
 * request and sends a hello and a seq event, then closes. */
struct fake {
        int lfd, port, conns;
        char requests[2][2048];
};

static void *serve(void *ud)
{
        struct fake *f = ud;

        for (int c = 0; c < f->conns; c++) {
                int fd = accept(f->lfd, NULL, NULL);
                char body[512];
                ssize_t n, got = 0;

                if (fd < 0)
                        return NULL;
                while (got < (ssize_t)sizeof(f->requests[c]) - 1 &&
                       !strstr(f->requests[c], "\r\n\r\n")) {
                        n = read(fd, f->requests[c] + got, sizeof(f->requests[c]) - 1 - got);
                        if (n <= 0)
                                break;
                        got += n;
                }
                snprintf(body, sizeof(body),
                         "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         "Connection: close\r\n\r\n"
                         "event: hello\ndata: {\"seq\":%d,\"device\":\"me\"}\n\n: keepalive\n\n"
                         "event: transfers\ndata: {\"version\":%d}\n\n"
                         "event: devices\ndata: {\"version\":%d}\n\n"
                         "event: requests\ndata: {\"version\":%d}\n\n"
                         "event: requests\ndata: {\"version\":%d}\n\n",
                         5 + 10 * c, 1 + c, 3 + c, 4 + c, 5 + c);
                if (write(fd, body, strlen(body)) < 0)
                        break;
                usleep(20000);
                snprintf(body, sizeof(body),
                         "event: seq\nid: %d\ndata: {\"seq\":%d,\"device\":", 9 + 10 * c,
                         9 + 10 * c);
                if (write(fd, body, strlen(body)) < 0)
                        break;
                usleep(20000);
                if (write(fd, "\"other\"}\n\n", 10) < 0)
                        break;
                usleep(50000);
                close(fd);
        }
        return NULL;
}

/* Waits until the stream state satisfies seq >= want and connects >= c. */
static int wait_for(struct evstream *es, int efd, int64_t want, uint64_t c)
{
        struct evstream_state st;

        for (int i = 0; i < 500; i++) {
                struct pollfd p = {.fd = efd, .events = POLLIN};
                uint64_t v;

                evstream_get(es, &st);
                if (st.seq >= want && st.connects >= c)
                        return 1;
                if (poll(&p, 1, 10) > 0 && read(efd, &v, sizeof(v)) < 0)
                        return 0;
        }
        return 0;
}

static void test_stream_thread(void **state)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t alen = sizeof(a);
        struct remote *rem = NULL;
        struct evstream *es = NULL;
        struct fake f = {.conns = 2};
        struct evstream_state st;
        pthread_t t;
        char url[64];
        int efd;

        (void)state;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        f.lfd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(f.lfd >= 0);
        assert_int_equal(bind(f.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(f.lfd, 4), 0);
        assert_int_equal(getsockname(f.lfd, (struct sockaddr *)&a, &alen), 0);
        f.port = ntohs(a.sin_port);
        assert_int_equal(pthread_create(&t, NULL, serve, &f), 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f.port);
        /* remote_new runs curl_global_init, as the watch does first */
        assert_int_equal(remote_new(url, "tok", &rem), 0);
        efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_true(efd >= 0);
        assert_int_equal(evstream_start(url, "tok", efd, &es), 0);
        evstream_set_since(es, 7);
        /* first connection: hello 5 then seq 9 (split across writes) */
        assert_true(wait_for(es, efd, 9, 1));
        /* the server closes; the thread reconnects (backoff ~200 ms) */
        assert_true(wait_for(es, efd, 19, 2));
        pthread_join(t, NULL);
        evstream_get(es, &st);
        assert_int_equal(st.seq, 19);
        assert_int_equal(st.connects, 2);
        assert_int_equal(st.transfer_events, 2); /* counted, one per connection */
        assert_int_equal(st.device_events, 2);
        assert_int_equal(st.request_events, 4);
        assert_non_null(strstr(f.requests[0], "GET /api/v1/events?since="));
        assert_non_null(strstr(f.requests[0], "Authorization: Bearer tok"));
        assert_non_null(strstr(f.requests[1], "GET /api/v1/events?since=7 "));
        /* no server any more: it goes offline and stop is still prompt */
        close(f.lfd);
        for (int i = 0; i < 200; i++) {
                evstream_get(es, &st);
                if (!st.online)
                        break;
                usleep(10000);
        }
        assert_int_equal(st.online, 0);
        assert_true(st.offline_since_ns > 0);
        evstream_stop(es);
        remote_free(rem);
        close(efd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parser_whole),
            cmocka_unit_test(test_parser_split_everywhere),
            cmocka_unit_test(test_parser_incomplete_and_bounds),
            cmocka_unit_test(test_parse_seq),
            cmocka_unit_test(test_backoff),
            cmocka_unit_test(test_stream_thread),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
