/* Unit tests for the LAN listener (lan.c) with the LAN client (lanclient.c)
 * on 127.0.0.1: a device on the control list with the account's key gets
 * in and is served; a wrong key, an unknown device (another account's), a
 * listener without a key, a connection that skips auth or sends garbage
 * are refused; chunks are served only when they verify and only from
 * inside the folder (no symlink followed); upload requests are queued for
 * the owner; a device removed from the list or a replaced key cuts the
 * connection; connections over the limit are closed; and the "same LAN"
 * rule. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "frame.h"
#include "index.h"
#include "lan.h"
#include "lanclient.h"
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "testutil.h"

#define DEV_L "1111aaaa1111aaaa1111aaaa1111aaaa"
#define DEV_C "2222bbbb2222bbbb2222bbbb2222bbbb"
#define DEV_X "3333cccc3333cccc3333cccc3333cccc"

static const uint8_t key1[LANPROTO_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key2[LANPROTO_KEY_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

struct fixture {
        char *root, *outside;
        struct index *idx;
        struct lan *lan;
        struct manifest served;  /* chunks that must be served */
        struct manifest refused; /* chunks that must not be */
        uint8_t *data;           /* a.bin then sub/b.bin */
        size_t len_a, len_b;
};

static uint8_t *make_data(size_t len, unsigned seed)
{
        uint8_t *d = malloc(len);
        uint64_t rnd = seed;

        assert_non_null(d);
        for (size_t i = 0; i < len; i++) { /* no chunk in common between seeds */
                rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
                d[i] = (uint8_t)(rnd >> 56);
        }
        return d;
}

/* Writes dir/rel and records it in the index under path; adds its chunks to
 * into. */
static void add_file(struct fixture *fx, const char *dir, const char *rel, const char *path,
                     const uint8_t *data, size_t len, struct manifest *into)
{
        struct index_entry e = {0};
        struct manifest m = {0};
        char *full = path_join(dir, rel);
        struct stat st;
        int fd = open(full, O_RDWR | O_CREAT | O_TRUNC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(manifest_from_fd(fd, &m, NULL, NULL), 0);
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        localfs_entry_stat(&e, &st);
        e.path = (char *)path;
        e.hash = m.file_hash;
        e.seq = 1;
        assert_int_equal(index_put(fx->idx, &e, &m), 0);
        for (size_t i = 0; i < m.n; i++)
                assert_int_equal(manifest_add(into, &m.chunks[i].hash, m.chunks[i].size), 0);
        manifest_free(&m);
        free(full);
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        struct lan_config c = {0};
        char *db = NULL, *p = NULL;
        const char *peers[] = {DEV_C, DEV_L};
        struct manifest chg = {0};
        uint8_t *other;
        int fd;

        assert_non_null(fx);
        fx->root = testutil_mkdtemp_alloc("lan");
        fx->outside = testutil_mkdtemp_alloc("lan-out");
        assert_non_null(fx->root);
        assert_non_null(fx->outside);
        assert_true(asprintf(&p, "%s/.ferry", fx->root) > 0);
        assert_int_equal(mkdir(p, 0700), 0);
        free(p);
        assert_true(asprintf(&p, "%s/sub", fx->root) > 0);
        assert_int_equal(mkdir(p, 0755), 0);
        free(p);
        assert_true(asprintf(&db, "%s/.ferry/index.db", fx->root) > 0);
        assert_int_equal(index_open(db, &fx->idx), 0);

        fx->len_a = 700 * 1024;
        fx->len_b = 300 * 1024;
        fx->data = make_data(fx->len_a + fx->len_b, 1);
        add_file(fx, fx->root, "a.bin", "a.bin", fx->data, fx->len_a, &fx->served);
        add_file(fx, fx->root, "sub/b.bin", "sub/b.bin", fx->data + fx->len_a, fx->len_b,
                 &fx->served);
        assert_true(fx->served.n > 3);

        /* changed since it was indexed: its chunks do not verify */
        other = make_data(200 * 1024, 7);
        add_file(fx, fx->root, "changed.bin", "changed.bin", other, 200 * 1024, &chg);
        /* only its first chunk changes; the others still verify */
        assert_int_equal(manifest_add(&fx->refused, &chg.chunks[0].hash, chg.chunks[0].size), 0);
        manifest_free(&chg);
        assert_true(asprintf(&p, "%s/changed.bin", fx->root) > 0);
        fd = open(p, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "XXXX", 4, 10), 4);
        close(fd);
        free(p);
        free(other);
        /* reachable only through a symlinked folder: never served */
        other = make_data(100 * 1024, 9);
        add_file(fx, fx->outside, "x.bin", "link/x.bin", other, 100 * 1024, &fx->refused);
        free(other);
        assert_true(asprintf(&p, "%s/link", fx->root) > 0);
        assert_int_equal(symlink(fx->outside, p), 0);
        free(p);

        c.root = fx->root;
        c.index_path = db;
        c.device_id = DEV_L;
        c.addr = "127.0.0.1";
        assert_int_equal(lan_start(&c, &fx->lan), 0);
        assert_true(lan_port(fx->lan) > 0);
        assert_int_equal(lan_set_peers(fx->lan, peers, 2), 0);
        lan_set_key(fx->lan, key1, 1);
        free(db);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        lan_stop(fx->lan);
        index_close(fx->idx);
        manifest_free(&fx->served);
        manifest_free(&fx->refused);
        free(fx->data);
        assert_int_equal(testutil_rm_rf(fx->root), 0);
        assert_int_equal(testutil_rm_rf(fx->outside), 0);
        free(fx->root);
        free(fx->outside);
        free(fx);
        return 0;
}

