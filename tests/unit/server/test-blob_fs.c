/* test-blob_fs: the local chunk store (blob_fs.c) — round trips of raw and
 * compressed chunks, compression at rest only when it pays, the on-disk
 * layout, idempotent puts, batches (nothing in place before flush, nothing
 * left when dropped), the sweep of stale temp files, that no temporary
 * file is left behind, removal (the GC) and the claim that keeps an offline
 * GC from running next to another process on the same store. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zstd.h>

#include "blob.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"
#include "srvtest.h"

struct fix {
        char *dir;
        char chunks[4200];
        struct blob *b;
};

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));

        f->dir = srvtest_tmpdir();
        snprintf(f->chunks, sizeof(f->chunks), "%s/chunks", f->dir);
        assert_int_equal(blob_fs_open(f->chunks, &f->b), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        blob_close(f->b);
        srvtest_rmtree(f->dir);
        free(f);
        return 0;
}

/* Size of the file holding h, or -1. */
static long stored_size(struct fix *f, const struct hash *h)
{
        char hex[HASH_HEX_LEN + 1], path[4400];
        struct stat st;

        hash_to_hex(h, hex);
        snprintf(path, sizeof(path), "%s/%.2s/%s", f->chunks, hex, hex);
        return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_raw_compressible(void **state)
{
        struct fix *f = *state;
        uint8_t data[100000];
        struct buf out = BUF_INIT;
        struct hash h;
        uint8_t enc;

        memset(data, 'z', sizeof(data));
        hash_buf(data, sizeof(data), &h);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 1);
        /* Stored compressed, at its fan-out path. */
        assert_true(stored_size(f, &h) > 0);
        assert_true(stored_size(f, &h) < 1000);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_ZSTD);
        buf_reset(&out);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, sizeof(data));
        assert_memory_equal(out.data, data, sizeof(data));
        buf_free(&out);
}

static void test_raw_incompressible(void **state)
{
        struct fix *f = *state;
        uint8_t data[50000];
        struct buf out = BUF_INIT;
        struct hash h;
        uint8_t enc = 9;

        assert_int_equal(fsutil_random(data, sizeof(data)), 0);
        hash_buf(data, sizeof(data), &h);
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(stored_size(f, &h), (long)sizeof(data) + 1);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_RAW);
        assert_int_equal(out.len, sizeof(data));
        assert_memory_equal(out.data, data, sizeof(data));
        /* A second put of the same hash changes nothing. */
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(stored_size(f, &h), (long)sizeof(data) + 1);
        buf_free(&out);
}

static void test_zstd_kept_as_sent(void **state)
{
        struct fix *f = *state;
        char text[20000];
        uint8_t z[20000];
        struct buf out = BUF_INIT;
        struct hash h;
        size_t zlen, i;
        uint8_t enc;

        for (i = 0; i < sizeof(text); i++)
                text[i] = "ferry sync "[i % 11];
        hash_buf(text, sizeof(text), &h);
        zlen = ZSTD_compress(z, sizeof(z), text, sizeof(text), 3);
        assert_false(ZSTD_isError(zlen));
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_ZSTD, z, zlen), 0);
        assert_int_equal(stored_size(f, &h), (long)zlen + 1);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_ZSTD);
        assert_int_equal(out.len, zlen);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, sizeof(text));
        assert_memory_equal(out.data, text, sizeof(text));
        buf_free(&out);
}

static void test_small_and_missing(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("tiny"), absent = srvtest_hash("absent");
        struct buf out = BUF_INIT;
        uint8_t enc;

        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"tiny", 4), 0);
        assert_int_equal(stored_size(f, &h), 5);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, 4);
        assert_memory_equal(out.data, "tiny", 4);
        assert_int_equal(f->b->ops->get(f->b, &absent, &out, &enc), -ENOENT);
        assert_int_equal(f->b->ops->exists(f->b, &absent), 0);
        buf_free(&out);
}

static void test_remove(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("doomed"), other = srvtest_hash("other");
        struct buf out = BUF_INIT;

        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"doomed", 6), 0);
        assert_int_equal(blob_put(f->b, &other, FRAME_ENC_RAW, (const uint8_t *)"other", 5), 0);
        assert_int_equal(f->b->ops->remove(f->b, &h), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
        assert_int_equal(stored_size(f, &h), -1);
        assert_int_equal(blob_get_raw(f->b, &h, &out), -ENOENT);
        assert_int_equal(f->b->ops->remove(f->b, &h), -ENOENT);
        assert_int_equal(f->b->ops->exists(f->b, &other), 1);
        /* stored again after removal: a new file */
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"doomed", 6), 0);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_memory_equal(out.data, "doomed", 6);
        buf_free(&out);
}

static void test_claim(void **state)
{
        struct fix *f = *state;
        struct blob *second = NULL, *third = NULL;

        /* two openers share the store (a server and `ferryd user add`) */
        assert_int_equal(blob_fs_open(f->chunks, &second), 0);
        assert_int_equal(f->b->ops->claim(f->b), -EBUSY);
        blob_close(second);
        /* alone: the claim holds, and keeps new openers out */
        assert_int_equal(f->b->ops->claim(f->b), 0);
        assert_int_equal(blob_fs_open(f->chunks, &third), -EBUSY);
        assert_null(third);
        blob_close(f->b);
        f->b = NULL;
        assert_int_equal(blob_fs_open(f->chunks, &f->b), 0);
}

static void test_corrupt_detected(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("this");
        struct buf out = BUF_INIT;

        /* Stored under the wrong name: reading it back as raw notices. */
        assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"that", 4), 0);
        assert_int_equal(blob_get_raw(f->b, &h, &out), -EBADMSG);
        buf_free(&out);
}

