/* test-stream: the event stream (GET /api/v1/events) against a real ferryd
 * in-process on an ephemeral port. Streams are read over raw sockets (the
 * chunked framing is left in; events are searched for as text), commits are
 * made with libcurl from another connection. Checks the hello, a seq event
 * within 2 s of a commit with the committing device, catching up from since
 * and Last-Event-ID, keep-alives, 401/400 as JSON instead of a stream, that a
 * closed stream frees its subscriber, that many streams all hear a commit,
 * "online" through a stream, and that stopping the server with streams open
 * is quick and ends them; the "transfers" event when the account's
 * transfer records change (not for other accounts, not for a commit that
 * changes none), and that the stream of a removed device ends. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "server.h"
#include "srvtest.h"

#define KEEPALIVE_MS 300

struct fix {
        char *dir;
        char *uri; /* the PostgreSQL database, or NULL for SQLite (srvtest.h) */
        struct server s;
        int stopped;
        char base[64];
        char a1[65], a2[65]; /* tokens of two devices of alice */
        char a1_id[33], a2_id[33];
        char bob[65], bob_id[33];
};

struct sse {
        int fd;
        struct buf in; /* everything read so far */
};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
        buf_append(ud, p, sz * n);
        return sz * n;
}

static long req_json(struct fix *f, const char *method, const char *path, const char *token,
                     const char *body, json_t **out)
{
        struct curl_slist *hdrs = NULL;
        struct buf b = BUF_INIT;
        char url[512], auth[120];
        long status = 0;
        CURL *c = curl_easy_init();

        assert_non_null(c);
        snprintf(url, sizeof(url), "%s%s", f->base, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (token) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
                hdrs = curl_slist_append(hdrs, auth);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        if (body)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        *out = json_loadb((const char *)b.data, b.len, 0, NULL);
        buf_free(&b);
        assert_non_null(*out);
        return status;
}

static void login(struct fix *f, const char *user, int reg, char *token, char *id)
{
        char body[256];
        json_t *j;

        if (reg) {
                snprintf(body, sizeof(body),
                         "{\"user\":\"%s\",\"email\":\"%s@x.org\",\"password\":\"pw-%s-123\"}",
                         user, user, user);
                assert_int_equal(req_json(f, "POST", "/api/v1/register", NULL, body, &j), 201);
                json_decref(j);
        }
        snprintf(body, sizeof(body),
                 "{\"user\":\"%s\",\"password\":\"pw-%s-123\",\"device_name\":\"dev\"}", user,
                 user);
        assert_int_equal(req_json(f, "POST", "/api/v1/login", NULL, body, &j), 200);
        snprintf(token, 65, "%s", json_string_value(json_object_get(j, "token")));
        snprintf(id, 33, "%s", json_string_value(json_object_get(j, "device_id")));
        json_decref(j);
}

/* Commits a directory at path (new, base 0); returns the space's seq. */
static int64_t commit_dir(struct fix *f, const char *token, const char *path)
{
        char body[256];
        json_t *j;
        int64_t seq;

        snprintf(body, sizeof(body),
                 "{\"changes\":[{\"op\":\"put\",\"path\":\"%s\",\"kind\":\"dir\"}]}", path);
        assert_int_equal(req_json(f, "POST", "/api/v1/commit", token, body, &j), 200);
        seq = json_integer_value(json_object_get(j, "seq"));
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(j, "results"), 0), "status")),
                            "ok");
        json_decref(j);
        return seq;
}

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        curl_global_init(CURL_GLOBAL_DEFAULT);
        f->dir = srvtest_tmpdir();
        f->uri = srvtest_metadata();
        assert_int_equal(server_open_stores(&f->s, f->dir, f->uri, NULL, 1), 0);
        f->s.live_keepalive_ms = KEEPALIVE_MS;
        assert_int_equal(server_start(&f->s, "127.0.0.1:0", 2), 0);
        snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", server_port(&f->s));
        login(f, "alice", 1, f->a1, f->a1_id);
        login(f, "alice", 0, f->a2, f->a2_id);
        login(f, "bob", 1, f->bob, f->bob_id);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        if (!f->stopped)
                server_close(&f->s);
        srvtest_metadata_drop(f->uri);
        srvtest_rmtree(f->dir);
        free(f);
        curl_global_cleanup();
        return 0;
}

/* Opens a stream: connects and sends the request (extra: more header lines,
 * each ending in \r\n). */
static void sse_open(struct fix *f, struct sse *e, const char *token, const char *query,
                     const char *extra)
{
        struct sockaddr_in sa = {0};
        char req[1024];
        int n;

        e->fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(e->fd >= 0);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(server_port(&f->s));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        n = snprintf(req, sizeof(req),
                     "GET /api/v1/events%s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer "
                     "%s\r\n%s\r\n",
                     query, token, extra ? extra : "");
        assert_int_equal(send(e->fd, req, (size_t)n, MSG_NOSIGNAL), n);
        e->in = (struct buf)BUF_INIT;
}

