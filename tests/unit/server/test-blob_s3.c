/* test-blob_s3: the S3 chunk store (blob_s3.c) against a real S3 service,
 * the one whose address and credentials are in the environment
 * (FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY, FERRY_S3_SECRET_KEY, optional
 * FERRY_S3_REGION), as `eval "$(scripts/ceph.sh start DIR)"` sets them for
 * a throwaway Ceph RADOS Gateway. Without them the test says so loudly and
 * is skipped (exit 77).
 *
 * Each test opens a fresh bucket (created by the store). Covered: round
 * trips of raw and zstd chunks, idempotent re-puts, absent chunks, a batch
 * of 200 chunks sent at flush (and a dropped batch sending nothing),
 * prefixes, many threads on one store, a wrong secret (403), missing
 * credentials, malformed URLs, and an unreachable endpoint failing after
 * its bounded retries. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zstd.h>

#include "blob.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"

static const char *endpoint, *region;

struct fix {
        char bucket[64];
        char url[512];
        struct blob *b;
};

static void make_url(char *out, size_t cap, const char *bucket, const char *extra)
{
        snprintf(out, cap, "s3://%s?endpoint=%s&region=%s%s", bucket, endpoint, region,
                 extra ? extra : "");
}

static int setup(void **state)
{
        static int seq;
        struct fix *f = calloc(1, sizeof(*f));
        unsigned rnd;

        fsutil_random(&rnd, sizeof(rnd));
        snprintf(f->bucket, sizeof(f->bucket), "ferry-test-%d-%d-%08x", (int)getpid(), ++seq, rnd);
        make_url(f->url, sizeof(f->url), f->bucket, NULL);
        if (blob_s3_open(f->url, &f->b) < 0)
                fprintf(stderr, "blob_s3_open %s: %s\n", f->url, err_msg(-EIO));
        assert_non_null(f->b);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        blob_close(f->b);
        free(f);
        return 0;
}

static double now_sec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_roundtrip_raw(void **state)
{
        struct fix *f = *state;
        static uint8_t data[65536];
        struct buf out = BUF_INIT;
        struct hash h;
        uint8_t enc = 9;

        assert_int_equal(fsutil_random(data, sizeof(data)), 0);
        hash_buf(data, sizeof(data), &h);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 1);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_RAW);
        assert_int_equal(out.len, sizeof(data));
        assert_memory_equal(out.data, data, sizeof(data));
        /* removal: once, then it is gone */
        assert_int_equal(f->b->ops->remove(f->b, &h), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), -ENOENT);
        assert_int_equal(f->b->ops->remove(f->b, &h), -ENOENT);
        buf_free(&out);
}

static void test_roundtrip_zstd(void **state)
{
        struct fix *f = *state;
        char text[30000];
        uint8_t z[30000];
        struct buf out = BUF_INIT;
        struct hash h;
        size_t zlen, i;
        uint8_t enc = 9;

        for (i = 0; i < sizeof(text); i++)
                text[i] = "ferry carries files "[i % 20];
        hash_buf(text, sizeof(text), &h);
        zlen = ZSTD_compress(z, sizeof(z), text, sizeof(text), 1);
        assert_false(ZSTD_isError(zlen));
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_ZSTD, z, zlen), 0);
        /* given back as stored: compressed */
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_ZSTD);
        assert_int_equal(out.len, zlen);
        assert_memory_equal(out.data, z, zlen);
        /* and decoding (which checks the hash) yields the text */
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, sizeof(text));
        assert_memory_equal(out.data, text, sizeof(text));
        buf_free(&out);
}

static void test_reput_and_empty(void **state)
{
        struct fix *f = *state;
        uint8_t data[1000];
        struct buf out = BUF_INIT;
        struct hash h, he;
        uint8_t enc;

        assert_int_equal(fsutil_random(data, sizeof(data)), 0);
        hash_buf(data, sizeof(data), &h);
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, sizeof(data));
        assert_memory_equal(out.data, data, sizeof(data));
        /* the empty chunk */
        hash_buf("", 0, &he);
        assert_int_equal(blob_put(f->b, &he, FRAME_ENC_RAW, NULL, 0), 0);
        assert_int_equal(f->b->ops->get(f->b, &he, &out, &enc), 0);
        assert_int_equal(out.len, 0);
        assert_int_equal(enc, FRAME_ENC_RAW);
        buf_free(&out);
}