static int dial(struct fixture *fx, const char *dev, const uint8_t *key, struct lanclient **c)
{
        return lanclient_connect("127.0.0.1", lan_port(fx->lan), dev, key, DEV_L, 2000, c);
}

/* A plain TCP connection to the listener that has read its hello. */
static int raw_dial(struct fixture *fx, int want_hello)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(lan_port(fx->lan))};
        struct lanproto_msg m = {0};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        if (want_hello) {
                assert_int_equal(lanproto_recv(fd, 0, lanproto_deadline(3000), &m), 0);
                assert_string_equal(m.type, "hello");
                assert_string_equal(json_string_value(json_object_get(m.hdr, "device")), DEV_L);
        }
        lanproto_msg_free(&m);
        return fd;
}

/* Reads until the listener closes; the last message's type (or "") into
 * last. */
static void expect_closed(int fd, char *last, size_t cap)
{
        struct lanproto_msg m = {0};
        int r;

        snprintf(last, cap, "%s", "");
        while ((r = lanproto_recv(fd, 0, lanproto_deadline(3000), &m)) == 0)
                snprintf(last, cap, "%s",
                         json_string_value(json_object_get(m.hdr, "error")) ?: "?");
        assert_int_equal(r, -ECONNRESET);
        lanproto_msg_free(&m);
        close(fd);
}

/* The listener counts a connection on its own thread after its side of the
 * exchange, which may be just after the client's: wait (bounded) until
 * the counters reach at least accepted and refused. */
static void stats_settle(struct fixture *fx, uint64_t accepted, uint64_t refused,
                         struct lan_stats *st)
{
        int i;

        for (i = 0; i < 400; i++) {
                lan_stats(fx->lan, st);
                if (st->accepted >= accepted && st->refused >= refused)
                        return;
                usleep(5000);
        }
}

static void test_handshake_ok(void **state)
{
        struct fixture *fx = *state;
        struct lanclient *c = NULL;
        struct lan_stats st;

        assert_int_equal(dial(fx, DEV_C, key1, &c), 0);
        assert_string_equal(lanclient_peer(c), DEV_L);
        lanclient_close(c);
        stats_settle(fx, 1, 0, &st);
        assert_int_equal(st.accepted, 1);
        assert_int_equal(st.refused, 0);
}

static void test_refusals(void **state)
{
        struct fixture *fx = *state;
        struct lanclient *c = NULL;
        struct lan_stats st;
        char last[64];
        int fd;

        /* the wrong key: another account's, or an old one */
        assert_int_equal(dial(fx, DEV_C, key2, &c), -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "authentication failed"));
        assert_null(c);
        /* a device that is not on the control list, whatever its key */
        assert_int_equal(dial(fx, DEV_X, key1, &c), -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "unknown device"));
        assert_int_equal(dial(fx, DEV_X, key2, &c), -EACCES);
        /* a listener expected to be another device */
        assert_int_equal(
            lanclient_connect("127.0.0.1", lan_port(fx->lan), DEV_C, key1, DEV_X, 2000, &c),
            -EACCES);
        /* a request without auth */
        fd = raw_dial(fx, 1);
        {
                json_t *h = json_pack("{s:s, s:[]}", "t", "chunks", "hashes");

                assert_int_equal(lanproto_send(fd, h, NULL, 0, lanproto_deadline(1000)), 0);
                json_decref(h);
        }
        expect_closed(fd, last, sizeof(last));
        assert_string_equal(last, "authentication required");
        /* garbage */
        fd = raw_dial(fx, 1);
        assert_int_equal(write(fd, "GET / HTTP/1.1\r\n\r\n", 18), 18);
        expect_closed(fd, last, sizeof(last));
        fd = raw_dial(fx, 1);
        assert_int_equal(write(fd, "\xff\xff\xff\xff\0\0\0\0", 8), 8);
        expect_closed(fd, last, sizeof(last));
        stats_settle(fx, 0, 6, &st);
        assert_int_equal(st.accepted, 0);
        assert_true(st.refused >= 6);
}