static void sse_close(struct sse *e)
{
        close(e->fd);
        buf_free(&e->in);
}

/* Reads until what was read contains text, for at most ms. 1 if found, 0
 * on timeout, -1 on end of stream. */
static int sse_wait(struct sse *e, const char *text, int ms)
{
        int64_t end = now_ms() + ms;
        char tmp[4096];
        ssize_t n;

        for (;;) {
                if (e->in.len && memmem(e->in.data, e->in.len, text, strlen(text)))
                        return 1;
                int64_t left = end - now_ms();
                struct pollfd p = {e->fd, POLLIN, 0};
                if (left <= 0 || poll(&p, 1, (int)left) <= 0)
                        return 0;
                n = recv(e->fd, tmp, sizeof(tmp), 0);
                if (n <= 0)
                        return -1;
                assert_int_equal(buf_append(&e->in, tmp, (size_t)n), 0);
        }
}

static void test_hello_then_seq_on_commit(void **state)
{
        struct fix *f = *state;
        struct sse e;
        char want[256];
        int64_t seq, t0;

        sse_open(f, &e, f->a1, "", NULL);
        assert_int_equal(sse_wait(&e, "\r\n\r\n", 2000), 1);
        assert_int_equal(sse_wait(&e, "HTTP/1.1 200", 0), 1);
        assert_int_equal(sse_wait(&e, "Content-Type: text/event-stream\r\n", 0), 1);
        assert_int_equal(sse_wait(&e, "Cache-Control: no-cache\r\n", 0), 1);
        snprintf(want, sizeof(want), "event: hello\ndata: {\"seq\":0,\"device\":\"%s\"}\n\n",
                 f->a1_id);
        assert_int_equal(sse_wait(&e, want, 2000), 1);
        /* No seq event without a commit. */
        assert_int_equal(sse_wait(&e, "event: seq", 100), 0);

        t0 = now_ms();
        seq = commit_dir(f, f->a2, "one");
        assert_int_equal(seq, 1);
        snprintf(want, sizeof(want), "event: seq\nid: 1\ndata: {\"seq\":1,\"device\":\"%s\"}\n\n",
                 f->a2_id);
        assert_int_equal(sse_wait(&e, want, 2000), 1);
        assert_true(now_ms() - t0 < 2000);

        /* Another user's commit says nothing to alice. */
        commit_dir(f, f->bob, "b");
        assert_int_equal(sse_wait(&e, f->bob_id, 200), 0);

        /* A burst ends with an event for its last number. */
        commit_dir(f, f->a1, "two");
        commit_dir(f, f->a1, "three");
        seq = commit_dir(f, f->a1, "four");
        snprintf(want, sizeof(want), "id: %lld\ndata: {\"seq\":%lld,\"device\":\"%s\"}",
                 (long long)seq, (long long)seq, f->a1_id);
        assert_int_equal(sse_wait(&e, want, 2000), 1);
        sse_close(&e);
}

static void test_catch_up(void **state)
{
        struct fix *f = *state;
        struct sse e;
        char want[256];

        commit_dir(f, f->a2, "x");
        commit_dir(f, f->a2, "y");
        /* Behind the space: hello, then a seq event at once. */
        sse_open(f, &e, f->a1, "?since=1", NULL);
        snprintf(want, sizeof(want),
                 "event: hello\ndata: {\"seq\":2,\"device\":\"%s\"}\n\nevent: seq\nid: 2\n"
                 "data: {\"seq\":2,\"device\":\"%s\"}\n\n",
                 f->a1_id, f->a2_id);
        assert_int_equal(sse_wait(&e, want, 2000), 1);
        sse_close(&e);

        /* Up to date: only the hello. */
        sse_open(f, &e, f->a1, "?since=2", NULL);
        assert_int_equal(sse_wait(&e, "event: hello", 2000), 1);
        assert_int_equal(sse_wait(&e, "event: seq", 150), 0);
        sse_close(&e);

        /* Last-Event-ID, as a browser's EventSource sends it on reconnect,
         * works alone and wins over an older since in the URL. */
        sse_open(f, &e, f->a1, "", "Last-Event-ID: 1\r\n");
        assert_int_equal(sse_wait(&e, "id: 2\n", 2000), 1);
        sse_close(&e);
        sse_open(f, &e, f->a1, "?since=0", "Last-Event-ID: 2\r\n");
        assert_int_equal(sse_wait(&e, "event: hello", 2000), 1);
        assert_int_equal(sse_wait(&e, "event: seq", 150), 0);
        sse_close(&e);
}

