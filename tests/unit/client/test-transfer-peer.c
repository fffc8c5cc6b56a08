/* Unit tests for the LAN-first chunk fetch of downloads (transfer.h's
 * peer_fetch hook) against a scripted server (fakesrv.c) for the rest: the
 * peer is asked first for each window's missing chunks, the server only for
 * what the peer lacks, and the bytes from each source are counted; a
 * failing peer is asked no more and a lying one is dropped, the file still
 * ending right from the server. Then the whole path for real: a LAN
 * listener (lan.c) serving its folder, lanclient_fetch as the hook. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "chunkfix.h"
#include "fakesrv.h"
#include "frame.h"
#include "index.h"
#include "lan.h"
#include "lanclient.h"
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "remote.h"
#include "testutil.h"
#include "transfer.h"

#define DEV_L "1111aaaa1111aaaa1111aaaa1111aaaa"
#define DEV_C "2222bbbb2222bbbb2222bbbb2222bbbb"
#define BIG (6u << 20) /* two download windows */

static const uint8_t key1[LANPROTO_KEY_LEN] = {1, 2, 3};

struct fixture {
        char *root, *peer_root;
        struct fakesrv *srv;
        struct remote *remote;
        struct chunkfix cf; /* the version to download; its fetch counts the server's chunks */
        /* the fake peer */
        int mode; /* 0: holds the even chunks, 1: fails, 2: lies */
        int calls;
        size_t asked;
};

static int handler(void *ud, const struct fakesrv_request *req, struct buf *out)
{
        struct fixture *fx = ud;

        if (strcmp(req->path, "/api/v1/chunks/fetch") != 0)
                return 404;
        return chunkfix_fetch(&fx->cf, req->body, out, 0);
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        fx->root = testutil_mkdtemp_alloc("tpeer");
        fx->peer_root = testutil_mkdtemp_alloc("tpeer-l");
        assert_non_null(fx->root);
        assert_non_null(fx->peer_root);
        chunkfix_init(&fx->cf, BIG, 42, fx->peer_root);
        assert_int_equal(fakesrv_start(handler, fx, &fx->srv), 0);
        assert_int_equal(remote_new(fakesrv_url(fx->srv), "token", &fx->remote), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        remote_free(fx->remote);
        fakesrv_stop(fx->srv);
        chunkfix_free(&fx->cf);
        assert_int_equal(testutil_rm_rf(fx->root), 0);
        assert_int_equal(testutil_rm_rf(fx->peer_root), 0);
        free(fx->root);
        free(fx->peer_root);
        free(fx);
        return 0;
}

static int fake_peer(void *ud, const struct hash *hashes, size_t n, struct buf *frames)
{
        struct fixture *fx = ud;

        fx->calls++;
        fx->asked += n;
        if (fx->mode == 1)
                return -EIO;
        for (size_t i = 0; i < n; i++) {
                size_t k = chunkfix_find(&fx->cf, &hashes[i]);

                assert_true(k != SIZE_MAX);
                for (size_t j = 0; j < i; j++) /* distinct */
                        assert_false(hash_equal(&hashes[i], &hashes[j]));
                if (k % 2 != 0)
                        continue;
                /* a liar sends the next chunk's bytes under this hash */
                k = fx->mode == 2 && k + 1 < fx->cf.m.n ? k + 1 : k;
                chunkfix_frame(&fx->cf, frames, &hashes[i], k, 1);
        }
        return 0;
}

static void download(struct fixture *fx, struct transfer *t)
{
        struct dl_job job = {0};
        char *p = path_join(fx->root, "f.bin");
        uint8_t *got = malloc(fx->cf.len);
        int fd;

        job.path = strdup("f.bin");
        for (size_t i = 0; i < fx->cf.m.n; i++)
                assert_int_equal(
                    manifest_add(&job.m, &fx->cf.m.chunks[i].hash, fx->cf.m.chunks[i].size), 0);
        job.m.file_hash = fx->cf.m.file_hash;
        job.mode = 0644;
        job.mtime_ns = 1000000000;
        assert_int_equal(transfer_download(t, &job, 1, NULL), 0);
        fd = open(p, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, got, fx->cf.len), (ssize_t)fx->cf.len);
        assert_memory_equal(got, fx->cf.data, fx->cf.len);
        close(fd);
        dl_job_free(&job);
        free(got);
        free(p);
}