static void test_no_key_refuses(void **state)
{
        struct fixture *fx = *state;
        /* every address (IPv6 with IPv4 mapped, or IPv4 alone) */
        struct lan_config cfg = {.root = fx->root, .device_id = DEV_L, .addr = NULL};
        const char *peers[] = {DEV_C};
        struct lanclient *c = NULL;
        struct lan *l = NULL;
        char *db = NULL;

        assert_true(asprintf(&db, "%s/.ferry/index.db", fx->root) > 0);
        cfg.index_path = db;
        assert_int_equal(lan_start(&cfg, &l), 0);
        assert_int_equal(lan_set_peers(l, peers, 1), 0);
        assert_int_equal(lanclient_connect("127.0.0.1", lan_port(l), DEV_C, key1, NULL, 2000, &c),
                         -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "no LAN key"));
        lan_set_key(l, key1, 5);
        assert_int_equal(lanclient_connect("127.0.0.1", lan_port(l), DEV_C, key1, NULL, 2000, &c),
                         0);
        lanclient_close(c);
        lan_stop(l);
        free(db);
}

static void test_chunks_served_and_verified(void **state)
{
        struct fixture *fx = *state;
        size_t n = fx->served.n + fx->refused.n + 1, got = 0, pos = 0, k = 0;
        struct hash *hs = calloc(n, sizeof(*hs));
        struct lanclient *c = NULL;
        struct buf frames = BUF_INIT, chunk = BUF_INIT;
        struct lan_stats st;
        uint64_t off = 0;
        struct frame f;
        size_t used;

        assert_non_null(hs);
        for (size_t i = 0; i < fx->refused.n; i++)
                hs[k++] = fx->refused.chunks[i].hash;
        memset(hs[k++].b, 0x5a, HASH_LEN); /* held by nobody */
        for (size_t i = 0; i < fx->served.n; i++)
                hs[k++] = fx->served.chunks[i].hash;
        assert_int_equal(dial(fx, DEV_C, key1, &c), 0);
        assert_int_equal(lanclient_chunks(c, hs, n, &frames, &got), 0);
        assert_int_equal(got, fx->served.n);
        /* exactly the served chunks, in the order asked, with their bytes */
        for (size_t i = 0; i < fx->served.n; i++) {
                assert_int_equal(frame_parse(frames.data + pos, frames.len - pos, &f, &used), 1);
                assert_true(hash_equal(&f.hash, &fx->served.chunks[i].hash));
                assert_int_equal(frame_decode(&f, &chunk), 0);
                assert_int_equal(chunk.len, fx->served.chunks[i].size);
                assert_memory_equal(chunk.data, fx->data + off, chunk.len);
                off += chunk.len;
                pos += used;
        }
        assert_int_equal(pos, frames.len);
        /* the connection stays usable; the hook splits big lists */
        buf_reset(&frames);
        assert_int_equal(lanclient_fetch(c, hs + n - 1, 1, &frames), 0);
        assert_true(frames.len > 0);
        lanclient_close(c);
        lan_stats(fx->lan, &st);
        assert_int_equal(st.chunks, fx->served.n + 1);
        buf_free(&frames);
        buf_free(&chunk);
        free(hs);
}

static void test_upload_queued(void **state)
{
        struct fixture *fx = *state;
        const char *paths[] = {"docs/report.pdf", "notes"};
        const char *bad[] = {"../etc/passwd"};
        struct pollfd p = {.fd = lan_event_fd(fx->lan), .events = POLLIN};
        struct lanclient *c = NULL;
        struct lan_request q = {0};

        assert_int_equal(poll(&p, 1, 0), 0);
        assert_int_equal(lan_next_request(fx->lan, &q), 0);
        assert_int_equal(dial(fx, DEV_C, key1, &c), 0);
        assert_int_equal(lanclient_upload(c, 42, paths, 2, 0), 0);
        assert_int_equal(lanclient_upload(c, 43, NULL, 0, 1), 0);
        assert_int_equal(poll(&p, 1, 1000), 1);
        assert_int_equal(lan_next_request(fx->lan, &q), 1);
        assert_int_equal(q.id, 42);
        assert_string_equal(q.requester, DEV_C);
        assert_int_equal(q.npaths, 2);
        assert_string_equal(q.paths[0], "docs/report.pdf");
        assert_string_equal(q.paths[1], "notes");
        assert_false(q.all);
        lan_request_free(&q);
        assert_int_equal(poll(&p, 1, 0), 1); /* one more waits */
        assert_int_equal(lan_next_request(fx->lan, &q), 1);
        assert_int_equal(q.id, 43);
        assert_true(q.all);
        assert_int_equal(q.npaths, 0);
        lan_request_free(&q);
        assert_int_equal(poll(&p, 1, 0), 0);
        assert_int_equal(lan_next_request(fx->lan, &q), 0);

        /* a path outside the folder: refused, the connection closed */
        assert_int_equal(lanclient_upload(c, 44, bad, 1, 0), -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "bad upload request"));
        assert_int_equal(lanclient_upload(c, 44, paths, 1, 0), -EPIPE);
        lanclient_close(c);
        /* neither paths nor all */
        assert_int_equal(dial(fx, DEV_C, key1, &c), 0);
        assert_int_equal(lanclient_upload(c, 45, NULL, 0, 0), -EACCES);
        lanclient_close(c);
        assert_int_equal(lan_next_request(fx->lan, &q), 0);
}

