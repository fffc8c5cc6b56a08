/* Unit tests for progress: human units and ETA formatting, the line with
 * and without a plan, its cut to the terminal width, and the drawing rules
 * (nothing in the first second, at most one redraw per interval, erased at
 * the end, nothing at all for a quick sync), driven with a fake clock and
 * a memory stream for the terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "progress.h"

#define MS 1000000LL
#define MIB (1024 * 1024)

static void test_human(void **state)
{
        char b[32];

        (void)state;
        progress_human(0, b, sizeof(b));
        assert_string_equal(b, "0 B");
        progress_human(1023, b, sizeof(b));
        assert_string_equal(b, "1023 B");
        progress_human(1024, b, sizeof(b));
        assert_string_equal(b, "1.0 KiB");
        progress_human(1536, b, sizeof(b));
        assert_string_equal(b, "1.5 KiB");
        progress_human(10 * MIB, b, sizeof(b));
        assert_string_equal(b, "10.0 MiB");
        progress_human(MIB - 1, b, sizeof(b)); /* not "1024.0 KiB" */
        assert_string_equal(b, "1.0 MiB");
        progress_human(3LL * 1024 * MIB + 512LL * MIB, b, sizeof(b));
        assert_string_equal(b, "3.5 GiB");
        progress_human(2048LL * 1024 * 1024 * MIB, b, sizeof(b));
        assert_string_equal(b, "2048.0 TiB");
        progress_human(-5, b, sizeof(b));
        assert_string_equal(b, "0 B");
}

static void test_eta(void **state)
{
        char b[32];

        (void)state;
        progress_eta(0, b, sizeof(b));
        assert_string_equal(b, "0:00");
        progress_eta(7, b, sizeof(b));
        assert_string_equal(b, "0:07");
        progress_eta(754, b, sizeof(b));
        assert_string_equal(b, "12:34");
        progress_eta(3723, b, sizeof(b));
        assert_string_equal(b, "1:02:03");
}

static void test_format(void **state)
{
        struct progress_view v = {0};
        char line[256];

        (void)state;
        /* no plan: bytes and rate, no ETA */
        v.up = 3 * MIB;
        v.down = 2048;
        v.rate = 1.5 * MIB;
        progress_format(&v, 200, line, sizeof(line));
        assert_string_equal(line, "syncing: sent 3.0 MiB, received 2.0 KiB, 1.5 MiB/s");

        /* a plan: files, total, ETA of what is left at the rate */
        v.have_dir = 1;
        v.dir = PROGRESS_UP;
        v.files = 12;
        v.total = 100 * MIB;
        v.moved = 40 * MIB;
        v.rate = 2.0 * MIB;
        progress_format(&v, 200, line, sizeof(line));
        assert_string_equal(line, "uploading 12 files, 40.0 MiB of 100.0 MiB, 2.0 MiB/s, ETA 0:30");
        v.dir = PROGRESS_DOWN;
        v.files = 1;
        progress_format(&v, 200, line, sizeof(line));
        assert_non_null(strstr(line, "downloading 1 file, 40.0 MiB of 100.0 MiB, "));

        /* nothing to divide by, or nothing left: no ETA */
        v.rate = 0;
        progress_format(&v, 200, line, sizeof(line));
        assert_null(strstr(line, "ETA"));
        v.rate = MIB;
        v.moved = v.total;
        progress_format(&v, 200, line, sizeof(line));
        assert_null(strstr(line, "ETA"));

        /* never wider than the terminal minus one column */
        progress_format(&v, 20, line, sizeof(line));
        assert_int_equal(strlen(line), 19);
        assert_memory_equal(line, "downloading 1 file,", 19);
        progress_format(&v, 200, line, 10);
        assert_int_equal(strlen(line), 9);
}

struct term {
        char *buf;
        size_t len;
        FILE *f;
};

static void term_open(struct term *t)
{
        memset(t, 0, sizeof(*t));
        t->f = open_memstream(&t->buf, &t->len);
        assert_non_null(t->f);
}

static size_t count(const char *s, const char *what)
{
        size_t n = 0;

        for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
                n++;
        return n;
}