static void test_peer_first_server_for_rest(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {
            .remote = fx->remote, .root = fx->root, .peer_fetch = fake_peer, .peer_ud = fx};
        size_t even = (fx->cf.m.n + 1) / 2;

        download(fx, &t);
        assert_int_equal(fx->calls, 2); /* one per window */
        assert_int_equal(fx->asked, fx->cf.m.n);
        assert_int_equal(t.chunks_lan, even);
        assert_int_equal(t.chunks_fetched, fx->cf.m.n - even);
        assert_int_equal(fx->cf.asked, fx->cf.m.n - even);
        assert_int_equal(fx->cf.asked_even, 0);
        assert_true(t.bytes_lan > 0);
        assert_true(t.bytes_fetched > 0);
}

static void test_failing_peer_is_dropped(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {
            .remote = fx->remote, .root = fx->root, .peer_fetch = fake_peer, .peer_ud = fx};

        fx->mode = 1;
        download(fx, &t);
        assert_int_equal(fx->calls, 1);
        assert_int_equal(t.chunks_lan, 0);
        assert_int_equal(t.bytes_lan, 0);
        assert_int_equal(t.chunks_fetched, fx->cf.m.n);
}

static void test_lying_peer_is_dropped(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {
            .remote = fx->remote, .root = fx->root, .peer_fetch = fake_peer, .peer_ud = fx};

        fx->mode = 2;
        download(fx, &t);
        assert_int_equal(fx->calls, 1);
        assert_int_equal(t.chunks_lan, 0);
        assert_int_equal(t.chunks_fetched, fx->cf.m.n);
}

/* The peer's folder holds the first part of the version; the LAN carries
 * those chunks, the server the rest. */
static void test_real_lan_peer(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.remote = fx->remote, .root = fx->root, .peer_fetch = lanclient_fetch};
        struct lan_config cfg = {.root = fx->peer_root, .device_id = DEV_L, .addr = "127.0.0.1"};
        const char *peers[] = {DEV_C};
        struct index_entry e = {0};
        struct manifest part = {0};
        struct lanclient *c = NULL;
        struct index *idx = NULL;
        struct lan *l = NULL;
        struct lan_stats st;
        char *db = NULL, *p = NULL;
        size_t have = fx->cf.m.n / 2;
        struct stat sb;
        int fd;

        assert_true(asprintf(&p, "%s/.ferry", fx->peer_root) > 0);
        assert_int_equal(mkdir(p, 0700), 0);
        free(p);
        assert_true(asprintf(&db, "%s/.ferry/index.db", fx->peer_root) > 0);
        assert_int_equal(index_open(db, &idx), 0);
        p = path_join(fx->peer_root, "part.bin");
        fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, fx->cf.data, fx->cf.offs[have]), (ssize_t)fx->cf.offs[have]);
        assert_int_equal(fstat(fd, &sb), 0);
        close(fd);
        free(p);
        for (size_t i = 0; i < have; i++)
                assert_int_equal(
                    manifest_add(&part, &fx->cf.m.chunks[i].hash, fx->cf.m.chunks[i].size), 0);
        localfs_entry_stat(&e, &sb);
        e.path = "part.bin";
        e.seq = 1;
        assert_int_equal(index_put(idx, &e, &part), 0);
        cfg.index_path = db;
        assert_int_equal(lan_start(&cfg, &l), 0);
        assert_int_equal(lan_set_peers(l, peers, 1), 0);
        lan_set_key(l, key1, 1);
        assert_int_equal(lanclient_connect("127.0.0.1", lan_port(l), DEV_C, key1, DEV_L,
                                           LANCLIENT_CONNECT_MS, &c),
                         0);
        t.peer_ud = c;
        download(fx, &t);
        assert_int_equal(t.chunks_lan, have);
        assert_int_equal(t.chunks_fetched, fx->cf.m.n - have);
        assert_int_equal(fx->cf.asked, fx->cf.m.n - have);
        assert_true(t.bytes_lan >= fx->cf.offs[have]);
        lan_stats(l, &st);
        assert_int_equal(st.chunks, have);
        assert_int_equal(st.bytes, t.bytes_lan);
        print_message("LAN: %llu chunks, %llu bytes; server: %llu chunks, %llu bytes\n",
                      (unsigned long long)t.chunks_lan, (unsigned long long)t.bytes_lan,
                      (unsigned long long)t.chunks_fetched, (unsigned long long)t.bytes_fetched);
        lanclient_close(c);
        lan_stop(l);
        index_close(idx);
        manifest_free(&part);
        free(db);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_peer_first_server_for_rest, setup, teardown),
            cmocka_unit_test_setup_teardown(test_failing_peer_is_dropped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lying_peer_is_dropped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_lan_peer, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