static void test_keepalive(void **state)
{
        struct fix *f = *state;
        struct sse e;
        int64_t t0 = now_ms();

        sse_open(f, &e, f->a1, "", NULL);
        assert_int_equal(sse_wait(&e, "event: hello", 2000), 1);
        assert_int_equal(sse_wait(&e, ": keepalive\n\n", 5 * KEEPALIVE_MS), 1);
        /* Not before the stream was idle that long. */
        assert_true(now_ms() - t0 >= KEEPALIVE_MS);
        sse_close(&e);
}

static void test_refused_as_json(void **state)
{
        struct fix *f = *state;
        char bad[65];
        json_t *j;

        memset(bad, 'b', 64);
        bad[64] = '\0';
        assert_int_equal(req_json(f, "GET", "/api/v1/events", bad, NULL, &j), 401);
        assert_string_equal(json_string_value(json_object_get(j, "code")), "unauthorized");
        json_decref(j);
        assert_int_equal(req_json(f, "GET", "/api/v1/events", NULL, NULL, &j), 401);
        json_decref(j);
        assert_int_equal(req_json(f, "GET", "/api/v1/events?since=-3", f->a1, NULL, &j), 400);
        assert_string_equal(json_string_value(json_object_get(j, "code")), "bad_request");
        json_decref(j);
        assert_int_equal(req_json(f, "POST", "/api/v1/events", f->a1, "{}", &j), 405);
        json_decref(j);
        assert_int_equal(http_live_count(f->s.http), 0);
}

/* Waits up to ms for the number of open streams to become n. */
static int wait_streams(struct fix *f, size_t n, int ms)
{
        int64_t end = now_ms() + ms;

        while (http_live_count(f->s.http) != n) {
                if (now_ms() > end)
                        return 0;
                usleep(10 * 1000);
        }
        return 1;
}

static void test_disconnect_frees(void **state)
{
        struct fix *f = *state;
        struct sse e[3];
        int i;

        for (i = 0; i < 3; i++) {
                sse_open(f, &e[i], f->a1, "", NULL);
                assert_int_equal(sse_wait(&e[i], "event: hello", 2000), 1);
        }
        assert_int_equal(http_live_count(f->s.http), 3);
        assert_int_equal(events_device_streams(f->s.events, 1, f->a1_id), 3);
        sse_close(&e[0]);
        sse_close(&e[1]);
        /* A parked stream notices its peer left when it next writes: at a
         * commit or at the latest at the next keep-alive. */
        assert_int_equal(wait_streams(f, 1, 10 * KEEPALIVE_MS), 1);
        assert_int_equal(events_device_streams(f->s.events, 1, f->a1_id), 1);
        commit_dir(f, f->a2, "still");
        assert_int_equal(sse_wait(&e[2], "\"seq\":1", 2000), 1);
        sse_close(&e[2]);
        assert_int_equal(wait_streams(f, 0, 10 * KEEPALIVE_MS), 1);
        assert_int_equal(events_device_streams(f->s.events, 1, f->a1_id), 0);
}

static void test_many_streams(void **state)
{
        enum { N = 200 };
        struct fix *f = *state;
        struct sse *e = calloc(N, sizeof(*e));
        int i;

        assert_non_null(e);
        for (i = 0; i < N; i++)
                sse_open(f, &e[i], i % 2 ? f->a1 : f->a2, "", NULL);
        for (i = 0; i < N; i++)
                assert_int_equal(sse_wait(&e[i], "event: hello", 2000), 1);
        assert_int_equal(http_live_count(f->s.http), N);
        commit_dir(f, f->bob, "not-for-alice");
        commit_dir(f, f->a1, "all");
        for (i = 0; i < N; i++)
                assert_int_equal(sse_wait(&e[i], "id: 1\n", 2000), 1);
        for (i = 0; i < N; i++)
                sse_close(&e[i]);
        free(e);
}

static int device_online(struct fix *f, const char *token, const char *id)
{
        json_t *j, *d;
        size_t i;
        int online = -1;

        assert_int_equal(req_json(f, "GET", "/api/v1/devices", token, NULL, &j), 200);
        json_array_foreach(json_object_get(j, "devices"), i, d)
        {
                if (strcmp(json_string_value(json_object_get(d, "id")), id) == 0)
                        online = json_is_true(json_object_get(d, "online"));
        }
        json_decref(j);
        return online;
}