static void test_revocation(void **state)
{
        struct fixture *fx = *state;
        const char *only_l[] = {DEV_L};
        const char *peers[] = {DEV_C};
        struct lanclient *c = NULL;
        struct buf frames = BUF_INIT;

        assert_int_equal(dial(fx, DEV_C, key1, &c), 0);
        assert_int_equal(lanclient_chunks(c, &fx->served.chunks[0].hash, 1, &frames, NULL), 0);
        assert_int_equal(lan_set_peers(fx->lan, only_l, 1), 0); /* DEV_C removed */
        assert_int_equal(lanclient_chunks(c, &fx->served.chunks[0].hash, 1, &frames, NULL),
                         -EACCES);
        assert_non_null(strstr(err_msg(-EACCES), "no longer authorised"));
        lanclient_close(c);
        assert_int_equal(dial(fx, DEV_C, key1, &c), -EACCES);

        assert_int_equal(lan_set_peers(fx->lan, peers, 1), 0);
        assert_int_equal(dial(fx, DEV_C, key1, &c), 0);
        lan_set_key(fx->lan, key2, 2); /* a device was removed: new key */
        assert_int_equal(lanclient_upload(c, 1, NULL, 0, 1), -EACCES);
        lanclient_close(c);
        assert_int_equal(dial(fx, DEV_C, key1, &c), -EACCES);
        assert_int_equal(dial(fx, DEV_C, key2, &c), 0);
        lanclient_close(c);
        buf_free(&frames);
}

static void test_connection_limit(void **state)
{
        struct fixture *fx = *state;
        struct lanclient *c = NULL;
        int fds[LAN_MAX_CONNS], fd, r = -1;
        char last[64];

        for (int i = 0; i < LAN_MAX_CONNS; i++)
                fds[i] = raw_dial(fx, 1);
        fd = raw_dial(fx, 0);
        expect_closed(fd, last, sizeof(last)); /* no hello: closed at once */
        assert_string_equal(last, "");
        for (int i = 0; i < LAN_MAX_CONNS; i++)
                close(fds[i]);
        /* the slots free up as their threads notice */
        for (int tries = 0; tries < 50 && r < 0; tries++) {
                r = dial(fx, DEV_C, key1, &c);
                if (r < 0)
                        usleep(50000);
        }
        assert_int_equal(r, 0);
        lanclient_close(c);
}

static void test_same_lan(void **state)
{
        (void)state;
        assert_true(lanclient_same_lan("10.77.1.2", 24, "10.77.1.200", 24));
        assert_false(lanclient_same_lan("10.77.1.2", 24, "10.77.2.2", 24));
        assert_false(lanclient_same_lan("10.77.1.2", 24, "10.77.1.3", 16));
        assert_true(lanclient_same_lan("10.77.1.2", 16, "10.77.200.3", 16));
        assert_true(lanclient_same_lan("10.77.1.2", 23, "10.77.0.9", 23));
        assert_false(lanclient_same_lan("10.77.1.2", 25, "10.77.1.200", 25));
        assert_true(lanclient_same_lan("192.168.1.1", 0, "8.8.8.8", 0));
        assert_false(lanclient_same_lan("10.0.0.1", 33, "10.0.0.1", 33));
        assert_true(lanclient_same_lan("fd00:1:2:3::1", 64, "fd00:1:2:3:ffff::9", 64));
        assert_false(lanclient_same_lan("fd00:1:2:3::1", 64, "fd00:1:2:4::1", 64));
        assert_false(lanclient_same_lan("10.0.0.1", 8, "::ffff:10.0.0.2", 8));
        assert_false(lanclient_same_lan("nonsense", 24, "10.0.0.1", 24));
        assert_false(lanclient_same_lan(NULL, 24, "10.0.0.1", 24));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_handshake_ok, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_key_refuses, setup, teardown),
            cmocka_unit_test_setup_teardown(test_chunks_served_and_verified, setup, teardown),
            cmocka_unit_test_setup_teardown(test_upload_queued, setup, teardown),
            cmocka_unit_test_setup_teardown(test_revocation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
            cmocka_unit_test(test_same_lan),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
