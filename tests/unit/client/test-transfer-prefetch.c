/* Unit tests for the download pipeline (dlwin.h) against a scripted
 * server (fakesrv.c): a download of many windows, the next one fetched
 * while the last one is written, puts every file in place in job order;
 * a server that refuses, or truncates its answer to, a prefetched window
 * fails the download with nothing wrong in place and no temporary file
 * left (a large file's resume file holds only verified chunks, and the
 * next download obtains only the rest); a LAN peer still serves its
 * chunks first; and with a bandwidth limit (one connection, no fetcher
 * thread) the same download still ends right. */
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
#include "localfs.h"
#include "manifest.h"
#include "path.h"
#include "remote.h"
#include "testutil.h"
#include "transfer.h"

#define BIG (14u << 20) /* four windows and a bit */
#define NJOBS 5

struct fixture {
        char *root;
        struct fakesrv *srv;
        struct remote *remote;
        struct chunkfix cf; /* big.bin's content; the other files are parts of it */
        struct dl_job jobs[NJOBS];
        size_t first[NJOBS]; /* the chunk of m each job starts at */
        /* the server */
        int fail_req;  /* this fetch request (1-based) fails; 0: none */
        int fail_mode; /* 1: refused (500), 2: answer cut short */
        int nreq;
        /* the peer: holds the even chunks */
        int peer_calls;
        /* hooks */
        size_t done_order[NJOBS];
        size_t ndone;
};

/* One request at a time reaches it (the client has at most one fetch out). */
static int handler(void *ud, const struct fakesrv_request *req, struct buf *out)
{
        struct fixture *fx = ud;
        int st;

        if (strcmp(req->path, "/api/v1/chunks/fetch") != 0)
                return 404;
        fx->nreq++;
        if (fx->nreq == fx->fail_req && fx->fail_mode == 1) {
                buf_append(out, "{\"error\":\"no\"}", 14);
                return 500;
        }
        st = chunkfix_fetch(&fx->cf, req->body, out, 3);
        if (st == 200 && fx->nreq == fx->fail_req && fx->fail_mode == 2)
                out->len -= 100;
        return st;
}

/* Job j: chunks [a, b) of m. */
static void make_job(struct fixture *fx, size_t j, const char *path, size_t a, size_t b)
{
        struct dl_job *job = &fx->jobs[j];

        job->path = strdup(path);
        for (size_t i = a; i < b; i++)
                assert_int_equal(
                    manifest_add(&job->m, &fx->cf.m.chunks[i].hash, fx->cf.m.chunks[i].size), 0);
        manifest_file_hash(&job->m, &job->m.file_hash);
        job->m.size = fx->cf.offs[b - 1] + fx->cf.m.chunks[b - 1].size - fx->cf.offs[a];
        job->mode = 0644;
        job->mtime_ns = 1000000000;
        fx->first[j] = a;
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        size_t mid = 0;

        assert_non_null(fx);
        fx->root = testutil_mkdtemp_alloc("tprefetch");
        assert_non_null(fx->root);
        chunkfix_init(&fx->cf, BIG, 7, fx->root);
        while (fx->cf.offs[mid] < (3u << 20)) /* a file of ~3 MiB: not resumable */
                mid++;
        /* small, medium (across windows), small, large (resumable), small */
        make_job(fx, 0, "a.bin", 1, 2);
        make_job(fx, 1, "mid.bin", 2, 2 + mid);
        make_job(fx, 2, "c.bin", 3, 5);
        make_job(fx, 3, "big.bin", 0, fx->cf.m.n);
        make_job(fx, 4, "e.bin", fx->cf.m.n - 1, fx->cf.m.n);
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
        for (size_t j = 0; j < NJOBS; j++)
                dl_job_free(&fx->jobs[j]);
        chunkfix_free(&fx->cf);
        assert_int_equal(testutil_rm_rf(fx->root), 0);
        free(fx->root);
        free(fx);
        return 0;
}

static int done(void *ud, struct dl_job *j, const struct stat *st)
{
        struct fixture *fx = ud;

        (void)st;
        assert_true(fx->ndone < NJOBS);
        fx->done_order[fx->ndone++] = (size_t)(j - fx->jobs);
        return 0;
}

static int fake_peer(void *ud, const struct hash *hashes, size_t n, struct buf *frames)
{
        struct fixture *fx = ud;

        fx->peer_calls++;
        for (size_t i = 0; i < n; i++) {
                size_t k = chunkfix_find(&fx->cf, &hashes[i]);

                assert_true(k != SIZE_MAX);
                if (k % 2 == 0)
                        chunkfix_frame(&fx->cf, frames, &hashes[i], k, 0);
        }
        return 0;
}

/* Temporary files in root other than resume files. */
static int count_temp(const char *dir)
{
        return testutil_count_names(dir, PATH_TEMP_PREFIX, localfs_is_resume_name);
}

/* 1 when job j's file is in place with its content, 0 when absent. */
static int in_place(struct fixture *fx, size_t j)
{
        const struct dl_job *job = &fx->jobs[j];
        char *p = path_join(fx->root, job->path);
        uint8_t *got = malloc(job->m.size + 1);
        ssize_t k;
        int fd = open(p, O_RDONLY);

        free(p);
        if (fd < 0) {
                free(got);
                return 0;
        }
        k = read(fd, got, job->m.size + 1);
        close(fd);
        assert_int_equal(k, (ssize_t)job->m.size);
        assert_memory_equal(got, fx->cf.data + fx->cf.offs[fx->first[j]], job->m.size);
        free(got);
        return 1;
}