static void test_online_through_stream(void **state)
{
        struct fix *f = *state;
        int64_t old = server_now() - 3600;
        struct sse e;

        /* a1 was last seen an hour ago: offline. */
        assert_int_equal(f->s.meta->ops->device_touch(f->s.meta, f->a1_id, old, "127.0.0.1"), 0);
        assert_int_equal(device_online(f, f->a2, f->a1_id), 0);
        sse_open(f, &e, f->a1, "", NULL);
        assert_int_equal(sse_wait(&e, "event: hello", 2000), 1);
        /* Opening the stream is a request too: make it old again, so that
         * only the open stream can say online. */
        assert_int_equal(f->s.meta->ops->device_touch(f->s.meta, f->a1_id, old, "127.0.0.1"), 0);
        assert_int_equal(device_online(f, f->a2, f->a1_id), 1);
        sse_close(&e);
        assert_int_equal(wait_streams(f, 0, 10 * KEEPALIVE_MS), 1);
        assert_int_equal(device_online(f, f->a2, f->a1_id), 0);
}

static void test_stop_with_streams_open(void **state)
{
        enum { N = 50 };
        struct fix *f = *state;
        struct sse *e = calloc(N, sizeof(*e));
        int64_t t0;
        int i;

        assert_non_null(e);
        for (i = 0; i < N; i++) {
                sse_open(f, &e[i], f->a1, "", NULL);
                assert_int_equal(sse_wait(&e[i], "event: hello", 2000), 1);
        }
        t0 = now_ms();
        server_close(&f->s);
        f->stopped = 1;
        assert_true(now_ms() - t0 < 2000);
        /* Every stream ends (whatever else it reads first). */
        for (i = 0; i < N; i++) {
                assert_int_equal(sse_wait(&e[i], "never-sent", 2000), -1);
                sse_close(&e[i]);
        }
        free(e);
}

static void test_transfers_event(void **state)
{
        struct fix *f = *state;
        char body[256], hex[HASH_HEX_LEN + 1];
        struct hash h = srvtest_hash("x");
        struct sse e;
        json_t *j;

        sse_open(f, &e, f->a1, "", NULL);
        assert_int_equal(sse_wait(&e, "event: hello", 2000), 1);
        /* A commit without transfer records to change says only seq. */
        commit_dir(f, f->a2, "d");
        assert_int_equal(sse_wait(&e, "event: seq", 2000), 1);
        assert_int_equal(sse_wait(&e, "event: transfers", 200), 0);
        /* An announce: version 1. This request's connection then closes,
         * the device's last one: its record fails, version 2. */
        hash_to_hex(&h, hex);
        snprintf(body, sizeof(body),
                 "{\"files\":[{\"path\":\"x\",\"kind\":\"file\",\"size\":1,\"hash\":\"%s\"}]}",
                 hex);
        assert_int_equal(req_json(f, "POST", "/api/v1/transfers", f->a2, body, &j), 200);
        json_decref(j);
        assert_int_equal(sse_wait(&e, "event: transfers\ndata: {\"version\":", 2000), 1);
        assert_int_equal(sse_wait(&e, "event: transfers\ndata: {\"version\":2}\n\n", 2000), 1);
        /* Another account's changes say nothing here. */
        assert_int_equal(req_json(f, "POST", "/api/v1/transfers", f->bob, body, &j), 200);
        json_decref(j);
        assert_int_equal(sse_wait(&e, "{\"version\":3}", 300), 0);
        sse_close(&e);
}

static void test_removed_device_stream_ends(void **state)
{
        struct fix *f = *state;
        struct sse e, mine;
        char body[128];
        json_t *j;

        sse_open(f, &e, f->a2, "", NULL);
        sse_open(f, &mine, f->a1, "", NULL);
        assert_int_equal(sse_wait(&e, "event: hello", 2000), 1);
        assert_int_equal(sse_wait(&mine, "event: hello", 2000), 1);
        snprintf(body, sizeof(body), "{\"device\":\"%s\"}", f->a2_id);
        assert_int_equal(req_json(f, "POST", "/api/v1/devices/remove", f->a1, body, &j), 200);
        json_decref(j);
        /* The removed device hears nothing more: its stream ends (the
         * last chunk of the chunked body). */
        assert_int_equal(sse_wait(&e, "\r\n0\r\n\r\n", 2000), 1);
        sse_close(&e);
        assert_int_equal(sse_wait(&mine, "event: transfers", 2000), 1);
        commit_dir(f, f->a1, "after");
        assert_int_equal(sse_wait(&mine, "event: seq", 2000), 1);
        sse_close(&mine);
        assert_int_equal(req_json(f, "GET", "/api/v1/events", f->a2, NULL, &j), 401);
        json_decref(j);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_hello_then_seq_on_commit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_catch_up, setup, teardown),
            cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refused_as_json, setup, teardown),
            cmocka_unit_test_setup_teardown(test_disconnect_frees, setup, teardown),
            cmocka_unit_test_setup_teardown(test_many_streams, setup, teardown),
            cmocka_unit_test_setup_teardown(test_online_through_stream, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stop_with_streams_open, setup, teardown),
            cmocka_unit_test_setup_teardown(test_transfers_event, setup, teardown),
            cmocka_unit_test_setup_teardown(test_removed_device_stream_ends, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
