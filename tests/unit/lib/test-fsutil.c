/* Unit tests for fsutil: mkdir -p, atomic writes (content, mode, no temp
 * files left, failure leaves nothing), bounded whole-file reads, directory
 * fsync, randomness and the clock. Everything happens under a mkdtemp
 * directory in $TMPDIR, removed afterwards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "testutil.h"

static char tmpdir[512];

static int setup(void **state)
{
        (void)state;
        return testutil_mkdtemp(tmpdir, sizeof(tmpdir), "fsutil");
}

static int teardown(void **state)
{
        (void)state;
        return testutil_rm_rf(tmpdir);
}

static char *at(const char *rel)
{
        static char p[1024];

        snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
        return p;
}

static size_t count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n = 0;

        assert_non_null(d);
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_mkdirs(void **state)
{
        struct stat st;

        (void)state;
        assert_int_equal(fsutil_mkdirs(at("a/b/c"), 0), 0);
        assert_int_equal(stat(at("a/b/c"), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        /* existing is fine, trailing slash too */
        assert_int_equal(fsutil_mkdirs(at("a/b/c"), 0), 0);
        assert_int_equal(fsutil_mkdirs(at("a/b/c/"), 0), 0);
        assert_int_equal(fsutil_mkdirs(at("priv/x"), 1), 0);
        assert_int_equal(stat(at("priv/x"), &st), 0);
        assert_int_equal(st.st_mode & 0077, 0);
        /* a file in the way */
        assert_int_equal(fsutil_write_atomic(at("file"), "x", 1, 0644), 0);
        assert_true(fsutil_mkdirs(at("file/sub"), 0) < 0);
        assert_true(fsutil_mkdirs(at("file"), 0) < 0);
        assert_int_equal(fsutil_mkdirs("", 0), -EINVAL);
}

static void test_write_atomic(void **state)
{
        struct stat st;
        char *data = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(fsutil_mkdirs(at("w"), 0), 0);
        assert_int_equal(fsutil_write_atomic(at("w/f"), "first", 5, 0600), 0);
        assert_int_equal(stat(at("w/f"), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(fsutil_write_atomic(at("w/f"), "second!", 7, 0755), 0);
        assert_int_equal(stat(at("w/f"), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0755);
        assert_int_equal(fsutil_read_all(at("w/f"), 100, &data, &len), 0);
        assert_int_equal(len, 7);
        assert_string_equal(data, "second!");
        free(data);
        /* empty content */
        assert_int_equal(fsutil_write_atomic(at("w/empty"), "", 0, 0644), 0);
        assert_int_equal(stat(at("w/empty"), &st), 0);
        assert_int_equal(st.st_size, 0);
        /* no temporary file left behind */
        assert_int_equal(count_entries(at("w")), 2);
        /* a missing directory fails and creates nothing */
        assert_int_equal(fsutil_write_atomic(at("w/nodir/f"), "x", 1, 0644), -ENOENT);
        assert_int_equal(count_entries(at("w")), 2);
}

static void test_read_all(void **state)
{
        char *data = NULL;
        size_t len = 99;

        (void)state;
        assert_int_equal(fsutil_write_atomic(at("r"), "0123456789", 10, 0644), 0);
        assert_int_equal(fsutil_read_all(at("r"), 10, &data, &len), 0);
        assert_int_equal(len, 10);
        assert_int_equal(data[10], '\0');
        assert_string_equal(data, "0123456789");
        free(data);
        data = NULL;
        assert_int_equal(fsutil_read_all(at("r"), 10, &data, NULL), 0);
        assert_string_equal(data, "0123456789");
        free(data);
        data = NULL;
        assert_int_equal(fsutil_read_all(at("r"), 9, &data, &len), -E2BIG);
        assert_null(data);
        assert_int_equal(fsutil_read_all(at("missing"), 10, &data, &len), -ENOENT);
        assert_null(data);
        assert_int_equal(fsutil_write_atomic(at("r0"), "", 0, 0644), 0);
        assert_int_equal(fsutil_read_all(at("r0"), 0, &data, &len), 0);
        assert_int_equal(len, 0);
        assert_string_equal(data, "");
        free(data);
}

static void test_fsync_parent(void **state)
{
        (void)state;
        assert_int_equal(fsutil_write_atomic(at("s"), "x", 1, 0644), 0);
        assert_int_equal(fsutil_fsync_parent(at("s")), 0);
        assert_int_equal(fsutil_fsync_parent("relative-name"), 0);
        assert_int_equal(fsutil_fsync_parent(at("nodir/x")), -ENOENT);
}

static void test_random(void **state)
{
        uint8_t a[32], b[32];
        char hex[65], hex2[65];
        char big[2 * 100 + 1];

        (void)state;
        assert_int_equal(fsutil_random(a, sizeof(a)), 0);
        assert_int_equal(fsutil_random(b, sizeof(b)), 0);
        assert_memory_not_equal(a, b, sizeof(a));
        assert_int_equal(fsutil_random_hex(hex, 32), 0);
        assert_int_equal(fsutil_random_hex(hex2, 32), 0);
        assert_int_equal(strlen(hex), 64);
        assert_string_not_equal(hex, hex2);
        for (int i = 0; i < 64; i++)
                assert_non_null(strchr("0123456789abcdef", hex[i]));
        assert_int_equal(fsutil_random_hex(big, 100), 0);
        assert_int_equal(strlen(big), 200);
        assert_int_equal(fsutil_random_hex(hex, 0), 0);
        assert_string_equal(hex, "");
}

static void test_now(void **state)
{
        int64_t a = fsutil_now_ns(), b;

        (void)state;
        /* after 2020-01-01 and not in the far future */
        assert_true(a > 1577836800LL * 1000000000LL);
        assert_true(a < 4102444800LL * 1000000000LL);
        b = fsutil_now_ns();
        assert_true(b >= a);
        /* a stat time; the monotonic clock moves on across a sleep */
        assert_true(fsutil_ts_ns(&(struct timespec){.tv_sec = 3, .tv_nsec = 5}) == 3000000005LL);
        a = fsutil_mono_ns();
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
        b = fsutil_mono_ns();
        assert_true(b - a >= 2000000 && b - a < 5000000000LL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_mkdirs),   cmocka_unit_test(test_write_atomic),
            cmocka_unit_test(test_read_all), cmocka_unit_test(test_fsync_parent),
            cmocka_unit_test(test_random),   cmocka_unit_test(test_now),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