/* Regular files in dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
        struct dirent *de;
        int n = 0;
        DIR *d = opendir(dir);

        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' || prefix[0] == '.')
                        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                                n++;
        closedir(d);
        return n;
}

static void test_no_temp_files(void **state)
{
        struct fix *f = *state;
        char hex[HASH_HEX_LEN + 1], sub[4400];
        struct hash h;
        int i, n = 0;

        for (i = 0; i < 20; i++) {
                char s[16];
                snprintf(s, sizeof(s), "c%d", i);
                h = srvtest_hash(s);
                assert_int_equal(blob_put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)s, strlen(s)),
                                 0);
        }
        for (i = 0; i < 20; i++) {
                char s[16];
                snprintf(s, sizeof(s), "c%d", i);
                h = srvtest_hash(s);
                hash_to_hex(&h, hex);
                snprintf(sub, sizeof(sub), "%s/%.2s", f->chunks, hex);
                n += count_prefixed(sub, ".tmp");
        }
        snprintf(sub, sizeof(sub), "%s/.tmp", f->chunks);
        n += count_prefixed(sub, "");
        assert_int_equal(n, 0);
}

/* A batch's chunks are not in place before flush(); after it they all are
 * (a hash put twice in one batch included), no temp file is left, and a
 * chunk already stored is left alone. */
static void test_batch_visible_after_flush(void **state)
{
        struct fix *f = *state;
        struct blob_batch *bb = NULL;
        struct hash h[50], old = srvtest_hash("old");
        char s[50][16], tmpdir[4400];
        struct buf out = BUF_INIT;
        int i;

        snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", f->chunks);
        assert_int_equal(blob_put(f->b, &old, FRAME_ENC_RAW, (const uint8_t *)"old", 3), 0);
        assert_int_equal(f->b->ops->batch_new(f->b, &bb), 0);
        for (i = 0; i < 50; i++) {
                snprintf(s[i], sizeof(s[i]), "chunk %d", i);
                h[i] = srvtest_hash(s[i]);
                assert_int_equal(f->b->ops->put(f->b, bb, &h[i], FRAME_ENC_RAW,
                                                (const uint8_t *)s[i], strlen(s[i])),
                                 0);
        }
        assert_int_equal(
            f->b->ops->put(f->b, bb, &h[7], FRAME_ENC_RAW, (const uint8_t *)s[7], strlen(s[7])), 0);
        assert_int_equal(f->b->ops->put(f->b, bb, &old, FRAME_ENC_RAW, (const uint8_t *)"old", 3),
                         0);
        for (i = 0; i < 50; i++)
                assert_int_equal(f->b->ops->exists(f->b, &h[i]), 0);
        assert_true(count_prefixed(tmpdir, "") >= 50);
        assert_int_equal(f->b->ops->flush(f->b, bb), 0);
        for (i = 0; i < 50; i++) {
                assert_int_equal(blob_get_raw(f->b, &h[i], &out), 0);
                assert_int_equal(out.len, strlen(s[i]));
                assert_memory_equal(out.data, s[i], out.len);
        }
        assert_int_equal(blob_get_raw(f->b, &old, &out), 0);
        assert_memory_equal(out.data, "old", 3);
        assert_int_equal(count_prefixed(tmpdir, ""), 0);
        /* the batch is empty again and reusable */
        assert_int_equal(f->b->ops->flush(f->b, bb), 0);
        f->b->ops->batch_free(f->b, bb);
        buf_free(&out);
}

/* A batch freed without flush() leaves nothing behind. */
static void test_batch_dropped(void **state)
{
        struct fix *f = *state;
        struct blob_batch *bb = NULL;
        struct hash h = srvtest_hash("dropped");
        char tmpdir[4400];

        snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", f->chunks);
        assert_int_equal(f->b->ops->batch_new(f->b, &bb), 0);
        assert_int_equal(f->b->ops->put(f->b, bb, &h, FRAME_ENC_RAW, (const uint8_t *)"x", 1), 0);
        assert_int_equal(count_prefixed(tmpdir, ""), 1);
        f->b->ops->batch_free(f->b, bb);
        assert_int_equal(count_prefixed(tmpdir, ""), 0);
        assert_int_equal(f->b->ops->exists(f->b, &h), 0);
}

/* Opening the store removes temp files a crash left long ago, and only
 * those: a young one may belong to a writer still at work. */
static void test_stale_temps_swept(void **state)
{
        struct fix *f = *state;
        char tmpdir[4400], oldf[4500], young[4500];
        struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
        struct blob *b2 = NULL;
        FILE *fp;

        snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", f->chunks);
        snprintf(oldf, sizeof(oldf), "%s/0123456789abcdef", tmpdir);
        snprintf(young, sizeof(young), "%s/fedcba9876543210", tmpdir);
        fp = fopen(oldf, "w");
        assert_non_null(fp);
        fclose(fp);
        fp = fopen(young, "w");
        assert_non_null(fp);
        fclose(fp);
        assert_int_equal(utimensat(AT_FDCWD, oldf, ts, 0), 0);
        assert_int_equal(blob_fs_open(f->chunks, &b2), 0);
        assert_int_equal(access(oldf, F_OK), -1);
        assert_int_equal(access(young, F_OK), 0);
        blob_close(b2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_raw_compressible, setup, teardown),
            cmocka_unit_test_setup_teardown(test_raw_incompressible, setup, teardown),
            cmocka_unit_test_setup_teardown(test_zstd_kept_as_sent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_small_and_missing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_corrupt_detected, setup, teardown),
            cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
            cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_temp_files, setup, teardown),
            cmocka_unit_test_setup_teardown(test_batch_visible_after_flush, setup, teardown),
            cmocka_unit_test_setup_teardown(test_batch_dropped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stale_temps_swept, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
