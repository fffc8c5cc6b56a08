/* Unit tests for the dirty-path set: the settle time, a file being written
 * waits for its close (or for its quiet time), a directory waits for the
 * files being written under it, bursts are batched within the maximum
 * delay, and paths put back after a failed round come out again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dirty.h"
#include "notify.h"
#include "watch.h"

#define MS 1000000LL

static size_t take(struct dirty_set *d, int64_t now, const char *expect)
{
        char **p = NULL, got[1024] = "";
        size_t n = 0;

        assert_int_equal(dirty_take(d, now, &p, &n), 0);
        for (size_t i = 0; i < n; i++) {
                strcat(got, p[i]);
                strcat(got, ";");
        }
        /* order is not defined: compare as sets of short names */
        assert_int_equal(strlen(got), strlen(expect));
        for (size_t i = 0; i < n; i++)
                assert_non_null(strstr(expect, p[i]));
        dirty_paths_free(p, n);
        return n;
}

static void test_settle_and_batch(void **state)
{
        struct dirty_set *d;
        int64_t t = 1000 * MS;

        (void)state;
        assert_int_equal(dirty_new(&d), 0);
        assert_true(dirty_due(d) == DIRTY_NEVER);
        assert_int_equal(dirty_mark(d, "a", NOTIFY_CHANGED, t), 0);
        assert_true(dirty_due(d) == t + WATCH_SETTLE_MS * MS);
        assert_int_equal(take(d, t + 5 * MS, ""), 0);
        /* more events keep the batch open, up to the maximum delay */
        for (int i = 1; i <= 40; i++) {
                char name[16];

                snprintf(name, sizeof(name), "f%d", i);
                assert_int_equal(dirty_mark(d, name, NOTIFY_CLOSED, t + i * 10 * MS), 0);
        }
        assert_true(dirty_due(d) == t + WATCH_MAX_DELAY_MS * MS);
        assert_int_equal(dirty_count(d), 41);
        /* at the max delay, what has settled goes; the newest ones wait */
        {
                char **p;
                size_t n;

                assert_int_equal(dirty_take(d, t + WATCH_MAX_DELAY_MS * MS, &p, &n), 0);
                assert_true(n > 20 && n < 41);
                dirty_paths_free(p, n);
        }
        dirty_free(d);
}

static void test_writing_waits(void **state)
{
        struct dirty_set *d;
        int64_t t = 1000 * MS;

        (void)state;
        assert_int_equal(dirty_new(&d), 0);
        assert_int_equal(dirty_mark(d, "dir", NOTIFY_CHANGED, t), 0);
        assert_int_equal(dirty_mark(d, "dir/big", NOTIFY_WRITING, t), 0);
        assert_int_equal(dirty_mark(d, "other", NOTIFY_CHANGED, t), 0);
        assert_true(dirty_writing(d, t + 100 * MS));
        /* "other" goes; "dir" waits for the file written under it */
        assert_int_equal(take(d, t + 100 * MS, "other;"), 1);
        assert_int_equal(dirty_mark(d, "dir/big", NOTIFY_WRITING, t + 900 * MS), 0);
        assert_int_equal(take(d, t + 1500 * MS, ""), 0);
        assert_true(dirty_due(d) == t + (900 + WATCH_WRITE_QUIET_MS) * MS);
        /* closed: both go after the settle time */
        assert_int_equal(dirty_mark(d, "dir/big", NOTIFY_CLOSED, t + 1600 * MS), 0);
        assert_false(dirty_writing(d, t + 1600 * MS));
        assert_int_equal(take(d, t + 1600 * MS + WATCH_SETTLE_MS * MS, "dir;dir/big;"), 2);
        /* a writer that never closes goes after its quiet time */
        assert_int_equal(dirty_mark(d, "log", NOTIFY_WRITING, t + 2000 * MS), 0);
        assert_int_equal(take(d, t + 2000 * MS + WATCH_WRITE_QUIET_MS * MS - 1, ""), 0);
        assert_int_equal(take(d, t + 2000 * MS + WATCH_WRITE_QUIET_MS * MS, "log;"), 1);
        /* deleted while written: no longer waited for */
        assert_int_equal(dirty_mark(d, "tmp", NOTIFY_WRITING, t + 5000 * MS), 0);
        assert_int_equal(dirty_mark(d, "tmp", NOTIFY_CHANGED | NOTIFY_GONE, t + 5001 * MS), 0);
        assert_int_equal(take(d, t + 5001 * MS + WATCH_SETTLE_MS * MS, "tmp;"), 1);
        dirty_free(d);
}

static void test_put_back_and_many(void **state)
{
        struct dirty_set *d;
        int64_t t = 1000 * MS;
        char **p = NULL;
        size_t n = 0;

        (void)state;
        assert_int_equal(dirty_new(&d), 0);
        for (int i = 0; i < 5000; i++) {
                char name[32];

                snprintf(name, sizeof(name), "dir/file-%d", i);
                assert_int_equal(dirty_mark(d, name, NOTIFY_CLOSED, t), 0);
                assert_int_equal(dirty_mark(d, name, NOTIFY_CHANGED, t), 0); /* same entry */
        }
        assert_int_equal(dirty_count(d), 5000);
        assert_int_equal(dirty_take(d, t + WATCH_SETTLE_MS * MS, &p, &n), 0);
        assert_int_equal(n, 5000);
        assert_int_equal(dirty_count(d), 0);
        assert_int_equal(dirty_put_back(d, p, n, t + 100 * MS), 0);
        assert_int_equal(dirty_count(d), 5000);
        assert_true(dirty_due(d) <= t + 100 * MS);
        assert_int_equal(dirty_take(d, t + 100 * MS, &p, &n), 0);
        assert_int_equal(n, 5000);
        dirty_paths_free(p, n);
        dirty_free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_settle_and_batch),
            cmocka_unit_test(test_writing_waits),
            cmocka_unit_test(test_put_back_and_many),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