/* The size of big.bin's resume file, which must hold a verified prefix;
 * -1 when there is none. */
static off_t resume_prefix(struct fixture *fx)
{
        char name[LOCALFS_RESUME_NAME_LEN + 1];
        uint8_t *got;
        struct stat st;
        off_t size;
        char *p;
        int fd;

        localfs_resume_name("big.bin", name);
        p = path_join(fx->root, name);
        fd = open(p, O_RDONLY);
        free(p);
        if (fd < 0)
                return -1;
        assert_int_equal(fstat(fd, &st), 0);
        size = st.st_size;
        got = malloc((size_t)size + 1);
        assert_int_equal(read(fd, got, (size_t)size), (ssize_t)size);
        assert_memory_equal(got, fx->cf.data, (size_t)size);
        close(fd);
        free(got);
        return size;
}

static void test_many_windows_in_order(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.remote = fx->remote, .root = fx->root};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        size_t total = 0;

        assert_int_equal(transfer_download(&t, fx->jobs, NJOBS, &hooks), 0);
        for (size_t j = 0; j < NJOBS; j++) {
                assert_int_equal(in_place(fx, j), 1);
                assert_int_equal(fx->done_order[j], j);
                total += fx->jobs[j].m.n;
        }
        assert_int_equal(fx->ndone, NJOBS);
        assert_int_equal(t.chunks_fetched, total);
        assert_int_equal(fx->cf.asked, total);
        assert_true(fx->nreq >= 5);
        assert_int_equal(count_temp(fx->root), 0);
        assert_int_equal(resume_prefix(fx), -1);
}

/* The request for window 3 fails while window 2 is being written: the
 * download fails, no file is in place (none reached a rename), no
 * temporary file is left but big.bin's resume file, which holds only what
 * was verified. */
static void failed_prefetch(struct fixture *fx, int mode, int code)
{
        struct transfer t = {.remote = fx->remote, .root = fx->root};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        off_t kept;

        fx->fail_req = 3;
        fx->fail_mode = mode;
        assert_int_equal(transfer_download(&t, fx->jobs, NJOBS, &hooks), code);
        assert_int_equal(fx->ndone, 0);
        for (size_t j = 0; j < NJOBS; j++)
                assert_int_equal(in_place(fx, j), 0);
        assert_int_equal(count_temp(fx->root), 0);
        kept = resume_prefix(fx);
        assert_true(kept >= 0);
        assert_true((uint64_t)kept < fx->cf.m.size);
}

static void test_refused_prefetch(void **state)
{
        failed_prefetch(*state, 1, -EIO);
}

static void test_truncated_prefetch(void **state)
{
        failed_prefetch(*state, 2, -EPROTO);
}

/* After a failed prefetch, the next download of big.bin obtains only the
 * chunks its resume file lacks. */
static void test_resume_after_failed_prefetch(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.remote = fx->remote, .root = fx->root};
        struct dl_hooks hooks = {.done = done, .ud = fx};
        size_t have = 0;
        off_t kept;

        fx->fail_req = 2;
        fx->fail_mode = 1;
        assert_true(transfer_download(&t, &fx->jobs[3], 1, &hooks) < 0);
        kept = resume_prefix(fx);
        assert_true(kept > 0);
        while (have < fx->cf.m.n && fx->cf.offs[have] < (uint64_t)kept)
                have++;
        assert_int_equal(fx->cf.offs[have], (uint64_t)kept);
        fx->fail_req = 0;
        fx->cf.asked = 0;
        t.chunks_fetched = 0;
        assert_int_equal(transfer_download(&t, &fx->jobs[3], 1, &hooks), 0);
        assert_int_equal(fx->cf.asked, fx->cf.m.n - have);
        assert_int_equal(t.chunks_fetched, fx->cf.m.n - have);
        assert_int_equal(in_place(fx, 3), 1);
        assert_int_equal(resume_prefix(fx), -1);
        assert_int_equal(count_temp(fx->root), 0);
}

/* The peer is asked for each window on the caller's thread, the server
 * for the rest on the fetcher's. */
static void test_lan_peer_with_prefetch(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {
            .remote = fx->remote, .root = fx->root, .peer_fetch = fake_peer, .peer_ud = fx};
        size_t even = (fx->cf.m.n + 1) / 2;

        assert_int_equal(transfer_download(&t, &fx->jobs[3], 1, NULL), 0);
        assert_int_equal(in_place(fx, 3), 1);
        assert_int_equal(t.chunks_lan, even);
        assert_int_equal(t.chunks_fetched, fx->cf.m.n - even);
        assert_int_equal(fx->cf.asked, fx->cf.m.n - even);
        assert_int_equal(fx->cf.asked_even, 0);
        assert_true(fx->peer_calls >= 4);
        assert_int_equal(fx->peer_calls, fx->nreq);
}

/* With a bandwidth limit the windows go one after the other on the one
 * connection; the result is the same. */
static void test_limited_one_connection(void **state)
{
        struct fixture *fx = *state;
        struct transfer t = {.remote = fx->remote, .root = fx->root};
        struct dl_hooks hooks = {.done = done, .ud = fx};

        remote_set_limits(fx->remote, 0, INT64_C(1) << 40);
        assert_int_equal(transfer_download(&t, fx->jobs, NJOBS, &hooks), 0);
        for (size_t j = 0; j < NJOBS; j++)
                assert_int_equal(in_place(fx, j), 1);
        assert_int_equal(count_temp(fx->root), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_many_windows_in_order, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refused_prefetch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_truncated_prefetch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resume_after_failed_prefetch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lan_peer_with_prefetch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_limited_one_connection, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