static void test_absent(void **state)
{
        struct fix *f = *state;
        struct hash h;
        struct buf out = BUF_INIT;
        uint8_t enc;

        hash_buf("never stored", 12, &h);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), -ENOENT);
        assert_int_equal(blob_get_raw(f->b, &h, &out), -ENOENT);
        assert_int_equal(f->b->ops->remove(f->b, &h), -ENOENT);
        assert_int_equal(f->b->ops->claim(f->b), 0);
        buf_free(&out);
}

#define NBATCH 200

static void test_batch(void **state)
{
        struct fix *f = *state;
        static uint8_t data[NBATCH][4096];
        struct hash h[NBATCH];
        struct blob_batch *bb = NULL;
        struct buf out = BUF_INIT;
        int i;

        assert_int_equal(fsutil_random(data, sizeof(data)), 0);
        assert_int_equal(f->b->ops->batch_new(f->b, &bb), 0);
        for (i = 0; i < NBATCH; i++) {
                hash_buf(data[i], sizeof(data[i]), &h[i]);
                assert_int_equal(
                    f->b->ops->put(f->b, bb, &h[i], FRAME_ENC_RAW, data[i], sizeof(data[i])), 0);
        }
        /* staged, not sent: put() does not talk to S3 for a small batch */
        assert_int_equal(f->b->ops->exists(f->b, &h[0]), 0);
        assert_int_equal(f->b->ops->flush(f->b, bb), 0);
        for (i = 0; i < NBATCH; i++) {
                assert_int_equal(f->b->ops->exists(f->b, &h[i]), 1);
                if (i % 20 == 0) {
                        assert_int_equal(blob_get_raw(f->b, &h[i], &out), 0);
                        assert_memory_equal(out.data, data[i], sizeof(data[i]));
                }
        }
        /* the batch is empty after a flush and can be used again */
        assert_int_equal(f->b->ops->flush(f->b, bb), 0);
        /* a dropped batch stores nothing */
        data[0][0] ^= 1;
        hash_buf(data[0], sizeof(data[0]), &h[0]);
        assert_int_equal(f->b->ops->put(f->b, bb, &h[0], FRAME_ENC_RAW, data[0], sizeof(data[0])),
                         0);
        f->b->ops->batch_free(f->b, bb);
        assert_int_equal(f->b->ops->exists(f->b, &h[0]), 0);
        buf_free(&out);
}

static void test_prefix(void **state)
{
        struct fix *f = *state;
        char url[600];
        struct blob *pb = NULL;
        struct hash h;

        make_url(url, sizeof(url), f->bucket, "&prefix=tenant%2Done/");
        assert_int_equal(blob_s3_open(url, &pb), 0);
        hash_buf("prefixed", 8, &h);
        assert_int_equal(blob_put(pb, &h, FRAME_ENC_RAW, (const uint8_t *)"prefixed", 8), 0);
        assert_int_equal(pb->ops->exists(pb, &h), 1);
        /* stored under the prefix, so not where the plain store looks */
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        blob_close(pb);
}

#define NTHREADS 8
#define PER_THREAD 25

static void *worker(void *arg)
{
        struct blob *b = arg;
        struct buf out = BUF_INIT;
        uint8_t data[8192];
        struct hash h;
        long bad = 0;

        for (int i = 0; i < PER_THREAD; i++) {
                fsutil_random(data, sizeof(data));
                hash_buf(data, sizeof(data), &h);
                if (blob_put(b, &h, FRAME_ENC_RAW, data, sizeof(data)) != 0 ||
                    blob_get_raw(b, &h, &out) != 0 || out.len != sizeof(data) ||
                    memcmp(out.data, data, sizeof(data)) != 0)
                        bad++;
        }
        buf_free(&out);
        return (void *)bad;
}

static void test_threads(void **state)
{
        struct fix *f = *state;
        pthread_t t[NTHREADS];
        void *bad;
        int i;

        for (i = 0; i < NTHREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, worker, f->b), 0);
        for (i = 0; i < NTHREADS; i++) {
                assert_int_equal(pthread_join(t[i], &bad), 0);
                assert_int_equal((long)bad, 0);
        }
}