static void test_throttle(void **state)
{
        struct progress *p = NULL;
        struct term t;
        int64_t t0 = 5000 * MS;

        (void)state;
        term_open(&t);
        assert_int_equal(progress_new(t.f, 100, &p), 0);
        /* the first second: nothing */
        assert_int_equal(progress_update(p, t0, 0, 0), 0);
        assert_int_equal(progress_update(p, t0 + 500 * MS, MIB / 2, 0), 0);
        assert_int_equal(progress_update(p, t0 + 999 * MS, MIB, 0), 0);
        fflush(t.f);
        assert_int_equal(t.len, 0);
        /* then at most every 100 ms */
        assert_int_equal(progress_update(p, t0 + 1000 * MS, MIB, 0), 1);
        assert_int_equal(progress_update(p, t0 + 1050 * MS, MIB, 0), 0);
        assert_int_equal(progress_update(p, t0 + 1099 * MS, MIB, 0), 0);
        assert_int_equal(progress_update(p, t0 + 1100 * MS, MIB, 0), 1);
        for (int i = 0; i < 100; i++) /* a burst of callbacks in one interval */
                progress_update(p, t0 + 1150 * MS + i * 100000, MIB, 0);
        assert_int_equal(progress_update(p, t0 + 1200 * MS, MIB, 0), 1);
        fflush(t.f);
        assert_int_equal(count(t.buf, "\r"), 3);
        assert_int_equal(count(t.buf, "\033[K"), 3);
        assert_null(strchr(t.buf, '\n'));
        /* the end erases the line */
        progress_free(p);
        fclose(t.f);
        assert_true(t.len >= 4);
        assert_string_equal(t.buf + t.len - 4, "\r\033[K");
        free(t.buf);
}

static void test_quick_sync_silent(void **state)
{
        struct progress *p = NULL;
        struct term t;

        (void)state;
        term_open(&t);
        assert_int_equal(progress_new(t.f, 80, &p), 0);
        progress_plan(p, PROGRESS_UP, 10, MIB);
        for (int i = 0; i <= 9; i++)
                assert_int_equal(progress_update(p, i * 100 * MS, i * 100000, 0), 0);
        progress_free(p);
        fclose(t.f);
        assert_int_equal(t.len, 0);
        free(t.buf);
}

/* The rate over the window and the ETA from the phase's plan; a new phase
 * starts its own count, consecutive plans of one phase add up. */
static void test_rate_eta(void **state)
{
        struct progress *p = NULL;
        struct term t;
        char *last;

        (void)state;
        term_open(&t);
        assert_int_equal(progress_new(t.f, 200, &p), 0);
        progress_plan(p, PROGRESS_UP, 2, 6 * MIB);
        progress_plan(p, PROGRESS_UP, 1, 2 * MIB);
        /* 1 MiB/s for 2 s, then 4 MiB/s for 4 s: the window (3 s) follows */
        for (int i = 0; i <= 20; i++)
                progress_update(p, i * 100 * MS, (int64_t)i * MIB / 10, 0);
        fflush(t.f);
        last = strrchr(t.buf, '\r');
        assert_non_null(last);
        assert_non_null(strstr(last, "uploading 3 files, 2.0 MiB of 8.0 MiB, 1.0 MiB/s, ETA 0:06"));
        for (int i = 1; i <= 40; i++)
                progress_update(p, 2000 * MS + i * 100 * MS, 2 * MIB + (int64_t)i * 4 * MIB / 10,
                                0);
        fflush(t.f);
        last = strrchr(t.buf, '\r');
        assert_non_null(strstr(last, "4.0 MiB/s"));
        assert_non_null(strstr(last, "18.0 MiB of 8.0 MiB"));
        assert_null(strstr(last, "ETA")); /* more than the plan sent: nothing left */

        /* the download phase counts from here */
        progress_plan(p, PROGRESS_DOWN, 4, 10 * MIB);
        for (int i = 1; i <= 30; i++)
                progress_update(p, 6000 * MS + i * 100 * MS, 18 * MIB, (int64_t)i * MIB / 10);
        fflush(t.f);
        last = strrchr(t.buf, '\r');
        assert_non_null(
            strstr(last, "downloading 4 files, 3.0 MiB of 10.0 MiB, 1.0 MiB/s, ETA 0:07"));
        progress_free(p);
        fclose(t.f);
        free(t.buf);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_human),
            cmocka_unit_test(test_eta),
            cmocka_unit_test(test_format),
            cmocka_unit_test(test_throttle),
            cmocka_unit_test(test_quick_sync_silent),
            cmocka_unit_test(test_rate_eta),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
