/* Unit tests for manifest_update_from_fd(): for random files of several
 * sizes and many edits (overwrite, insert, delete, append, truncate, two
 * edits apart, unrelated or empty old content), the manifest built from the
 * old chunk list must equal manifest_from_fd()'s on the new content, field
 * by field. The old chunk list goes through the blob codec first, as it
 * does through the index (no fingerprints, no file hash). Also prints how
 * long both take on a 256 MiB file after a 1-byte insert (not an
 * assertion: the machine is shared). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "chunker.h"
#include "manifest.h"
#include "testutil.h"

#define MIB (1024u * 1024u)

static char tmpdir[512];
static char fpath[600];

static int setup(void **state)
{
        (void)state;
        if (testutil_mkdtemp(tmpdir, sizeof(tmpdir), "manifest_update") < 0)
                return -1;
        snprintf(fpath, sizeof(fpath), "%s/f", tmpdir);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        unlink(fpath);
        return rmdir(tmpdir);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
        uint64_t x = seed | 1;

        for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p[i] = (uint8_t)(x >> 24);
        }
}

/* Writes data to the test file and returns it opened for reading. */
static int make_file(const uint8_t *data, size_t n)
{
        int fd = open(fpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        assert_true(fd >= 0);
        for (size_t off = 0; off < n;) {
                ssize_t w = write(fd, data + off, n - off);

                assert_true(w > 0);
                off += (size_t)w;
        }
        close(fd);
        fd = open(fpath, O_RDONLY);
        assert_true(fd >= 0);
        return fd;
}

/* The old manifest as the index gives it back: chunks and sizes only. */
static void old_manifest(const uint8_t *data, size_t n, struct manifest *old)
{
        struct manifest m = MANIFEST_INIT;
        uint8_t *blob;
        size_t len;
        int fd = make_file(data, n);

        assert_int_equal(manifest_from_fd(fd, &m, NULL, NULL), 0);
        close(fd);
        assert_int_equal(manifest_to_blob(&m, &blob, &len), 0);
        assert_int_equal(manifest_from_blob(blob, len, old), 0);
        free(blob);
        manifest_free(&m);
}

static void assert_same(const struct manifest *want, const struct manifest *got)
{
        assert_int_equal(got->n, want->n);
        assert_int_equal(got->size, want->size);
        for (size_t i = 0; i < want->n; i++) {
                const struct chunk_ref *a = &want->chunks[i], *b = &got->chunks[i];

                assert_int_equal(b->size, a->size);
                assert_memory_equal(b->hash.b, a->hash.b, HASH_LEN);
                assert_int_equal(b->has_fp, a->has_fp);
                assert_true(b->has_fp);
                assert_true(b->fp == a->fp);
        }
        assert_memory_equal(got->file_hash.b, want->file_hash.b, HASH_LEN);
}

/* The update from old content o to new content nw equals from_fd's. */
static void check(const uint8_t *o, size_t on, const uint8_t *nw, size_t nn)
{
        struct manifest old = MANIFEST_INIT, want = MANIFEST_INIT, got = MANIFEST_INIT;
        int fd;

        old_manifest(o, on, &old);
        fd = make_file(nw, nn);
        assert_int_equal(manifest_from_fd(fd, &want, NULL, NULL), 0);
        assert_int_equal(manifest_update_from_fd(fd, &old, &got), 0);
        close(fd);
        assert_same(&want, &got);
        manifest_free(&old);
        manifest_free(&want);
        manifest_free(&got);
}

enum edit { OVER, INS, DEL };

/* nw = o with one edit at off (n bytes inserted, deleted or overwritten);
 * returns the new length. nw must hold on + n bytes. */
static size_t edit(const uint8_t *o, size_t on, uint8_t *nw, enum edit e, size_t off, size_t n)
{
        memcpy(nw, o, off);
        switch (e) {
        case OVER:
                memcpy(nw + off, o + off, on - off);
                for (size_t i = 0; i < n && off + i < on; i++)
                        nw[off + i] ^= 0x5a;
                return on;
        case INS:
                fill_random(nw + off, n, off + n + 7);
                memcpy(nw + off + n, o + off, on - off);
                return on + n;
        case DEL:
                memcpy(nw + off, o + off + n, on - off - n);
                return on - n;
        }
        return 0;
}

/* Every single-edit case on random content of n bytes. */
static void edits_of_size(size_t n)
{
        uint8_t *o = malloc(n + 1), *nw = malloc(n + 400 * 1024);
        size_t nn;

        assert_non_null(o);
        assert_non_null(nw);
        fill_random(o, n, n * 31 + 1);

        check(o, n, o, n); /* unchanged */
        if (n > 0) {
                nn = edit(o, n, nw, OVER, 0, 1);
                check(o, n, nw, nn);
                nn = edit(o, n, nw, OVER, n / 2, 1);
                check(o, n, nw, nn);
                nn = edit(o, n, nw, OVER, n - 1, 1);
                check(o, n, nw, nn);
                nn = edit(o, n, nw, DEL, n / 2, 1);
                check(o, n, nw, nn);
                nn = edit(o, n, nw, DEL, n / 3, n / 3 < 5000 ? n / 3 : 5000);
                check(o, n, nw, nn);
                check(o, n, o, n / 2); /* truncate to half */
                check(o, n, o, n - 1); /* truncate by a byte */
                check(o, n, o, 0);     /* truncate to 0 */
                check(NULL, 0, o, n);  /* grow from 0 */
                check(o, n / 2, o, n); /* append */
                check(o, n - 1, o, n); /* append a byte */
        }
        nn = edit(o, n, nw, INS, n / 2, 1);
        check(o, n, nw, nn);
        nn = edit(o, n, nw, INS, n / 2, 1000);
        check(o, n, nw, nn);
        nn = edit(o, n, nw, INS, 0, 1);
        check(o, n, nw, nn);
        nn = edit(o, n, nw, INS, 0, 1000);
        check(o, n, nw, nn);
        memcpy(nw, o, n);
        fill_random(nw + n, 300 * 1024, 99);
        check(o, n, nw, n + 300 * 1024); /* append 300 KiB */
        free(o);
        free(nw);
}

static void test_tiny(void **state)
{
        (void)state;
        edits_of_size(0);
        edits_of_size(1);
        edits_of_size(1000);
        edits_of_size(CHUNK_MIN);
}

/* Just over CHUNK_MIN: one chunk, cut by EOF. */
static void test_one_chunk(void **state)
{
        struct manifest m = MANIFEST_INIT;
        uint8_t *d = malloc(CHUNK_MIN + 100);
        int fd;

        (void)state;
        assert_non_null(d);
        fill_random(d, CHUNK_MIN + 100, 5);
        fd = make_file(d, CHUNK_MIN + 100);
        assert_int_equal(manifest_from_fd(fd, &m, NULL, NULL), 0);
        close(fd);
        assert_int_equal(m.n, 1);
        manifest_free(&m);
        free(d);
        edits_of_size(CHUNK_MIN + 100);
        edits_of_size(CHUNK_MAX);
}

static void test_medium(void **state)
{
        (void)state;
        edits_of_size(3 * MIB + 12345);
}

static void test_large(void **state)
{
        (void)state;
        edits_of_size(21 * MIB + 777);
}

/* Edits far apart with different shifts: insert 1 byte near the start,
 * delete 1000 near the end, overwrite in between. */
static void test_two_edits(void **state)
{
        size_t n = 21 * MIB, nn;
        uint8_t *o = malloc(n), *a = malloc(n + 30000), *b = malloc(n + 30000);

        (void)state;
        assert_true(o && a && b);
        fill_random(o, n, 42);
        nn = edit(o, n, a, INS, n / 4, 1);
        nn = edit(a, nn, b, DEL, 3 * n / 4, 1000);
        check(o, n, b, nn);
        nn = edit(o, n, a, OVER, 100, 1);
        nn = edit(a, nn, b, OVER, n - 100, 1);
        check(o, n, b, nn);
        nn = edit(o, n, a, DEL, n / 5, 7);
        nn = edit(a, nn, b, INS, n / 2, 3);
        nn = edit(b, nn, a, INS, 4 * n / 5, 20000);
        check(o, n, a, nn);
        free(o);
        free(a);
        free(b);
}

/* Old chunk list of unrelated content, and of nothing. */
static void test_unrelated(void **state)
{
        size_t n = 9 * MIB;
        uint8_t *o = malloc(n), *nw = malloc(n);

        (void)state;
        assert_true(o && nw);
        fill_random(o, n, 1);
        fill_random(nw, n, 2);
        check(o, n, nw, n);
        check(o, n, nw, n / 3);
        check(NULL, 0, nw, n);
        /* zeros: every chunk the same */
        memset(o, 0, n);
        memset(nw, 0, n);
        check(o, n, nw, n - 5);
        check(o, n / 2, nw, n);
        free(o);
        free(nw);
}

static double now(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A figure, not a check of speed: 256 MiB with FERRY_TEST_TIMING=1 (as
 * bench/ does), 16 MiB otherwise, so that the suite (and its ASan run)
 * stays quick while the path is still exercised. */
static void test_timing(void **state)
{
        size_t n = (getenv("FERRY_TEST_TIMING") ? 256 : 16) * MIB, nn;
        struct manifest old = MANIFEST_INIT, want = MANIFEST_INIT, got = MANIFEST_INIT;
        uint8_t *o = malloc(n + 1), *nw = malloc(n + 1);
        double t0, t1, t2;
        int fd;

        (void)state;
        assert_true(o && nw);
        fill_random(o, n, 3);
        old_manifest(o, n, &old);
        nn = edit(o, n, nw, INS, n / 2, 1);
        free(o);
        fd = make_file(nw, nn);
        free(nw);
        t0 = now();
        assert_int_equal(manifest_from_fd(fd, &want, NULL, NULL), 0);
        t1 = now();
        assert_int_equal(manifest_update_from_fd(fd, &old, &got), 0);
        t2 = now();
        close(fd);
        assert_same(&want, &got);
        printf("# %zu MiB, 1-byte insert: manifest_from_fd %.3f s, manifest_update_from_fd "
               "%.3f s\n",
               n / MIB, t1 - t0, t2 - t1);
        manifest_free(&old);
        manifest_free(&want);
        manifest_free(&got);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tiny),      cmocka_unit_test(test_one_chunk),
            cmocka_unit_test(test_medium),    cmocka_unit_test(test_large),
            cmocka_unit_test(test_two_edits), cmocka_unit_test(test_unrelated),
            cmocka_unit_test(test_timing),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