static void test_wrong_secret(void **state)
{
        char url[512], *secret = strdup(getenv("FERRY_S3_SECRET_KEY"));
        struct blob *b = NULL;
        int r;

        (void)state;
        make_url(url, sizeof(url), "ferry-test-wrong-secret", NULL);
        setenv("FERRY_S3_SECRET_KEY", "not-the-secret", 1);
        r = blob_s3_open(url, &b);
        setenv("FERRY_S3_SECRET_KEY", secret, 1);
        assert_int_equal(r, -EACCES);
        assert_null(b);
        assert_non_null(strstr(err_msg(r), "HTTP 403"));
        assert_non_null(strstr(err_msg(r), "FERRY_S3_SECRET_KEY"));
        /* no credentials at all */
        unsetenv("FERRY_S3_SECRET_KEY");
        r = blob_s3_open(url, &b);
        setenv("FERRY_S3_SECRET_KEY", secret, 1);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err_msg(r), "FERRY_S3_SECRET_KEY"));
        free(secret);
}

static void test_bad_urls(void **state)
{
        static const char *bad[] = {
            "s3:/bucket?endpoint=http://127.0.0.1:1&region=r",
            "s3://?endpoint=http://127.0.0.1:1&region=r",
            "s3://Bad_Bucket?endpoint=http://127.0.0.1:1&region=r",
            "s3://ab?endpoint=http://127.0.0.1:1&region=r",
            "s3://bucket",
            "s3://bucket?region=r",
            "s3://bucket?endpoint=http://127.0.0.1:1",
            "s3://bucket?endpoint=ftp://127.0.0.1:1&region=r",
            "s3://bucket?endpoint=http://key:secret@127.0.0.1:1&region=r",
            "s3://bucket?endpoint=http://&region=r",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r&region=s",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r&secret=x",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r/x",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r&prefix=../x",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r&prefix=/abs",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r&prefix=a//b",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r%2",
            "s3://bucket?endpoint=http://127.0.0.1:1&region=r&noequals",
        };
        struct blob *b = NULL;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = blob_s3_open(bad[i], &b);
                if (r != -EINVAL)
                        fprintf(stderr, "accepted or wrong code %d: %s\n", r, bad[i]);
                assert_int_equal(r, -EINVAL);
                assert_null(b);
                assert_non_null(strstr(err_msg(r), "S3 URL"));
        }
}

/* A port nothing listens on: bound, then closed. */
static int closed_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static void test_unreachable(void **state)
{
        char url[256];
        struct blob *b = NULL;
        double t0, dt;
        int r;

        (void)state;
        snprintf(url, sizeof(url), "s3://ferry-test?endpoint=http://127.0.0.1:%d&region=%s",
                 closed_port(), region);
        t0 = now_sec();
        r = blob_s3_open(url, &b);
        dt = now_sec() - t0;
        assert_int_equal(r, -EHOSTDOWN);
        assert_null(b);
        /* retried with backoff (50 + 100 + ... + 800 ms), then given up */
        assert_true(dt >= 1.4);
        assert_true(dt < 10.0);
        assert_non_null(strstr(err_msg(r), "after 6 tries"));
        assert_non_null(strstr(err_msg(r), "ferry-test"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_roundtrip_raw, setup, teardown),
            cmocka_unit_test_setup_teardown(test_roundtrip_zstd, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reput_and_empty, setup, teardown),
            cmocka_unit_test_setup_teardown(test_absent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
            cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
            cmocka_unit_test(test_wrong_secret),
            cmocka_unit_test(test_bad_urls),
            cmocka_unit_test(test_unreachable),
        };

        endpoint = getenv("FERRY_S3_ENDPOINT");
        region = getenv("FERRY_S3_REGION");
        if (!region || !*region)
                region = "default";
        if (!endpoint || !*endpoint || !getenv("FERRY_S3_ACCESS_KEY") ||
            !getenv("FERRY_S3_SECRET_KEY")) {
                printf("SKIP: no S3 endpoint (set FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY and "
                       "FERRY_S3_SECRET_KEY, e.g. eval \"$(scripts/ceph.sh start DIR)\")\n");
                fprintf(stderr, "SKIP: no S3 endpoint\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
