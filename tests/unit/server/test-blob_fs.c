/* test-blob_fs: the local chunk store (blob_fs.c) — round trips of raw and
 * compressed chunks, compression at rest only when it pays, the on-disk
 * layout, idempotent puts and that no temporary file is left behind. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

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
        assert_int_equal(f->b->ops->put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
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
        assert_int_equal(f->b->ops->put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
        assert_int_equal(stored_size(f, &h), (long)sizeof(data) + 1);
        assert_int_equal(f->b->ops->get(f->b, &h, &out, &enc), 0);
        assert_int_equal(enc, FRAME_ENC_RAW);
        assert_int_equal(out.len, sizeof(data));
        assert_memory_equal(out.data, data, sizeof(data));
        /* A second put of the same hash changes nothing. */
        assert_int_equal(f->b->ops->put(f->b, &h, FRAME_ENC_RAW, data, sizeof(data)), 0);
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
        assert_int_equal(f->b->ops->put(f->b, &h, FRAME_ENC_ZSTD, z, zlen), 0);
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

        assert_int_equal(f->b->ops->put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"tiny", 4), 0);
        assert_int_equal(stored_size(f, &h), 5);
        assert_int_equal(blob_get_raw(f->b, &h, &out), 0);
        assert_int_equal(out.len, 4);
        assert_memory_equal(out.data, "tiny", 4);
        assert_int_equal(f->b->ops->get(f->b, &absent, &out, &enc), -ENOENT);
        assert_int_equal(f->b->ops->exists(f->b, &absent), 0);
        buf_free(&out);
}

static void test_corrupt_detected(void **state)
{
        struct fix *f = *state;
        struct hash h = srvtest_hash("this");
        struct buf out = BUF_INIT;

        /* Stored under the wrong name: reading it back as raw notices. */
        assert_int_equal(f->b->ops->put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)"that", 4), 0);
        assert_int_equal(blob_get_raw(f->b, &h, &out), -EBADMSG);
        buf_free(&out);
}

static void test_no_temp_files(void **state)
{
        struct fix *f = *state;
        char hex[HASH_HEX_LEN + 1], sub[4400];
        struct dirent *de;
        struct hash h;
        int i, n = 0;
        DIR *d;

        for (i = 0; i < 20; i++) {
                char s[16];
                snprintf(s, sizeof(s), "c%d", i);
                h = srvtest_hash(s);
                assert_int_equal(
                    f->b->ops->put(f->b, &h, FRAME_ENC_RAW, (const uint8_t *)s, strlen(s)), 0);
        }
        for (i = 0; i < 20; i++) {
                char s[16];
                snprintf(s, sizeof(s), "c%d", i);
                h = srvtest_hash(s);
                hash_to_hex(&h, hex);
                snprintf(sub, sizeof(sub), "%s/%.2s", f->chunks, hex);
                d = opendir(sub);
                assert_non_null(d);
                while ((de = readdir(d)))
                        if (de->d_name[0] == '.' && strncmp(de->d_name, ".tmp-", 5) == 0)
                                n++;
                closedir(d);
        }
        assert_int_equal(n, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_raw_compressible, setup, teardown),
            cmocka_unit_test_setup_teardown(test_raw_incompressible, setup, teardown),
            cmocka_unit_test_setup_teardown(test_zstd_kept_as_sent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_small_and_missing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_corrupt_detected, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_temp_files, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
